"""Controlled vocabularies of the registry (one Literal type per coded field).

The tuples (``SEXES`` ...) feed the database CHECK constraints and error messages; the
``Literal`` types feed the pydantic row models of the CSV import. Both come from one place, so
the import and the database cannot disagree.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "Sex", "SEXES",
    "Histology", "HISTOLOGIES",
    "ImdcRisk", "IMDC_RISKS",
    "DiseaseState", "DISEASE_STATES",
    "SystemicTherapy", "SYSTEMIC_THERAPIES",
    "LesionSite", "LESION_SITES",
    "Attribution", "ATTRIBUTIONS",
    "ProgressionType", "PROGRESSION_TYPES",
    "DeathCause", "DEATH_CAUSES",
    "CtcaeVersion", "CTCAE_VERSIONS",
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


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """SQL text ``column IN ('a', 'b')`` for a CHECK constraint (values are code literals)."""
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return f"{column} IN ({quoted})"
