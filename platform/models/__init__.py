"""Survival models of the SABR registry: data sets, pipelines, validation, MLflow, risk groups."""

from sabrkit.models.assembly import assemble_dataset, assemble_lesion_dataset, consented_ids
from sabrkit.models.clinical_encoding import CLINICAL_CATEGORIES, CLINICAL_NUMERIC, encode_clinical
from sabrkit.models.comparison import PairedComparison, paired_cv_comparison
from sabrkit.models.dataset import (
    FEATURE_BLOCKS,
    FEATURE_SETS,
    SurvivalDataset,
    make_dataset,
    parse_feature_set,
)
from sabrkit.models.estimators import available_estimators, build_pipeline, register_estimator
from sabrkit.models.experiment import ExperimentResult, run_experiment
from sabrkit.models.experiment_io import ExperimentInputs, read_experiment_inputs
from sabrkit.models.experiment_table import experiment_table, experiment_table_from_mlflow
from sabrkit.models.horizon import FixedHorizonClassifier
from sabrkit.models.optimism import bootstrap_optimism
from sabrkit.models.profile import PROGNOSTIC_NOTE, low_risk_profile, risk_by_therapy
from sabrkit.models.risk_groups import (
    RiskGroupSurvival,
    km_by_risk_group,
    logrank_permutation_test,
    plot_km_risk_groups,
    pooled_risk_groups,
)
from sabrkit.models.screening import univariate_cox_screen
from sabrkit.models.selection import (
    CorrelationFilter,
    MRMRSurvivalSelector,
    UnivariateSurvivalSelector,
    concordance_per_feature,
    cox_score_z_per_feature,
)
from sabrkit.models.simulation import simulate_feature_cohort
from sabrkit.models.spec import ExperimentSpec, load_experiment
from sabrkit.models.steps import available_steps, register_step
from sabrkit.models.tracking import log_cv_to_mlflow, mlflow_params
from sabrkit.models.tuning import EventStratifiedKFold, tuned_pipeline
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
    "FEATURE_BLOCKS",
    "FEATURE_SETS",
    "PROGNOSTIC_NOTE",
    "SurvivalDataset",
    "assemble_dataset",
    "assemble_lesion_dataset",
    "consented_ids",
    "encode_clinical",
    "make_dataset",
    "parse_feature_set",
    "available_estimators",
    "build_pipeline",
    "register_estimator",
    "available_steps",
    "register_step",
    "FixedHorizonClassifier",
    "EventStratifiedKFold",
    "tuned_pipeline",
    "RiskGroupSurvival",
    "km_by_risk_group",
    "logrank_permutation_test",
    "plot_km_risk_groups",
    "pooled_risk_groups",
    "low_risk_profile",
    "risk_by_therapy",
    "univariate_cox_screen",
    "CorrelationFilter",
    "MRMRSurvivalSelector",
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
    "PairedComparison",
    "paired_cv_comparison",
    "bootstrap_optimism",
    "ExperimentSpec",
    "load_experiment",
    "ExperimentInputs",
    "read_experiment_inputs",
    "ExperimentResult",
    "run_experiment",
    "experiment_table",
    "experiment_table_from_mlflow",
]
