"""Leakage-free validation: repeated stratified cross-validation of a whole pipeline.

Every fold clones the pipeline (or the grid search around it, for nested CV) and fits it on
the training rows only (imputation, filters, selection, model, hyperparameters), predicts risk
and survival for the test rows, and fixes the risk-group cut-off as the median risk of the
*training* rows. Folds are stratified on the event indicator (``y["event"]``, optionally
crossed with a stratum such as the therapy class), never on the structured ``y``:
scikit-learn would then stratify on each distinct (event, time) pair. Lesion-level data sets
are split with :class:`~sklearn.model_selection.StratifiedGroupKFold` so that all lesions of a
patient fall in the same fold.

Summaries are over repeats: each repeat's value is the mean of its folds (calibration uses
the repeat's pooled out-of-fold predictions), and the summary reports the mean, SD and
2.5-97.5 percentile interval of the repeat values. Fold values share patients, so the
interval describes the spread of the estimate over re-splits, not a confidence interval.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from sabrkit.errors import ModelInputError, format_problem
from sabrkit.models.dataset import SurvivalDataset
from sabrkit.models.metrics import (
    AUC_TIMES,
    CALIBRATION_MONTHS,
    calibration_at,
    calibration_summary,
    fold_concordance,
    fold_metrics,
    ibs_grid,
    predict_survival_at,
)

__all__ = [
    "CVResult",
    "FoldEvaluation",
    "evaluate_fold",
    "fold_concordance",
    "cv_splits",
    "repeated_stratified_cv",
    "permuted_control",
    "stratification_labels",
    "summarise_repeats",
]

logger = logging.getLogger(__name__)

_SURVIVAL_TIMES = (12.0, 24.0)


@dataclass(frozen=True)
class FoldEvaluation:
    """What one train/test split gave: metrics, test risks and survival, the training cut-off."""

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
    metrics: dict[str, float] = field(default_factory=dict)
    test_survival: np.ndarray | None = None
    best_params: dict[str, Any] | None = None
    importance: pd.Series | None = None


@dataclass(frozen=True)
class CVResult:
    """Result of :func:`repeated_stratified_cv`.

    Attributes
    ----------
    folds : pandas.DataFrame
        One row per fold: ``repeat, fold, n_train, n_test, n_test_events, test_ids_sha1``, the
        metrics (``harrell_c, uno_c, tau_months, auc_12, auc_24, ibs, ibs_km, ibs_gain``),
        ``risk_cutoff, best_params, undefined, fit_warnings``.
    oof : pandas.DataFrame
        Out-of-fold predictions: ``study_id`` (and ``lesion_id`` for lesion rows), ``repeat,
        fold, risk, risk_group, surv_12, surv_24`` (NaN where the model has no survival
        function); each row once per repeat.
    summary : dict
        Per metric ``<m>_mean``, ``<m>_sd``, ``<m>_p025``, ``<m>_p975`` over repeats,
        ``<m>_fold_sd`` over folds and ``n_<m>_undefined`` (folds); the calibration metrics;
        ``n_folds``, ``n_repeats``, ``n_patients``, ``n_events``. ``n_harrell_undefined`` and
        ``n_uno_undefined`` count undefined C folds.
    settings : dict
        The CV settings (``n_splits``, ``n_repeats``, ``random_state``, ``tau_months``,
        ``strata``, ``grouped``, ``control``).
    repeats : pandas.DataFrame
        One row per repeat: the fold means and the repeat's calibration metrics.
    importance : pandas.DataFrame or None
        ``repeat, fold, feature, importance`` when permutation importance was requested.
    """

    folds: pd.DataFrame
    oof: pd.DataFrame
    summary: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)
    repeats: pd.DataFrame | None = None
    importance: pd.DataFrame | None = None

    @property
    def n_undefined(self) -> int:
        """Folds where Harrell's or Uno's C could not be computed (recorded as NaN)."""
        return int(self.summary["n_harrell_undefined"] + self.summary["n_uno_undefined"])


def _fit(model: Any, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None) -> Any:
    if groups is not None and hasattr(model, "param_grid"):  # grid search: inner splits grouped by patient
        return model.fit(X, y, groups=groups)
    return model.fit(X, y)


def evaluate_fold(
    pipeline: Any,
    dataset: SurvivalDataset,
    train_index: np.ndarray,
    test_index: np.ndarray,
    tau_months: float = 24.0,
    auc_times: Sequence[float] = AUC_TIMES,
    importance_rng: np.random.Generator | None = None,
    importance_repeats: int = 5,
) -> FoldEvaluation:
    """Clone ``pipeline``, fit it on the training rows, evaluate it on the test rows.

    ``pipeline`` is a Pipeline or a grid search around one (nested CV; for lesion rows the
    inner splits are grouped by patient). The risk-group cut-off is the median predicted risk
    of the training rows; test rows above it are ``"high"``, the others ``"low"``. Test rows
    never influence the fit or the cut-off. With ``importance_rng`` the fold's permutation
    importance is computed (:mod:`sabrkit.models.importance`).
    """
    X_train, y_train = dataset.X.iloc[train_index], dataset.y[train_index]
    X_test, y_test = dataset.X.iloc[test_index], dataset.y[test_index]
    groups = dataset.study_ids[train_index] if dataset.unit == "lesion" else None
    model = clone(pipeline)
    grid = ibs_grid(y_test, tau_months, y_train=y_train)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(model, X_train, y_train, groups)
        train_risk = np.asarray(model.predict(X_train), dtype=float)
        test_risk = np.asarray(model.predict(X_test), dtype=float)
        survival = predict_survival_at(model, X_test, np.r_[grid, _SURVIVAL_TIMES])
    cutoff = float(np.median(train_risk))
    metrics, undefined = fold_metrics(
        y_train,
        y_test,
        test_risk,
        None if survival is None else survival[:, : grid.size],
        grid,
        tau_months,
        auc_times,
    )
    from sabrkit.models.horizon_metrics import fold_brier_at

    brier, brier_undefined = fold_brier_at(
        y_train,
        y_test,
        predict_survival_at(model, X_test, auc_times) if survival is not None else None,
        auc_times,
    )
    metrics.update(brier)
    undefined = (*undefined, *brier_undefined)
    importance = None
    if importance_rng is not None:
        from sabrkit.models.importance import fold_permutation_importance

        importance = fold_permutation_importance(model, X_test, y_test, importance_rng, importance_repeats)
    best = getattr(model, "best_params_", None)
    return FoldEvaluation(
        harrell_c=metrics["harrell_c"],
        uno_c=metrics["uno_c"],
        tau_months=metrics["tau_months"],
        risk_cutoff=cutoff,
        test_risk=test_risk,
        risk_group=np.where(test_risk > cutoff, "high", "low"),
        n_train=len(train_index),
        n_test=len(test_index),
        n_test_events=int(y_test["event"].sum()),
        undefined=undefined,
        fit_warnings=tuple(sorted({str(w.message) for w in caught})),
        metrics=metrics,
        test_survival=None if survival is None else survival[:, grid.size :],
        best_params=None if best is None else dict(best),
        importance=importance,
    )


def stratification_labels(
    dataset: SurvivalDataset, strata: str | Sequence[Any] | pd.Series | None = None
) -> np.ndarray:
    """Labels handed to the stratified splitter: the event indicator, crossed with ``strata``.

    ``strata`` is a column of ``dataset.characteristics`` or ``dataset.X``, a Series indexed
    like ``X``, or a sequence in row order. Never the structured ``y``.
    """
    event = np.asarray(dataset.y["event"], dtype=bool)
    if strata is None:
        return event.astype(int)
    if isinstance(strata, str):
        values = dataset.characteristic(strata).to_numpy()
    elif isinstance(strata, pd.Series):
        values = strata.reindex(dataset.X.index).to_numpy()
    else:
        values = np.asarray(strata)
    n_missing = int(pd.isna(values).sum())
    if len(values) != len(event) or n_missing:
        raise ModelInputError(
            format_problem(
                f"{len(values)} strata labels ({n_missing} missing) for {len(event)} rows",
                "one stratum per row",
                "give a label to every patient",
            )
        )
    return np.array([f"{int(e)}|{v}" for e, v in zip(event, values, strict=True)])


def cv_splits(
    dataset: SurvivalDataset,
    n_splits: int = 5,
    n_repeats: int = 10,
    random_state: int = 0,
    strata: str | Sequence[Any] | pd.Series | None = None,
) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """``(repeat, fold, train_index, test_index)`` of repeated stratified (grouped) K-fold.

    Patient rows: :class:`~sklearn.model_selection.RepeatedStratifiedKFold`. Lesion rows:
    :class:`~sklearn.model_selection.StratifiedGroupKFold` per repeat (``random_state +
    repeat``), grouped by ``dataset.study_ids``. Deterministic given ``random_state``.
    """
    from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedGroupKFold

    labels = stratification_labels(dataset, strata)
    _, counts = np.unique(labels, return_counts=True)
    if counts.min() < n_splits:
        logger.warning("smallest stratum has %d row(s), fewer than n_splits=%d", counts.min(), n_splits)
    placeholder = np.zeros((len(labels), 1))
    out: list[tuple[int, int, np.ndarray, np.ndarray]] = []
    if dataset.unit == "lesion":
        for repeat in range(n_repeats):
            splitter = StratifiedGroupKFold(
                n_splits=n_splits, shuffle=True, random_state=random_state + repeat
            )
            for fold, (train, test) in enumerate(splitter.split(placeholder, labels, dataset.study_ids)):
                out.append((repeat, fold, train, test))
        return out
    splitter = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=random_state)
    for i, (train, test) in enumerate(splitter.split(placeholder, labels)):
        out.append((*divmod(i, n_splits), train, test))
    return out


def repeated_stratified_cv(
    pipeline: Any,
    dataset: SurvivalDataset,
    n_splits: int = 5,
    n_repeats: int = 10,
    random_state: int = 0,
    tau_months: float = 24.0,
    strata: str | Sequence[Any] | pd.Series | None = None,
    n_jobs: int | None = None,
    importance_repeats: int = 0,
    auc_times: Sequence[float] = AUC_TIMES,
) -> CVResult:
    """Repeated stratified K-fold cross-validation of a survival pipeline.

    Parameters
    ----------
    pipeline : Pipeline or GridSearchCV
        Unfitted; cloned and refitted in every fold (every data-dependent step inside it).
    dataset : SurvivalDataset
    n_splits, n_repeats, random_state
        See :func:`cv_splits`; the result is deterministic given ``random_state``.
    tau_months : float, default 24
        Truncation time of Uno's C (lowered per fold to the largest training time) and end of
        the integrated Brier score grid.
    strata : str, Series or sequence, optional
        Stratum crossed with the event indicator (see :func:`stratification_labels`).
    n_jobs : int, optional
        Folds in parallel with joblib (None: sequential).
    importance_repeats : int, default 0
        If > 0, permutation importance on every test fold with this many shuffles.
    auc_times : sequence of float, default (12, 24)

    Returns
    -------
    CVResult
        Folds where a metric is undefined get NaN, are counted in the summary and logged.
    """
    from joblib import Parallel, delayed

    splits = cv_splits(dataset, n_splits, n_repeats, random_state, strata)
    seeds = np.random.SeedSequence(random_state).spawn(len(splits))
    evaluations = Parallel(n_jobs=n_jobs)(
        delayed(evaluate_fold)(
            pipeline,
            dataset,
            train,
            test,
            tau_months,
            auc_times,
            np.random.default_rng(seed) if importance_repeats else None,
            importance_repeats,
        )
        for (_, _, train, test), seed in zip(splits, seeds, strict=True)
    )
    fold_rows, oof_parts, importance_parts = [], [], []
    for (repeat, fold, _, test), ev in zip(splits, evaluations, strict=True):
        for reason in ev.undefined:
            logger.debug("repeat %d fold %d: metric undefined, recorded as NaN (%s)", repeat, fold, reason)
        test_ids = dataset.row_ids[test]
        fold_rows.append(
            {
                "repeat": repeat,
                "fold": fold,
                "n_train": ev.n_train,
                "n_test": ev.n_test,
                "n_test_events": ev.n_test_events,
                "test_ids_sha1": hashlib.sha1("|".join(sorted(map(str, test_ids))).encode()).hexdigest(),
                **ev.metrics,
                "risk_cutoff": ev.risk_cutoff,
                "best_params": ""
                if ev.best_params is None
                else json.dumps(ev.best_params, sort_keys=True, default=str),
                "undefined": "; ".join(ev.undefined),
                "fit_warnings": "; ".join(ev.fit_warnings),
            }
        )
        part = {"study_id": dataset.study_ids[test]}
        if dataset.unit == "lesion":
            part["lesion_id"] = test_ids
        survival = ev.test_survival if ev.test_survival is not None else np.full((len(test), 2), np.nan)
        oof_parts.append(
            pd.DataFrame(
                {
                    **part,
                    "repeat": repeat,
                    "fold": fold,
                    "risk": ev.test_risk,
                    "risk_group": ev.risk_group,
                    "surv_12": survival[:, 0],
                    "surv_24": survival[:, 1],
                }
            )
        )
        if ev.importance is not None:
            importance_parts.append(
                pd.DataFrame(
                    {
                        "repeat": repeat,
                        "fold": fold,
                        "feature": ev.importance.index,
                        "importance": ev.importance.values,
                    }
                )
            )
    folds = pd.DataFrame(fold_rows)
    n_undefined = int((folds["undefined"] != "").sum())
    if n_undefined:
        logger.warning(
            "%d of %d folds have an undefined metric (recorded as NaN; see the folds table)",
            n_undefined,
            len(folds),
        )
    n_warned = int((folds["fit_warnings"] != "").sum())
    if n_warned:
        messages = sorted({m for text in folds["fit_warnings"] if text for m in text.split("; ")})
        logger.warning("%d of %d folds emitted fit warnings: %s", n_warned, len(folds), messages[:5])
    id_columns = ["repeat", "lesion_id"] if dataset.unit == "lesion" else ["repeat", "study_id"]
    oof = pd.concat(oof_parts, ignore_index=True).sort_values(id_columns, ignore_index=True)
    repeats = _repeat_table(folds, oof, dataset)
    settings = {
        "n_splits": n_splits,
        "n_repeats": n_repeats,
        "random_state": random_state,
        "tau_months": tau_months,
        "strata": strata if isinstance(strata, str) or strata is None else "labels",
        "grouped": dataset.unit == "lesion",
        "control": "none",
        "auc_times": list(auc_times),
        "calibration_months": CALIBRATION_MONTHS,
    }
    summary = summarise_repeats(folds, repeats)
    summary.update(n_patients=float(dataset.n_patients), n_events=float(dataset.n_events))
    importance = pd.concat(importance_parts, ignore_index=True) if importance_parts else None
    return CVResult(
        folds=folds, oof=oof, summary=summary, settings=settings, repeats=repeats, importance=importance
    )


_NON_METRIC_COLUMNS = frozenset(
    {
        "repeat",
        "fold",
        "n_train",
        "n_test",
        "n_test_events",
        "test_ids_sha1",
        "risk_cutoff",
        "best_params",
        "undefined",
        "fit_warnings",
        "tau_months",
    }
)


def _metric_columns(folds: pd.DataFrame) -> list[str]:
    return [c for c in folds.columns if c not in _NON_METRIC_COLUMNS]


def _repeat_table(folds: pd.DataFrame, oof: pd.DataFrame, dataset: SurvivalDataset) -> pd.DataFrame:
    metric_columns = _metric_columns(folds)
    rows = []
    outcome = pd.DataFrame({"time": dataset.y["time"], "event": dataset.y["event"]}, index=dataset.row_ids)
    id_column = "lesion_id" if dataset.unit == "lesion" else "study_id"
    for repeat, part in folds.groupby("repeat"):
        row: dict[str, float] = {"repeat": int(repeat)}
        for column in metric_columns:
            values = part[column].to_numpy(dtype=float)
            row[column] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        predictions = oof[oof["repeat"] == repeat]
        if predictions["surv_24"].notna().all():
            rows_outcome = outcome.loc[predictions[id_column].to_numpy()]
            table = calibration_at(
                predictions["surv_24"].to_numpy(),
                rows_outcome["time"].to_numpy(),
                rows_outcome["event"].to_numpy(),
            )
            row.update(calibration_summary(table))
        rows.append(row)
    return pd.DataFrame(rows)


def summarise_repeats(folds: pd.DataFrame, repeats: pd.DataFrame) -> dict[str, float]:
    """Mean, SD and 2.5/97.5 percentiles over repeats; fold SD and undefined-fold counts."""
    summary: dict[str, float] = {"n_folds": float(len(folds)), "n_repeats": float(len(repeats))}
    for metric in [c for c in repeats.columns if c != "repeat"]:
        values = repeats[metric].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        if finite.size:
            summary[f"{metric}_mean"] = float(finite.mean())
            summary[f"{metric}_sd"] = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
            low, high = np.percentile(finite, [2.5, 97.5])
            summary[f"{metric}_p025"], summary[f"{metric}_p975"] = float(low), float(high)
        else:
            for stat in ("mean", "sd", "p025", "p975"):
                summary[f"{metric}_{stat}"] = float("nan")
        if metric in folds.columns:
            fold_values = folds[metric].to_numpy(dtype=float)
            fold_finite = fold_values[np.isfinite(fold_values)]
            summary[f"{metric}_fold_sd"] = (
                float(fold_finite.std(ddof=1)) if fold_finite.size > 1 else float("nan")
            )
            summary[f"n_{metric}_undefined"] = float(fold_values.size - fold_finite.size)
    summary["n_harrell_undefined"] = summary.get("n_harrell_c_undefined", 0.0)
    summary["n_uno_undefined"] = summary.get("n_uno_c_undefined", 0.0)
    return summary


def permuted_control(
    pipeline: Any, dataset: SurvivalDataset, rng: np.random.Generator, **cv_kwargs: Any
) -> CVResult:
    """Negative control: the same CV after permuting the (time, event) pairs across rows.

    Features keep their rows; each row receives another row's outcome, which breaks any
    feature-outcome link. A leakage-free pipeline should then give C around 0.5.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the permutation.
    **cv_kwargs
        Passed to :func:`repeated_stratified_cv`.
    """
    permuted = dataset.with_outcome(dataset.y[rng.permutation(len(dataset.y))])
    result = repeated_stratified_cv(pipeline, permuted, **cv_kwargs)
    return CVResult(
        result.folds,
        result.oof,
        result.summary,
        {**result.settings, "control": "permuted outcome"},
        result.repeats,
        result.importance,
    )
