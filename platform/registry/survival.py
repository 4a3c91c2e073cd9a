"""Kaplan-Meier summaries of the study's time-to-event endpoints (lifelines).

The registration reports PFS and OS as Kaplan-Meier estimates with 2-year landmarks. The
confidence interval is lifelines' default, the exponential Greenwood ("log-log") interval,
which stays inside [0, 1]:

.. math:: \\hat S(t)^{\\exp(\\pm z_{1-\\alpha/2}\\, \\hat\\sigma(t))},\\quad
          \\hat\\sigma^2(t) = \\frac{1}{\\log^2 \\hat S(t)} \\sum_{t_i \\le t} \\frac{d_i}{n_i (n_i - d_i)}

References
----------
Kalbfleisch & Prentice, The Statistical Analysis of Failure Time Data, 2nd ed., 2002.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from sabrkit.errors import ValidationError, format_problem

__all__ = ["SurvivalAt", "survival_at", "median_followup", "cohort_summary"]


@dataclass(frozen=True)
class SurvivalAt:
    """Kaplan-Meier survival at one time with its confidence interval."""

    time: float
    estimate: float
    ci_low: float
    ci_high: float
    n_at_risk: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _check(durations: pd.Series, events: pd.Series, name: str) -> None:
    if len(durations) != len(events):
        raise ValidationError(f"{name}: {len(durations)} durations but {len(events)} events")
    bad = durations[(~np.isfinite(durations)) | (durations < 0)]
    if len(bad):
        raise ValidationError(
            format_problem(
                f"{name}: {len(bad)} duration(s) negative or missing, e.g. {bad.iloc[0]!r}",
                "times are months from the first SABR fraction and must be >= 0",
                "check the event and last-contact dates of those patients",
            )
        )


def survival_at(
    durations: pd.Series, events: pd.Series, time: float, *, alpha: float = 0.05, name: str = "survival"
) -> SurvivalAt:
    """Kaplan-Meier estimate of S(time) with its (1 - alpha) log-log confidence interval.

    Parameters
    ----------
    durations, events
        Follow-up time (months) and event indicator (True = event) per patient.
    time
        Landmark in the same unit, e.g. 24 for 2-year PFS.
    alpha
        1 - confidence level.
    """
    from lifelines import KaplanMeierFitter

    durations = pd.Series(durations, dtype=float).reset_index(drop=True)
    events = pd.Series(events).astype(bool).reset_index(drop=True)
    _check(durations, events, name)
    kmf = KaplanMeierFitter(alpha=alpha).fit(durations, events, label=name)
    estimate = float(kmf.survival_function_at_times(time).iloc[0])
    ci = kmf.confidence_interval_survival_function_
    ci_at = ci[ci.index <= time].iloc[-1]
    n_at_risk = int((durations >= time).sum())
    return SurvivalAt(
        time=float(time),
        estimate=estimate,
        ci_low=float(ci_at.iloc[0]),
        ci_high=float(ci_at.iloc[1]),
        n_at_risk=n_at_risk,
    )


def median_followup(durations: pd.Series, death: pd.Series) -> float:
    """Median follow-up by the reverse Kaplan-Meier method (Schemper & Smith, 1996).

    Censoring is the "event" and death censors: the median of that curve is the median
    potential follow-up, unbiased by early deaths.
    """
    from lifelines import KaplanMeierFitter

    durations = pd.Series(durations, dtype=float)
    reverse = ~pd.Series(death).astype(bool)
    kmf = KaplanMeierFitter().fit(durations, reverse)
    return float(kmf.median_survival_time_)


def cohort_summary(
    endpoints: pd.DataFrame, n_lesions: int, landmark_months: float = 24.0
) -> dict[str, float]:
    """Counts and 2-year PFS/OS of a cohort, as written to ``metrics/cohort.json``.

    ``endpoints`` has one row per patient with ``pfs_months, pfs_event, os_months, os_event``.
    """
    pfs = survival_at(endpoints["pfs_months"], endpoints["pfs_event"], landmark_months, name="PFS")
    os_ = survival_at(endpoints["os_months"], endpoints["os_event"], landmark_months, name="OS")
    return {
        "n_patients": int(len(endpoints)),
        "n_lesions": int(n_lesions),
        "n_pfs_events": int(endpoints["pfs_event"].sum()),
        "n_deaths": int(endpoints["os_event"].sum()),
        "landmark_months": landmark_months,
        "pfs_2y": pfs.estimate,
        "pfs_2y_ci_low": pfs.ci_low,
        "pfs_2y_ci_high": pfs.ci_high,
        "pfs_2y_n_at_risk": pfs.n_at_risk,
        "os_2y": os_.estimate,
        "os_2y_ci_low": os_.ci_low,
        "os_2y_ci_high": os_.ci_high,
        "os_2y_n_at_risk": os_.n_at_risk,
        "median_followup_months": median_followup(endpoints["os_months"], endpoints["os_event"]),
    }
