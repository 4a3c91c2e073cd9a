"""Accession a file of collected samples (``biobank/samples.csv``), all or nothing.

Every row is validated first (types, vocabularies, volume, the patient exists in the registry);
all problems are raised together as one :class:`~sabrkit.errors.ImportValidationError` and
nothing is written. Valid files are accessioned in one transaction: samples get accession IDs
(:mod:`sabrkit.biobank.accession`) with serials continuing after the highest serial in the
database, in a deterministic order: study ID, collection time, protocol timepoint, specimen type,
then row number. The same file loaded into the same database therefore always gets the same IDs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field
from sqlalchemy import func, select

from sabrkit.biobank.accession import MAX_SERIAL, make_accession_id
from sabrkit.biobank.models import Sample
from sabrkit.biobank.vocabulary import SPECIMEN_TYPES, TIMEPOINTS, SpecimenType, Timepoint
from sabrkit.db.csv_import import ImportRow, IsoDateTime, ParsedRow, read_csv_rows, row_error
from sabrkit.db.database import Database
from sabrkit.errors import ImportValidationError, ValidationError, format_problem
from sabrkit.registry.models import Patient
from sabrkit.registry.rows import StudyId

__all__ = ["SampleRow", "SampleLoadSummary", "load_samples", "next_serial"]

logger = logging.getLogger(__name__)


class SampleRow(ImportRow):
    """``samples.csv``: one collected specimen (no accession ID yet)."""

    study_id: StudyId
    timepoint: Timepoint
    specimen_type: SpecimenType
    collected_at: IsoDateTime
    volume_ml: Annotated[float, Field(gt=0)] | None = None


@dataclass(frozen=True)
class SampleLoadSummary:
    """What :func:`load_samples` wrote: the file and the accession IDs, in accession order."""

    source: Path
    accession_ids: tuple[str, ...]

    @property
    def n_samples(self) -> int:
        """Number of samples accessioned."""
        return len(self.accession_ids)

    def __str__(self) -> str:
        if not self.accession_ids:
            return f"{self.source}: no samples"
        first, last = self.accession_ids[0], self.accession_ids[-1]
        return f"{self.source}: accessioned {self.n_samples} sample(s), {first} to {last}"


def next_serial(db: Database) -> int:
    """The first free accession serial (1 for an empty biobank)."""
    with db.session() as session:
        highest = session.scalar(select(func.max(func.substr(Sample.accession_id, 9, 6))))
    return int(highest) + 1 if highest else 1


def _accession_order(row: ParsedRow[SampleRow]) -> tuple[object, ...]:
    sample = row.record
    return (
        sample.study_id,
        sample.collected_at,
        TIMEPOINTS.index(sample.timepoint),
        SPECIMEN_TYPES.index(sample.specimen_type),
        row.row,
    )


def load_samples(db: Database, csv_path: Path) -> SampleLoadSummary:
    """Validate every row of ``csv_path`` and accession all samples in one transaction.

    Parameters
    ----------
    db : Database
        Migrated database whose registry already holds the samples' patients.
    csv_path : Path
        ``samples.csv`` with ``study_id, timepoint, specimen_type, collected_at`` (ISO
        ``YYYY-MM-DDTHH:MM``) and optional ``volume_ml``.

    Returns
    -------
    SampleLoadSummary
        The new accession IDs in accession order (status ``received``).

    Raises
    ------
    ImportValidationError
        Listing every bad row (``column`` reads ``"samples.csv:<column>"``); nothing was written.
    ValidationError
        If the serials would run past 999999.
    """
    csv_path = Path(csv_path)
    label = csv_path.name
    parsed, errors = read_csv_rows(csv_path, SampleRow)
    with db.session() as session:
        known = set(session.scalars(select(Patient.study_id)))
    for row in parsed:
        if row.record.study_id not in known:
            errors.append(row_error(label, row.row, "study_id", row.record.study_id,
                                    "unknown patient: not in the registry (load the registry first)"))
    if errors:
        raise ImportValidationError(str(csv_path), sorted(errors, key=lambda error: error.row))
    ordered = sorted(parsed, key=_accession_order)
    first = next_serial(db)
    if first + len(ordered) - 1 > MAX_SERIAL:
        raise ValidationError(
            format_problem(
                f"{len(ordered)} samples from serial {first}",
                f"accession serials end at {MAX_SERIAL}",
                "ask the data manager to extend the accession scheme before loading more samples",
            )
        )
    samples = [
        Sample(accession_id=make_accession_id(row.record.specimen_type, first + offset), **row.record.model_dump())
        for offset, row in enumerate(ordered)
    ]
    with db.transaction() as session:
        session.add_all(samples)
    summary = SampleLoadSummary(csv_path, tuple(sample.accession_id for sample in samples))
    logger.info("%s", summary)
    return summary
