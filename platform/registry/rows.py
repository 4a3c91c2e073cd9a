"""Pydantic models of one row of each registry import file (``registry/*.csv``).

Each model checks what one row can show on its own: types, vocabularies, ranges and ID
formats. Rules that span rows or files (duplicates, references, date order against the
patient's enrolment) are checked in :mod:`sabrkit.registry.load`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from sabrkit.db.csv_import import ImportRow, IsoDate
from sabrkit.registry.dose import DEFAULT_ALPHA_BETA_GY
from sabrkit.registry.vocabulary import (
    AssessmentModality,
    Attribution,
    CtcaeVersion,
    DeathCause,
    DiseaseState,
    Histology,
    ImdcRisk,
    LesionSite,
    LocalStatus,
    MdtDecision,
    OffStudyReason,
    ProgressionType,
    RecistResponse,
    Sex,
    SystemicTherapy,
    TherapyClass,
)

__all__ = [
    "STUDY_ID_PATTERN",
    "LESION_ID_PATTERN",
    "StudyId",
    "LesionId",
    "PatientRow",
    "IdentifierRow",
    "LesionRow",
    "SabrCourseRow",
    "VisitRow",
    "AdverseEventRow",
    "ProgressionEventRow",
    "DeathRow",
    "EligibilityRow",
    "TherapyLineRow",
    "TumourAssessmentRow",
    "LesionAssessmentRow",
    "OffStudyRow",
]

#: Pseudonymous study ID: ``SABR-RCC-001``.
STUDY_ID_PATTERN = r"^SABR-RCC-[0-9]{3,6}$"
#: Lesion ID: ``<study_id>-L<n>``, e.g. ``SABR-RCC-001-L2``.
LESION_ID_PATTERN = r"^SABR-RCC-[0-9]{3,6}-L[1-9][0-9]*$"

StudyId = Annotated[str, StringConstraints(pattern=STUDY_ID_PATTERN)]
LesionId = Annotated[str, StringConstraints(pattern=LESION_ID_PATTERN)]
DicomUid = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)]


class PatientRow(ImportRow):
    """``patients.csv``: one enrolled patient."""

    study_id: StudyId
    mdt_date: IsoDate
    enrolment_date: IsoDate
    age_years: Annotated[int, Field(ge=18, le=120)]
    sex: Sex
    ecog: Annotated[int, Field(ge=0, le=4)]
    histology: Histology
    imdc_risk: ImdcRisk
    prior_nephrectomy: bool
    disease_state: DiseaseState
    systemic_therapy: SystemicTherapy
    last_contact_date: IsoDate
    kps: Annotated[int, Field(ge=0, le=100, multiple_of=10)] | None = None
    prior_systemic_lines: Annotated[int, Field(ge=0, le=20)] | None = None
    n_metastases: Annotated[int, Field(ge=1, le=50)] | None = None


class IdentifierRow(ImportRow):
    """``identifiers.csv``: the key table row of one patient (direct identifiers)."""

    study_id: StudyId
    hospital_number: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    family_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    given_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    date_of_birth: IsoDate


class LesionRow(ImportRow):
    """``lesions.csv``: one treated lesion."""

    lesion_id: LesionId
    study_id: StudyId
    lesion_number: Annotated[int, Field(ge=1)]
    site: LesionSite
    longest_diameter_mm: Annotated[float, Field(gt=0)] | None = None
    series_uid: DicomUid | None = None
    roi_name: Annotated[str, StringConstraints(max_length=64)] | None = None
    organ: Annotated[str, StringConstraints(max_length=64)] | None = None
    study_uid: DicomUid | None = None


class SabrCourseRow(ImportRow):
    """``sabr_courses.csv``: one SABR course to one lesion (alpha_beta_gy optional, default 10)."""

    lesion_id: LesionId
    study_id: StudyId
    total_dose_gy: Annotated[float, Field(gt=0)]
    fractions: Annotated[int, Field(ge=1)]
    start_date: IsoDate
    end_date: IsoDate
    technique: Annotated[str, StringConstraints(max_length=32)] | None = None
    alpha_beta_gy: Annotated[float, Field(gt=0)] = DEFAULT_ALPHA_BETA_GY


class VisitRow(ImportRow):
    """``visits.csv``: one follow-up visit (pain VRS 0-4, TESS 0-60; either may be missing)."""

    study_id: StudyId
    visit_number: Annotated[int, Field(ge=0)]
    visit_date: IsoDate
    vrs_pain: Annotated[int, Field(ge=0, le=4)] | None = None
    tess_score: Annotated[float, Field(ge=0, le=60)] | None = None


class AdverseEventRow(ImportRow):
    """``adverse_events.csv``: one CTCAE adverse event (an empty grade is a data query, not an error)."""

    study_id: StudyId
    term: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    grade: Annotated[int, Field(ge=1, le=5)] | None = None
    ctcae_version: CtcaeVersion
    onset_date: IsoDate
    attribution_sabr: Attribution
    resolution_date: IsoDate | None = None
    lesion_id: LesionId | None = None


class ProgressionEventRow(ImportRow):
    """``progression_events.csv``: the patient's first progression."""

    study_id: StudyId
    event_date: IsoDate
    progression_type: ProgressionType


class DeathRow(ImportRow):
    """``deaths.csv``: a patient's death."""

    study_id: StudyId
    death_date: IsoDate
    cause: DeathCause


class EligibilityRow(ImportRow):
    """``eligibility.csv``: the eligibility check and MDT decision of one patient."""

    study_id: StudyId
    assessed_on: IsoDate
    rcc_confirmed: bool
    one_to_five_metastases: bool
    all_lesions_treatable: bool
    ecog_0_to_2: bool
    informed_consent: bool
    mdt_decision: MdtDecision
    mdt_note: Annotated[str, StringConstraints(max_length=500)] | None = None


class TherapyLineRow(ImportRow):
    """``systemic_therapy_lines.csv``: one line of systemic therapy."""

    study_id: StudyId
    line_number: Annotated[int, Field(ge=1)]
    agent: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    therapy_class: TherapyClass
    start_date: IsoDate
    stop_date: IsoDate | None = None


class TumourAssessmentRow(ImportRow):
    """``tumour_assessments.csv``: RECIST 1.1 overall response at one restaging."""

    study_id: StudyId
    assessment_date: IsoDate
    visit_number: Annotated[int, Field(ge=0)] | None = None
    modality: AssessmentModality = "ct"
    overall_response: RecistResponse


class LesionAssessmentRow(ImportRow):
    """``lesion_assessments.csv``: local status of one treated lesion at one restaging."""

    lesion_id: LesionId
    assessment_date: IsoDate
    local_status: LocalStatus
    longest_diameter_mm: Annotated[float, Field(gt=0)] | None = None


class OffStudyRow(ImportRow):
    """``off_study.csv``: the end of one patient's participation."""

    study_id: StudyId
    off_study_date: IsoDate
    reason: OffStudyReason
