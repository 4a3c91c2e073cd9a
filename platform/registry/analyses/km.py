"""Kaplan-Meier estimates, landmarks, numbers at risk, log-rank tests and Cox hazard ratios.

Pure functions over the exported tables (ADSL, ADTTE; :mod:`sabrkit.registry.exports`), with
named columns, wrapping lifelines. The pointwise 95 % confidence interval of S(t) is the
log-log ("exponential Greenwood") interval, lifelines' default and R's ``conf.type="log-log"``:

.. math:: \\hat S(t)^{\\exp(\\pm z_{0.975} \\hat\\sigma(t))}, \\quad
          \\hat\\sigma^2(t) = \\frac{\\sum_{t_i \\le t} d_i / (n_i (n_i - d_i))}{\\log^2 \\hat S(t)}

The log-rank test compares groups with the :math:`\\chi^2` statistic on (groups - 1) degrees
of freedom; Cox hazard ratios use Breslow's partial likelihood (Efron ties, as R's ``coxph``)
with Wald 95 % intervals :math:`\\exp(\\hat\\beta \\pm 1.96\\, \\mathrm{se})`.

References
----------
Kalbfleisch & Prentice, The Statistical Analysis of Failure Time Data, 2nd ed., 2002.
Davidson-Pilon, lifelines: survival analysis in Python, JOSS 2019, 4(40):1317.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.errors import ValidationError, format_problem
from sabrkit.registry.survival import SurvivalAt, survival_at

__all__ = ["endpoint_frame", "km_landmarks", "km_curve", "logrank_by", "cox_by", "LogRank", "plot_km"]


def endpoint_frame(adtte: pd.DataFrame, paramcd: str, adsl: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ADTTE rows of one endpoint (``PFS``, ``OS``, ``LC``) with ADSL columns joined on ``USUBJID``."""
    rows = adtte[adtte["PARAMCD"] == paramcd].copy()
    if rows.empty:
        raise ValidationError(
            format_problem(
                f"no {paramcd} rows in the ADTTE table",
                "PARAMCD is PFS, OS or LC",
                "build the tables with sabrkit.registry.exports",
            )
        )
    rows["EVENT"] = rows["EVENT"].astype(bool)
    if adsl is not None:
        rows = rows.merge(
            adsl.drop(columns=[c for c in ("AVAL", "EVENT") if c in adsl]), on="USUBJID", how="left"
        )
    return rows


def km_landmarks(
    durations: pd.Series, events: pd.Series, times: Sequence[float] = (12.0, 24.0), alpha: float = 0.05
) -> list[SurvivalAt]:
    """S(t) with its log-log CI and the number at risk at each landmark (months)."""
    return [survival_at(durations, events, time, alpha=alpha) for time in times]


def km_curve(durations: pd.Series, events: pd.Series, alpha: float = 0.05, label: str = "all") -> Any:
    """A fitted lifelines ``KaplanMeierFitter`` (log-log CI)."""
    from lifelines import KaplanMeierFitter

    return KaplanMeierFitter(alpha=alpha, label=label).fit(
        pd.Series(durations, dtype=float), pd.Series(events).astype(bool)
    )


@dataclass(frozen=True)
class LogRank:
    """Log-rank test result: chi-squared statistic, degrees of freedom, p-value, groups compared."""

    chi2: float
    df: int
    p_value: float
    groups: tuple[str, ...]


def _check_groups(frame: pd.DataFrame, group: str, minimum: int = 2) -> pd.DataFrame:
    if group not in frame:
        raise ValidationError(
            format_problem(
                f"column {group!r} missing",
                "group by an ADSL column",
                "pass one of " + ", ".join(map(str, frame.columns)),
            )
        )
    kept = frame[frame[group].notna()]
    if kept[group].nunique() < minimum:
        raise ValidationError(
            format_problem(
                f"{group} has {kept[group].nunique()} group(s)",
                f"a comparison needs at least {minimum} groups",
                "choose another variable",
            )
        )
    return kept


def logrank_by(frame: pd.DataFrame, group: str, duration: str = "AVAL", event: str = "EVENT") -> LogRank:
    """Log-rank test of the survival curves of the groups in ``frame[group]``."""
    from lifelines.statistics import multivariate_logrank_test

    kept = _check_groups(frame, group)
    result = multivariate_logrank_test(
        kept[duration].astype(float), kept[group].astype(str), kept[event].astype(bool)
    )
    return LogRank(
        float(result.test_statistic),
        int(result.degrees_of_freedom),
        float(result.p_value),
        tuple(sorted(kept[group].astype(str).unique())),
    )


def cox_by(
    frame: pd.DataFrame,
    group: str,
    reference: str | None = None,
    duration: str = "AVAL",
    event: str = "EVENT",
    alpha: float = 0.05,
    adjust_for: Sequence[str] = (),
) -> pd.DataFrame:
    """Hazard ratio of each level of ``group`` against ``reference`` (Cox model).

    ``adjust_for`` names numeric columns added to the model (adjusted hazard ratios); without
    them the model is univariable.

    Returns
    -------
    DataFrame
        ``level, n, events, hr, ci_low, ci_high, p`` (the reference row has hr = 1, no CI).
    """
    from lifelines import CoxPHFitter

    kept = _check_groups(frame, group)
    levels = sorted(kept[group].astype(str).unique())
    reference = reference if reference in levels else levels[0]
    design = pd.get_dummies(kept[group].astype(str)).astype(float).drop(columns=[reference])
    for column in adjust_for:
        design[column] = kept[column].astype(float).to_numpy()
    design[duration], design[event] = (
        kept[duration].astype(float).to_numpy(),
        kept[event].astype(bool).to_numpy(),
    )
    fitted = CoxPHFitter(alpha=alpha).fit(design, duration, event)
    summary = fitted.summary
    rows = []
    for level in levels:
        subset = kept[kept[group].astype(str) == level]
        row: dict[str, Any] = {"level": level, "n": len(subset), "events": int(subset[event].sum())}
        if level == reference:
            row.update(hr=1.0, ci_low=np.nan, ci_high=np.nan, p=np.nan)
        else:
            s, pct = summary.loc[level], f"{100 * (1 - alpha):g}%"
            row.update(
                hr=float(s["exp(coef)"]),
                ci_low=float(s[f"exp(coef) lower {pct}"]),
                ci_high=float(s[f"exp(coef) upper {pct}"]),
                p=float(s["p"]),
            )
        rows.append(row)
    return pd.DataFrame(rows)


#: How far (inches) below the KM axes lifelines puts the numbers-at-risk table (its default ``ypos``).
_AT_RISK_DROP = 0.6


def plot_km(
    groups: dict[str, tuple[pd.Series, pd.Series]],
    *,
    title: str,
    xlabel: str = "Months from first SABR fraction",
    at_risk_times: Sequence[float] = (0, 6, 12, 18, 24),
    colours: dict[str, str] | None = None,
    annotation: str | None = None,
) -> Any:
    """Kaplan-Meier curves with 95 % log-log bands, censor ticks and a numbers-at-risk table."""
    from lifelines.plotting import add_at_risk_counts

    from sabrkit.registry.analyses.plotting import line_height, new_figure, text_width

    labels = {label: f"{label} (n={len(durations)})" for label, (durations, _) in groups.items()}
    # Fixed layout (one draw, see plotting): the numbers-at-risk table hangs below the axes, its
    # spine _AT_RISK_DROP inches down; its first column ends at the first tick (right-aligned), so
    # the widest group label sets the left margin; each group takes 4 lines (label, 2 rows, a gap).
    widest = text_width(
        [*labels.values(), f"{'At risk':>10}   {max(len(d) for d, _ in groups.values())}"], 10
    )
    left = max(0.8, widest + 0.15)
    bottom = _AT_RISK_DROP + 0.1 + 4 * len(groups) * line_height(10)
    figure, ax = new_figure(
        left + 6.0 + 0.35, 0.4 + 3.9 + bottom, left=left, bottom=bottom, right=0.35, top=0.4
    )
    fitters = []
    for label, (durations, events) in groups.items():
        fitter = km_curve(durations, events, label=labels[label])
        colour = (colours or {}).get(label)
        fitter.plot_survival_function(
            ax=ax, ci_show=True, show_censors=True, color=colour, censor_styles={"ms": 5, "marker": "|"}
        )
        fitters.append(fitter)
    ax.set(xlabel=xlabel, ylabel="Probability", ylim=(0, 1.02), xlim=(0, max(at_risk_times)))
    # y given: the title sits just above the axes without matplotlib measuring the twin axes of the
    # numbers-at-risk table on every draw (where it would land anyway: that table is below)
    ax.set_title(title, y=1.0)
    ax.set_xticks(list(at_risk_times))
    ax.grid(alpha=0.3)
    if annotation:
        ax.text(0.98, 0.95, annotation, transform=ax.transAxes, ha="right", va="top", fontsize=9)
    add_at_risk_counts(
        *fitters,
        ax=ax,
        fig=figure,
        xticks=list(at_risk_times),
        rows_to_show=["At risk", "Events"],
        ypos=-_AT_RISK_DROP,
    )
    return figure
