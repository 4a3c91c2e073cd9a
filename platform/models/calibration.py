r"""Smoothed calibration of predicted survival at fixed horizons: ICI, E50 and E90.

Austin, Harrell & van Klaveren (Stat Med 2020;39:2714) summarise the calibration of a survival
model at a horizon :math:`t_0` by smoothing observed against predicted event probability and
taking the absolute differences :math:`|\hat P_{obs}(t_0 \mid \hat p_i) - \hat p_i|` over the
patients: their mean is the integrated calibration index (ICI), their median E50 and their 90th
percentile E90. The smoother here is the one of lifelines'
:func:`lifelines.calibration.survival_probability_calibration`: a Royston-Parmar
(:class:`lifelines.CRCSplineFitter`, 3 baseline knots) hazard regression of the outcome on
:math:`\log(-\log(1 - \hat p_i))`; the numbers agree with that function (test), which returns
ICI and E50 only and draws a figure.

:func:`calibration_indices` takes predicted *survival* probabilities, as the validation stores
them (out-of-fold ``surv_12``/``surv_24``); ``p = 1 - S``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from sabrkit.errors import ModelInputError, format_problem

__all__ = ["calibration_indices", "calibration_indices_at"]

logger = logging.getLogger(__name__)

_KNOTS = 3
_PENALIZER = 1e-6


def _ccl(p: np.ndarray) -> np.ndarray:
    return np.log(-np.log(1.0 - p))


def calibration_indices(
    predicted_survival: np.ndarray, time: np.ndarray, event: np.ndarray, t0: float
) -> dict[str, float]:
    """ICI, E50 and E90 of predicted survival ``S(t0)`` against the observed outcome.

    Parameters
    ----------
    predicted_survival : array, shape (n,)
        Each patient's predicted probability of being event-free at ``t0`` (out of sample).
    time, event : arrays, shape (n,)
        Observed follow-up (same unit as ``t0``) and event indicator.
    t0 : float
        The horizon.

    Returns
    -------
    dict
        ``ici``, ``e50``, ``e90`` (probability scale) and ``n``; NaN when the smoother cannot be
        fitted (logged).

    Raises
    ------
    ModelInputError
        Arrays of different lengths, or a non-finite prediction.
    """
    from lifelines import CRCSplineFitter

    s = np.asarray(predicted_survival, dtype=float)
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=bool)
    if not (len(s) == len(time) == len(event)) or not np.isfinite(s).all():
        raise ModelInputError(
            format_problem(
                f"{len(s)} predictions ({int((~np.isfinite(s)).sum())} non-finite), {len(time)} outcomes",
                "one finite predicted survival per patient",
                "drop patients without a prediction first",
            )
        )
    p = np.clip(1.0 - s, 1e-10, 1.0 - 1e-10)
    column = f"ccl_at_{t0:g}"
    frame = pd.DataFrame({column: _ccl(p), "T": time, "E": event})
    regressors = {"beta_": [column], "gamma0_": "1", "gamma1_": "1", "gamma2_": "1"}
    crc = CRCSplineFitter(n_baseline_knots=_KNOTS, penalizer=_PENALIZER)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            crc.fit_right_censoring(frame, "T", "E", regressors=regressors)
            observed = 1.0 - crc.predict_survival_function(frame[[column]], times=[t0]).T.squeeze()
    except Exception as exc:
        logger.warning("calibration smoother at %g failed: %s", t0, exc)
        return {"ici": float("nan"), "e50": float("nan"), "e90": float("nan"), "n": float(len(s))}
    deltas = np.abs(np.asarray(observed, dtype=float) - p)
    return {
        "ici": float(deltas.mean()),
        "e50": float(np.percentile(deltas, 50)),
        "e90": float(np.percentile(deltas, 90)),
        "n": float(len(s)),
    }


def calibration_indices_at(
    predictions: Mapping[float, np.ndarray], time: np.ndarray, event: np.ndarray
) -> dict[str, float]:
    """:func:`calibration_indices` at several horizons: ``{horizon: S(horizon)}`` ->
    ``ici_<h>``, ``e50_<h>``, ``e90_<h>`` keys (``h`` in months, e.g. ``ici_24``)."""
    out: dict[str, float] = {}
    for horizon, survival in predictions.items():
        values = calibration_indices(survival, time, event, horizon)
        for key in ("ici", "e50", "e90"):
            out[f"{key}_{horizon:g}"] = values[key]
    return out
