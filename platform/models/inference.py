r"""Inference about a cross-validated survival model: a permutation test of the whole procedure
and a bootstrap interval of its cross-validated C.

Why not shuffle risk-group labels? In cross-validation every patient's out-of-fold risk group
comes from a model fitted on the *other* patients' outcomes, so the groups are not independent
of one another and a log-rank test (or a label-shuffling permutation test) of the pooled
out-of-fold groups is anti-conservative (Simon et al., Brief Bioinform 2011;12:203). Here the
null distribution re-runs the complete procedure - the same folds rule, fit, predict, the
training-fold median cut-off, pooling over repeats, the statistic - on data whose (time, event)
pairs were permuted across patients (features and strata keep their rows):

.. math::

    p = \frac{1 + \#\{b : T_b \ge T_{obs}\}}{1 + B}

with :math:`T` the signed log-rank z of the pooled out-of-fold high-risk group (one-sided: the
high-risk group does worse) and, from the same runs, the mean cross-validated Uno's C. The
test is exact for any ``B`` under exchangeability (with ``B = 19`` the smallest p is 0.05).

The interval: :func:`bootstrap_cv_interval` draws patients with replacement, re-runs the whole
cross-validation on each bootstrap cohort (the copies of a patient always fall in the same fold,
so no patient is ever in its own training fold) for the model and, on the same patients and
folds, for the comparator; the spread of the bootstrap estimates (2.5-97.5 percentiles minus
their mean) is placed around the observed cross-validated value. It covers the sampling
variability of the whole procedure - which patients were recruited, the fit, the splits - i.e.
the uncertainty about the C that this modelling procedure reaches on cohorts of this size from
this population (Bates, Hastie & Tibshirani, JASA 2023, call it the expected error); it is not
an interval for the particular fitted final model. ``benchmarks/inference.py`` measures its
coverage on simulated cohorts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from sabrkit.errors import ModelInputError, format_problem
from sabrkit.models.dataset import SurvivalDataset
from sabrkit.models.metrics import fold_concordance
from sabrkit.models.validation import cv_splits

__all__ = [
    "ProcedureSummary",
    "PermutationTest",
    "BootstrapInterval",
    "run_procedure",
    "procedure_permutation_test",
    "bootstrap_cv_interval",
    "signed_logrank_z",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcedureSummary:
    """The statistics one run of the cross-validation procedure gives.

    ``logrank_z``: signed log-rank z of the pooled out-of-fold high-risk group (-inf when one
    group is empty); ``harrell_c``/``uno_c``: mean over folds.
    """

    logrank_z: float
    harrell_c: float
    uno_c: float


@dataclass(frozen=True)
class PermutationTest:
    """Result of :func:`procedure_permutation_test`."""

    observed: ProcedureSummary
    null: pd.DataFrame  # one row per permutation: logrank_z, harrell_c, uno_c
    p_logrank: float
    p_uno_c: float
    n_permutations: int
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """JSON-ready numbers (``permutation_*`` keys)."""
        return {
            "permutation_logrank_z": self.observed.logrank_z,
            "permutation_p_logrank": self.p_logrank,
            "permutation_p_uno_c": self.p_uno_c,
            "permutation_null_uno_c_mean": float(np.nanmean(self.null["uno_c"])),
            "permutation_n": float(self.n_permutations),
        }


@dataclass(frozen=True)
class BootstrapInterval:
    """Result of :func:`bootstrap_cv_interval`: observed values and their intervals."""

    estimates: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    replicates: pd.DataFrame
    n_bootstrap: int
    level: float
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """``<metric>_ci_low`` / ``<metric>_ci_high`` per metric, and the bootstrap count."""
        out: dict[str, float] = {"ci_n_bootstrap": float(self.n_bootstrap), "ci_level": self.level}
        for key, (low, high) in self.intervals.items():
            out[f"{key}_ci_low"], out[f"{key}_ci_high"] = low, high
        return out


def signed_logrank_z(time: np.ndarray, event: np.ndarray, high: np.ndarray) -> float:
    """Signed log-rank z of the ``high`` group: sign(O - E) * sqrt(chi-square); -inf if a group is empty."""
    from sksurv.compare import compare_survival
    from sksurv.util import Surv

    high = np.asarray(high, dtype=int)
    if high.min() == high.max():
        return float("-inf")
    y = Surv.from_arrays(np.asarray(event, dtype=bool), np.asarray(time, dtype=float))
    chisq, _, stats = compare_survival(y, high, return_stats=True)[:3]
    excess = float(stats.loc[1, "observed"] - stats.loc[1, "expected"])
    return float(np.sign(excess) * np.sqrt(chisq))


def _fit_predict(
    pipeline: Any, dataset: SurvivalDataset, train: np.ndarray, test: np.ndarray
) -> tuple[np.ndarray, float]:
    import warnings

    model = clone(pipeline)
    X_train = dataset.X.iloc[train]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dataset.unit == "lesion" and hasattr(model, "param_grid"):
            model.fit(X_train, dataset.y[train], groups=dataset.study_ids[train])
        else:
            model.fit(X_train, dataset.y[train])
        train_risk = np.asarray(model.predict(X_train), dtype=float)
        test_risk = np.asarray(model.predict(dataset.X.iloc[test]), dtype=float)
    return test_risk, float(np.median(train_risk))


def run_procedure(
    pipeline: Any,
    dataset: SurvivalDataset,
    n_splits: int = 5,
    n_repeats: int = 1,
    random_state: int = 0,
    tau_months: float = 24.0,
    strata: str | Sequence[Any] | pd.Series | None = None,
) -> ProcedureSummary:
    """One run of the cross-validation procedure, reduced to its test statistics.

    The folds, the in-fold fit, the training-median cut-off and the pooling of risk groups over
    repeats (each row in the group it received in most repeats, ties "high") are those of
    :func:`sabrkit.models.validation.repeated_stratified_cv`.
    """
    splits = cv_splits(dataset, n_splits, n_repeats, random_state, strata)
    high_votes = np.zeros(len(dataset.y))
    harrell, uno = [], []
    for _, _, train, test in splits:
        risk, cutoff = _fit_predict(pipeline, dataset, train, test)
        high_votes[test] += risk > cutoff
        h, u, _, _ = fold_concordance(dataset.y[train], dataset.y[test], risk, tau_months)
        harrell.append(h)
        uno.append(u)
    high = high_votes / n_repeats >= 0.5
    z = signed_logrank_z(dataset.y["time"], dataset.y["event"], high)
    return ProcedureSummary(
        z,
        float(np.nanmean(harrell)) if np.isfinite(harrell).any() else float("nan"),
        float(np.nanmean(uno)) if np.isfinite(uno).any() else float("nan"),
    )


def _permuted_run(
    pipeline: Any, dataset: SurvivalDataset, seed: np.random.SeedSequence, kwargs: dict[str, Any]
) -> ProcedureSummary:
    order = np.random.default_rng(seed).permutation(len(dataset.y))
    return run_procedure(pipeline, dataset.with_outcome(dataset.y[order]), **kwargs)


def procedure_permutation_test(
    pipeline: Any,
    dataset: SurvivalDataset,
    rng: np.random.Generator,
    n_permutations: int = 99,
    *,
    n_splits: int = 5,
    n_repeats: int = 1,
    random_state: int = 0,
    tau_months: float = 24.0,
    strata: str | Sequence[Any] | pd.Series | None = None,
    n_jobs: int | None = None,
) -> PermutationTest:
    """Permutation test of the whole cross-validation procedure (see the module docstring).

    Parameters
    ----------
    pipeline : unfitted Pipeline or grid search
    dataset : SurvivalDataset
    rng : numpy.random.Generator
        Draws the permutations (one child seed per permutation, so ``n_jobs`` does not change them).
    n_permutations : int
        ``B``; p-values are multiples of ``1 / (1 + B)``.
    n_splits, n_repeats, random_state, tau_months, strata
        The CV procedure, applied identically to the observed and to every permuted data set.
    n_jobs : int, optional
        Permutations in parallel (joblib).

    Raises
    ------
    ModelInputError
        ``n_permutations`` below 1.
    """
    from joblib import Parallel, delayed

    if n_permutations < 1:
        raise ModelInputError(
            format_problem(f"n_permutations={n_permutations}", "at least 1 permutation", "use e.g. 99 or 199")
        )
    kwargs: dict[str, Any] = dict(
        n_splits=n_splits,
        n_repeats=n_repeats,
        random_state=random_state,
        tau_months=tau_months,
        strata=strata,
    )
    observed = run_procedure(pipeline, dataset, **kwargs)
    seeds = np.random.SeedSequence(int(rng.integers(0, 2**63))).spawn(n_permutations)
    runs = Parallel(n_jobs=n_jobs)(delayed(_permuted_run)(pipeline, dataset, s, kwargs) for s in seeds)
    null = pd.DataFrame(
        [{"logrank_z": r.logrank_z, "harrell_c": r.harrell_c, "uno_c": r.uno_c} for r in runs]
    )

    def p_value(column: str, value: float) -> float:
        if not np.isfinite(value) and value != float("-inf"):
            return float("nan")
        values = null[column].to_numpy(dtype=float)
        values = np.where(np.isnan(values), -np.inf, values)
        return float((1 + np.sum(values >= value - 1e-12)) / (1 + n_permutations))

    settings = {
        **{k: v for k, v in kwargs.items() if k != "strata"},
        "strata": strata if isinstance(strata, str) or strata is None else "labels",
        "statistic": "signed log-rank z of the pooled out-of-fold high-risk group; mean CV Uno C",
        "null": "whole CV procedure re-run on permuted (time, event) pairs",
    }
    return PermutationTest(
        observed,
        null,
        p_value("logrank_z", observed.logrank_z),
        p_value("uno_c", observed.uno_c),
        n_permutations,
        settings,
    )


def _bootstrap_dataset(dataset: SurvivalDataset, picks: np.ndarray) -> SurvivalDataset:
    """Patients ``picks`` (positions in the unique patient list, with repeats) as a grouped data set."""
    import dataclasses

    from sabrkit.rowkeys import copy_key

    patients = pd.unique(dataset.study_ids)
    owner = pd.Series(np.arange(len(dataset.y))).groupby(dataset.study_ids).apply(list)
    rows, names, groups = [], [], []
    for copy, position in enumerate(picks):
        patient = patients[position]
        for row in owner[patient]:
            rows.append(row)
            names.append(copy_key(dataset.row_ids[row], copy))  # side-data steps map it back (rowkeys)
            groups.append(patient)
    X = dataset.X.iloc[rows].copy()
    X.index = pd.Index(names, name="lesion_id")  # grouped rows: copies of a patient share a group
    characteristics = None
    if dataset.characteristics is not None:
        characteristics = dataset.characteristics.iloc[rows].copy()
        characteristics.index = X.index
    return dataclasses.replace(
        dataset,
        X=X,
        y=dataset.y[rows],
        characteristics=characteristics,
        groups=np.asarray(groups),
        unit="lesion",
    )


def _bootstrap_run(
    pipeline: Any,
    dataset: SurvivalDataset,
    reference: tuple[Any, SurvivalDataset] | None,
    seed: np.random.SeedSequence,
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n = len(pd.unique(dataset.study_ids))
    picks = rng.integers(0, n, n)
    out: dict[str, Any] = {}
    try:
        model = run_procedure(pipeline, _bootstrap_dataset(dataset, picks), **kwargs)
        out.update(harrell_c=model.harrell_c, uno_c=model.uno_c)
        if reference is not None:
            ref = run_procedure(reference[0], _bootstrap_dataset(reference[1], picks), **kwargs)
            out.update(delta_harrell_c=model.harrell_c - ref.harrell_c, delta_uno_c=model.uno_c - ref.uno_c)
    except Exception as exc:
        logger.debug("bootstrap replicate failed: %s", exc)
        out["failed"] = 1.0
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return out


def bootstrap_cv_interval(
    pipeline: Any,
    dataset: SurvivalDataset,
    rng: np.random.Generator,
    n_bootstrap: int = 100,
    *,
    observed: dict[str, float],
    reference: tuple[Any, SurvivalDataset] | None = None,
    n_splits: int = 5,
    n_repeats: int = 1,
    random_state: int = 0,
    tau_months: float = 24.0,
    level: float = 0.95,
    n_jobs: int | None = None,
) -> BootstrapInterval:
    """Interval for the cross-validated Harrell/Uno C (and delta-C vs ``reference``) by
    bootstrapping patients and re-running the whole CV (see the module docstring).

    Parameters
    ----------
    observed : dict
        The point estimates the intervals are placed around: ``harrell_c``, ``uno_c`` and, with
        a reference, ``delta_harrell_c``, ``delta_uno_c`` (the experiment's own CV means).
    reference : (pipeline, SurvivalDataset), optional
        The comparator on the same patients (same row IDs), run on the same bootstrap cohorts and folds.
    n_splits, n_repeats, random_state, tau_months
        The CV inside every bootstrap cohort (grouped by patient so copies share a fold).

    Raises
    ------
    ModelInputError
        Fewer than 20 bootstrap samples, or a reference on other patients.
    """
    from joblib import Parallel, delayed

    if n_bootstrap < 20:
        raise ModelInputError(
            format_problem(
                f"n_bootstrap={n_bootstrap}",
                "at least 20 bootstrap cohorts for a 95 % interval",
                "use e.g. 100 or 200",
            )
        )
    if reference is not None and not np.array_equal(reference[1].row_ids, dataset.row_ids):
        raise ModelInputError(
            format_problem(
                "reference data set rows differ from the model's",
                "the comparator uses the same patients",
                "select both from one assembled data set",
            )
        )
    kwargs: dict[str, Any] = dict(
        n_splits=n_splits, n_repeats=n_repeats, random_state=random_state, tau_months=tau_months
    )
    seeds = np.random.SeedSequence(int(rng.integers(0, 2**63))).spawn(n_bootstrap)
    rows = Parallel(n_jobs=n_jobs)(
        delayed(_bootstrap_run)(pipeline, dataset, reference, s, kwargs) for s in seeds
    )
    replicates = pd.DataFrame(rows)
    n_failed = int(replicates["failed"].fillna(0).sum()) if "failed" in replicates else 0
    first_error = str(replicates["error"].dropna().iloc[0]) if n_failed and "error" in replicates else None
    if n_failed:
        logger.warning(
            "%d of %d bootstrap replicates failed (left out of the interval); the first: %s",
            n_failed,
            n_bootstrap,
            first_error,
        )
    alpha = (1.0 - level) / 2.0
    intervals: dict[str, tuple[float, float]] = {}
    for key, value in observed.items():
        values = replicates[key].to_numpy(dtype=float) if key in replicates else np.array([])
        values = values[np.isfinite(values)]
        if values.size < 20 or not np.isfinite(value):
            intervals[key] = (float("nan"), float("nan"))
            continue
        low, high = np.quantile(values, [alpha, 1.0 - alpha]) - values.mean()
        intervals[key] = (float(value + low), float(value + high))
    settings = {
        **kwargs,
        "n_failed": n_failed,
        "first_failure": first_error,
        "method": "bootstrap of patients, whole CV re-run per cohort "
        "(copies of a patient in one fold); percentile spread centred on the observed CV value",
    }
    return BootstrapInterval(dict(observed), intervals, replicates, n_bootstrap, level, settings)
