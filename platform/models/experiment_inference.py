"""The inference steps of an experiment: whole-procedure permutation test, bootstrap intervals of
the cross-validated C and delta-C, and ICI/E50/E90 calibration at each horizon.

Kept apart from :mod:`sabrkit.models.experiment` so the runner only calls
:func:`experiment_inference`; the statistics are in :mod:`sabrkit.models.inference` and
:mod:`sabrkit.models.calibration`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.models.dataset import SurvivalDataset
from sabrkit.models.spec import ExperimentSpec
from sabrkit.models.validation import CVResult

__all__ = ["ExperimentInference", "experiment_inference", "pooled_calibration_indices", "INTERVAL_NOTE"]

logger = logging.getLogger(__name__)

INTERVAL_NOTE = (
    "95 % interval: bootstrap of patients with the whole cross-validation re-run on every bootstrap cohort "
    "(copies of a patient in one fold), percentile spread centred on the observed CV mean; it covers the "
    "sampling variability of the procedure (recruitment, fit, splits) - the C this procedure reaches on "
    "cohorts of this size - not the precision of the one fitted final model. The SD over re-splits is not a "
    "confidence interval."
)


@dataclass(frozen=True)
class ExperimentInference:
    """What :func:`experiment_inference` adds to the metrics document and the output tables."""

    summary_ci: dict[str, float] = field(default_factory=dict)
    comparison_ci: dict[str, float] = field(default_factory=dict)
    permutation: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def pooled_calibration_indices(
    oof: pd.DataFrame, dataset: SurvivalDataset, horizons: tuple[float, ...] = (12.0, 24.0)
) -> dict[str, float]:
    """ICI, E50, E90 at each horizon of the out-of-fold survival averaged over repeats per row."""
    from sabrkit.models.calibration import calibration_indices_at

    id_column = "lesion_id" if dataset.unit == "lesion" else "study_id"
    predictions = {}
    for horizon in horizons:
        column = f"surv_{horizon:g}"
        if column not in oof.columns:
            continue
        mean = oof.groupby(id_column)[column].mean().reindex(dataset.row_ids).to_numpy(dtype=float)
        if np.isfinite(mean).all():
            predictions[horizon] = mean
    if not predictions:
        return {}
    return calibration_indices_at(predictions, dataset.y["time"], dataset.y["event"])


def experiment_inference(
    spec: ExperimentSpec,
    pipeline: Any,
    data: SurvivalDataset,
    cv: CVResult,
    reference: tuple[Any, SurvivalDataset, CVResult] | None,
    n_jobs: int | None = None,
) -> ExperimentInference:
    """Run the permutation test and the bootstrap intervals the spec's ``analysis`` asks for.

    The permutation test and the bootstrap use the spec's folds rule (``n_splits``, ``strata``,
    ``tau_months``) with ``analysis.permutation_cv_repeats`` / ``analysis.interval_cv_repeats``
    repeats; seeds derive from ``validation.random_state``.
    """
    from sabrkit.models.inference import bootstrap_cv_interval, procedure_permutation_test

    v, a = spec.validation, spec.analysis
    out = ExperimentInference()
    if a.permutations:
        test = procedure_permutation_test(
            pipeline,
            data,
            np.random.default_rng([v.random_state, 1]),
            a.permutations,
            n_splits=v.n_splits,
            n_repeats=a.permutation_cv_repeats,
            random_state=v.random_state,
            tau_months=v.tau_months,
            strata=v.strata,
            n_jobs=n_jobs,
        )
        out.permutation.update(
            permutation_p=test.p_logrank,
            permutation_p_uno_c=test.p_uno_c,
            permutation_logrank_z=test.observed.logrank_z,
            permutation_uno_c=test.observed.uno_c,
            permutation_null_uno_c_mean=float(np.nanmean(test.null["uno_c"])),
            n_permutations=a.permutations,
            permutation_cv_repeats=a.permutation_cv_repeats,
            permutation_test="whole CV procedure re-run on permuted (time, event) pairs; one-sided signed log-rank "
            "z of the pooled out-of-fold high-risk group; p = (1 + #null >= observed) / (1 + B)",
        )
        out.tables["permutation_null"] = test.null
    if a.interval_bootstrap:
        observed = {
            "harrell_c": cv.summary.get("harrell_c_mean", np.nan),
            "uno_c": cv.summary.get("uno_c_mean", np.nan),
        }
        ref = None
        if reference is not None:
            ref = (reference[0], reference[1])
            observed["delta_harrell_c"] = observed["harrell_c"] - reference[2].summary.get(
                "harrell_c_mean", np.nan
            )
            observed["delta_uno_c"] = observed["uno_c"] - reference[2].summary.get("uno_c_mean", np.nan)
        try:
            interval = bootstrap_cv_interval(
                pipeline,
                data,
                np.random.default_rng([v.random_state, 2]),
                a.interval_bootstrap,
                observed=observed,
                reference=ref,
                n_splits=v.n_splits,
                n_repeats=a.interval_cv_repeats,
                random_state=v.random_state,
                tau_months=v.tau_months,
                level=0.95,
                n_jobs=n_jobs,
            )
        except Exception as exc:
            logger.warning("bootstrap interval not computed: %s", exc)
            return out
        for key, (low, high) in interval.intervals.items():
            target = out.comparison_ci if key.startswith("delta_") else out.summary_ci
            target[f"{key}_ci_low"], target[f"{key}_ci_high"] = low, high
        out.summary_ci.update(
            ci_n_bootstrap=float(a.interval_bootstrap),
            ci_n_failed=float(interval.settings["n_failed"]),
            ci_cv_repeats=float(a.interval_cv_repeats),
        )
        out.tables["bootstrap"] = interval.replicates
    return out
