"""Run one experiment: validate a pipeline spec, compare it with the clinical model, explain it, log it.

:func:`run_experiment` is the only way an experiment file becomes numbers. It takes an
:class:`~sabrkit.models.spec.ExperimentSpec` (never a fitted model or a column list) and the
input tables, then:

1. assembles the data set of the spec's feature set, and the clinical-only data set on the
   *same* patients (consented only);
2. runs repeated stratified (grouped, for lesions) K-fold CV of the pipeline - nested grid
   search inside each outer training fold when ``tuning`` is set - and of the clinical
   reference model on the same folds, and pairs them fold by fold;
3. optionally corrects the apparent C for optimism (Harrell's bootstrap);
4. inference (:mod:`sabrkit.models.experiment_inference`): a permutation test of the whole
   CV procedure on permuted outcomes, bootstrap intervals of the CV C and delta-C (whole CV re-run
   per bootstrap cohort), ICI/E50/E90 calibration at 12 and 24 months;
5. characterises the patients who do best: KM of the pooled out-of-fold risk groups,
   permutation importance per repeat, the low-risk profile, the
   hazard ratio of the risk groups by therapy class, univariate screening with FDR;
6. fits the final model on all patients, with its risk-group cut-off (median risk of the
   training patients), and logs everything to MLflow (parent run, a child run
   per fold, metrics, lineage tags, artifacts, the model with its signature, registered).

Outputs written to ``out_dir`` (when given): ``metrics.json``, ``folds.csv``,
``reference_folds.csv``, ``comparison.csv``, ``repeats.csv``, ``oof.csv``, ``profile.csv``,
``therapy.csv``, ``importance.csv``, ``screening.csv``, ``plots/*.png``, ``report.html`` and
``model/`` (MLflow model format).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from sabrkit.models.assembly import assemble_dataset, assemble_lesion_dataset
from sabrkit.models.comparison import PairedComparison, paired_cv_comparison
from sabrkit.models.dataset import SurvivalDataset
from sabrkit.models.estimators import unwrap_search
from sabrkit.models.experiment_io import ExperimentInputs, write_json
from sabrkit.models.spec import ExperimentSpec
from sabrkit.models.validation import CVResult, repeated_stratified_cv

__all__ = [
    "ExperimentResult",
    "assemble_experiment_data",
    "run_experiment",
    "run_experiment_file",
    "experiment_paths",
]

logger = logging.getLogger(__name__)

_REFERENCE_KEYS = ("harrell_c", "uno_c", "auc_12", "auc_24", "ibs", "ibs_km", "calibration_error_24")


@dataclass(frozen=True)
class ExperimentResult:
    """Everything one experiment produced (``metrics`` is the content of ``metrics.json``)."""

    spec: ExperimentSpec
    metrics: dict[str, Any]
    dataset: SurvivalDataset
    cv: CVResult
    reference_cv: CVResult | None
    comparison: PairedComparison | None
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Any]
    final_model: Any
    run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def assemble_experiment_data(
    spec: ExperimentSpec, inputs: ExperimentInputs
) -> tuple[SurvivalDataset, SurvivalDataset | None, SurvivalDataset]:
    """``(model data, clinical reference data or None, descriptive data)`` on the same patients.

    The descriptive data set holds every block the inputs provide (for the profile and the
    screening), restricted to the model's rows.
    """
    if spec.data is None:
        from sabrkit.errors import ConfigError, format_problem

        raise ConfigError(
            format_problem(
                f"experiment {spec.name!r} has no data: section",
                "registry experiments name data: {feature_set, endpoint}",
                "use assemble_table_data for a table: experiment",
            )
        )
    if inputs.dataset is not None:  # assembled already (`sabrkit models validate`): used as it is
        assembled = inputs.dataset
        reference = (
            spec.clinical_reference.comparator_data(assembled.select("clinical"))
            if spec.compares_with_reference and "clinical" in assembled.blocks
            else None
        )
        model_data = (
            assembled
            if spec.data.feature_set == assembled.feature_set
            else assembled.select(spec.data.feature_set)
        )
        return model_data, reference, assembled
    blocks = spec.data.feature_set.split("+")
    reference_set = spec.clinical_reference.feature_set
    needed = sorted(set(blocks) | (set(reference_set.split("+")) if spec.compares_with_reference else set()))
    available = [
        b
        for b, table in (
            ("clinical", inputs.clinical),
            ("radiomic", inputs.patient_features),
            ("deep", inputs.deep_features),
            ("biomarker", inputs.biomarkers),
            *inputs.patient_blocks.items(),
        )
        if table is not None
    ]
    endpoint = spec.data.endpoint
    if spec.data.unit == "lesion":

        def build(feature_set: str) -> SurvivalDataset:
            return assemble_lesion_dataset(
                inputs.lesion_features,
                inputs.lesion_outcomes,
                inputs.clinical,
                feature_set,
                lesion_blocks=inputs.lesion_blocks,
                consented=inputs.consented,
            )

        available = [
            b
            for b in ("clinical", "radiomic")
            if (b == "clinical" and inputs.clinical is not None)
            or (b == "radiomic" and inputs.lesion_features is not None)
        ] + list(inputs.lesion_blocks)
    else:

        def build(feature_set: str) -> SurvivalDataset:
            return assemble_dataset(
                inputs.patient_features,
                inputs.endpoints,
                inputs.clinical,
                feature_set,
                endpoint,  # type: ignore[arg-type]  # the spec keeps local_control to unit: lesion
                deep_features=inputs.deep_features,
                biomarkers=inputs.biomarkers,
                patient_blocks=inputs.patient_blocks,
                consented=inputs.consented,
            )

    working = build("+".join(needed))
    _check_events_per_fold(working, spec.validation.n_splits)
    model_data = working.select(spec.data.feature_set)
    reference = (
        spec.clinical_reference.comparator_data(working.select(reference_set))
        if spec.compares_with_reference
        else None
    )
    descriptive = build("+".join(available)) if set(available) != set(needed) else working
    common = [i for i in working.row_ids if i in set(descriptive.row_ids)]
    return model_data, reference, descriptive.subset(common)


def _check_events_per_fold(data: SurvivalDataset, n_splits: int) -> None:
    """Lesion data: grouped folds need events to spread (local failures are rare and cluster in patients)."""
    if data.unit != "lesion" or data.n_events >= 2 * n_splits:
        return
    from sabrkit.errors import ModelInputError, format_problem

    raise ModelInputError(
        format_problem(
            f"{data.n_events} local failure(s) among {len(data.y)} lesions of {data.n_patients} patients",
            f"a lesion-level CV with {n_splits} folds grouped by patient needs at least {2 * n_splits} events "
            "(two per fold), else training folds without an event stop the fit",
            "use fewer folds (validation.n_splits) or a larger cohort",
        )
    )


def assemble_table_data(spec: ExperimentSpec, inputs: ExperimentInputs) -> Any:
    """The :class:`~sabrkit.models.one_table.TableData` of a ``table:`` experiment."""
    from sabrkit.errors import ConfigError, format_problem
    from sabrkit.models.one_table import table_datasets

    if spec.table is None or inputs.table is None:
        raise ConfigError(
            format_problem(
                "a table experiment without its table",
                "inputs.table is read from table.path",
                "read the inputs with read_experiment_inputs",
            )
        )
    return table_datasets(inputs.table, spec.table)


def _cv(
    pipeline: Any, dataset: SurvivalDataset, spec: ExperimentSpec, importance: int, n_jobs: int | None
) -> CVResult:
    v = spec.validation
    return repeated_stratified_cv(
        pipeline,
        dataset,
        n_splits=v.n_splits,
        n_repeats=v.n_repeats,
        random_state=v.random_state,
        tau_months=v.tau_months,
        strata=v.strata,
        n_jobs=n_jobs,
        importance_repeats=importance,
        auc_times=v.auc_times,
    )


def _pooled_survival(oof: pd.DataFrame, dataset: SurvivalDataset) -> pd.DataFrame:
    id_column = "lesion_id" if dataset.unit == "lesion" else "study_id"
    mean = oof.groupby(id_column)["surv_24"].mean().reindex(dataset.row_ids)
    return pd.DataFrame({"surv_24": mean.to_numpy(), "time": dataset.y["time"], "event": dataset.y["event"]})


def run_experiment(
    spec: ExperimentSpec,
    inputs: ExperimentInputs,
    *,
    tracking_uri: str | None = None,
    out_dir: str | Path | None = None,
    artifact_location: str | None = None,
    n_jobs: int | None = None,
    experiment_file: str | Path | None = None,
    project: str | Path | None = None,
    register: bool | None = None,
) -> ExperimentResult:
    """Run ``spec`` on ``inputs`` (see the module docstring).

    Parameters
    ----------
    spec : ExperimentSpec
    inputs : ExperimentInputs
    tracking_uri : str, optional
        MLflow tracking URI; None skips MLflow.
    out_dir : path, optional
        Folder for the outputs (replaced files, created if missing); None writes nothing.
    artifact_location : str, optional
        Artifact root of a newly created MLflow experiment.
    n_jobs : int, optional
        Folds in parallel.
    experiment_file : path, optional
        The YAML file, logged as an artifact.
    project : path, optional
        The researcher's project folder, whose git commit is recorded (default: the working
        directory; :func:`sabrkit.models.run_lineage.experiment_lineage`).
    register : bool, optional
        Register the final model in the MLflow model registry (never when
        ``tracking.register_model`` is false); None follows ``tracking.register_model``. Entry points decide: ``sabrkit train`` only with
        ``--register``, the DVC stage only on a clean commit outside ``dvc exp run``.
    """
    from sabrkit.models import plots
    from sabrkit.models.experiment_inference import (
        INTERVAL_NOTE,
        experiment_inference,
        pooled_calibration_indices,
    )
    from sabrkit.models.horizon_metrics import oob_concordance, with_oob_score
    from sabrkit.models.importance import importance_ranks, shap_status
    from sabrkit.models.lineage import feature_table_md5
    from sabrkit.models.metrics import calibration_at, calibration_summary
    from sabrkit.models.one_table import check_horizons, with_encoder
    from sabrkit.models.optimism import bootstrap_optimism
    from sabrkit.models.profile import PROGNOSTIC_NOTE, low_risk_profile, risk_by_therapy
    from sabrkit.models.risk_groups import km_by_risk_group, plot_km_risk_groups, pooled_risk_groups
    from sabrkit.models.run_lineage import experiment_lineage
    from sabrkit.models.screening import univariate_cox_screen
    from sabrkit.models.table_spec import COVARIATES_BLOCK, MONTHS_PER

    v, a = spec.validation, spec.analysis
    pipeline = spec.model.build(random_state=v.random_state, side_data=inputs.side_data)
    reference_pipeline = spec.clinical_reference.build() if spec.compares_with_reference else None
    time_unit, categorical = "months", ()
    if spec.table is not None:
        table_data = assemble_table_data(spec, inputs)
        data, reference_data, descriptive = table_data.model, table_data.comparator, table_data.descriptive
        time_unit, categorical = spec.table.time_unit, table_data.categorical
        pipeline = with_encoder(pipeline, [c for c in categorical if c in data.feature_names])
        if reference_data is not None:
            reference_pipeline = with_encoder(
                reference_pipeline, [c for c in categorical if c in reference_data.feature_names]
            )
    else:
        data, reference_data, descriptive = assemble_experiment_data(spec, inputs)
    if reference_data is not None and reference_data.X.shape[1] == 0:
        from sabrkit.errors import ModelInputError, format_problem

        raise ModelInputError(
            format_problem(
                f"the {'comparator' if spec.table is not None else 'clinical reference'} model of {spec.name!r} "
                "has no columns",
                "a reference model needs at least one covariate",
                "name covariates (table.comparator / inputs.clinical), or set table.comparator: null / "
                "inputs.clinical: null for no reference model",
            )
        )
    check_horizons(
        data.y,
        {
            "validation.tau_months": v.tau_months,
            **{f"validation.auc_times ({t:g})": float(t) for t in v.auc_times},
        },
        time_unit,
        MONTHS_PER[time_unit],
    )
    logger.info(
        "experiment %s: %s on %s (%d rows, %d events)",
        spec.name,
        spec.model.estimator,
        data.feature_set,
        len(data.y),
        data.n_events,
    )
    cv = _cv(pipeline, data, spec, a.importance_repeats, n_jobs)
    reference_cv = comparison = None
    reference_label = "comparator" if spec.table is not None else spec.clinical_reference.feature_set
    if reference_data is not None:
        reference_cv = _cv(reference_pipeline, reference_data, spec, 0, n_jobs)
        comparison = paired_cv_comparison(
            cv, reference_cv, f"{reference_label} {spec.clinical_reference.estimator}"
        )
    optimism = None
    if v.bootstrap_optimism:
        optimism = bootstrap_optimism(
            pipeline, data, np.random.default_rng(v.random_state), v.bootstrap_optimism, v.tau_months
        )

    inference = experiment_inference(
        spec,
        pipeline,
        data,
        cv,
        None
        if reference_data is None or reference_cv is None
        else (reference_pipeline, reference_data, reference_cv),
        n_jobs,
    )
    km = km_by_risk_group(
        cv.oof, data.outcome_table(), repeat="pooled", endpoint=data.endpoint, tau_months=v.tau_months
    )
    groups = pooled_risk_groups(cv.oof)
    tables: dict[str, pd.DataFrame] = {
        "folds": cv.folds,
        "repeats": cv.repeats,
        "oof": cv.oof,
        "risk_groups": km.groups.reset_index(),
        **inference.tables,
    }
    figures: dict[str, Any] = {}
    tables["profile"] = low_risk_profile(descriptive, groups.reindex(descriptive.row_ids))
    therapy = a.therapy_column
    if (
        therapy is not None
        and spec.table is not None
        and (descriptive.characteristics is None or therapy not in descriptive.characteristics.columns)
    ):
        therapy = None  # a table experiment names its own columns: no forest plot unless it has this one
    if therapy is not None:
        try:
            tables["therapy"] = risk_by_therapy(data, groups, therapy)
            figures["therapy_forest"] = plots.plot_therapy_forest(
                tables["therapy"], data.endpoint, PROGNOSTIC_NOTE
            )
        except Exception as exc:
            logger.warning("risk by therapy class not computed: %s", exc)
    screened = [
        b for b in ("biomarker", "radiomic", "dvh", "dosiomic", "delta", "deep") if b in descriptive.blocks
    ]
    if spec.table is not None:  # the table's own blocks (numeric by construction), not its covariates
        screened = [b for b in descriptive.blocks if b != COVARIATES_BLOCK]
    if a.screening and screened:
        tables["screening"] = univariate_cox_screen(descriptive, screened, a.screening_fdr)
        figures["volcano"] = plots.plot_volcano(tables["screening"], a.screening_fdr)
    if cv.importance is not None:
        tables["importance"] = importance_ranks(cv.importance)
        figures["importance"] = plots.plot_importance(tables["importance"])
    pooled = _pooled_survival(cv.oof, data)
    competing = _competing_risk(inputs, data, cv, groups, 24.0)
    if competing is not None:
        tables["competing_risk"] = competing
    calibration = None
    if pooled["surv_24"].notna().all():
        calibration = calibration_at(
            pooled["surv_24"].to_numpy(), pooled["time"].to_numpy(), pooled["event"].to_numpy()
        )
        tables["calibration_24"] = calibration
        figures["calibration_24"] = plots.plot_calibration(calibration)
    if reference_cv is not None and comparison is not None:  # both or neither (compares_with_reference)
        tables["reference_folds"] = reference_cv.folds
        tables["comparison"] = comparison.folds
    if a.decision_curve:
        _decision_curve(tables, figures, pooled, reference_cv, reference_data)
    km_figure = plot_km_risk_groups(km, title=f"{spec.name}: out-of-fold risk groups (pooled repeats)")
    final_model = with_oob_score(clone(pipeline)).fit(data.X, data.y)
    oob_c = oob_concordance(final_model)
    best_params = getattr(final_model, "best_params_", None)
    final_model = unwrap_search(final_model)  # tuned: the refitted best pipeline
    risk_cutoff = float(np.median(np.asarray(final_model.predict(data.X), dtype=float)))

    lineage: dict[str, Any] = {
        **experiment_lineage(project, inputs.input_paths, time_unit),
        "consent": data.consent,
        **_consent_lineage(inputs),
    }
    if inputs.feature_table_path is not None:
        table_hash = feature_table_md5(inputs.feature_table_path)
        lineage.update(
            feature_table=str(inputs.feature_table_path),
            feature_table_md5=table_hash.md5,
            feature_table_md5_source=table_hash.source,
        )
    summary = {**cv.summary, **inference.summary_ci}
    metrics: dict[str, Any] = {
        "experiment": spec.name,
        "description": spec.description,
        "estimator": spec.model.estimator,
        "feature_set": data.feature_set,
        "endpoint": data.endpoint,
        "unit": data.unit,
        "n_patients": data.n_patients,
        "n_rows": len(data.y),
        "n_events": data.n_events,
        "n_features": len(data.feature_names),
        "tuned": spec.model.tuning is not None,
        "final_model_best_params": best_params,
        "final_model_oob_c": oob_c,
        "time_unit": time_unit,
        "validation": cv.settings,
        "summary": summary,
        "clinical_reference": None
        if reference_cv is None
        else {
            "estimator": spec.clinical_reference.estimator,
            "feature_set": spec.clinical_reference.feature_set if spec.table is None else "comparator",
            "covariates": list(reference_data.feature_names) if reference_data is not None else None,
            "summary": {
                f"{m}_{s}": reference_cv.summary.get(f"{m}_{s}")
                for m in _REFERENCE_KEYS
                for s in ("mean", "sd")
            },
        },
        "comparison": None if comparison is None else {**comparison.summary, **inference.comparison_ci},
        "interval_note": INTERVAL_NOTE,
        "optimism": optimism,
        "calibration_pooled": None
        if calibration is None
        else {**calibration_summary(calibration), **pooled_calibration_indices(cv.oof, data)},
        "risk_groups": {
            "logrank_statistic": km.logrank_statistic,
            "logrank_p": km.logrank_p_value,
            "logrank_p_note": "two-sided log-rank of the pooled out-of-fold groups: descriptive only "
            "(CV makes the groups dependent); use permutation_p",
            **inference.permutation,
            "final_model_risk_cutoff": risk_cutoff,
            "groups": km.groups.reset_index().to_dict("records"),
        },
        "importance": {
            "method": "permutation (held-out folds)" if cv.importance is not None else "none",
            "shap": shap_status(),
            "top": []
            if cv.importance is None
            else tables["importance"].groupby("feature")["rank"].median().nsmallest(10).index.tolist(),
        },
        "lineage": lineage,
        "note": PROGNOSTIC_NOTE,
    }
    if competing is not None:
        metrics["competing_risk"] = {
            "note": COMPETING_NOTE,
            "horizon_months": 24.0,
            "groups": competing.to_dict("records"),
        }
    if "decision_curve" in tables:
        from sabrkit.models.horizon_metrics import decision_curve_summary

        metrics["decision_curve"] = decision_curve_summary(tables["decision_curve"], _DCA_MONTHS)
    if register is None:
        register = spec.tracking.register_model
    registered_name = (
        spec.registered_model_name if register else None
    )  # None when tracking.register_model is off
    figures["km_risk_groups"] = km_figure
    with tempfile.TemporaryDirectory(prefix="sabrkit-experiment-") as tmp:
        plots_dir = Path(out_dir) / "plots" if out_dir is not None else Path(tmp)
        figure_files = _render(figures, plots_dir)
        run_id = None
        if tracking_uri is not None:
            run_id = _log(
                spec,
                cv,
                pipeline,
                data,
                tracking_uri,
                final_model,
                figure_files,
                tables,
                metrics,
                artifact_location,
                experiment_file,
                registered_name,
            )
            metrics["mlflow"] = {
                "run_id": run_id,
                "experiment_name": spec.tracking.experiment_name,
                "tracking_uri": tracking_uri,
                "registered_model": registered_name,
            }
        result = ExperimentResult(
            spec,
            metrics,
            data,
            cv,
            reference_cv,
            comparison,
            tables,
            figures,
            final_model,
            run_id,
            extra={"risk_cutoff": risk_cutoff},
        )
        if out_dir is not None:
            _write_outputs(result, Path(out_dir), figure_files)
    return result


COMPETING_NOTE = (
    "local control: the model is fitted to the cause-specific hazard of local failure (a death before "
    "local failure is censored); the observed incidence of local failure by risk group is the "
    "Aalen-Johansen cumulative incidence with death as the competing event, beside 1 - KM (deaths "
    "censored) and the mean out-of-fold predicted cause-specific risk"
)


def _competing_risk(
    inputs: ExperimentInputs, data: SurvivalDataset, cv: CVResult, groups: pd.Series, horizon: float
) -> pd.DataFrame | None:
    """Aalen-Johansen incidence by risk group for lesion-level data whose outcomes mark competing deaths."""
    outcomes = inputs.lesion_outcomes
    if data.unit != "lesion" or outcomes is None or "competing_death" not in outcomes.columns:
        return None
    from sabrkit.models.competing import cif_by_risk_group

    survival = cv.oof.groupby("lesion_id")["surv_24"].mean() if "surv_24" in cv.oof.columns else None
    return cif_by_risk_group(groups.reindex(data.row_ids), outcomes, survival, horizon)


def _consent_lineage(inputs: ExperimentInputs) -> dict[str, Any]:
    """SHA-256 of the consent snapshot and the patients of the endpoints table it excludes."""
    from sabrkit.models.assembly import consented_ids
    from sabrkit.models.consent_snapshot import snapshot_sha256

    if inputs.consented is None:
        return {"consent_snapshot_sha256": None, "n_excluded_no_consent": None}
    snapshot = inputs.consented
    if not isinstance(snapshot, pd.DataFrame):
        snapshot = pd.DataFrame({"study_id": sorted(map(str, snapshot)), "consented": True})
    allowed = consented_ids(inputs.consented)
    endpoints = inputs.endpoints
    if endpoints is None:  # a one-table experiment: its consent filter ran in assemble_table_data
        return {"consent_snapshot_sha256": snapshot_sha256(snapshot), "n_excluded_no_consent": None}
    excluded = sum(1 for s in set(endpoints["study_id"].astype(str)) if s not in allowed)
    return {"consent_snapshot_sha256": snapshot_sha256(snapshot), "n_excluded_no_consent": excluded}


def _flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    flat: dict[str, float] = {}
    for section, prefix in (("comparison", ""), ("optimism", "optimism_"), ("calibration_pooled", "pooled_")):
        for key, value in (metrics.get(section) or {}).items():
            flat[f"{prefix}{key}"] = float(value) if value is not None else float("nan")
    for key, value in metrics["summary"].items():
        if "_ci_" in key:
            flat[key] = float(value)
    for key, value in ((metrics.get("clinical_reference") or {}).get("summary") or {}).items():
        flat[f"clinical_{key}"] = float(value) if value is not None else float("nan")
    if metrics.get("final_model_oob_c") is not None:
        flat["final_model_oob_c"] = float(metrics["final_model_oob_c"])
    groups = metrics["risk_groups"]
    flat.update(km_logrank_p=groups["logrank_p"], risk_cutoff=groups["final_model_risk_cutoff"])
    if metrics["lineage"].get("n_excluded_no_consent") is not None:
        flat["n_excluded_no_consent"] = float(metrics["lineage"]["n_excluded_no_consent"])
    if "permutation_p" in groups:
        flat.update(permutation_p=groups["permutation_p"], permutation_p_uno_c=groups["permutation_p_uno_c"])
    return flat


def _render(figures: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Save every figure once as ``<folder>/<name>.png`` (reused by MLflow and the report)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, figure in figures.items():
        files[name] = folder / f"{name}.png"
        figure.savefig(files[name], dpi=110, bbox_inches="tight")
    return files


def _log(
    spec: ExperimentSpec,
    cv: CVResult,
    pipeline: Any,
    data: SurvivalDataset,
    tracking_uri: str,
    final_model: Any,
    figures: dict[str, Path],
    tables: dict[str, pd.DataFrame],
    metrics: dict[str, Any],
    artifact_location: str | None,
    experiment_file: str | Path | None,
    registered_name: str | None = None,
) -> str:
    from sabrkit.models.tracking import log_cv_to_mlflow

    lineage = metrics["lineage"]
    tags = {
        "sabrkit.kind": "experiment",
        "experiment": spec.name,
        "estimator": spec.model.estimator,
        "unit": data.unit,
        "consent": str(data.consent),
        "shap": metrics["importance"]["shap"],
        "consent_snapshot_sha256": str(lineage.get("consent_snapshot_sha256")),
        "tuned": str(spec.model.tuning is not None).lower(),
        "clinical_reference": spec.clinical_reference.estimator if spec.compares_with_reference else "itself",
    }
    if "feature_table_md5" in lineage:
        tags.update(
            dvc_md5_feature_table=lineage["feature_table_md5"],
            dvc_md5_source=lineage["feature_table_md5_source"],
        )
    tags.update(_lineage_tags(lineage))
    logged_tables = {k: t for k, t in tables.items() if k not in ("oof", "folds")}
    return log_cv_to_mlflow(
        cv,
        pipeline,
        data,
        experiment_name=spec.tracking.experiment_name,
        tracking_uri=tracking_uri,
        run_name=spec.name,
        tags=tags,
        final_model=final_model,
        artifact_location=artifact_location,
        metrics=_flat_metrics(metrics),
        figures=figures,
        tables=logged_tables,
        artifacts=None if experiment_file is None else {"experiment": experiment_file},
        registered_model_name=registered_name,
        registered_model_tags=_version_tags(spec, lineage, experiment_file) if registered_name else None,
    )


def _lineage_tags(lineage: dict[str, Any]) -> dict[str, str]:
    """Run tags of the lineage record (:mod:`sabrkit.models.run_lineage`)."""
    tags = {f"input_md5.{name}": md5 for name, md5 in lineage.get("input_md5", {}).items()}
    tags["time_unit"] = str(lineage.get("time_unit", "months"))
    tags["sabrkit_version"] = str(lineage.get("sabrkit_version"))
    if lineage.get("sabrkit_git_commit"):
        tags["sabrkit_git_commit"] = str(lineage["sabrkit_git_commit"])
    if lineage.get("git_commit"):
        tags["git_commit"] = tags["mlflow.source.git.commit"] = str(lineage["git_commit"])
    if lineage.get("git_dirty") is not None:
        tags["git_dirty"] = str(lineage["git_dirty"]).lower()
    experiment = lineage.get("dvc_experiment")
    if experiment:
        tags["dvc_experiment"] = experiment["name"]
        tags["dvc_experiment_baseline"] = experiment.get("baseline_rev", "")
    return tags


def _version_tags(
    spec: ExperimentSpec, lineage: dict[str, Any], experiment_file: str | Path | None
) -> dict[str, str]:
    """Tags of a registered model version: the data hashes and the experiment YAML."""
    import yaml

    tags = {k: v for k, v in _lineage_tags(lineage).items() if not k.startswith("mlflow.")}
    text = (
        Path(experiment_file).read_text(encoding="utf-8")
        if experiment_file is not None
        else yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False)
    )
    tags["experiment_yaml"] = text[:5000]
    return tags


_DCA_MONTHS = 24.0


def _decision_curve(
    tables: dict[str, pd.DataFrame],
    figures: dict[str, Any],
    pooled: pd.DataFrame,
    reference_cv: CVResult | None,
    reference_data: SurvivalDataset | None,
) -> None:
    """Decision curve at 24 months of the pooled out-of-fold risk (and the comparator's), when defined."""
    from sabrkit.models.horizon_metrics import decision_curve
    from sabrkit.models.plots import plot_decision_curve

    if not pooled["surv_24"].notna().all() or pooled["time"].max() <= _DCA_MONTHS:
        logger.info(
            "decision curve skipped: no 24-month survival predictions or follow-up ends before 24 months"
        )
        return
    models = {}
    if reference_cv is not None and reference_data is not None:
        other = _pooled_survival(reference_cv.oof, reference_data)
        if other["surv_24"].notna().all():
            models["comparator"] = 1.0 - other["surv_24"].to_numpy()
    tables["decision_curve"] = decision_curve(
        1.0 - pooled["surv_24"].to_numpy(),
        pooled["time"].to_numpy(),
        pooled["event"].to_numpy(),
        _DCA_MONTHS,
        models=models,
    )
    figures["decision_curve"] = plot_decision_curve(tables["decision_curve"], _DCA_MONTHS)


def _write_outputs(result: ExperimentResult, out_dir: Path, figure_files: dict[str, Path]) -> None:
    from sabrkit.models.io import save_risk_cutoff
    from sabrkit.models.report import render_experiment_report
    from sabrkit.models.tracking import save_final_model

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in result.tables.items():
        table.to_csv(out_dir / f"{name}.csv", index=False)
    model_dir = out_dir / "model"
    if model_dir.exists():
        import shutil

        shutil.rmtree(model_dir)
    save_final_model(result.final_model, model_dir, result.dataset.X)
    save_risk_cutoff(model_dir, result.extra["risk_cutoff"], result.dataset)
    (out_dir / "report.html").write_text(render_experiment_report(result, figure_files), encoding="utf-8")
    write_json(result.metrics, out_dir / "metrics.json")


def experiment_paths(project: str | Path, name: str) -> dict[str, Path]:
    """Where an experiment's outputs go in a project: ``out_dir`` and the DVC ``metrics`` file."""
    project = Path(project)
    return {
        "out_dir": project / "models" / "experiments" / name,
        "metrics": project / "metrics" / "experiments" / f"{name}.json",
    }


def run_experiment_file(
    path: str | Path,
    project: str | Path,
    *,
    tracking_uri: str | None,
    artifact_location: str | None = None,
    n_jobs: int | None = None,
    register: bool | None = None,
    metrics_path: str | Path | None = None,
) -> ExperimentResult:
    """Load ``experiments/<name>.yaml``, read its inputs under ``project``, run it, write its outputs.

    ``register`` as for :func:`run_experiment`; ``project``'s git commit is the run's ``git_commit``.

    Outputs: ``<project>/models/experiments/<name>/`` (see :func:`run_experiment`) and the
    metrics document again as ``<project>/metrics/experiments/<name>.json`` (DVC metrics), or at
    ``metrics_path``.
    """
    from sabrkit.models.experiment_io import read_experiment_inputs
    from sabrkit.models.spec import load_experiment

    spec = load_experiment(path)
    inputs = read_experiment_inputs(spec, project)
    paths = experiment_paths(project, spec.name)
    result = run_experiment(
        spec,
        inputs,
        tracking_uri=tracking_uri,
        out_dir=paths["out_dir"],
        artifact_location=artifact_location,
        n_jobs=n_jobs,
        experiment_file=path,
        project=project,
        register=register,
    )
    write_json(result.metrics, paths["metrics"] if metrics_path is None else metrics_path)
    return result
