"""Survival models of the SABR registry: data sets, pipelines, validation, MLflow, risk groups."""

from sabrkit.models.dataset import (
    CLINICAL_CATEGORIES,
    CLINICAL_NUMERIC,
    FEATURE_SETS,
    SurvivalDataset,
    assemble_dataset,
    encode_clinical,
    make_dataset,
)
from sabrkit.models.estimators import available_estimators, build_pipeline, register_estimator
from sabrkit.models.risk_groups import RiskGroupSurvival, km_by_risk_group, plot_km_risk_groups
from sabrkit.models.selection import (
    CorrelationFilter,
    UnivariateSurvivalSelector,
    concordance_per_feature,
    cox_score_z_per_feature,
)
from sabrkit.models.simulation import simulate_feature_cohort
from sabrkit.models.tracking import log_cv_to_mlflow, mlflow_params
from sabrkit.models.validation import (
    CVResult,
    FoldEvaluation,
    evaluate_fold,
    fold_concordance,
    permuted_control,
    repeated_stratified_cv,
)

__all__ = [
    "CLINICAL_CATEGORIES",
    "CLINICAL_NUMERIC",
    "FEATURE_SETS",
    "SurvivalDataset",
    "assemble_dataset",
    "encode_clinical",
    "make_dataset",
    "available_estimators",
    "build_pipeline",
    "register_estimator",
    "RiskGroupSurvival",
    "km_by_risk_group",
    "plot_km_risk_groups",
    "CorrelationFilter",
    "UnivariateSurvivalSelector",
    "concordance_per_feature",
    "cox_score_z_per_feature",
    "simulate_feature_cohort",
    "log_cv_to_mlflow",
    "mlflow_params",
    "CVResult",
    "FoldEvaluation",
    "evaluate_fold",
    "fold_concordance",
    "permuted_control",
    "repeated_stratified_cv",
]
