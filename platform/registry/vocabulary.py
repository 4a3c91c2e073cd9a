"""Controlled vocabularies of the registry (one Literal type per coded field).

The tuples (``SEXES`` ...) feed the database CHECK constraints and error messages; the
``Literal`` types feed the pydantic row models of the CSV import. Both come from one place, so
the import and the database cannot disagree.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "Sex",
    "SEXES",
    "Histology",
    "HISTOLOGIES",
    "ImdcRisk",
    "IMDC_RISKS",
    "DiseaseState",
    "DISEASE_STATES",
    "SystemicTherapy",
    "SYSTEMIC_THERAPIES",
    "LesionSite",
    "LESION_SITES",
    "Attribution",
    "ATTRIBUTIONS",
    "ProgressionType",
    "PROGRESSION_TYPES",
    "DeathCause",
    "DEATH_CAUSES",
    "CtcaeVersion",
    "CTCAE_VERSIONS",
    "MdtDecision",
    "MDT_DECISIONS",
    "TherapyClass",
    "THERAPY_CLASSES",
    "THERAPY_LABELS",
    "RecistResponse",
    "RECIST_RESPONSES",
    "LocalStatus",
    "LOCAL_STATUSES",
    "AssessmentModality",
    "ASSESSMENT_MODALITIES",
    "OffStudyReason",
    "OFF_STUDY_REASONS",
    "KPS_VALUES",
    "sql_in",
]

Sex = Literal["F", "M"]
Histology = Literal["clear_cell", "non_clear_cell"]
ImdcRisk = Literal["favourable", "intermediate", "poor"]
DiseaseState = Literal["oligometastatic", "oligoprogressive"]
SystemicTherapy = Literal["none", "tki", "ici", "tki_ici"]
LesionSite = Literal["lung", "bone", "lymph_node", "adrenal", "liver", "brain", "pancreas"]
Attribution = Literal["definite", "probable", "possible", "unlikely", "unrelated"]
ProgressionType = Literal["local", "distant", "both"]
DeathCause = Literal["rcc", "other"]
#: CTCAE versions the registry accepts (v6.0 was published in July 2025).
CtcaeVersion = Literal["4.03", "5.0", "6.0"]

#: Decision of the multidisciplinary team on SABR to every metastasis.
MdtDecision = Literal["sabr_all_lesions", "not_for_sabr"]
#: Class of a systemic therapy line (TKI, ICI, or both combined).
TherapyClass = Literal["tki", "ici", "tki_ici"]
#: RECIST 1.1 overall response at a tumour assessment (NE = not evaluable).
RecistResponse = Literal["CR", "PR", "SD", "PD", "NE"]
#: Local status of a treated lesion at an assessment.
LocalStatus = Literal["controlled", "local_failure", "not_evaluable"]
AssessmentModality = Literal["ct", "mri", "pet_ct", "bone_scan", "other"]
OffStudyReason = Literal[
    "completed", "death", "withdrew_consent", "lost_to_follow_up", "investigator_decision", "other"
]

SEXES: tuple[str, ...] = get_args(Sex)
HISTOLOGIES: tuple[str, ...] = get_args(Histology)
IMDC_RISKS: tuple[str, ...] = get_args(ImdcRisk)
DISEASE_STATES: tuple[str, ...] = get_args(DiseaseState)
SYSTEMIC_THERAPIES: tuple[str, ...] = get_args(SystemicTherapy)
LESION_SITES: tuple[str, ...] = get_args(LesionSite)
ATTRIBUTIONS: tuple[str, ...] = get_args(Attribution)
PROGRESSION_TYPES: tuple[str, ...] = get_args(ProgressionType)
DEATH_CAUSES: tuple[str, ...] = get_args(DeathCause)
CTCAE_VERSIONS: tuple[str, ...] = get_args(CtcaeVersion)
MDT_DECISIONS: tuple[str, ...] = get_args(MdtDecision)
THERAPY_CLASSES: tuple[str, ...] = get_args(TherapyClass)
RECIST_RESPONSES: tuple[str, ...] = get_args(RecistResponse)
LOCAL_STATUSES: tuple[str, ...] = get_args(LocalStatus)
ASSESSMENT_MODALITIES: tuple[str, ...] = get_args(AssessmentModality)
OFF_STUDY_REASONS: tuple[str, ...] = get_args(OffStudyReason)
#: Karnofsky performance status: 0-100 in steps of 10.
KPS_VALUES: tuple[int, ...] = tuple(range(0, 101, 10))
#: How reports name the systemic therapy groups (``patients.systemic_therapy``).
THERAPY_LABELS: dict[str, str] = {
    "none": "SABR alone",
    "tki": "SABR + TKI",
    "ici": "SABR + ICI",
    "tki_ici": "SABR + TKI + ICI",
}


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """SQL text ``column IN ('a', 'b')`` for a CHECK constraint (values are code literals)."""
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return f"{column} IN ({quoted})"
