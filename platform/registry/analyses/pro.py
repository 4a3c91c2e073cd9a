"""Patient-reported scores over time: VRS pain (0-4, higher = worse) and TESS (0-60, higher = better).

Per visit (month): the number of patients, the mean and its 95 % t interval,

.. math:: \\bar x \\pm t_{0.975,\\, n-1} \\, s / \\sqrt n,

and the same for the change from baseline (visit 0) among patients with both values. Visits
after progression are kept (the curves describe the cohort as followed, not a treatment effect).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["score_by_month", "plot_score_by_month"]


def _mean_ci(values: pd.Series, alpha: float) -> tuple[float, float, float]:
    from scipy import stats

    n = int(values.count())
    mean = float(values.mean()) if n else float("nan")
    if n < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(1 - alpha / 2, n - 1) * values.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half


def score_by_month(scores: pd.DataFrame, alpha: float = 0.05, max_visit: int = 24) -> pd.DataFrame:
    """Mean score and mean change from baseline per visit, with 95 % t intervals.

    Parameters
    ----------
    scores : DataFrame
        The exported ``vrs`` or ``tess`` table (``VISITNUM, AVAL, CHG``).

    Returns
    -------
    DataFrame
        ``month, n, mean, ci_low, ci_high, n_change, mean_change, change_ci_low, change_ci_high``.
    """
    rows = []
    for month, group in scores[scores["VISITNUM"] <= max_visit].groupby("VISITNUM"):
        mean, low, high = _mean_ci(group["AVAL"], alpha)
        change = group["CHG"].dropna()
        c_mean, c_low, c_high = _mean_ci(change, alpha)
        rows.append(
            {
                "month": int(month),
                "n": int(group["AVAL"].count()),
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
                "n_change": int(change.count()),
                "mean_change": c_mean,
                "change_ci_low": c_low,
                "change_ci_high": c_high,
            }
        )
    return pd.DataFrame(rows)


def plot_score_by_month(
    summary: pd.DataFrame, *, title: str, ylabel: str, limits: tuple[float, float]
) -> Any:
    """Mean score per month with its 95 % CI (left) and mean change from baseline (right)."""
    from matplotlib.figure import Figure

    from sabrkit.registry.analyses.plotting import DPI, set_margins

    figure = Figure(figsize=(10, 4), dpi=DPI)
    set_margins(figure, left=0.7, bottom=0.6, right=0.2, top=0.5, wspace=0.25)  # fixed layout: one draw
    left, right = figure.subplots(1, 2)
    for ax, mean, low, high, label in (
        (left, "mean", "ci_low", "ci_high", ylabel),
        (right, "mean_change", "change_ci_low", "change_ci_high", "change from baseline (visit 0)"),
    ):
        ax.errorbar(
            summary["month"],
            summary[mean],
            yerr=[summary[mean] - summary[low], summary[high] - summary[mean]],
            fmt="o-",
            ms=3,
            capsize=2,
            color="#2166ac",
        )
        ax.set(xlabel="Month after first SABR fraction", ylabel=label)
        ax.grid(alpha=0.3)
    left.set_ylim(*limits)
    right.axhline(0, color="grey", lw=0.8)
    figure.suptitle(title)
    return figure
