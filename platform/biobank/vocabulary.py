"""Controlled vocabularies of the biobank: protocol timepoints, specimen types and their
two-letter accession codes, sample statuses."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "Timepoint", "TIMEPOINTS",
    "SpecimenType", "SPECIMEN_TYPES", "SPECIMEN_CODES",
    "SampleStatus", "SAMPLE_STATUSES",
]

#: Protocol timepoints, in protocol order (used to order samples when accessioning them).
Timepoint = Literal[
    "baseline", "end_of_sabr", "month_1", "month_3", "month_6", "month_12", "month_24", "progression"
]
SpecimenType = Literal["plasma", "serum", "whole_blood", "pbmc", "urine", "fresh_frozen_tissue", "ffpe"]
SampleStatus = Literal["received", "stored", "in_use", "depleted", "shipped", "destroyed"]

TIMEPOINTS: tuple[str, ...] = get_args(Timepoint)
SPECIMEN_TYPES: tuple[str, ...] = get_args(SpecimenType)
SAMPLE_STATUSES: tuple[str, ...] = get_args(SampleStatus)

#: Two-letter specimen code used in accession IDs (``SABR-PL-000001-7``).
SPECIMEN_CODES: dict[str, str] = {
    "plasma": "PL",
    "serum": "SE",
    "whole_blood": "WB",
    "pbmc": "PB",
    "urine": "UR",
    "fresh_frozen_tissue": "FF",
    "ffpe": "FP",
}
