"""Biobank (minimal): samples with check-character accession IDs, accessioned from CSV."""

from sabrkit.biobank.accession import (
    AccessionId,
    accession_check_char,
    make_accession_id,
    parse_accession_id,
    specimen_code,
    validate_accession_id,
)
from sabrkit.biobank.load import SampleLoadSummary, load_samples, next_serial
from sabrkit.biobank.models import Sample
from sabrkit.biobank.vocabulary import SAMPLE_STATUSES, SPECIMEN_CODES, SPECIMEN_TYPES, TIMEPOINTS

__all__ = [
    "Sample",
    "AccessionId",
    "accession_check_char",
    "make_accession_id",
    "parse_accession_id",
    "validate_accession_id",
    "specimen_code",
    "load_samples",
    "next_serial",
    "SampleLoadSummary",
    "SPECIMEN_CODES",
    "SPECIMEN_TYPES",
    "TIMEPOINTS",
    "SAMPLE_STATUSES",
]
