r"""Who are the patients who do best: profile of the low-risk group and risk by therapy class.

Both start from the out-of-fold risk groups (cut-off fixed in each training fold; each patient
in the group it received in most repeats). In a single-arm cohort, where every patient had
SABR, these are *prognostic* groups: they show who does well under SABR, not who benefits
from SABR, and differences between therapy classes are not treatment effects (therapy was not
randomised).

Profile
-------
For every characteristic (clinical levels and numbers, radiomic, deep and biomarker features)
:func:`low_risk_profile` reports the value in the low- and high-risk groups and the
standardised mean difference (Austin, Stat Med 2009;28:3083-3107)

.. math::

    d = \frac{\bar x_{low} - \bar x_{high}}{\sqrt{(s^2_{low} + s^2_{high})/2}}, \qquad
    d_{binary} = \frac{p_{low} - p_{high}}{\sqrt{(p_{low}(1-p_{low}) + p_{high}(1-p_{high}))/2}}

:math:`|d| > 0.2` is a small and :math:`|d| > 0.5` a medium difference. SMDs describe the
groups; they are not tests.

Risk by therapy class
---------------------
:func:`risk_by_therapy` fits, within each therapy class, a Cox model of the endpoint on the
high-risk indicator (lifelines ``CoxPHFitter``) and reports the hazard ratio high vs low with
its 95 % CI, for the forest plot (:func:`sabrkit.models.plots.plot_therapy_forest`).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from sabrkit.errors import ModelInputError, format_problem
from sabrkit.models.clinical_encoding import CLINICAL_CATEGORIES, THERAPY_LABELS
from sabrkit.models.dataset import SurvivalDataset

__all__ = ["low_risk_profile", "risk_by_therapy", "standardised_mean_difference", "PROGNOSTIC_NOTE"]

logger = logging.getLogger(__name__)

PROGNOSTIC_NOTE = (
    "Single-arm cohort: every patient received SABR. The risk groups are prognostic (who does well "
    "under SABR), not predictive (who benefits from SABR); differences between therapy classes are "
    "not treatment effects."
)


def standardised_mean_difference(low: np.ndarray, high: np.ndarray, binary: bool = False) -> float:
    """SMD of ``low`` vs ``high`` (module docstring); NaN-safe; 0 when both groups are constant and equal."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    low, high = low[np.isfinite(low)], high[np.isfinite(high)]
    if low.size == 0 or high.size == 0:
        return float("nan")
    m_low, m_high = low.mean(), high.mean()
    if binary:
        pooled = (m_low * (1 - m_low) + m_high * (1 - m_high)) / 2
    else:
        v_low = low.var(ddof=1) if low.size > 1 else 0.0
        v_high = high.var(ddof=1) if high.size > 1 else 0.0
        pooled = (v_low + v_high) / 2
    if pooled <= 0:
        return 0.0 if m_low == m_high else float(np.sign(m_low - m_high) * np.inf)
    return float((m_low - m_high) / np.sqrt(pooled))


def _row(block: str, name: str, level: str, low: np.ndarray, high: np.ndarray, binary: bool) -> dict:
    return {
        "block": block,
        "characteristic": name,
        "level": level,
        "low_value": float(np.nanmean(low)) if np.isfinite(low).any() else float("nan"),
        "high_value": float(np.nanmean(high)) if np.isfinite(high).any() else float("nan"),
        "smd": standardised_mean_difference(low, high, binary),
        "statistic": "proportion" if binary else "mean",
    }


def low_risk_profile(dataset: SurvivalDataset, groups: pd.Series) -> pd.DataFrame:
    """Characteristics of the low- versus the high-risk group, sorted by ``|smd|`` within block.

    Parameters
    ----------
    dataset : SurvivalDataset
        Features (blocks) and ``characteristics`` (raw clinical levels).
    groups : pandas.Series
        ``"low"``/``"high"`` indexed like ``dataset.X`` (e.g.
        :func:`sabrkit.models.risk_groups.pooled_risk_groups` of the out-of-fold table).

    Returns
    -------
    pandas.DataFrame
        ``block, characteristic, level, statistic, low_value, high_value, smd``; the clinical
        block lists every level of each categorical covariate (proportions) and the numeric
        covariates (means); the other blocks list their features (means of the raw values).
    """
    groups = groups.reindex(dataset.X.index)
    if groups.isna().any() or not {"low", "high"} <= set(groups):
        raise ModelInputError(
            format_problem(
                "risk groups missing for some rows, or one group empty",
                "every row has a group and both groups have rows",
                "pass the pooled out-of-fold groups of this data set",
            )
        )
    low, high = (groups == "low").to_numpy(), (groups == "high").to_numpy()
    rows = []
    if dataset.characteristics is not None:
        for name in dataset.characteristics.columns:
            values = dataset.characteristics[name]
            if name in CLINICAL_CATEGORIES or not pd.api.types.is_numeric_dtype(values):
                levels = CLINICAL_CATEGORIES.get(name) or sorted(map(str, values.dropna().unique()))
                for level in levels:
                    indicator = (values == level).astype(float).where(values.notna()).to_numpy()
                    rows.append(_row("clinical", name, level, indicator[low], indicator[high], True))
            else:
                numbers = values.to_numpy(dtype=float)
                rows.append(_row("clinical", name, "", numbers[low], numbers[high], False))
    described = set() if dataset.characteristics is None else set(dataset.characteristics.columns)
    for block, columns in dataset.blocks.items():
        if block == "clinical":
            continue
        for name in [c for c in columns if c not in described]:  # a table's covariates: listed above
            numbers = dataset.X[name].to_numpy(dtype=float)
            rows.append(_row(block, name, "", numbers[low], numbers[high], False))
    profile = pd.DataFrame(
        rows, columns=["block", "characteristic", "level", "statistic", "low_value", "high_value", "smd"]
    )
    profile["abs_smd"] = profile["smd"].abs()
    profile = profile.sort_values(["block", "abs_smd"], ascending=[True, False], ignore_index=True)
    return profile.drop(columns="abs_smd")


def risk_by_therapy(
    dataset: SurvivalDataset, groups: pd.Series, therapy_column: str = "systemic_therapy"
) -> pd.DataFrame:
    """Hazard ratio of the high- vs low-risk group within each therapy class, and overall.

    Returns
    -------
    pandas.DataFrame
        ``therapy, label, n, events, n_high, hazard_ratio, ci_low, ci_high, note``; the last
        row is ``"all"``. Classes where a group is empty or has no event get NaN and a note.
    """
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError

    therapy = dataset.characteristic(therapy_column)
    groups = groups.reindex(dataset.X.index)
    frame = pd.DataFrame(
        {
            "time": dataset.y["time"],
            "event": dataset.y["event"].astype(int),
            "high_risk": (groups == "high").astype(int).to_numpy(),
            "therapy": therapy.to_numpy(),
        },
        index=dataset.X.index,
    )
    levels = [lv for lv in CLINICAL_CATEGORIES.get(therapy_column, ()) if lv in set(frame["therapy"])]
    levels += sorted(set(frame["therapy"].dropna()) - set(levels))
    rows = []
    for level in [*levels, "all"]:
        part = frame if level == "all" else frame[frame["therapy"] == level]
        row = {
            "therapy": level,
            "label": "all patients" if level == "all" else THERAPY_LABELS.get(level, str(level)),
            "n": len(part),
            "events": int(part["event"].sum()),
            "n_high": int(part["high_risk"].sum()),
            "hazard_ratio": float("nan"),
            "ci_low": float("nan"),
            "ci_high": float("nan"),
            "note": "",
        }
        by_group = part.groupby("high_risk")["event"].sum()
        if part["high_risk"].nunique() < 2 or (by_group == 0).any():
            row["note"] = "not estimable: a risk group is empty or has no event"
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fitter = CoxPHFitter().fit(part[["time", "event", "high_risk"]], "time", "event")
                summary = fitter.summary.loc["high_risk"]
                row.update(
                    hazard_ratio=float(summary["exp(coef)"]),
                    ci_low=float(summary["exp(coef) lower 95%"]),
                    ci_high=float(summary["exp(coef) upper 95%"]),
                )
            except (ConvergenceError, ValueError, np.linalg.LinAlgError) as exc:
                row["note"] = f"not estimable: {exc}"
        rows.append(row)
    return pd.DataFrame(rows)
