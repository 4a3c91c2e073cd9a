"""Kaplan-Meier curves and log-rank test of the out-of-fold risk groups.

The groups come from :func:`sabrkit.models.validation.repeated_stratified_cv`: in every fold the
cut-off is the median risk of the training patients, applied to the test patients, so a
patient's group never depends on their own outcome. In a single-arm cohort these are
prognostic groups (who does well under SABR), not groups that benefit from SABR.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from sabrkit.errors import ModelInputError, format_problem

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "RiskGroupSurvival",
    "km_by_risk_group",
    "plot_km_risk_groups",
    "logrank_permutation_test",
    "pooled_risk_groups",
    "RISK_GROUPS",
]

logger = logging.getLogger(__name__)

RISK_GROUPS: tuple[str, ...] = ("low", "high")
_COLOURS = {"low": "#1f77b4", "high": "#d62728"}


@dataclass(frozen=True)
class RiskGroupSurvival:
    """Kaplan-Meier fits per risk group and their log-rank comparison.

    Attributes
    ----------
    table : pandas.DataFrame
        ``study_id, risk_group, time, event``: one row per patient.
    fitters : dict
        ``{"low": KaplanMeierFitter, "high": KaplanMeierFitter}`` (lifelines, fitted).
    logrank_statistic, logrank_p_value : float
        Log-rank test of high vs low (:func:`lifelines.statistics.logrank_test`).
    groups : pandas.DataFrame
        Per group: ``n``, ``events``, ``median_months``, ``survival_at_tau``.
    repeat : int or "pooled"
    endpoint : str
    tau_months : float
    """

    table: pd.DataFrame
    fitters: dict[str, Any]
    logrank_statistic: float
    logrank_p_value: float
    groups: pd.DataFrame
    repeat: int | str
    endpoint: str
    tau_months: float


def _id_column(oof_table: pd.DataFrame) -> str:
    return "lesion_id" if "lesion_id" in oof_table.columns else "study_id"


def pooled_risk_groups(oof_table: pd.DataFrame) -> pd.Series:
    """One group per row ID: the out-of-fold group it received in most repeats (ties: "high")."""
    ids = _id_column(oof_table)
    share_high = (oof_table["risk_group"] == "high").groupby(oof_table[ids]).mean()
    return pd.Series(np.where(share_high >= 0.5, "high", "low"), index=share_high.index, name="risk_group")


def _patient_groups(oof_table: pd.DataFrame, repeat: int | str) -> pd.Series:
    if repeat == "pooled":
        return pooled_risk_groups(oof_table)
    rows = oof_table[oof_table["repeat"] == repeat]
    if rows.empty:
        raise ModelInputError(
            format_problem(
                f"repeat {repeat!r}",
                f"repeat must be 'pooled' or one of {sorted(oof_table['repeat'].unique().tolist())}",
                "pick an existing repeat",
            )
        )
    return rows.set_index(_id_column(oof_table))["risk_group"]


def km_by_risk_group(
    oof_table: pd.DataFrame,
    endpoints: pd.DataFrame,
    repeat: int | Literal["pooled"] = 0,
    endpoint: str = "pfs",
    tau_months: float = 24.0,
) -> RiskGroupSurvival:
    """Kaplan-Meier estimate per out-of-fold risk group and the log-rank test between them.

    Parameters
    ----------
    oof_table : pandas.DataFrame
        ``CVResult.oof``: ``study_id, repeat, fold, risk, risk_group``.
    endpoints : pandas.DataFrame
        ``study_id, <endpoint>_months, <endpoint>_event`` (the registry endpoints table, or
        :meth:`SurvivalDataset.outcome_table`).
    repeat : int or "pooled"
        One repeat (each patient once), or "pooled": each patient in the group it received in
        most repeats (a tie counts as "high"), so that patients are still counted once and the
        log-rank test stays valid.
    endpoint : str
    tau_months : float
        Time of the reported landmark survival ``survival_at_tau`` (e.g. 2-year PFS).

    Raises
    ------
    ModelInputError
        Unknown repeat, patients without an outcome, or a risk group without patients.
    """
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test

    groups = _patient_groups(oof_table, repeat)
    outcome = endpoints.set_index(_id_column(oof_table))[[f"{endpoint}_months", f"{endpoint}_event"]]
    missing = sorted(set(groups.index) - set(outcome.index))
    if missing:
        raise ModelInputError(
            format_problem(
                f"no {endpoint} outcome for {missing[:10]}",
                "every grouped patient needs an outcome",
                "pass the endpoints used to build the data set",
            )
        )
    table = pd.DataFrame(
        {
            _id_column(oof_table): groups.index,
            "risk_group": groups.to_numpy(),
            "time": outcome.loc[groups.index, f"{endpoint}_months"].to_numpy(dtype=float),
            "event": outcome.loc[groups.index, f"{endpoint}_event"].to_numpy(dtype=bool),
        }
    ).sort_values(_id_column(oof_table), ignore_index=True)
    fitters: dict[str, Any] = {}
    rows = []
    for group in RISK_GROUPS:
        part = table[table["risk_group"] == group]
        if part.empty:
            raise ModelInputError(
                format_problem(
                    f"risk group {group!r} has no patients",
                    "both groups need patients for KM and log-rank",
                    "check the predictions (constant risk?)",
                )
            )
        kmf = KaplanMeierFitter(label=f"{group} risk (n={len(part)})").fit(part["time"], part["event"])
        fitters[group] = kmf
        rows.append(
            {
                "risk_group": group,
                "n": len(part),
                "events": int(part["event"].sum()),
                "median_months": float(kmf.median_survival_time_),
                "survival_at_tau": float(kmf.survival_function_at_times(tau_months).iloc[0]),
            }
        )
    low, high = (table[table["risk_group"] == g] for g in RISK_GROUPS)
    test = logrank_test(
        high["time"], low["time"], event_observed_A=high["event"], event_observed_B=low["event"]
    )
    return RiskGroupSurvival(
        table=table,
        fitters=fitters,
        logrank_statistic=float(test.test_statistic),
        logrank_p_value=float(test.p_value),
        groups=pd.DataFrame(rows).set_index("risk_group"),
        repeat=repeat,
        endpoint=endpoint,
        tau_months=tau_months,
    )


def plot_km_risk_groups(
    km: RiskGroupSurvival, title: str | None = None, figsize: tuple[float, float] = (6.5, 5.0)
) -> Figure:
    """Kaplan-Meier curves of the risk groups with numbers at risk; the caller saves the figure.

    The figure is a :class:`matplotlib.figure.Figure` on an Agg canvas (no pyplot state, no
    display needed). Numbers at risk come from :func:`lifelines.plotting.add_at_risk_counts`.
    """
    from lifelines.plotting import add_at_risk_counts
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for group in RISK_GROUPS:
        km.fitters[group].plot_survival_function(
            ax=ax, ci_show=True, show_censors=True, color=_COLOURS[group]
        )
    ax.axvline(km.tau_months, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("months from first SABR fraction")
    ax.set_ylabel(f"{km.endpoint.upper()} probability")
    ax.set_ylim(0.0, 1.02)
    repeat = "pooled repeats" if km.repeat == "pooled" else f"repeat {km.repeat}"
    ax.set_title(title or f"Out-of-fold risk groups ({repeat})")
    ax.text(
        0.98, 0.95, f"log-rank p = {km.logrank_p_value:.3g}", transform=ax.transAxes, ha="right", va="top"
    )
    add_at_risk_counts(*(km.fitters[g] for g in RISK_GROUPS), ax=ax, fig=fig)
    fig.tight_layout()
    return fig


def _signed_logrank(y: np.ndarray, high: np.ndarray) -> float:
    """Log-rank z of the high-risk group: sign(O - E) * sqrt(chi-square) (> 0: more events than expected)."""
    from sksurv.compare import compare_survival

    chisq, _, stats = compare_survival(y, high, return_stats=True)[:3]
    excess = float(stats.loc[1, "observed"] - stats.loc[1, "expected"])
    return float(np.sign(excess) * np.sqrt(chisq))


def logrank_permutation_test(
    km: RiskGroupSurvival, rng: np.random.Generator, n_permutations: int = 999
) -> tuple[float, float]:
    r"""One-sided permutation test that the high-risk group progresses more than the low-risk group.

    The statistic is the signed log-rank z of the high-risk group,
    :math:`z = \operatorname{sign}(O_{high} - E_{high})\sqrt{\chi^2_{LR}}`
    (:func:`sksurv.compare.compare_survival`). The group labels are shuffled across patients
    (group sizes kept) ``n_permutations`` times and

    .. math::

        p = \frac{1 + \#\{b : z_b \ge z_{obs}\}}{1 + B}

    This needs no large-sample approximation, which matters with 60 patients and pooled
    out-of-fold groups, and is one-sided: a model whose "high-risk" patients do *better* gets
    a large p (the two-sided log-rank p of :class:`RiskGroupSurvival` would call it significant).

    Returns
    -------
    (z, p_value)
    """
    from sksurv.util import Surv

    y = Surv.from_arrays(km.table["event"].to_numpy(dtype=bool), km.table["time"].to_numpy(dtype=float))
    high = (km.table["risk_group"] == "high").to_numpy().astype(int)
    observed = _signed_logrank(y, high)
    exceed = sum(_signed_logrank(y, rng.permutation(high)) >= observed - 1e-9 for _ in range(n_permutations))
    return observed, float((1 + exceed) / (1 + n_permutations))
