"""Prespecified subgroups: hazard ratios, heterogeneity and interaction p-values, forest plot.

For each subgroup variable (oligometastatic vs oligoprogressive, IMDC risk, 1 vs 2-5 lesions,
site, systemic-therapy class), a univariable Cox model gives the PFS (or OS) hazard ratio of
each level against the reference level with its Wald 95 % CI, and a likelihood-ratio test
across the levels (p heterogeneity). Because every patient received SABR, these are
**prognostic** comparisons (who does well after SABR), not treatment effects.

The interaction p-value asks whether the variable's association differs between patients
with and without concurrent systemic therapy: the likelihood-ratio test of the
``variable x any-systemic-therapy`` terms added to the model with both main effects,

.. math:: \\chi^2 = 2\\,(\\ell_{\\text{interaction}} - \\ell_{\\text{main}}),\\quad
          df = (\\text{levels} - 1).

(For the therapy-class variable itself no interaction is defined.) With about 60 patients
the intervals are wide; read the plot as exploratory (Riley et al., Stat Med 2019).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SUBGROUPS", "subgroup_hazard_ratios", "plot_forest"]

logger = logging.getLogger(__name__)

#: Prespecified subgroup variables: ADSL column, label, reference level.
SUBGROUPS: tuple[tuple[str, str, str], ...] = (
    ("DISSTATE", "Disease state", "oligometastatic"),
    ("IMDC", "IMDC risk", "favourable"),
    ("LESGRP", "Treated lesions", "1"),
    ("SITEGRP", "Site (any bone / lung only / other)", "lung"),
    ("TRT01A", "Systemic therapy", "SABR alone"),
)


def _fit(frame: pd.DataFrame, columns: list[str], duration: str, event: str) -> Any:
    from lifelines import CoxPHFitter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CoxPHFitter(penalizer=1e-6).fit(frame[[*columns, duration, event]], duration, event)


def _dummies(values: pd.Series, reference: str, prefix: str) -> pd.DataFrame:
    dummies = pd.get_dummies(values.astype(str), prefix=prefix, prefix_sep="=").astype(float)
    return dummies.drop(columns=[f"{prefix}={reference}"], errors="ignore")


def subgroup_hazard_ratios(
    frame: pd.DataFrame,
    subgroups: Sequence[tuple[str, str, str]] = SUBGROUPS,
    *,
    duration: str = "AVAL",
    event: str = "EVENT",
    exposure: str = "ANYSYST",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Hazard ratio per subgroup level with heterogeneity and interaction p-values.

    Parameters
    ----------
    frame : DataFrame
        One row per patient: duration, event, ``exposure`` (bool) and the subgroup columns
        (:func:`sabrkit.registry.analyses.km.endpoint_frame` of ``PFS`` joined with ADSL).

    Returns
    -------
    DataFrame
        ``variable, label, level, n, events, hr, ci_low, ci_high, p_heterogeneity, p_interaction``;
        the reference level has hr = 1; a level without events or patients has NaN estimates.
    """
    from scipy import stats

    z = stats.norm.ppf(1 - alpha / 2)
    rows: list[dict[str, Any]] = []
    for column, label, reference in subgroups:
        data = frame[frame[column].notna()].copy()
        levels = sorted(data[column].astype(str).unique(), key=lambda v: (v != reference, v))
        if len(levels) < 2:
            continue
        reference = levels[0]
        design = _dummies(data[column], reference, column)
        data = pd.concat([data[[duration, event, exposure]].astype(float), design], axis=1)
        names = list(design.columns)
        p_het = p_int = np.nan
        fitted = None
        try:
            fitted = _fit(data, names, duration, event)
            p_het = float(fitted.log_likelihood_ratio_test().p_value)
            if column != "TRT01A" and data[exposure].nunique() == 2:
                interactions = [f"{name}:x" for name in names]
                for name, term in zip(names, interactions):
                    data[term] = data[name] * data[exposure]
                main = _fit(data, [*names, exposure], duration, event)
                full = _fit(data, [*names, exposure, *interactions], duration, event)
                lr = 2.0 * (full.log_likelihood_ - main.log_likelihood_)
                p_int = float(stats.chi2.sf(max(lr, 0.0), len(interactions)))
        except Exception as exc:
            logger.warning("subgroup %s: Cox model not estimable (%s)", column, exc)
        for level in levels:
            members = frame[frame[column].astype(str) == level]
            row = {
                "variable": column,
                "label": label,
                "level": level,
                "n": len(members),
                "events": int(members[event].sum()),
                "hr": 1.0 if level == reference else np.nan,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "p_heterogeneity": p_het,
                "p_interaction": p_int,
            }
            name = f"{column}={level}"
            if fitted is not None and name in fitted.params_.index and row["events"] > 0:
                beta, se = float(fitted.params_[name]), float(fitted.standard_errors_[name])
                if np.isfinite(se) and se < 10:
                    row.update(
                        hr=float(np.exp(beta)),
                        ci_low=float(np.exp(beta - z * se)),
                        ci_high=float(np.exp(beta + z * se)),
                    )
            rows.append(row)
    return pd.DataFrame(rows)


def plot_forest(table: pd.DataFrame, *, title: str) -> Any:
    """Forest plot: one row per level, HR and CI on a log axis, p-values per variable."""
    from sabrkit.registry.analyses.plotting import new_figure, text_width

    height = 1.2 + 0.32 * (len(table) + table["variable"].nunique())
    labels = []
    for _, group in table.groupby("variable", sort=False):
        first = group.iloc[0]
        p_text = f"p het {first['p_heterogeneity']:.2g}"
        if np.isfinite(first["p_interaction"]):
            p_text += f", p int {first['p_interaction']:.2g}"
        labels.append(f"{first['label']} ({p_text})")
        labels += [f"   {row['level']} ({row['events']}/{row['n']})" for _, row in group.iterrows()]
    left = text_width(labels, 8) + 0.2  # fixed layout (one draw): the widest label sets the margin
    figure, ax = new_figure(left + 6.6 + 0.25, height, left=left, bottom=0.6, top=0.4, right=0.25)
    y, ticks = 0.0, []
    for _, group in table.groupby("variable", sort=False):
        ticks.append(y)
        y -= 1
        for _, row in group.iterrows():
            ticks.append(y)
            if np.isfinite(row["ci_low"]):
                ax.errorbar(
                    row["hr"],
                    y,
                    xerr=[[row["hr"] - row["ci_low"]], [row["ci_high"] - row["hr"]]],
                    fmt="s",
                    color="#2166ac",
                    ms=5,
                    capsize=2,
                )
            elif row["hr"] == 1.0:
                ax.plot(1.0, y, "D", color="grey", ms=4)
            y -= 1
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.axvline(1.0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set(xlabel="Hazard ratio (95% CI), log scale; events/n", title=title, ylim=(y + 0.5, 0.5))
    ax.grid(alpha=0.3, axis="x")
    return figure
