"""Clinical registry: patients, eligibility, lesions, SABR courses, therapy, follow-up, endpoints,
exports, analyses and the study report."""

from sabrkit.registry.capture import CAPTURE_KINDS, correct, delete, enrol, record
from sabrkit.registry.covariates import (
    CLINICAL_COVARIATE_COLUMNS,
    clinical_covariates_from_db,
    compute_clinical_covariates,
)
from sabrkit.registry.ctcae import CTCAE_SOURCE, check_ctcae, ctcae_terms
from sabrkit.registry.dose import DEFAULT_ALPHA_BETA_GY, bed, bed10, eqd2
from sabrkit.registry.endpoints import DAYS_PER_MONTH, ENDPOINT_COLUMNS, compute_endpoints, endpoints_from_db
from sabrkit.registry.exports import AnalysisTables, build_analysis_tables, write_analysis_tables
from sabrkit.registry.frames import registry_frames
from sabrkit.registry.lesion_outcomes import lesion_outcomes, lesion_outcomes_from_db
from sabrkit.registry.load import (
    OPTIONAL_FILES,
    REGISTRY_FILES,
    REQUIRED_FILES,
    LoadSummary,
    RegistrySource,
    load_registry_folder,
    read_registry_folder,
    validate_registry_folder,
    validate_source,
    write_registry,
)
from sabrkit.registry.quality import data_quality, followup_completeness
from sabrkit.registry.redcap import read_redcap_export
from sabrkit.registry.report import StudyReport, build_study_report, write_study_report
from sabrkit.registry.survival import SurvivalAt, cohort_summary, median_followup, survival_at
from sabrkit.registry.tables import (
    LESION_ID_LENGTH,
    STUDY_ID_LENGTH,
    AdverseEvent,
    Death,
    Eligibility,
    Lesion,
    LesionAssessment,
    OffStudy,
    Patient,
    PatientIdentifier,
    ProgressionEvent,
    SabrCourse,
    SystemicTherapyLine,
    TumourAssessment,
    Visit,
)
from sabrkit.registry.tables import __all__ as _tables_all

__all__ = [
    "lesion_outcomes",
    "lesion_outcomes_from_db",
    "SurvivalAt",
    "survival_at",
    "median_followup",
    "cohort_summary",
    *_tables_all,  # the ORM tables, listed once in registry.tables
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
    "read_registry_folder",
    "validate_source",
    "write_registry",
    "RegistrySource",
    "LoadSummary",
    "REGISTRY_FILES",
    "REQUIRED_FILES",
    "OPTIONAL_FILES",
    "read_redcap_export",
    "record",
    "enrol",
    "correct",
    "delete",
    "CAPTURE_KINDS",
    "check_ctcae",
    "ctcae_terms",
    "CTCAE_SOURCE",
    "registry_frames",
    "AnalysisTables",
    "build_analysis_tables",
    "write_analysis_tables",
    "data_quality",
    "followup_completeness",
    "StudyReport",
    "build_study_report",
    "write_study_report",
]
