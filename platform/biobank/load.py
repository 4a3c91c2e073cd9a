"""Bulk-accession a CSV of collected samples (``biobank/samples.csv``): every row checked, all or none.

Every row is validated first: types and vocabularies (:class:`~sabrkit.biobank.samples.SampleIntake`),
then the registry and the preanalytical record (:func:`~sabrkit.biobank.samples.intake_problems`:
patient enrolled, collected on or after enrolment, processing after collection ...). All
problems are raised together as one :class:`~sabrkit.errors.ImportValidationError` (row,
column, value, rule) and nothing is written. ``dry_run=True`` stops there.

Re-importing is safe: a row whose ``source_id`` (tube barcode, LIMS ID; unique per
``source_site``) is already in the biobank, or, without a source ID, whose patient, timepoint,
specimen type and collection time match a sample already accessioned from a file, counts as
**already imported** and is skipped; the summary reads ``N already imported, M new``. Rows that
are exact duplicates of an earlier row of the same file, and source IDs repeated in a file or
already used for another sample, are refused.

A valid file is accessioned in ONE transaction (multi-row INSERTs of samples, custody events
and their audit entries): if the process dies half-way (even SIGKILL), the database keeps none
of the rows. Accession order is deterministic: study ID, collection time, protocol timepoint,
specimen type, row number, so the same file loaded into the same database gets the same IDs.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from sabrkit.biobank.errors import DuplicateAccessionError
from sabrkit.biobank.samples import BENCH, SampleIntake, accession_samples, enrolment_dates, intake_problems
from sabrkit.biobank.tables import Sample
from sabrkit.biobank.vocabulary import SPECIMEN_TYPES, TIMEPOINTS
from sabrkit.db.csv_import import ParsedRow, RawRow, parse_rows, read_csv_rows, row_error
from sabrkit.db.database import Database
from sabrkit.errors import ImportValidationError, RowError, format_problem

__all__ = [
    "SampleLoadSummary",
    "load_samples",
    "validate_sample_file",
    "accession_sample",
    "split_already_imported",
]

logger = logging.getLogger(__name__)

#: First key of the PostgreSQL advisory lock serialising sample imports (second: the schema).
SAMPLE_INTAKE_LOCK_CLASS = 72_620_131


@dataclass(frozen=True)
class SampleLoadSummary:
    """What :func:`load_samples` did: the file, the rows and the accession IDs given (in order)."""

    source: Path
    accession_ids: tuple[str, ...]
    n_rows: int
    dry_run: bool = False
    n_already: int = 0

    @property
    def n_samples(self) -> int:
        """Number of samples accessioned (or, in a dry run, that would be)."""
        return self.n_rows

    def __str__(self) -> str:
        if self.dry_run:
            return f"{self.source}: dry run, all {self.n_rows} row(s) valid; nothing written"
        if not self.accession_ids:
            if self.n_already:
                return f"{self.source}: {self.n_already} already imported, 0 new; nothing written"
            return f"{self.source}: no samples"
        already = f"{self.n_already} already imported, " if self.n_already else ""
        return (
            f"{self.source}: {already}{self.n_rows} new: accessioned {self.n_rows} sample(s), "
            f"{self.accession_ids[0]} to {self.accession_ids[-1]}"
        )


def _accession_order(row: ParsedRow[SampleIntake]) -> tuple[object, ...]:
    sample = row.record
    return (
        sample.study_id,
        sample.collected_at,
        TIMEPOINTS.index(sample.timepoint),
        SPECIMEN_TYPES.index(sample.specimen_type),
        row.row,
    )


def validate_sample_file(
    db: Database, csv_path: Path, *, encoding: str | None = None
) -> list[ParsedRow[SampleIntake]]:
    """Parse and check every row; returns the rows in accession order.

    Raises
    ------
    ImportValidationError
        Listing every bad row (``column`` reads ``"samples.csv:<column>"``).
    """
    csv_path = Path(csv_path)
    label = csv_path.name
    parsed, errors = read_csv_rows(csv_path, SampleIntake, encoding=encoding)
    with db.session() as session:
        enrolled = enrolment_dates(session)
    for row in parsed:
        for column, value, rule in intake_problems(row.record, enrolled):
            errors.append(row_error(label, row.row, column, value, rule))
    errors.extend(_duplicate_rows(label, parsed))
    if errors:
        raise ImportValidationError(str(csv_path), sorted(errors, key=lambda error: error.row))
    return sorted(parsed, key=_accession_order)


def _duplicate_rows(label: str, parsed: list[ParsedRow[SampleIntake]]) -> list[RowError]:
    """Rows repeating an earlier row exactly, and source IDs repeated within the file."""
    errors: list[RowError] = []
    seen_rows: dict[tuple[object, ...], int] = {}
    seen_sources: dict[tuple[str, str], int] = {}
    for row in parsed:
        content = tuple(row.record.model_dump().values())
        if content in seen_rows:
            errors.append(
                row_error(
                    label,
                    row.row,
                    "(row)",
                    f"same as row {seen_rows[content]}",
                    f"exact duplicate of row {seen_rows[content]}: one tube, one row (delete this row)",
                )
            )
            continue
        seen_rows[content] = row.row
        source = row.record.source()
        if source is not None:
            if source in seen_sources:
                errors.append(
                    row_error(
                        label,
                        row.row,
                        "source_id",
                        source[1],
                        f"source ID already on row {seen_sources[source]} (site {source[0]}): "
                        "a source ID names one tube",
                    )
                )
            seen_sources.setdefault(source, row.row)
    return errors


def same_accession(session: Session, intake: SampleIntake) -> list[str]:
    """Accession IDs of primary samples with the intake's patient, timepoint, specimen type and collection minute."""
    from datetime import timedelta

    minute = intake.collected_at.replace(second=0, microsecond=0)
    return list(
        session.scalars(
            select(Sample.accession_id)
            .where(
                Sample.study_id == intake.study_id,
                Sample.timepoint == intake.timepoint,
                Sample.specimen_type == intake.specimen_type,
                Sample.kind == "primary",
                Sample.collected_at >= minute,
                Sample.collected_at < minute + timedelta(minutes=1),
            )
            .order_by(Sample.id)
        )
    )


def _lock_sample_intake(session: Session) -> None:
    """Serialise sample imports (PostgreSQL advisory lock; SQLite's write lock is already held)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"),
            {"key": SAMPLE_INTAKE_LOCK_CLASS},
        )


def split_already_imported(
    session: Session, label: str, rows: list[ParsedRow[SampleIntake]]
) -> tuple[list[ParsedRow[SampleIntake]], int]:
    """Rows not yet in the biobank, and how many are (see the module docstring).

    Raises
    ------
    ImportValidationError
        A source ID already belongs to a sample of another patient, timepoint, type or time.
    """
    sources = {row.record.source() for row in rows} - {None}
    stored: dict[tuple[str, str], tuple[object, ...]] = {}
    if sources:
        ids = sorted({source_id for _, source_id in sources})  # type: ignore[misc]
        for start in range(0, len(ids), 500):
            query = select(
                Sample.source_site,
                Sample.source_id,
                Sample.study_id,
                Sample.timepoint,
                Sample.specimen_type,
                Sample.collected_at,
            ).where(Sample.source_id.in_(ids[start : start + 500]))
            for site, source_id, *stored_key in session.execute(query):
                stored[(cast(str, site), cast(str, source_id))] = tuple(stored_key)
    keyed_rows = [row for row in rows if row.record.source() is None]
    unsourced: Counter[tuple[object, ...]] = Counter()
    if keyed_rows:
        study_ids = sorted({row.record.study_id for row in keyed_rows})
        unsourced_query = select(
            Sample.study_id, Sample.timepoint, Sample.specimen_type, Sample.collected_at
        ).where(Sample.kind == "primary", Sample.source_id.is_(None), Sample.study_id.in_(study_ids))
        unsourced.update(tuple(key) for key in session.execute(unsourced_query))
    fresh: list[ParsedRow[SampleIntake]] = []
    errors: list[RowError] = []
    already = 0
    for row in rows:
        source = row.record.source()
        key = row.record.natural_key()
        if source is not None:
            if source not in stored:
                fresh.append(row)
            elif stored[source] == key:
                already += 1
            else:
                errors.append(
                    row_error(
                        label,
                        row.row,
                        "source_id",
                        source[1],
                        f"source ID of site {source[0]} already names another sample (another "
                        "patient, timepoint, type or collection time): check the tube's barcode",
                    )
                )
        elif unsourced[key] > 0:
            unsourced[key] -= 1
            already += 1
        else:
            fresh.append(row)
    if errors:
        raise ImportValidationError(label, errors)
    return fresh, already


def load_samples(
    db: Database,
    csv_path: Path,
    *,
    operator: str | None = None,
    dry_run: bool = False,
    location: str = BENCH,
    on_progress: Callable[[int], None] | None = None,
    encoding: str | None = None,
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
    encoding : str, optional
        Text encoding of the CSV file (default UTF-8).

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
    ordered = validate_sample_file(db, csv_path, encoding=encoding)
    if dry_run:
        return SampleLoadSummary(csv_path, (), len(ordered), dry_run=True)
    operator = operator or db.actor
    with db.transaction(actor=operator) as session:
        _lock_sample_intake(session)
        fresh, already = split_already_imported(session, str(csv_path), ordered)
        accession_ids = (
            accession_samples(
                session,
                [row.record for row in fresh],
                operator=operator,
                location=location,
                on_chunk=on_progress,
            )
            if fresh
            else []
        )
    summary = SampleLoadSummary(csv_path, tuple(accession_ids), len(accession_ids), n_already=already)
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
    allow_duplicate: bool = False,
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
    allow_duplicate : bool
        Accession it even when a primary sample of the same patient, timepoint, specimen type and
        collection minute exists (a second tube, confirmed by the user); otherwise that is refused.

    Returns
    -------
    str
        The new accession ID.

    Raises
    ------
    ImportValidationError
        Every broken rule (field, value, rule, fix); nothing was written.
    DuplicateAccessionError
        Without ``allow_duplicate``: the same patient, timepoint, type and minute is accessioned
        already (its accession IDs are on the error); nothing was written.
    """
    values = {
        str(name): str(value).strip()
        for name, value in fields.items()
        if value is not None and str(value).strip() != ""
    }
    unknown = sorted(set(values) - set(SampleIntake.model_fields))
    parsed, errors = parse_rows(
        [RawRow(1, {k: v for k, v in values.items() if k not in unknown})], SampleIntake, label=label
    )
    errors += [
        row_error(
            label, 1, name, values[name], "unknown field; expected " + ", ".join(SampleIntake.model_fields)
        )
        for name in unknown
    ]
    if not errors:
        with db.session() as session:
            enrolled = enrolment_dates(session)
        errors += [
            row_error(label, 1, column, value, rule)
            for column, value, rule in intake_problems(parsed[0].record, enrolled)
        ]
    if errors:
        raise ImportValidationError(label, errors)
    operator = operator or db.actor
    with db.transaction(actor=operator) as session:
        _lock_sample_intake(session)
        if parsed[0].record.source() is not None:
            fresh, _ = split_already_imported(session, label, parsed)
            if not fresh:
                raise ImportValidationError(
                    label,
                    [
                        row_error(
                            label,
                            1,
                            "source_id",
                            parsed[0].record.source_id,
                            "this tube is already accessioned (same source ID)",
                        )
                    ],
                )
        if not allow_duplicate:
            duplicates = same_accession(session, parsed[0].record)
            if duplicates:
                raise DuplicateAccessionError(
                    format_problem(
                        f"{', '.join(duplicates)} was already accessioned for this patient, timepoint, "
                        "specimen type and collection minute",
                        "one tube is accessioned once",
                        "open that sample instead, or confirm that this is a second tube",
                    ),
                    accession_ids=duplicates,
                )
        (accession_id,) = accession_samples(session, [parsed[0].record], operator=operator, location=location)
    logger.info("accessioned %s (%s) by %s", accession_id, label, operator)
    return accession_id
