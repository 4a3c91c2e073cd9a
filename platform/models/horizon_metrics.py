r"""Survival tooling at one horizon: Brier score, decision curve; out-of-bag C of forests.

``brier_<t>`` (:func:`fold_brier_at`) is the IPCW Brier score at :math:`t` months
(Graf et al. 1999, :func:`sksurv.metrics.brier_score`)

.. math::

    BS(t) = \frac{1}{n}\sum_i \left[\frac{\hat S(t\mid x_i)^2\,1(t_i \le t, \delta_i = 1)}{\hat G(t_i)}
            + \frac{(1 - \hat S(t\mid x_i))^2\,1(t_i > t)}{\hat G(t)}\right],

with :math:`\hat G` the Kaplan-Meier estimate of the training fold's censoring; lower is
better, 0.25 is a coin toss at :math:`S = 0.5`.

The decision curve (:func:`decision_curve`, Vickers & Elkin 2006; for survival, Vickers et al.
2008) reports at a horizon :math:`t` the net benefit of treating the patients whose
predicted risk :math:`\hat F(t\mid x) = 1 - \hat S(t \mid x)` is at least a threshold
:math:`p_t`:

.. math::

    NB(p_t) = \left(1 - \hat S_{KM}(t \mid \hat F \ge p_t)\right) P(\hat F \ge p_t)
              - \hat S_{KM}(t \mid \hat F \ge p_t)\,P(\hat F \ge p_t)\,\frac{p_t}{1 - p_t},

beside "treat all" and "treat none" (computed by ``dcurves.dca`` with a time-to-event
outcome). :func:`oob_concordance` reads Harrell's C on the out-of-bag rows of a fitted random
survival forest (``oob_score_``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DCA_THRESHOLDS",
    "decision_curve",
    "decision_curve_summary",
    "fold_brier_at",
    "oob_concordance",
    "with_oob_score",
]

logger = logging.getLogger(__name__)

#: thresholds of the decision curve (risk of the event by the horizon)
DCA_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2))


def fold_brier_at(
    y_train: np.ndarray, y_test: np.ndarray, survival: np.ndarray | None, times: Sequence[float]
) -> tuple[dict[str, float], tuple[str, ...]]:
    """``brier_<t>`` for each ``t`` of ``times`` on one test fold (NaN with a reason when undefined).

    Parameters
    ----------
    y_train, y_test : structured arrays (``event``, ``time``)
    survival : ndarray, shape (n_test, len(times)), or None
        Predicted :math:`\\hat S(t \\mid x)` at ``times``; None: the model has no survival function.
    times : sequence of float (months)
    """
    from sksurv.metrics import brier_score

    out: dict[str, float] = {}
    undefined: list[str] = []
    time = np.asarray(y_test["time"], dtype=float)
    last_train = float(np.max(y_train["time"]))
    for k, t in enumerate(times):
        key = f"brier_{t:g}"
        out[key] = float("nan")
        if survival is None:
            undefined.append(f"{key}: the model predicts no survival function")
            continue
        if not (time.min() <= t < time.max()) or t >= last_train:
            undefined.append(f"{key}: {t:g} months is outside the test fold's follow-up")
            continue
        y_end = (
            y_test.copy()
        )  # rows beyond t only count as event-free at t: censor them before the last train time
        beyond = y_end["time"] > t
        y_end["event"] = y_end["event"] & ~beyond
        y_end["time"] = np.where(
            beyond, np.minimum(y_end["time"], np.nextafter(last_train, 0)), y_end["time"]
        )
        try:
            out[key] = float(brier_score(y_train, y_end, survival[:, k], [t])[1][0])
        except ValueError as exc:
            undefined.append(f"{key}: {exc}")
    return out, tuple(undefined)


def decision_curve(
    risk_at_horizon: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    months: float,
    thresholds: Sequence[float] = DCA_THRESHOLDS,
    models: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Net benefit at ``months`` of the model (and other ``models``) versus treat-all/none (dcurves).

    Parameters
    ----------
    risk_at_horizon : ndarray
        Predicted probability of the event by ``months`` (``1 - S(months | x)``), one per row.
    time, event : ndarray
        Outcome of the same rows (months; bool).
    months : float
    thresholds : sequence of float
    models : mapping name -> ndarray, optional
        More risk columns (e.g. the comparator's), plotted beside ``"model"``.

    Returns
    -------
    pandas.DataFrame
        ``model, threshold, net_benefit, tp_rate, fp_rate, n`` (dcurves' columns), models
        ``"model"``, the extra names, ``"all"`` and ``"none"``.
    """
    from dcurves import dca

    frame = pd.DataFrame(
        {
            "time": np.asarray(time, dtype=float),
            "event": np.asarray(event, dtype=int),
            "model": np.asarray(risk_at_horizon, dtype=float),
        }
    )
    for name, values in (models or {}).items():
        frame[name] = np.asarray(values, dtype=float)
    names = ["model", *(models or {})]
    table = dca(
        data=frame,
        outcome="event",
        modelnames=names,
        thresholds=list(thresholds),
        time=float(months),
        time_to_outcome_col="time",
    )
    keep = [c for c in ("model", "threshold", "net_benefit", "tp_rate", "fp_rate", "n") if c in table.columns]
    return table[keep].reset_index(drop=True)


def decision_curve_summary(table: pd.DataFrame, months: float) -> dict[str, Any]:
    """Net benefit of the model minus the better of treat-all and treat-none, per threshold."""
    wide = table.pivot_table(index="threshold", columns="model", values="net_benefit")
    default = np.maximum(wide["all"], 0.0) if "all" in wide.columns else 0.0
    gain = wide["model"] - default
    return {
        "months": months,
        "thresholds": [float(t) for t in wide.index],
        "net_benefit_model": [float(v) for v in wide["model"]],
        "net_benefit_all": [float(v) for v in wide["all"]] if "all" in wide.columns else [],
        "thresholds_model_best": [float(t) for t in wide.index[gain > 0]],
    }


def with_oob_score(model: Any) -> Any:
    """``model`` with ``oob_score=True`` on its final step when that step supports it (forests)."""
    from sklearn.pipeline import Pipeline

    target = model.estimator if hasattr(model, "param_grid") else model  # unfitted grid search: its pipeline
    last = target[-1] if isinstance(target, Pipeline) else target
    if "oob_score" not in last.get_params(deep=False) or not getattr(last, "bootstrap", True):
        return model
    last.set_params(oob_score=True)
    return model


def oob_concordance(model: Any) -> float | None:
    """Harrell's C on the out-of-bag rows of a fitted forest (``oob_score_``), else None."""
    from sklearn.pipeline import Pipeline

    from sabrkit.models.estimators import unwrap_search

    target = unwrap_search(model)
    last = target[-1] if isinstance(target, Pipeline) else target
    score = getattr(last, "oob_score_", None)
    return None if score is None else float(score)
