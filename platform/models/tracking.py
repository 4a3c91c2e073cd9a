"""Log a cross-validated survival model to MLflow: parent run, one nested run per fold, model.

The tracking URI is always passed in; the CLI resolves the default with
``sabrkit.settings.Settings.resolved_mlflow_uri()``. Nothing logged holds a direct identifier:
only pseudonymous study IDs appear, and only inside the out-of-fold artifact table, never as
params. The model's input example is one synthetic row (feature medians), not a patient.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import Pipeline

from sabrkit.errors import ModelInputError, format_problem
from sabrkit.models.dataset import SurvivalDataset
from sabrkit.models.estimators import unwrap_search
from sabrkit.models.lineage import git_commit, git_is_dirty
from sabrkit.models.validation import CVResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "log_cv_to_mlflow",
    "get_or_create_experiment",
    "mlflow_params",
    "final_model_coefficients",
    "save_final_model",
    "persistable_model",
    "MAX_PARAM_VALUE_LENGTH",
]

logger = logging.getLogger(__name__)

MAX_PARAM_VALUE_LENGTH = 500
_BATCH = 100
_FOLD_TEXT_COLUMNS = frozenset(
    {"repeat", "fold", "test_ids_sha1", "best_params", "undefined", "fit_warnings"}
)
_MODEL_DISTRIBUTIONS = (
    "mlflow",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "scikit-survival",
    "skops",
    "sabrkit",
)
_TRUSTED_MODULE_PREFIXES = ("sabrkit.", "sksurv.", "sklearn.", "numpy.", "scipy.", "builtins.", "pandas.")


def get_or_create_experiment(client: Any, name: str, *, artifact_location: str | None = None) -> str:
    """The id of the MLflow experiment ``name``, created (with ``artifact_location``) when missing.

    Parameters
    ----------
    client : mlflow.MlflowClient
    name : str
    artifact_location : str, optional
        Where a new experiment stores artifacts (ignored when it exists).
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_location))


def mlflow_params(pipeline: BaseEstimator, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Flatten ``pipeline.get_params()`` into MLflow params.

    Estimator objects and step lists are skipped (their own parameters appear flattened as
    ``<step>__<param>``); tables passed as step parameters (ComBat batches, ICC
    perturbations) are summarised by their row count; values are stringified and cut to
    :data:`MAX_PARAM_VALUE_LENGTH` characters (the limit of older MLflow servers).
    """
    params: dict[str, str] = {}
    items = list(pipeline.get_params(deep=True).items()) + list((extra or {}).items())
    for key, value in items:
        if isinstance(value, BaseEstimator) or key == "steps" or _holds_estimators(value):
            continue
        if isinstance(value, pd.DataFrame | pd.Series):  # side data (ComBat batches, ICC perturbations)
            params[key] = f"<{type(value).__name__} with {len(value)} rows>"
            continue
        text = str(value.tolist() if isinstance(value, np.ndarray) else value)
        if len(text) > MAX_PARAM_VALUE_LENGTH:
            text = text[: MAX_PARAM_VALUE_LENGTH - 3] + "..."
        params[key] = text
    return params


def _holds_estimators(value: Any) -> bool:
    return isinstance(value, list | tuple) and any(
        isinstance(v, BaseEstimator)
        or (isinstance(v, tuple) and any(isinstance(x, BaseEstimator) for x in v))
        for v in value
    )


def final_model_coefficients(model: Pipeline) -> pd.DataFrame:
    """Features reaching the final Cox step and their coefficients (per SD after scaling).

    Returns
    -------
    pandas.DataFrame
        ``feature, coefficient, hazard_ratio, selected`` (``selected``: coefficient != 0); for a
        coxnet path the coefficients of the alpha ``predict`` uses (the last one).
    """
    model = unwrap_search(model)
    estimator = model[-1]
    coef = np.asarray(estimator.coef_, dtype=float)
    if coef.ndim == 2:
        coef = coef[:, -1]
    names = model[:-1].get_feature_names_out() if len(model) > 1 else estimator.feature_names_in_
    return pd.DataFrame(
        {
            "feature": np.asarray(names, dtype=str),
            "coefficient": coef,
            "hazard_ratio": np.exp(coef),
            "selected": coef != 0,
        }
    )


@contextmanager
def _tracking_uri_in_force(mlflow: Any, tracking_uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at ``tracking_uri`` and restore the previous setting after."""
    env_before = os.environ.get("MLFLOW_TRACKING_URI")
    uri_before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(uri_before)
        if env_before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env_before


def _trusted_types(model: BaseEstimator) -> list[str]:
    """Types skops must trust to load ``model``; refuses types outside the scientific stack."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    foreign = [t for t in untrusted if not t.startswith(_TRUSTED_MODULE_PREFIXES)]
    if foreign:
        raise ModelInputError(
            format_problem(
                f"model holds types {foreign}",
                f"logged models may only hold types from {list(_TRUSTED_MODULE_PREFIXES)}",
                "build the model from sabrkit.models.build_pipeline",
            )
        )
    return list(untrusted)


def _model_requirements() -> list[str]:
    """Pinned requirements of a logged model (skips MLflow's slow, noisy import-capture inference)."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for dist in _MODEL_DISTRIBUTIONS:
        try:
            pins.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            continue
    return pins


def persistable_model(model: Pipeline) -> Pipeline:
    """A copy of a fitted pipeline that skops can store: side tables made plain or dropped.

    ComBat's ``batches`` (a Series) becomes a plain ``{row ID: batch}`` dict, which it still
    needs to harmonise new rows; the ICC filter's ``perturbed_features`` table is dropped (the
    fitted filter keeps its ``support_``); fitted attributes held as pandas objects (the ICC
    filter's ``icc_``) are stored as plain dicts. Other pipelines are returned unchanged.
    """
    changes: dict[str, Any] = {}
    for key, value in model.get_params(deep=True).items():
        if key.endswith("__batches") and isinstance(value, pd.Series):
            changes[key] = {str(k): str(v) for k, v in value.items()}
        elif key.endswith("__perturbed_features") and isinstance(value, pd.DataFrame):
            changes[key] = None
    steps = [step for _, step in model.steps] if isinstance(model, Pipeline) else [model]
    fitted_pandas = any(
        isinstance(v, pd.Series | pd.DataFrame)
        for step in steps
        for k, v in vars(step).items()
        if k.endswith("_")
    )
    if not changes and not fitted_pandas:
        return model
    import copy

    stored = copy.deepcopy(model)
    stored.set_params(**changes)
    for step in [step for _, step in stored.steps] if isinstance(stored, Pipeline) else [stored]:
        for name, value in list(vars(step).items()):
            if name.endswith("_") and isinstance(value, pd.Series):
                setattr(step, name, {str(k): v for k, v in value.items()})
            elif name.endswith("_") and isinstance(value, pd.DataFrame):
                setattr(step, name, value.to_dict(orient="list"))
    return stored


def _row_ids_needed(model: Pipeline) -> bool:
    """Whether the model looks rows up by ID (ComBat): a synthetic input example cannot run then."""
    return any(
        key.endswith("__batches") and value is not None for key, value in model.get_params(deep=True).items()
    )


def save_final_model(model: Pipeline, path: str | Path, X: pd.DataFrame) -> Path:
    """Save a fitted pipeline in MLflow's model format (skops, trusted types only) at ``path``.

    Used for the DVC output of the ``train`` stage; the same format ``log_cv_to_mlflow`` logs,
    so ``mlflow.sklearn.load_model(path)`` loads either.
    """
    import mlflow.sklearn
    from mlflow.models import infer_signature

    signature = infer_signature(X, np.asarray(model.predict(X), dtype=float))
    model = persistable_model(model)
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=signature,
        skops_trusted_types=_trusted_types(model),
        pip_requirements=_model_requirements(),
    )
    return Path(path)


def _batched(
    mlflow_client: Any,
    run_id: str,
    metrics: list | None = None,
    params: list | None = None,
    tags: list | None = None,
) -> None:
    metrics, params, tags = metrics or [], params or [], tags or []
    for start in range(0, max(len(metrics), len(params), len(tags), 1), _BATCH):
        stop = start + _BATCH
        mlflow_client.log_batch(
            run_id, metrics=metrics[start:stop], params=params[start:stop], tags=tags[start:stop]
        )


def log_cv_to_mlflow(
    result: CVResult,
    pipeline: Pipeline,
    dataset: SurvivalDataset,
    experiment_name: str,
    tracking_uri: str,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    final_model: Pipeline | None = None,
    artifacts: Mapping[str, str | Path] | None = None,
    km_figure: Figure | None = None,
    artifact_location: str | None = None,
    metrics: Mapping[str, float] | None = None,
    figures: Mapping[str, Figure | str | Path] | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
    registered_model_name: str | None = None,
    registered_model_tags: Mapping[str, str] | None = None,
) -> str:
    """Log a :class:`CVResult` as one MLflow parent run with a nested run per fold.

    Parameters
    ----------
    result : CVResult
        From :func:`~sabrkit.models.validation.repeated_stratified_cv`.
    pipeline : Pipeline
        The unfitted pipeline that was validated; its ``get_params()`` become run params.
    dataset : SurvivalDataset
        The data it was validated on (feature list, counts; the final model is fitted on it).
    experiment_name, tracking_uri : str
        Created if missing. The URI is used as given (no defaults resolved here).
    run_name : str, optional
    tags : mapping, optional
        Extra tags of the parent run (e.g. ``{"estimator": "coxnet"}``).
    final_model : Pipeline, optional
        Fitted on all patients; if None, ``clone(pipeline)`` is fitted on ``dataset``.
    artifacts : mapping name -> path, optional
        Extra files logged under ``extra/<name>``.
    km_figure : matplotlib Figure, optional
        Logged as ``plots/km_risk_groups.png``.
    artifact_location : str, optional
        Artifact root of a newly created experiment (e.g. a folder beside a SQLite store).
    metrics : mapping, optional
        Extra parent-run metrics (comparison with the clinical model, optimism correction ...).
    figures : mapping name -> Figure or PNG path, optional
        Logged as ``plots/<name>.png`` (a path is logged under its own file name).
    tables : mapping name -> DataFrame, optional
        Logged as ``tables/<name>.csv`` (importances, profiles, screening ...).
    registered_model_name : str, optional
        Register the logged model under this name in the MLflow model registry (a new
        version per run); the version is tagged ``sabrkit.model_version``.
    registered_model_tags : mapping, optional
        Tags of the registered version (data hashes, the experiment YAML ...).

    Returns
    -------
    str
        The parent run ID. Its tag ``sabrkit.model_uri`` holds the logged model's URI.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.models import infer_signature

    from sabrkit.version import __version__

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = get_or_create_experiment(client, experiment_name, artifact_location=artifact_location)
    if final_model is None:
        final_model = clone(pipeline).fit(dataset.X, dataset.y)
    run_tags = {
        "feature_set": dataset.feature_set,
        "endpoint": dataset.endpoint,
        "n_patients": str(dataset.n_patients),
        "n_events": str(dataset.n_events),
        "validation": f"{result.settings.get('n_repeats')}x{result.settings.get('n_splits')} repeated stratified CV",
        "control": str(result.settings.get("control", "none")),
        "sabrkit_version": __version__,
        **(tags or {}),
    }
    commit = git_commit()
    if commit and "git_commit" not in run_tags:  # callers pass the researcher's project commit (run_lineage)
        run_tags["git_commit"] = commit
        run_tags["mlflow.source.git.commit"] = commit
        dirty = git_is_dirty()
        if dirty is not None:
            run_tags["git_dirty"] = str(dirty).lower()
    parent = client.create_run(experiment_id, run_name=run_name, tags=run_tags)
    parent_id = parent.info.run_id
    now = parent.info.start_time
    try:
        cv_params = {f"cv_{k}": v for k, v in result.settings.items()}
        params = mlflow_params(pipeline, extra={**cv_params, "n_features_in": dataset.X.shape[1]})
        summary = [Metric(k, float(v), now, 0) for k, v in {**result.summary, **(metrics or {})}.items()]
        _batched(client, parent_id, metrics=summary, params=[Param(k, v) for k, v in params.items()])
        for row in result.folds.itertuples(index=False):
            child = client.create_run(
                experiment_id,
                run_name=f"repeat{row.repeat:02d}-fold{row.fold}",
                tags={"mlflow.parentRunId": parent_id, "feature_set": dataset.feature_set, "kind": "cv_fold"},
            )
            fold_metrics = {k: float(v) for k, v in row._asdict().items() if k not in _FOLD_TEXT_COLUMNS}
            fold_params = [Param("repeat", str(row.repeat)), Param("fold", str(row.fold))]
            best_params = getattr(row, "best_params", "")
            if best_params:
                fold_params.append(Param("best_params", best_params[:MAX_PARAM_VALUE_LENGTH]))
            client.log_batch(
                child.info.run_id,
                metrics=[Metric(k, v, now, 0) for k, v in fold_metrics.items()],
                params=fold_params,
                tags=[RunTag("undefined", row.undefined[:5000])] if row.undefined else [],
            )
            client.set_terminated(child.info.run_id)
        _log_artifacts(client, parent_id, result, dataset, final_model, artifacts, km_figure)
        _log_figures_and_tables(client, parent_id, figures or {}, tables or {})
        signature = infer_signature(dataset.X, np.asarray(final_model.predict(dataset.X), dtype=float))
        stored = persistable_model(final_model)
        example = None if _row_ids_needed(stored) else _input_example(dataset.X)
        with _tracking_uri_in_force(mlflow, tracking_uri), mlflow.start_run(run_id=parent_id):
            info = mlflow.sklearn.log_model(
                stored,
                name="model",
                signature=signature,
                input_example=example,
                skops_trusted_types=_trusted_types(stored),
                pip_requirements=_model_requirements(),
            )
        client.set_tag(parent_id, "sabrkit.model_uri", info.model_uri)
        if registered_model_name:
            with _tracking_uri_in_force(mlflow, tracking_uri):
                version = mlflow.register_model(info.model_uri, registered_model_name).version
            client.set_tag(parent_id, "sabrkit.registered_model", registered_model_name)
            client.set_tag(parent_id, "sabrkit.model_version", str(version))
            for key, value in (registered_model_tags or {}).items():
                client.set_model_version_tag(registered_model_name, str(version), key, str(value))
    except BaseException:
        client.set_terminated(parent_id, status="FAILED")
        raise
    client.set_terminated(parent_id)
    logger.info("logged CV run %s (%d folds) to experiment %r", parent_id, len(result.folds), experiment_name)
    return parent_id


def _input_example(X: pd.DataFrame) -> pd.DataFrame:
    """One synthetic row: the median of each numeric column, the most frequent level of each text column."""
    row = {
        c: (X[c].median() if pd.api.types.is_numeric_dtype(X[c]) else X[c].mode(dropna=True).iloc[0])
        for c in X
    }
    return pd.DataFrame([row], columns=list(X.columns))


def _log_figures_and_tables(
    client: Any, run_id: str, figures: Mapping[str, Figure | str | Path], tables: Mapping[str, pd.DataFrame]
) -> None:
    with tempfile.TemporaryDirectory(prefix="sabrkit-mlflow-") as tmp:
        folder = Path(tmp)
        for name, figure in figures.items():
            if isinstance(figure, str | Path):  # already rendered: log the PNG file as it is
                client.log_artifact(run_id, str(figure), artifact_path="plots")
                continue
            figure.savefig(folder / f"{name}.png", dpi=110, bbox_inches="tight")
            client.log_artifact(run_id, str(folder / f"{name}.png"), artifact_path="plots")
        for name, table in tables.items():
            table.to_csv(folder / f"{name}.csv", index=False)
            client.log_artifact(run_id, str(folder / f"{name}.csv"), artifact_path="tables")


def _log_artifacts(
    client: Any,
    run_id: str,
    result: CVResult,
    dataset: SurvivalDataset,
    final_model: Pipeline,
    artifacts: Mapping[str, str | Path] | None,
    km_figure: Figure | None,
) -> None:
    with tempfile.TemporaryDirectory(prefix="sabrkit-mlflow-") as tmp:
        folder = Path(tmp)
        feature_list = {
            "feature_set": dataset.feature_set,
            "n_features": len(dataset.feature_names),
            "features": list(dataset.feature_names),
        }
        (folder / "features.json").write_text(json.dumps(feature_list, indent=1), encoding="utf-8")
        client.log_artifact(run_id, str(folder / "features.json"), artifact_path="features")
        try:
            coefficients = final_model_coefficients(final_model)
        except (AttributeError, ValueError) as exc:
            logger.warning("final model coefficients not logged: %s", exc)
        else:
            coefficients.to_csv(folder / "final_model_coefficients.csv", index=False)
            client.log_artifact(
                run_id, str(folder / "final_model_coefficients.csv"), artifact_path="model_summary"
            )
        result.folds.to_csv(folder / "cv_folds.csv", index=False)
        result.oof.to_csv(folder / "oof_predictions.csv", index=False)
        client.log_artifact(run_id, str(folder / "cv_folds.csv"), artifact_path="validation")
        client.log_artifact(run_id, str(folder / "oof_predictions.csv"), artifact_path="validation")
        if km_figure is not None:
            km_figure.savefig(folder / "km_risk_groups.png", dpi=120)
            client.log_artifact(run_id, str(folder / "km_risk_groups.png"), artifact_path="plots")
    for name, path in (artifacts or {}).items():
        client.log_artifact(run_id, str(path), artifact_path=f"extra/{name}")
