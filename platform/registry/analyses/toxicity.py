"""Toxicity: worst CTCAE grade per patient and term, acute versus late, grade >= 3 rate.

The grade >= 3 rate is the share of patients with at least one adverse event of grade 3 or
more, with its exact (Clopper-Pearson) 95 % interval:

.. math:: \\left[ B^{-1}\\!\\left(\\tfrac{\\alpha}{2}; k, n-k+1\\right),\\;
          B^{-1}\\!\\left(1-\\tfrac{\\alpha}{2}; k+1, n-k\\right) \\right]

(:math:`B^{-1}` the beta quantile; 0 and 1 at the ends), as R's ``binom.test``.

References
----------
Clopper & Pearson, Biometrika 1934;26:404-413.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["Proportion", "exact_proportion", "max_grade_per_patient", "toxicity_summary", "grade3plus"]


@dataclass(frozen=True)
class Proportion:
    """k of n, the proportion and its exact confidence interval."""

    k: int
    n: int
    estimate: float
    ci_low: float
    ci_high: float


def exact_proportion(k: int, n: int, alpha: float = 0.05) -> Proportion:
    """k / n with the Clopper-Pearson interval (scipy ``binomtest(...).proportion_ci("exact")``)."""
    from scipy.stats import binomtest

    if n == 0:
        return Proportion(k, n, float("nan"), float("nan"), float("nan"))
    interval = binomtest(int(k), int(n)).proportion_ci(confidence_level=1 - alpha, method="exact")
    return Proportion(int(k), int(n), k / n, float(interval.low), float(interval.high))


def max_grade_per_patient(ae: pd.DataFrame, *, phase: str | None = None) -> pd.DataFrame:
    """Worst grade per patient and term (``USUBJID, AEDECOD, AETOXGR``); ungraded events are left out.

    ``phase`` keeps only ``ACUTE`` or ``LATE`` events.
    """
    events = ae[ae["AETOXGR"].notna()]
    if phase is not None:
        events = events[events["AEPHASE"] == phase]
    worst = events.groupby(["USUBJID", "AEDECOD"], as_index=False)["AETOXGR"].max()
    worst["AETOXGR"] = worst["AETOXGR"].astype(int)
    return worst


def toxicity_summary(ae: pd.DataFrame, n_patients: int) -> pd.DataFrame:
    """Patients by term and worst grade (all, acute, late), most frequent terms first.

    Columns: ``term, any_grade, grade_1 ... grade_5, grade3plus, percent_any, acute, late``
    (``acute``/``late``: patients with the term in that phase).
    """
    worst = max_grade_per_patient(ae)
    table = worst.pivot_table(
        index="AEDECOD", columns="AETOXGR", values="USUBJID", aggfunc="count", fill_value=0
    )
    table = table.reindex(columns=range(1, 6), fill_value=0)
    table.columns = [f"grade_{grade}" for grade in table.columns]
    table.insert(0, "any_grade", table.sum(axis=1))
    table["grade3plus"] = table[["grade_3", "grade_4", "grade_5"]].sum(axis=1)
    table["percent_any"] = 100.0 * table["any_grade"] / max(n_patients, 1)
    for phase in ("ACUTE", "LATE"):
        per_phase = max_grade_per_patient(ae, phase=phase).groupby("AEDECOD")["USUBJID"].nunique()
        table[phase.lower()] = per_phase.reindex(table.index).fillna(0).astype(int)
    table = table.reset_index().rename(columns={"AEDECOD": "term"})
    return table.sort_values(["any_grade", "term"], ascending=[False, True], ignore_index=True)


def grade3plus(
    ae: pd.DataFrame, patients: pd.Series, *, phase: str | None = None, alpha: float = 0.05
) -> Proportion:
    """Patients (of ``patients``) with any grade >= 3 event, with the exact CI."""
    worst = max_grade_per_patient(ae, phase=phase)
    severe = set(worst.loc[worst["AETOXGR"] >= 3, "USUBJID"]) & set(patients)
    return exact_proportion(len(severe), len(set(patients)), alpha)
