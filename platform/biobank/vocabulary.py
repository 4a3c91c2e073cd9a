"""Controlled vocabularies of the biobank.

Protocol timepoints, specimen types and their two-letter accession codes, sample kinds and
statuses, units, chain-of-custody event types, consent scopes and storage levels. Each
vocabulary is a ``Literal`` type (for pydantic row models) plus a tuple (for CHECK
constraints and messages), so imports and the database cannot disagree.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "Timepoint",
    "TIMEPOINTS",
    "SpecimenType",
    "SPECIMEN_TYPES",
    "SPECIMEN_CODES",
    "PRIMARY_SPECIMEN_TYPES",
    "DERIVATIVE_SPECIMEN_TYPES",
    "SampleKind",
    "SAMPLE_KINDS",
    "SampleStatus",
    "SAMPLE_STATUSES",
    "USABLE_STATUSES",
    "FINAL_STATUSES",
    "QuantityUnit",
    "QUANTITY_UNITS",
    "DEFAULT_UNITS",
    "CustodyEventType",
    "CUSTODY_EVENT_TYPES",
    "ConsentScope",
    "CONSENT_SCOPES",
    "StorageLevel",
    "STORAGE_LEVELS",
    "ShipmentStatus",
    "SHIPMENT_STATUSES",
    "DisposalStatus",
    "DISPOSAL_STATUSES",
]

#: Protocol timepoints, in protocol order (SABR registry protocol), plus ``unscheduled``.
Timepoint = Literal[
    "baseline",
    "end_of_sabr",
    "month_1",
    "month_3",
    "month_6",
    "month_12",
    "month_24",
    "progression",
    "unscheduled",
]
#: Specimen types: primary specimens collected from a participant and the derivatives made of them.
SpecimenType = Literal[
    "whole_blood",
    "plasma",
    "serum",
    "buffy_coat",
    "pbmc",
    "urine",
    "ffpe",
    "fresh_frozen_tissue",
    "dna",
    "rna",
    "cfdna",
]
#: ``primary``: collected from the participant; ``aliquot``: part of one parent, same material;
#: ``derivative``: new material extracted from one parent (DNA, RNA, cfDNA); ``pool``: several parents.
SampleKind = Literal["primary", "aliquot", "derivative", "pool"]
#: ``received`` (accessioned, not yet in storage), ``stored`` (in a box position), ``in_use``
#: (thawed / out of the freezer), ``in_transit`` (shipped), ``at_destination`` (received by the
#: destination of a shipment), ``depleted`` (nothing left), ``consumed`` (used up by an assay),
#: ``disposed`` (destroyed).
SampleStatus = Literal[
    "received",
    "stored",
    "in_use",
    "in_transit",
    "at_destination",
    "depleted",
    "consumed",
    "disposed",
]
QuantityUnit = Literal["mL", "ug", "count"]
#: Chain-of-custody events, append-only.
CustodyEventType = Literal[
    "collected",
    "received",
    "processed",
    "aliquoted",
    "frozen",
    "thawed",
    "moved",
    "shipped",
    "received_at_destination",
    "consumed",
    "disposed",
]
#: What a participant's consent can cover.
ConsentScope = Literal["storage", "future_research", "genetic_research", "image_linkage"]
StorageLevel = Literal["freezer", "shelf", "rack", "box"]
ShipmentStatus = Literal["draft", "shipped", "received"]
DisposalStatus = Literal["open", "done"]

TIMEPOINTS: tuple[str, ...] = get_args(Timepoint)
SPECIMEN_TYPES: tuple[str, ...] = get_args(SpecimenType)
SAMPLE_KINDS: tuple[str, ...] = get_args(SampleKind)
SAMPLE_STATUSES: tuple[str, ...] = get_args(SampleStatus)
QUANTITY_UNITS: tuple[str, ...] = get_args(QuantityUnit)
CUSTODY_EVENT_TYPES: tuple[str, ...] = get_args(CustodyEventType)
CONSENT_SCOPES: tuple[str, ...] = get_args(ConsentScope)
STORAGE_LEVELS: tuple[str, ...] = get_args(StorageLevel)
SHIPMENT_STATUSES: tuple[str, ...] = get_args(ShipmentStatus)
DISPOSAL_STATUSES: tuple[str, ...] = get_args(DisposalStatus)

#: Statuses from which material can still be taken (aliquoted, thawed, shipped, consumed).
USABLE_STATUSES: tuple[str, ...] = ("received", "stored", "in_use", "at_destination")
#: Statuses a sample never leaves.
FINAL_STATUSES: tuple[str, ...] = ("depleted", "consumed", "disposed")

#: Two-letter specimen code used in accession IDs (``SABR-PL-000001-7``).
SPECIMEN_CODES: dict[str, str] = {
    "plasma": "PL",
    "serum": "SE",
    "whole_blood": "WB",
    "pbmc": "PB",
    "urine": "UR",
    "fresh_frozen_tissue": "FF",
    "ffpe": "FP",
    "buffy_coat": "BC",
    "dna": "DN",
    "rna": "RN",
    "cfdna": "CF",
}

PRIMARY_SPECIMEN_TYPES: tuple[str, ...] = (
    "whole_blood",
    "plasma",
    "serum",
    "buffy_coat",
    "pbmc",
    "urine",
    "ffpe",
    "fresh_frozen_tissue",
)
DERIVATIVE_SPECIMEN_TYPES: tuple[str, ...] = ("dna", "rna", "cfdna")

#: Unit a specimen type's quantity is counted in (FFPE: blocks; nucleic acids: micrograms).
DEFAULT_UNITS: dict[str, str] = {
    "whole_blood": "mL",
    "plasma": "mL",
    "serum": "mL",
    "buffy_coat": "mL",
    "pbmc": "mL",
    "urine": "mL",
    "ffpe": "count",
    "fresh_frozen_tissue": "count",
    "dna": "ug",
    "rna": "ug",
    "cfdna": "ug",
}
