"""Leakage-free validation: repeated stratified cross-validation of a whole pipeline.

Every fold clones the pipeline and fits it on the training patients only (imputation, filters,
selection, model), predicts risk for the test patients, and fixes the risk-group cut-off as the
median risk of the *training* patients. Folds are stratified on the event indicator
(``y["event"]``, optionally crossed with a stratum), never on the structured ``y``: scikit-learn
would then stratify on each distinct (event, time) pair.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from sabrkit.errors import ModelInputError, format_problem
from sabrkit.models.dataset import SurvivalDataset

__all__ = [
    "CVResult",
    "FoldEvaluation",
    "evaluate_fold",
    "fold_concordance",
    "repeated_stratified_cv",
    "permuted_control",
    "stratification_labels",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldEvaluation:
    """What one train/test split gave: metrics, test risks, the training-fold cut-off."""

    harrell_c: float
    uno_c: float
    tau_months: float
    risk_cutoff: float
    test_risk: np.ndarray
    risk_group: np.ndarray
    n_train: int
    n_test: int
    n_test_events: int
    undefined: tuple[str, ...] = ()
    fit_warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CVResult:
    """Result of :func:`repeated_stratified_cv`.

    Attributes
    ----------
    folds : pandas.DataFrame
        One row per fold: ``repeat, fold, n_train, n_test, n_test_events, harrell_c, uno_c,
        tau_months, risk_cutoff, undefined, fit_warnings``.
    oof : pandas.DataFrame
        Out-of-fold predictions: ``study_id, repeat, fold, risk, risk_group`` (each patient
        once per repeat).
    summary : dict
        ``harrell_c_mean/sd/p025/p975``, ``uno_c_mean/sd/p025/p975`` over the folds with a
        defined C (``p025``/``p975``: 2.5th/97.5th percentiles of the fold values, a spread of
        fold estimates rather than a confidence interval; folds share patients),
        ``n_folds``, ``n_harrell_undefined``, ``n_uno_undefined``, ``n_patients``, ``n_events``.
    settings : dict
        The CV settings (``n_splits``, ``n_repeats``, ``random_state``, ``tau_months``,
        ``strata``, ``control``).
    """

    folds: pd.DataFrame
    oof: pd.DataFrame
    summary: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_undefined(self) -> int:
        """Folds where Harrell's or Uno's C could not be computed (recorded as NaN)."""
        return int(self.summary["n_harrell_undefined"] + self.summary["n_uno_undefined"])


def fold_concordance(
    y_train: np.ndarray, y_test: np.ndarray, risk: np.ndarray, tau_months: float
) -> tuple[float, float, float, tuple[str, ...]]:
    r"""Harrell's and Uno's C of test-fold risks.

    Harrell: :math:`C = P(\hat r_a > \hat r_b \mid t_a < t_b, \delta_a = 1)` over comparable
    test pairs (:func:`sksurv.metrics.concordance_index_censored`). Uno: the same with
    inverse-probability-of-censoring weights :math:`\hat G(t_a)^{-2}`, :math:`\hat G` the
    Kaplan-Meier censoring distribution of the *training* fold, restricted to
    :math:`t_a < \tau` with :math:`\tau = \min(\tau_{months}, \max t_{train})`
    (:func:`sksurv.metrics.concordance_index_ipcw`).

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


def evaluate_fold(
    pipeline: Pipeline,
    dataset: SurvivalDataset,
    train_index: np.ndarray,
    test_index: np.ndarray,
    tau_months: float = 24.0,
) -> FoldEvaluation:
    """Clone ``pipeline``, fit it on the training rows, evaluate it on the test rows.

    The risk-group cut-off is the median predicted risk of the training rows; test rows with
    risk above it are ``"high"``, the others ``"low"``. Test rows never influence the fit or
    the cut-off.
    """
    X_train, y_train = dataset.X.iloc[train_index], dataset.y[train_index]
    X_test, y_test = dataset.X.iloc[test_index], dataset.y[test_index]
    model = clone(pipeline)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X_train, y_train)
        train_risk = np.asarray(model.predict(X_train), dtype=float)
        test_risk = np.asarray(model.predict(X_test), dtype=float)
    cutoff = float(np.median(train_risk))
    harrell, uno, tau, undefined = fold_concordance(y_train, y_test, test_risk, tau_months)
    return FoldEvaluation(
        harrell_c=harrell,
        uno_c=uno,
        tau_months=tau,
        risk_cutoff=cutoff,
        test_risk=test_risk,
        risk_group=np.where(test_risk > cutoff, "high", "low"),
        n_train=len(train_index),
        n_test=len(test_index),
        n_test_events=int(y_test["event"].sum()),
        undefined=undefined,
        fit_warnings=tuple(sorted({str(w.message) for w in caught})),
    )


def stratification_labels(
    dataset: SurvivalDataset, strata: str | Sequence[Any] | pd.Series | None = None
) -> np.ndarray:
    """Labels handed to ``StratifiedKFold.split``: the event indicator, crossed with ``strata``.

    ``strata`` is a column of ``dataset.X``, a Series indexed by study_id, or a sequence in row
    order. Never the structured ``y``.
    """
    event = np.asarray(dataset.y["event"], dtype=bool)
    if strata is None:
        return event.astype(int)
    if isinstance(strata, str):
        if strata not in dataset.X.columns:
            raise ModelInputError(
                format_problem(
                    f"strata column {strata!r}",
                    "strata must be a column of X",
                    "name a column of dataset.X or pass one label per patient",
                )
            )
        values = dataset.X[strata].to_numpy()
    elif isinstance(strata, pd.Series):
        values = strata.reindex(dataset.X.index).to_numpy()
    else:
        values = np.asarray(strata)
    n_missing = int(pd.isna(values).sum())
    if len(values) != dataset.n_patients or n_missing:
        raise ModelInputError(
            format_problem(
                f"{len(values)} strata labels ({n_missing} missing) for {dataset.n_patients} patients",
                "one stratum per patient",
                "give a label to every patient",
            )
        )
    return np.array([f"{int(e)}|{v}" for e, v in zip(event, values, strict=True)])


def repeated_stratified_cv(
    pipeline: Pipeline,
    dataset: SurvivalDataset,
    n_splits: int = 5,
    n_repeats: int = 10,
    random_state: int = 0,
    tau_months: float = 24.0,
    strata: str | Sequence[Any] | pd.Series | None = None,
    n_jobs: int | None = None,
) -> CVResult:
    """Repeated stratified k-fold cross-validation of a survival pipeline.

    Parameters
    ----------
    pipeline : Pipeline
        Unfitted; cloned and refitted in every fold (every data-dependent step inside it).
    dataset : SurvivalDataset
    n_splits, n_repeats, random_state
        Passed to :class:`sklearn.model_selection.RepeatedStratifiedKFold`; the result is
        deterministic given ``random_state``.
    tau_months : float, default 24
        Truncation time of Uno's C (lowered per fold to the largest training time).
    strata : str, Series or sequence, optional
        Stratum crossed with the event indicator (see :func:`stratification_labels`).
    n_jobs : int, optional
        Folds in parallel with joblib (None: sequential).

    Returns
    -------
    CVResult
        Folds where a C is undefined get NaN, are counted in the summary and logged as warnings.
    """
    from joblib import Parallel, delayed
    from sklearn.model_selection import RepeatedStratifiedKFold

    labels = stratification_labels(dataset, strata)
    _, counts = np.unique(labels, return_counts=True)
    if counts.min() < n_splits:
        logger.warning("smallest stratum has %d patient(s), fewer than n_splits=%d", counts.min(), n_splits)
    splitter = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=random_state)
    splits = list(splitter.split(np.zeros((dataset.n_patients, 1)), labels))
    evaluations = Parallel(n_jobs=n_jobs)(
        delayed(evaluate_fold)(pipeline, dataset, train, test, tau_months) for train, test in splits
    )
    fold_rows, oof_parts = [], []
    for i, ((_, test), ev) in enumerate(zip(splits, evaluations, strict=True)):
        repeat, fold = divmod(i, n_splits)
        for reason in ev.undefined:
            logger.warning("repeat %d fold %d: C-index undefined, recorded as NaN (%s)", repeat, fold, reason)
        fold_rows.append(
            {
                "repeat": repeat, "fold": fold, "n_train": ev.n_train, "n_test": ev.n_test,
                "n_test_events": ev.n_test_events, "harrell_c": ev.harrell_c, "uno_c": ev.uno_c,
                "tau_months": ev.tau_months, "risk_cutoff": ev.risk_cutoff,
                "undefined": "; ".join(ev.undefined), "fit_warnings": "; ".join(ev.fit_warnings),
            }
        )
        oof_parts.append(
            pd.DataFrame(
                {"study_id": dataset.X.index[test], "repeat": repeat, "fold": fold,
                 "risk": ev.test_risk, "risk_group": ev.risk_group}
            )
        )
    folds = pd.DataFrame(fold_rows)
    n_warned = int((folds["fit_warnings"] != "").sum())
    if n_warned:
        messages = sorted({m for text in folds["fit_warnings"] if text for m in text.split("; ")})
        logger.warning("%d of %d folds emitted fit warnings: %s", n_warned, len(folds), messages)
    oof = pd.concat(oof_parts, ignore_index=True).sort_values(["repeat", "study_id"], ignore_index=True)
    settings = {
        "n_splits": n_splits, "n_repeats": n_repeats, "random_state": random_state,
        "tau_months": tau_months, "strata": strata if isinstance(strata, str) or strata is None else "labels",
        "control": "none",
    }
    return CVResult(folds=folds, oof=oof, summary=_summarise(folds, dataset), settings=settings)


def _summarise(folds: pd.DataFrame, dataset: SurvivalDataset) -> dict[str, float]:
    summary: dict[str, float] = {"n_folds": float(len(folds))}
    for metric in ("harrell_c", "uno_c"):
        values = folds[metric].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        summary[f"n_{metric.split('_')[0]}_undefined"] = float(values.size - finite.size)
        if finite.size:
            summary[f"{metric}_mean"] = float(finite.mean())
            summary[f"{metric}_sd"] = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
            low, high = np.percentile(finite, [2.5, 97.5])
            summary[f"{metric}_p025"], summary[f"{metric}_p975"] = float(low), float(high)
        else:
            for stat in ("mean", "sd", "p025", "p975"):
                summary[f"{metric}_{stat}"] = float("nan")
    summary["n_patients"] = float(dataset.n_patients)
    summary["n_events"] = float(dataset.n_events)
    return summary


def permuted_control(
    pipeline: Pipeline, dataset: SurvivalDataset, rng: np.random.Generator, **cv_kwargs: Any
) -> CVResult:
    """Negative control: the same CV after permuting the (time, event) pairs across patients.

    Features keep their rows; each patient receives another patient's outcome, which breaks any
    feature-outcome link. A leakage-free pipeline should then give C around 0.5.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the permutation.
    **cv_kwargs
        Passed to :func:`repeated_stratified_cv`.
    """
    permuted = dataset.with_outcome(dataset.y[rng.permutation(dataset.n_patients)])
    result = repeated_stratified_cv(pipeline, permuted, **cv_kwargs)
    return CVResult(result.folds, result.oof, result.summary, {**result.settings, "control": "permuted outcome"})
