"""Bulk-accession a CSV of collected samples (``biobank/samples.csv``): every row checked, all or none.

Every row is validated first: types and vocabularies (:class:`~sabrkit.biobank.samples.SampleIntake`),
then the registry and the preanalytical record (:func:`~sabrkit.biobank.samples.intake_problems`:
patient enrolled, collected on or after enrolment, processing after collection ...). All
problems are raised together as one :class:`~sabrkit.errors.ImportValidationError` (row,
column, value, rule) and nothing is written. ``dry_run=True`` stops there.

A valid file is accessioned in ONE transaction (multi-row INSERTs of samples, custody events
and their audit entries): if the process dies half-way (even SIGKILL), the database keeps none
of the rows. Accession order is deterministic: study ID, collection time, protocol timepoint,
specimen type, row number, so the same file loaded into the same database gets the same IDs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sabrkit.biobank.samples import BENCH, SampleIntake, accession_samples, enrolment_dates, intake_problems
from sabrkit.biobank.vocabulary import SPECIMEN_TYPES, TIMEPOINTS
from sabrkit.db.csv_import import ParsedRow, RawRow, parse_rows, read_csv_rows, row_error
from sabrkit.db.database import Database
from sabrkit.errors import ImportValidationError

__all__ = ["SampleLoadSummary", "load_samples", "validate_sample_file", "accession_sample"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleLoadSummary:
    """What :func:`load_samples` did: the file, the rows and the accession IDs given (in order)."""

    source: Path
    accession_ids: tuple[str, ...]
    n_rows: int
    dry_run: bool = False

    @property
    def n_samples(self) -> int:
        """Number of samples accessioned (or, in a dry run, that would be)."""
        return self.n_rows

    def __str__(self) -> str:
        if self.dry_run:
            return f"{self.source}: dry run, all {self.n_rows} row(s) valid; nothing written"
        if not self.accession_ids:
            return f"{self.source}: no samples"
        return (f"{self.source}: accessioned {self.n_rows} sample(s), "
                f"{self.accession_ids[0]} to {self.accession_ids[-1]}")


def _accession_order(row: ParsedRow[SampleIntake]) -> tuple[object, ...]:
    sample = row.record
    return (sample.study_id, sample.collected_at, TIMEPOINTS.index(sample.timepoint),
            SPECIMEN_TYPES.index(sample.specimen_type), row.row)


def validate_sample_file(db: Database, csv_path: Path) -> list[ParsedRow[SampleIntake]]:
    """Parse and check every row; returns the rows in accession order.

    Raises
    ------
    ImportValidationError
        Listing every bad row (``column`` reads ``"samples.csv:<column>"``).
    """
    csv_path = Path(csv_path)
    label = csv_path.name
    parsed, errors = read_csv_rows(csv_path, SampleIntake)
    with db.session() as session:
        enrolled = enrolment_dates(session)
    for row in parsed:
        for column, value, rule in intake_problems(row.record, enrolled):
            errors.append(row_error(label, row.row, column, value, rule))
    if errors:
        raise ImportValidationError(str(csv_path), sorted(errors, key=lambda error: error.row))
    return sorted(parsed, key=_accession_order)


def load_samples(
    db: Database,
    csv_path: Path,
    *,
    operator: str | None = None,
    dry_run: bool = False,
    location: str = BENCH,
    on_progress: Callable[[int], None] | None = None,
) -> SampleLoadSummary:
    """Validate every row of ``csv_path``; accession all samples in one transaction (or, dry run, none).

    Parameters
    ----------
    db : Database
        Migrated database whose registry holds the samples' patients.
    csv_path : Path
        ``study_id, timepoint, specimen_type, collected_at`` (ISO ``YYYY-MM-DDTHH:MM``) and
        optional ``volume_ml`` and preanalytical columns (see
        :class:`~sabrkit.biobank.samples.SampleIntake`).
    operator : str, optional
        Who accessions (custody events and audit log); default: the Database's actor.
    dry_run : bool
        Check every row and report, write nothing.
    location : str
        Where the samples are received.
    on_progress : callable, optional
        Called with the number of samples written so far (inside the transaction).

    Returns
    -------
    SampleLoadSummary
        The new accession IDs in accession order (status ``received``).

    Raises
    ------
    ImportValidationError
        Listing every bad row; nothing was written.
    """
    csv_path = Path(csv_path)
    ordered = validate_sample_file(db, csv_path)
    if dry_run:
        return SampleLoadSummary(csv_path, (), len(ordered), dry_run=True)
    operator = operator or db.actor
    with db.transaction(actor=operator) as session:
        accession_ids = accession_samples(session, [row.record for row in ordered], operator=operator,
                                          location=location, on_chunk=on_progress)
    summary = SampleLoadSummary(csv_path, tuple(accession_ids), len(accession_ids))
    logger.info("%s", summary)
    from sabrkit.audit.checkpoint import checkpoint_if_keyed

    checkpoint_if_keyed(db)
    return summary


def accession_sample(
    db: Database,
    fields: Mapping[str, object],
    *,
    operator: str | None = None,
    location: str = BENCH,
    label: str = "form",
) -> str:
    """Accession one specimen given as field values (a bench form, an instrument's JSON).

    The same checks as a CSV row of :func:`load_samples` (types and vocabularies, then the
    registry and the preanalytical record) and the same writes (accession ID, ``collected`` and
    ``received`` custody events, audit entries), in one transaction.

    Parameters
    ----------
    db : Database
    fields : mapping
        The columns of :class:`~sabrkit.biobank.samples.SampleIntake` by name; empty strings
        and None mean "not given". Unknown names are refused.
    operator : str, optional
        Who accessions (default: the Database's actor).
    location : str
        Where the sample is received.
    label : str
        How errors name the source (``"<label>:<field>"``).

    Returns
    -------
    str
        The new accession ID.

    Raises
    ------
    ImportValidationError
        Every broken rule (field, value, rule, fix); nothing was written.
    """
    values = {str(name): str(value).strip() for name, value in fields.items()
              if value is not None and str(value).strip() != ""}
    unknown = sorted(set(values) - set(SampleIntake.model_fields))
    parsed, errors = parse_rows([RawRow(1, {k: v for k, v in values.items() if k not in unknown})], SampleIntake,
                                label=label)
    errors += [row_error(label, 1, name, values[name], "unknown field; expected " + ", ".join(SampleIntake.model_fields))
               for name in unknown]
    if not errors:
        with db.session() as session:
            enrolled = enrolment_dates(session)
        errors += [row_error(label, 1, column, value, rule)
                   for column, value, rule in intake_problems(parsed[0].record, enrolled)]
    if errors:
        raise ImportValidationError(label, errors)
    operator = operator or db.actor
    with db.transaction(actor=operator) as session:
        (accession_id,) = accession_samples(session, [parsed[0].record], operator=operator, location=location)
    logger.info("accessioned %s (%s) by %s", accession_id, label, operator)
    return accession_id
