r"""Performance metrics of survival predictions on a test fold, and calibration at a horizon.

All metrics wrap :mod:`sksurv.metrics`; what each needs from the model:

================  =============================================================  ==============
metric            definition                                                     needs
================  =============================================================  ==============
``harrell_c``     :math:`P(\hat r_a > \hat r_b \mid t_a < t_b, \delta_a = 1)`      risk
``uno_c``         the same, pairs weighted by :math:`\hat G(t_a)^{-2}`, only      risk
                  :math:`t_a < \tau`; :math:`\hat G` = KM of the training
                  fold's censoring (``concordance_index_ipcw``)
``auc_<t>``       cumulative/dynamic AUC at :math:`t` months: cases              risk
                  :math:`T \le t`, controls :math:`T > t`, IPCW weighted
                  (``cumulative_dynamic_auc``)
``ibs``           :math:`\frac{1}{t_K - t_1}\int_{t_1}^{t_K} BS(t)\,dt`, the      survival
                  IPCW Brier score of :math:`\hat S(t \mid x)` integrated over    function
                  the 1-month grid :math:`t_1 = 1, \dots, t_K \le \tau`
                  (``integrated_brier_score``)
``ibs_km``        the same for the null model: the training fold's Kaplan-Meier  --
                  curve given to every test patient
``ibs_gain``      ``ibs_km - ibs`` (> 0: better than the null model)             survival fn.
================  =============================================================  ==============

A metric that cannot be computed on a fold (no event before :math:`t`, times outside the test
follow-up, a model without survival function) is NaN and the reason is returned, never
silently dropped.

Calibration at :math:`t^*` = 24 months (:func:`calibration_at`) compares, in groups of
predicted risk, the mean predicted :math:`\hat S(t^*)` with the Kaplan-Meier estimate of the
group; it is computed on pooled out-of-fold predictions of one repeat (folds of 12 patients
are too small).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.models.estimators import unwrap_search

__all__ = [
    "AUC_TIMES",
    "CALIBRATION_MONTHS",
    "fold_concordance",
    "fold_metrics",
    "predict_survival_at",
    "ibs_grid",
    "calibration_at",
    "calibration_summary",
]

logger = logging.getLogger(__name__)

AUC_TIMES: tuple[float, ...] = (12.0, 24.0)
_MAX_GRID = 240
CALIBRATION_MONTHS = 24.0


def fold_concordance(
    y_train: np.ndarray, y_test: np.ndarray, risk: np.ndarray, tau_months: float
) -> tuple[float, float, float, tuple[str, ...]]:
    r"""Harrell's and Uno's C of test-fold risks.

    Uno's C truncates at :math:`\tau = \min(\tau_{months}, \max t_{train})`.

    Returns
    -------
    harrell_c, uno_c, tau, undefined
        C values are NaN when undefined; ``undefined`` names the reasons.
    """
    from sksurv.metrics import concordance_index_censored, concordance_index_ipcw

    event, time = y_test["event"].astype(bool), y_test["time"].astype(float)
    tau = float(min(tau_months, float(np.max(y_train["time"]))))
    undefined: list[str] = []
    try:
        harrell = float(concordance_index_censored(event, time, risk)[0])
    except ValueError as exc:  # NoComparablePairException, all censored
        harrell = float("nan")
        undefined.append(f"harrell: {exc}")
    if not np.any(event & (time < tau)):
        uno = float("nan")
        undefined.append(f"uno: no test event before tau={tau:.3g} months")
    else:
        try:
            uno = float(concordance_index_ipcw(y_train, y_test, risk, tau=tau)[0])
        except ValueError as exc:
            uno = float("nan")
            undefined.append(f"uno: {exc}")
    return harrell, uno, tau, tuple(undefined)


def predict_survival_at(model: Any, X: pd.DataFrame, times: Sequence[float]) -> np.ndarray | None:
    r"""Predicted :math:`\hat S(t \mid x)` at ``times`` for every row, or None if the model has none.

    Times beyond the last time of a predicted step function take its last value (the curve is
    carried forward; only relevant past the training fold's follow-up).
    """
    from sklearn.pipeline import Pipeline

    model = unwrap_search(model)
    estimator, Xt = model, X
    if isinstance(model, Pipeline):
        estimator = model[-1]
        Xt = model[:-1].transform(X) if len(model) > 1 else X
    if not hasattr(estimator, "predict_survival_function"):
        return None
    grid = np.asarray(times, dtype=float)
    functions = estimator.predict_survival_function(Xt)
    out = np.empty((len(functions), grid.size))
    for i, fn in enumerate(functions):
        low, high = fn.domain
        out[i] = fn(np.clip(grid, low, high))
    return out


def ibs_grid(
    y_test: np.ndarray, tau_months: float, step_months: float = 1.0, y_train: np.ndarray | None = None
) -> np.ndarray:
    """The IBS time grid: 1, 2, ... months up to ``tau``, inside the test fold's follow-up
    (and before the last training time, where the censoring distribution ends)."""
    time = np.asarray(y_test["time"], dtype=float)
    end = min(float(tau_months), float(time.max()))
    grid = np.arange(step_months, end + 1e-9, step_months)
    if grid.size > _MAX_GRID:  # other time units (days): keep the integral cheap
        grid = np.linspace(grid[0], grid[-1], _MAX_GRID)
    keep = (grid >= time.min()) & (grid < time.max())
    if y_train is not None:
        keep &= grid < float(np.max(y_train["time"]))
    return grid[keep]


def _administratively_censored(y_test: np.ndarray, end: float, last_train_time: float) -> np.ndarray:
    """``y_test`` with every row beyond ``end`` censored at ``min(time, last_train_time)``.

    Rows beyond the last evaluation time only count as "still event-free", so this changes no
    metric up to ``end``; it keeps scikit-survival from asking the training censoring
    distribution about times it never saw.
    """
    out = y_test.copy()
    beyond = out["time"] > end
    out["event"] = out["event"] & ~beyond
    out["time"] = np.where(beyond, np.minimum(out["time"], last_train_time), out["time"])
    return out


def _km_at(y_train: np.ndarray, times: np.ndarray) -> np.ndarray:
    from sksurv.nonparametric import kaplan_meier_estimator

    x, prob = kaplan_meier_estimator(y_train["event"].astype(bool), y_train["time"].astype(float))
    index = np.searchsorted(x, times, side="right") - 1
    return np.where(index >= 0, prob[np.clip(index, 0, None)], 1.0)


def fold_metrics(
    y_train: np.ndarray,
    y_test: np.ndarray,
    risk: np.ndarray,
    survival: np.ndarray | None,
    grid: np.ndarray,
    tau_months: float,
    auc_times: Sequence[float] = AUC_TIMES,
) -> tuple[dict[str, float], tuple[str, ...]]:
    """Every test-fold metric of the module table.

    Parameters
    ----------
    y_train, y_test : structured arrays (``event``, ``time``)
    risk : ndarray, shape (n_test,)
        Predicted risk (higher = worse).
    survival : ndarray, shape (n_test, len(grid)), or None
        Predicted survival at ``grid`` (None: the model has no survival function).
    grid : ndarray
        The IBS grid (:func:`ibs_grid`).
    tau_months : float
    auc_times : sequence of float

    Returns
    -------
    metrics, undefined
        ``harrell_c, uno_c, tau_months, auc_<t>..., ibs, ibs_km, ibs_gain``; reasons for NaNs.
    """
    from sksurv.metrics import cumulative_dynamic_auc, integrated_brier_score

    harrell, uno, tau, undefined_c = fold_concordance(y_train, y_test, risk, tau_months)
    undefined = list(undefined_c)
    metrics: dict[str, float] = {"harrell_c": harrell, "uno_c": uno, "tau_months": tau}
    event, time = y_test["event"].astype(bool), y_test["time"].astype(float)
    last_train = float(np.max(y_train["time"]))
    for t in auc_times:
        key = f"auc_{t:g}"
        metrics[key] = float("nan")
        if not np.any(event & (time <= t)) or not np.any(time > t):
            undefined.append(f"{key}: needs a test event by {t:g} months and a test patient beyond it")
            continue
        try:
            y_t = y_test.copy()
            y_t["event"] = event & (time <= t)  # later events are controls at t: no weight needed
            metrics[key] = float(cumulative_dynamic_auc(y_train, y_t, risk, [t])[0][0])
        except ValueError as exc:
            undefined.append(f"{key}: {exc}")
    metrics.update(ibs=float("nan"), ibs_km=float("nan"), ibs_gain=float("nan"))
    if grid.size < 2:
        undefined.append("ibs: fewer than two grid times inside the test follow-up")
        return metrics, tuple(undefined)
    try:
        reference = np.tile(_km_at(y_train, grid), (len(time), 1))
        y_end = _administratively_censored(y_test, float(grid[-1]), last_train)
        metrics["ibs_km"] = float(integrated_brier_score(y_train, y_end, reference, grid))
        if survival is None:
            undefined.append("ibs: the model predicts no survival function")
        else:
            metrics["ibs"] = float(integrated_brier_score(y_train, y_end, survival, grid))
            metrics["ibs_gain"] = metrics["ibs_km"] - metrics["ibs"]
    except ValueError as exc:
        undefined.append(f"ibs: {exc}")
    return metrics, tuple(undefined)


def calibration_at(
    predicted_survival: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    months: float = CALIBRATION_MONTHS,
    n_groups: int = 3,
) -> pd.DataFrame:
    r"""Predicted versus Kaplan-Meier survival at ``months`` in groups of predicted survival.

    Groups are quantiles of :math:`\hat S(t^*)` (``n_groups``, ties merged). Observed is the
    Kaplan-Meier estimate of the group at :math:`t^*` with its 95 % log-log interval
    (:func:`sksurv.nonparametric.kaplan_meier_estimator`); NaN when the group's follow-up
    ends before :math:`t^*` without reaching zero.

    Returns
    -------
    pandas.DataFrame
        ``group, n, events, predicted, observed, observed_low, observed_high``.
    """
    from sksurv.nonparametric import kaplan_meier_estimator

    predicted_survival = np.asarray(predicted_survival, dtype=float)
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=bool)
    ok = np.isfinite(predicted_survival)
    labels = pd.qcut(pd.Series(predicted_survival[ok]).rank(method="first"), n_groups, labels=False)
    groups = np.full(predicted_survival.shape, -1)
    groups[ok] = labels.to_numpy()
    rows = []
    for g in range(n_groups):
        member = groups == g
        if member.sum() < 2:
            continue
        x, prob, conf = kaplan_meier_estimator(event[member], time[member], conf_type="log-log")
        observed = low = high = float("nan")
        if months <= x.max() or prob[-1] == 0:
            i = np.searchsorted(x, months, side="right") - 1
            observed, low, high = (
                (1.0, 1.0, 1.0) if i < 0 else (float(prob[i]), float(conf[0][i]), float(conf[1][i]))
            )
        rows.append(
            {
                "group": g + 1,
                "n": int(member.sum()),
                "events": int(event[member].sum()),
                "predicted": float(predicted_survival[member].mean()),
                "observed": observed,
                "observed_low": low,
                "observed_high": high,
            }
        )
    return pd.DataFrame(
        rows, columns=["group", "n", "events", "predicted", "observed", "observed_low", "observed_high"]
    )


def calibration_summary(table: pd.DataFrame, months: float = CALIBRATION_MONTHS) -> dict[str, float]:
    r"""``calibration_error_<t>``: :math:`\sum_g n_g |\bar S_g - S^{KM}_g| / \sum_g n_g` over groups
    with an observed value, and ``calibration_in_the_large_<t>``: :math:`\sum_g n_g (\bar S_g -
    S^{KM}_g) / \sum_g n_g` (> 0: predictions too optimistic)."""
    usable = table.dropna(subset=["observed"])
    key = f"{months:g}"
    if usable.empty:
        return {f"calibration_error_{key}": float("nan"), f"calibration_in_the_large_{key}": float("nan")}
    weights = usable["n"].to_numpy(dtype=float)
    diff = usable["predicted"].to_numpy() - usable["observed"].to_numpy()
    return {
        f"calibration_error_{key}": float(np.sum(weights * np.abs(diff)) / weights.sum()),
        f"calibration_in_the_large_{key}": float(np.sum(weights * diff) / weights.sum()),
    }
