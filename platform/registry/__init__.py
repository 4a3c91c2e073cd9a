"""Clinical registry: patients, lesions, SABR courses, visits, adverse events, endpoints."""

from sabrkit.registry.covariates import (
    CLINICAL_COVARIATE_COLUMNS,
    clinical_covariates_from_db,
    compute_clinical_covariates,
)
from sabrkit.registry.dose import DEFAULT_ALPHA_BETA_GY, bed, bed10, eqd2
from sabrkit.registry.endpoints import DAYS_PER_MONTH, ENDPOINT_COLUMNS, compute_endpoints, endpoints_from_db
from sabrkit.registry.load import REGISTRY_FILES, LoadSummary, load_registry_folder, validate_registry_folder
from sabrkit.registry.survival import SurvivalAt, cohort_summary, median_followup, survival_at
from sabrkit.registry.models import (
    AdverseEvent,
    Death,
    Lesion,
    Patient,
    PatientIdentifier,
    ProgressionEvent,
    SabrCourse,
    Visit,
)

__all__ = [
    "SurvivalAt",
    "survival_at",
    "median_followup",
    "cohort_summary",
    "Patient",
    "PatientIdentifier",
    "Lesion",
    "SabrCourse",
    "Visit",
    "AdverseEvent",
    "ProgressionEvent",
    "Death",
    "bed",
    "bed10",
    "eqd2",
    "DEFAULT_ALPHA_BETA_GY",
    "compute_endpoints",
    "endpoints_from_db",
    "DAYS_PER_MONTH",
    "ENDPOINT_COLUMNS",
    "compute_clinical_covariates",
    "clinical_covariates_from_db",
    "CLINICAL_COVARIATE_COLUMNS",
    "load_registry_folder",
    "validate_registry_folder",
    "LoadSummary",
    "REGISTRY_FILES",
]
