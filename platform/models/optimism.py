r"""Harrell's bootstrap optimism correction of the apparent concordance.

The apparent C of a model fitted and evaluated on all patients is optimistic. Harrell's
bootstrap estimates the optimism by repeating the *whole* pipeline (filters, selection, fit)
on bootstrap samples :math:`b = 1..B`:

.. math::

    O_b = C(\hat f_b; \text{boot}_b) - C(\hat f_b; \text{original}), \qquad
    C_{corrected} = C(\hat f; \text{original}) - \frac{1}{B}\sum_b O_b

(Harrell, Lee, Mark, Stat Med 1996;15:361-387; Steyerberg, *Clinical Prediction Models*,
ch. 17). It complements, not replaces, repeated cross-validation: both are reported when
requested. Uno's C uses the fitting sample's censoring distribution and the stated
:math:`\tau`.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
from sklearn.base import clone

from sabrkit.models.dataset import SurvivalDataset
from sabrkit.models.metrics import fold_concordance

__all__ = ["bootstrap_optimism"]

logger = logging.getLogger(__name__)


def _fit(pipeline: Any, X, y: np.ndarray, groups: np.ndarray | None) -> Any:
    model = clone(pipeline)
    if groups is not None and hasattr(model, "param_grid"):
        return model.fit(X, y, groups=groups)
    return model.fit(X, y)


def _concordances(model: Any, X, y_fit: np.ndarray, y_eval: np.ndarray, tau: float) -> tuple[float, float]:
    risk = np.asarray(model.predict(X), dtype=float)
    harrell, uno, _, _ = fold_concordance(y_fit, y_eval, risk, tau)
    return harrell, uno


def bootstrap_optimism(
    pipeline: Any,
    dataset: SurvivalDataset,
    rng: np.random.Generator,
    n_bootstrap: int = 200,
    tau_months: float = 24.0,
) -> dict[str, float]:
    """Apparent, optimism and optimism-corrected Harrell and Uno C (see the module docstring).

    Parameters
    ----------
    pipeline : Pipeline or GridSearchCV
        Unfitted; cloned for every bootstrap sample.
    dataset : SurvivalDataset
    rng : numpy.random.Generator
        Draws the bootstrap samples (patients resampled with replacement; for lesion rows,
        patients are resampled and carry all their lesions).
    n_bootstrap : int, default 200
    tau_months : float, default 24

    Returns
    -------
    dict
        ``harrell_c_apparent``, ``harrell_c_optimism``, ``harrell_c_corrected`` and the same
        for ``uno_c``; ``n_bootstrap`` and ``n_bootstrap_failed`` (samples whose fit or C
        failed, left out of the mean).
    """
    X, y = dataset.X, dataset.y
    grouped = dataset.unit == "lesion"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = _fit(pipeline, X, y, dataset.study_ids if grouped else None)
        apparent = _concordances(full, X, y, y, tau_months)
    patients = np.unique(dataset.study_ids)
    rows_of = {p: np.flatnonzero(dataset.study_ids == p) for p in patients}
    optimism: list[tuple[float, float]] = []
    failed = 0
    for _ in range(n_bootstrap):
        drawn = rng.choice(patients, size=len(patients), replace=True)
        index = np.concatenate([rows_of[p] for p in drawn])
        X_boot, y_boot = X.iloc[index], y[index]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # copies of a resampled patient share a group, so inner tuning splits keep them together
                groups = np.repeat(drawn, [len(rows_of[p]) for p in drawn])
                model = _fit(pipeline, X_boot, y_boot, groups)
                boot = _concordances(model, X_boot, y_boot, y_boot, tau_months)
                test = _concordances(model, X, y_boot, y, tau_months)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            failed += 1
            logger.debug("bootstrap sample failed: %s", exc)
            continue
        optimism.append((boot[0] - test[0], boot[1] - test[1]))
    values = np.asarray(optimism, dtype=float).reshape(-1, 2)
    mean_optimism = np.nanmean(values, axis=0) if len(values) else np.array([np.nan, np.nan])
    if failed:
        logger.warning("bootstrap optimism: %d of %d samples failed and were left out", failed, n_bootstrap)
    return {
        "harrell_c_apparent": apparent[0],
        "harrell_c_optimism": float(mean_optimism[0]),
        "harrell_c_corrected": float(apparent[0] - mean_optimism[0]),
        "uno_c_apparent": apparent[1],
        "uno_c_optimism": float(mean_optimism[1]),
        "uno_c_corrected": float(apparent[1] - mean_optimism[1]),
        "n_bootstrap": float(n_bootstrap),
        "n_bootstrap_failed": float(failed),
    }
