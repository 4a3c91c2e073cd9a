"""Import registry records (a folder of CSV files, or a REDCap export) into the database, all or nothing.

Every row of every file is validated first: types, vocabularies and ranges (the row models of
:mod:`sabrkit.registry.rows`), then duplicates, references between files (and to records
already in the database), date order, visit windows and CTCAE grades
(:mod:`sabrkit.registry.checks`). All problems are collected and raised together as one
:class:`~sabrkit.errors.ImportValidationError` (row, column, value, rule); nothing is written
unless every row is valid, and then everything is written in one transaction, with one audit
entry per row (:func:`sabrkit.audit.insert_audited`).

A registry folder holds the eight files of :data:`REQUIRED_FILES` and, optionally, those of
:data:`OPTIONAL_FILES`. REDCap exports are turned into the same files by
:mod:`sabrkit.registry.redcap` and checked by the same rules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from sabrkit.audit import insert_audited
from sabrkit.db.csv_import import ImportRow, ParsedRow, RawRow, check_header, parse_rows, read_raw_rows
from sabrkit.db.database import Database
from sabrkit.errors import ImportValidationError, RowError, ValidationError, format_problem
from sabrkit.registry import rows as r
from sabrkit.registry import tables as m
from sabrkit.registry.checks import RegistryChecker, RegistryState, database_state

__all__ = [
    "REGISTRY_FILES",
    "REQUIRED_FILES",
    "OPTIONAL_FILES",
    "LoadSummary",
    "RegistrySource",
    "read_registry_folder",
    "validate_source",
    "write_registry",
    "load_registry_folder",
    "validate_registry_folder",
]

logger = logging.getLogger(__name__)

#: Every registry file, in load order, with its row model and target table.
REGISTRY_FILES: dict[str, tuple[type[ImportRow], type[Any]]] = {
    "patients.csv": (r.PatientRow, m.Patient),
    "identifiers.csv": (r.IdentifierRow, m.PatientIdentifier),
    "eligibility.csv": (r.EligibilityRow, m.Eligibility),
    "lesions.csv": (r.LesionRow, m.Lesion),
    "sabr_courses.csv": (r.SabrCourseRow, m.SabrCourse),
    "systemic_therapy_lines.csv": (r.TherapyLineRow, m.SystemicTherapyLine),
    "visits.csv": (r.VisitRow, m.Visit),
    "adverse_events.csv": (r.AdverseEventRow, m.AdverseEvent),
    "tumour_assessments.csv": (r.TumourAssessmentRow, m.TumourAssessment),
    "lesion_assessments.csv": (r.LesionAssessmentRow, m.LesionAssessment),
    "progression_events.csv": (r.ProgressionEventRow, m.ProgressionEvent),
    "deaths.csv": (r.DeathRow, m.Death),
    "off_study.csv": (r.OffStudyRow, m.OffStudy),
}
#: Files every registry folder has (a header-only file when there are no records).
REQUIRED_FILES = (
    "patients.csv",
    "identifiers.csv",
    "lesions.csv",
    "sabr_courses.csv",
    "visits.csv",
    "adverse_events.csv",
    "progression_events.csv",
    "deaths.csv",
)
#: Files a folder may have; a missing one means no records of that kind.
OPTIONAL_FILES = tuple(name for name in REGISTRY_FILES if name not in REQUIRED_FILES)
#: Rows written (and audited) per INSERT batch inside the import's single transaction.
WRITE_CHUNK = 20_000
IDENTIFIER_COLUMNS = ("hospital_number", "family_name", "given_name", "date_of_birth")
#: Row fields checked on import but not stored (a course's patient is its lesion's patient).
_NOT_STORED: dict[str, set[str]] = {"sabr_courses.csv": {"study_id"}}


@dataclass(frozen=True)
class LoadSummary:
    """What an import wrote: the source and the number of rows per table."""

    source: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Rows written over all tables."""
        return sum(self.counts.values())

    def __str__(self) -> str:
        parts = ", ".join(f"{n} {table}" for table, n in self.counts.items() if n)
        return f"{self.source}: imported {parts or 'nothing'}"


def _same_place(error: RowError) -> RowError:
    return error


@dataclass
class RegistrySource:
    """Raw registry rows per file, however they were read (CSV folder, REDCap export, CLI entry).

    ``relabel`` turns an error about ``"<file>:<column>"`` into one about the source's own
    coordinates (a REDCap export names its field and row); ``errors`` holds problems found
    while reading (unknown columns, events, bad structure).
    """

    name: str
    rows: dict[str, list[RawRow]]
    headers: dict[str, list[str]] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    relabel: Callable[[RowError], RowError] = _same_place
    order: Callable[[RowError], Any] | None = None


def _registry_dir(folder: Path) -> Path:
    folder = Path(folder)
    if (folder / "registry" / "patients.csv").is_file():
        return folder / "registry"
    return folder


def read_registry_folder(folder: Path, encoding: str | None = None) -> RegistrySource:
    """Read the CSV files of a registry folder (or of a cohort folder's ``registry/``; ``encoding``: default UTF-8)."""
    folder = _registry_dir(folder)
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ValidationError(
            format_problem(
                f"registry folder {folder} lacks {', '.join(missing)}",
                "a registry folder holds "
                + ", ".join(REQUIRED_FILES)
                + " (optional: "
                + ", ".join(OPTIONAL_FILES)
                + ")",
                "add the missing files (a file with only its header row when there are no records)",
            )
        )
    source = RegistrySource(name=str(folder), rows={})
    for name, (model, _) in REGISTRY_FILES.items():
        path = folder / name
        if not path.is_file():
            source.rows[name] = []
            continue
        header, rows, errors = read_raw_rows(path, encoding)
        source.headers[name], source.rows[name] = header, rows
        source.errors.extend(check_header(header, model, name) + errors)
    return source


def validate_source(
    db: Database, source: RegistrySource, *, prepare_state: Callable[[RegistryState], None] | None = None
) -> dict[str, list[ParsedRow[Any]]]:
    """Validate every row of ``source`` against the rules and the database; write nothing.

    ``prepare_state`` may adjust what the rules know before they run (single entries move a
    patient's last contact to the new record's date). Validation consumes ``source.rows`` (the
    raw text is dropped once parsed, to bound the memory of large imports).

    Returns
    -------
    dict
        Parsed rows per registry file.

    Raises
    ------
    ImportValidationError
        Listing every problem (row, column, value, rule) in the source's own coordinates.
    """
    errors = list(source.errors)
    # references to rows that exist but failed their own checks are not reported again
    raw_study_ids = {raw.values.get("study_id", "") for raw in source.rows.get("patients.csv", [])}
    raw_lesion_ids = {raw.values.get("lesion_id", "") for raw in source.rows.get("lesions.csv", [])}
    parsed: dict[str, list[ParsedRow[Any]]] = {}
    broken_headers = {error.column.split(":", 1)[0] for error in errors if error.row == 1}
    for name, (model, _) in REGISTRY_FILES.items():
        if name in broken_headers:  # every row would fail the same way
            parsed[name] = []
            continue
        hidden = IDENTIFIER_COLUMNS if name == "identifiers.csv" else ()
        parsed[name], file_errors = parse_rows(
            source.rows.get(name, []), model, label=name, hidden_columns=hidden
        )
        errors.extend(file_errors)
        source.rows[name] = []  # the parsed rows replace the raw text (memory of large imports)
    state = database_state(db)
    _refuse_already_loaded(source, parsed, state)
    state.raw_study_ids, state.raw_lesion_ids = raw_study_ids, raw_lesion_ids
    if prepare_state is not None:
        prepare_state(state)
    errors.extend(RegistryChecker(state, parsed).run())
    if errors:
        order = {name: index for index, name in enumerate(REGISTRY_FILES)}
        errors.sort(key=source.order or (lambda e: (order.get(e.column.split(":", 1)[0], len(order)), e.row)))
        raise ImportValidationError(source.name, [source.relabel(error) for error in errors])
    return parsed


def _refuse_already_loaded(
    source: RegistrySource, parsed: dict[str, list[ParsedRow[Any]]], state: RegistryState
) -> None:
    """One message, instead of one per row, when patients of ``patients.csv`` are already in the registry."""
    rows = parsed.get("patients.csv", [])
    loaded = [row for row in rows if row.record.study_id in state.patients]
    if not loaded:
        return
    shown = ", ".join(row.record.study_id for row in loaded[:5]) + (", ..." if len(loaded) > 5 else "")
    rule = (
        f"{len(loaded)} of the {len(rows)} patient(s) of patients.csv are already in the registry ({shown}): "
        "this folder (or part of it) was imported before; nothing was imported. Fix: import a folder holding "
        "only new patients (enter follow-up of known patients with sabrkit registry visit/ae/..., or a folder "
        "whose patients.csv has only its header)"
    )
    error = RowError(loaded[0].row, "patients.csv:study_id", f"{len(loaded)} patient(s)", rule)
    raise ImportValidationError(source.name, [source.relabel(error)])


def write_registry(
    db: Database,
    parsed: dict[str, list[ParsedRow[Any]]],
    source: str,
    *,
    actor: str | None = None,
    reason: str | None = None,
    also: Callable[[Session], None] | None = None,
) -> LoadSummary:
    """Write validated rows in one transaction (with their audit entries); returns the counts.

    ``also`` runs in the same transaction after the inserts (e.g. moving the last contact).
    """
    counts: dict[str, int] = {}
    with db.transaction(actor=actor, reason=reason) as session:
        for name, (_, model) in REGISTRY_FILES.items():
            exclude = _NOT_STORED.get(name, set())
            rows = parsed.get(name, [])
            if rows or name in REQUIRED_FILES:
                counts[model.__tablename__] = 0
            for start in range(0, len(rows), WRITE_CHUNK):  # bounded memory for large imports
                records = [
                    row.record.model_dump(exclude=exclude) for row in rows[start : start + WRITE_CHUNK]
                ]
                counts[model.__tablename__] += insert_audited(session, model, records)
        if also is not None:
            also(session)
    summary = LoadSummary(source, counts)
    logger.info("%s", summary)
    return summary


def validate_registry_folder(db: Database, folder: Path) -> dict[str, list[ParsedRow[Any]]]:
    """Validate every row of a registry folder against the rules and the database; write nothing.

    Returns the parsed rows per file; raises :class:`ImportValidationError` listing every problem.
    """
    return validate_source(db, read_registry_folder(folder))


def load_registry_folder(
    db: Database, folder: Path, *, actor: str | None = None, encoding: str | None = None
) -> LoadSummary:
    """Import the registry CSV files of ``folder`` in one transaction, or nothing at all.

    Parameters
    ----------
    db : Database
        Migrated database (:meth:`Database.upgrade`); may already hold other patients.
    folder : Path
        Folder holding the files of :data:`REQUIRED_FILES` (and any of :data:`OPTIONAL_FILES`),
        or a cohort folder with a ``registry/`` sub-folder (the layout of ``sabrkit.synthetic``).
    actor : str, optional
        Who imports (audit log); default: the Database's actor.
    encoding : str, optional
        Text encoding of the CSV files (default UTF-8).

    Returns
    -------
    LoadSummary
        Rows written per table.

    Raises
    ------
    ImportValidationError
        Listing every bad row of every file (``column`` reads ``"<file>:<column>"``); nothing
        was written. Values of direct identifiers are hidden in the messages.
    ValidationError
        If a required file is missing.
    """
    from sabrkit.audit.checkpoint import checkpoint_if_keyed

    source = read_registry_folder(folder, encoding)
    summary = write_registry(db, validate_source(db, source), source.name, actor=actor)
    checkpoint_if_keyed(db)
    return summary
