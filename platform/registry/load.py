"""Import a registry folder (``registry/*.csv``) into the database, all or nothing.

Every row of every file is validated first: types, vocabularies and ranges (the row models of
:mod:`sabrkit.registry.rows`), then duplicates, references between files (and to records
already in the database) and date order. All problems are collected and raised together as one
:class:`~sabrkit.errors.ImportValidationError`; nothing is written unless every row is valid,
and then everything is written in one transaction.

Date rules: enrolment on or after the MDT date; last contact on or after enrolment; SABR courses
end on or after they start and start on or after the MDT date; visits, adverse events,
progression and death on or after enrolment; visits and progression on or before the last
contact; progression on or after the first SABR fraction; death on or after the last contact
and the progression.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from sabrkit.db.csv_import import HIDDEN_VALUE, ParsedRow, read_csv_rows, row_error
from sabrkit.db.database import Database
from sabrkit.errors import ImportValidationError, RowError, ValidationError, format_problem
from sabrkit.registry import models as m
from sabrkit.registry import rows as r

__all__ = ["REGISTRY_FILES", "LoadSummary", "load_registry_folder", "validate_registry_folder"]

logger = logging.getLogger(__name__)

#: Files of a registry folder, in load order, with their row model and target table.
REGISTRY_FILES: dict[str, tuple[type[r.ImportRow], type[m.Base]]] = {
    "patients.csv": (r.PatientRow, m.Patient),
    "identifiers.csv": (r.IdentifierRow, m.PatientIdentifier),
    "lesions.csv": (r.LesionRow, m.Lesion),
    "sabr_courses.csv": (r.SabrCourseRow, m.SabrCourse),
    "visits.csv": (r.VisitRow, m.Visit),
    "adverse_events.csv": (r.AdverseEventRow, m.AdverseEvent),
    "progression_events.csv": (r.ProgressionEventRow, m.ProgressionEvent),
    "deaths.csv": (r.DeathRow, m.Death),
}
_IDENTIFIER_COLUMNS = ("hospital_number", "family_name", "given_name", "date_of_birth")
#: Row fields checked on import but not stored (a course's patient is its lesion's patient).
_NOT_STORED: dict[str, set[str]] = {"sabr_courses.csv": {"study_id"}}


@dataclass(frozen=True)
class LoadSummary:
    """What an import wrote: the folder and the number of rows per table."""

    source: Path
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Rows written over all tables."""
        return sum(self.counts.values())

    def __str__(self) -> str:
        parts = ", ".join(f"{n} {table}" for table, n in self.counts.items())
        return f"{self.source}: imported {parts}"


@dataclass
class _Registry:
    """What the checks need to know about patients and lesions (file rows and database)."""

    patients: dict[str, r.PatientRow | m.Patient] = field(default_factory=dict)
    raw_study_ids: set[str] = field(default_factory=set)  # every study_id in patients.csv, valid or not
    lesions: dict[str, str] = field(default_factory=dict)  # lesion_id -> study_id
    raw_lesion_ids: set[str] = field(default_factory=set)  # every lesion_id in lesions.csv
    first_fraction: dict[str, date] = field(default_factory=dict)
    db_hospital_numbers: set[str] = field(default_factory=set)
    db_identifier_ids: set[str] = field(default_factory=set)
    db_visits: set[tuple[str, int]] = field(default_factory=set)
    progression_dates: dict[str, date] = field(default_factory=dict)  # database, then file
    death_dates: dict[str, date] = field(default_factory=dict)


def _registry_dir(folder: Path) -> Path:
    folder = Path(folder)
    if (folder / "registry" / "patients.csv").is_file():
        return folder / "registry"
    return folder


def _raw_values(path: Path, column: str) -> set[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return {(row.get(column) or "").strip() for row in csv.DictReader(handle)} - {""}


def _database_state(db: Database) -> _Registry:
    state = _Registry()
    with db.session() as session:
        for patient in session.scalars(select(m.Patient)):
            state.patients[patient.study_id] = patient
        state.lesions = dict(session.execute(select(m.Lesion.lesion_id, m.Lesion.study_id)).all())
        first = select(m.Lesion.study_id, func.min(m.SabrCourse.start_date)).join(m.SabrCourse.lesion)
        state.first_fraction = dict(session.execute(first.group_by(m.Lesion.study_id)).all())
        identifiers = session.execute(select(m.PatientIdentifier.study_id, m.PatientIdentifier.hospital_number))
        for study_id, hospital_number in identifiers:
            state.db_identifier_ids.add(study_id)
            state.db_hospital_numbers.add(hospital_number)
        state.db_visits = set(session.execute(select(m.Visit.study_id, m.Visit.visit_number)).all())
        progression = select(m.ProgressionEvent.study_id, m.ProgressionEvent.event_date)
        state.progression_dates = dict(session.execute(progression).all())
        state.death_dates = dict(session.execute(select(m.Death.study_id, m.Death.death_date)).all())
    return state


class _Checker:
    """Cross-row and cross-file rules; appends to ``errors``."""

    def __init__(self, state: _Registry, parsed: dict[str, list[ParsedRow[Any]]]):
        self.state = state
        self.parsed = parsed
        self.errors: list[RowError] = []

    def add(self, label: str, row: int, column: str, value: object, rule: str) -> None:
        self.errors.append(row_error(label, row, column, value, rule))

    def patient(self, label: str, row: ParsedRow[Any]) -> r.PatientRow | m.Patient | None:
        """The referenced patient, or None (an error is recorded unless its row merely failed)."""
        study_id = row.record.study_id
        if study_id in self.state.patients:
            return self.state.patients[study_id]
        if study_id not in self.state.raw_study_ids:
            self.add(label, row.row, "study_id", study_id, "unknown patient: not in patients.csv nor in the registry")
        return None

    def not_before(self, label: str, row: int, column: str, value: date, bound: date | None, what: str) -> None:
        if bound is not None and value < bound:
            self.add(label, row, column, value.isoformat(), f"must be on or after {what} ({bound.isoformat()})")

    def not_after(self, label: str, row: int, column: str, value: date, bound: date | None, what: str) -> None:
        if bound is not None and value > bound:
            self.add(label, row, column, value.isoformat(), f"must be on or before {what} ({bound.isoformat()})")

    def unique(self, label: str, key_column: str, key: Any, seen: set[Any], row: int, value: object) -> bool:
        if key in seen:
            self.add(label, row, key_column, value, "duplicate: appears more than once in the file")
            return False
        seen.add(key)
        return True

    def run(self) -> list[RowError]:
        self.patients()
        self.identifiers()
        self.lesions()
        self.sabr_courses()
        self.visits()
        self.adverse_events()
        self.progression_events()
        self.deaths()
        return self.errors

    def patients(self) -> None:
        label, seen = "patients.csv", set()
        for row in self.parsed[label]:
            p = row.record
            if not self.unique(label, "study_id", p.study_id, seen, row.row, p.study_id):
                continue
            if p.study_id in self.state.patients:
                self.add(label, row.row, "study_id", p.study_id, "patient is already in the registry")
                continue
            self.not_before(label, row.row, "enrolment_date", p.enrolment_date, p.mdt_date, "the MDT date")
            self.not_before(label, row.row, "last_contact_date", p.last_contact_date, p.enrolment_date, "enrolment")
        for row in self.parsed[label]:
            self.state.patients.setdefault(row.record.study_id, row.record)

    def identifiers(self) -> None:
        label, seen, numbers = "identifiers.csv", set(), set(self.state.db_hospital_numbers)
        for row in self.parsed[label]:
            ident = row.record
            patient = self.patient(label, row)
            if not self.unique(label, "study_id", ident.study_id, seen, row.row, ident.study_id):
                continue
            if ident.study_id in self.state.db_identifier_ids:
                self.add(label, row.row, "study_id", ident.study_id, "patient already has identifiers in the key table")
            if ident.hospital_number in numbers:
                self.add(label, row.row, "hospital_number", HIDDEN_VALUE,
                         "hospital number already belongs to another patient")
            numbers.add(ident.hospital_number)
            if patient is not None and ident.date_of_birth >= patient.mdt_date:
                self.add(label, row.row, "date_of_birth", HIDDEN_VALUE, "must be before the MDT date")

    def lesions(self) -> None:
        label, seen = "lesions.csv", set()
        for row in self.parsed[label]:
            lesion = row.record
            self.patient(label, row)
            if not self.unique(label, "lesion_id", lesion.lesion_id, seen, row.row, lesion.lesion_id):
                continue
            if lesion.lesion_id in self.state.lesions:
                self.add(label, row.row, "lesion_id", lesion.lesion_id, "lesion is already in the registry")
                continue
            expected = f"{lesion.study_id}-L{lesion.lesion_number}"
            if lesion.lesion_id != expected:
                self.add(label, row.row, "lesion_id", lesion.lesion_id,
                         f"must be <study_id>-L<lesion_number>, here {expected}")
            self.state.lesions[lesion.lesion_id] = lesion.study_id

    def sabr_courses(self) -> None:
        label = "sabr_courses.csv"
        for row in self.parsed[label]:
            course = row.record
            self.not_before(label, row.row, "end_date", course.end_date, course.start_date, "start_date")
            owner = self.state.lesions.get(course.lesion_id)
            if owner is None:
                if course.lesion_id not in self.state.raw_lesion_ids:
                    self.add(label, row.row, "lesion_id", course.lesion_id,
                             "unknown lesion: not in lesions.csv nor in the registry")
                continue
            if owner != course.study_id:
                self.add(label, row.row, "study_id", course.study_id, f"lesion {course.lesion_id} belongs to {owner}")
                continue
            patient = self.state.patients.get(course.study_id)
            if patient is not None:
                self.not_before(label, row.row, "start_date", course.start_date, patient.mdt_date, "the MDT date")
                self.not_after(label, row.row, "start_date", course.start_date, patient.last_contact_date,
                               "the last contact")
            first = self.state.first_fraction.get(course.study_id)
            self.state.first_fraction[course.study_id] = min(course.start_date, first or course.start_date)

    def visits(self) -> None:
        label, seen = "visits.csv", set(self.state.db_visits)
        for row in self.parsed[label]:
            visit = row.record
            patient = self.patient(label, row)
            key = (visit.study_id, visit.visit_number)
            if key in seen:
                self.add(label, row.row, "visit_number", visit.visit_number,
                         f"duplicate: {visit.study_id} already has visit {visit.visit_number}")
            seen.add(key)
            if patient is not None:
                self.not_before(label, row.row, "visit_date", visit.visit_date, patient.enrolment_date, "enrolment")
                self.not_after(label, row.row, "visit_date", visit.visit_date, patient.last_contact_date,
                               "the last contact")

    def adverse_events(self) -> None:
        label = "adverse_events.csv"
        for row in self.parsed[label]:
            patient = self.patient(label, row)
            if patient is not None:
                self.not_before(label, row.row, "onset_date", row.record.onset_date, patient.enrolment_date,
                                "enrolment")

    def progression_events(self) -> None:
        label, seen = "progression_events.csv", set(self.state.progression_dates)
        for row in self.parsed[label]:
            event = row.record
            patient = self.patient(label, row)
            if event.study_id in seen:
                self.add(label, row.row, "study_id", event.study_id,
                         "patient already has a progression (record the first progression only)")
                continue
            seen.add(event.study_id)
            self.state.progression_dates[event.study_id] = event.event_date
            if patient is None:
                continue
            self.not_before(label, row.row, "event_date", event.event_date, patient.enrolment_date, "enrolment")
            self.not_before(label, row.row, "event_date", event.event_date,
                            self.state.first_fraction.get(event.study_id), "the first SABR fraction")
            self.not_after(label, row.row, "event_date", event.event_date, patient.last_contact_date,
                           "the last contact")

    def deaths(self) -> None:
        label, seen = "deaths.csv", set(self.state.death_dates)
        for row in self.parsed[label]:
            death = row.record
            patient = self.patient(label, row)
            if death.study_id in seen:
                self.add(label, row.row, "study_id", death.study_id, "patient already has a death record")
                continue
            seen.add(death.study_id)
            if patient is None:
                continue
            self.not_before(label, row.row, "death_date", death.death_date, patient.enrolment_date, "enrolment")
            self.not_before(label, row.row, "death_date", death.death_date, patient.last_contact_date,
                            "the last contact")
            self.not_before(label, row.row, "death_date", death.death_date,
                            self.state.progression_dates.get(death.study_id), "the progression")


def _parse_folder(folder: Path) -> tuple[dict[str, list[ParsedRow[Any]]], list[RowError]]:
    missing = [name for name in REGISTRY_FILES if not (folder / name).is_file()]
    if missing:
        raise ValidationError(
            format_problem(
                f"registry folder {folder} lacks {', '.join(missing)}",
                "a registry folder holds " + ", ".join(REGISTRY_FILES),
                "add the missing files (a file with only its header row when there are no records)",
            )
        )
    parsed: dict[str, list[ParsedRow[Any]]] = {}
    errors: list[RowError] = []
    for name, (row_model, _) in REGISTRY_FILES.items():
        hidden = _IDENTIFIER_COLUMNS if name == "identifiers.csv" else ()
        parsed[name], file_errors = read_csv_rows(folder / name, row_model, hidden_columns=hidden)
        errors.extend(file_errors)
    return parsed, errors


def validate_registry_folder(db: Database, folder: Path) -> dict[str, list[ParsedRow[Any]]]:
    """Validate every row of a registry folder against the rules and the database; write nothing.

    Returns the parsed rows per file; raises :class:`ImportValidationError` listing every problem.
    """
    folder = _registry_dir(folder)
    parsed, errors = _parse_folder(folder)
    state = _database_state(db)
    # references to rows that exist but failed their own checks are not reported again
    state.raw_study_ids = _raw_values(folder / "patients.csv", "study_id")
    state.raw_lesion_ids = _raw_values(folder / "lesions.csv", "lesion_id")
    errors.extend(_Checker(state, parsed).run())
    if errors:
        order = {name: index for index, name in enumerate(REGISTRY_FILES)}
        errors.sort(key=lambda e: (order.get(e.column.split(":", 1)[0], len(order)), e.row))
        raise ImportValidationError(str(folder), errors)
    return parsed


def load_registry_folder(db: Database, folder: Path) -> LoadSummary:
    """Import the registry CSV files of ``folder`` in one transaction, or nothing at all.

    Parameters
    ----------
    db : Database
        Migrated database (:meth:`Database.upgrade`); may already hold other patients.
    folder : Path
        Folder holding the eight files of :data:`REGISTRY_FILES`, or a cohort folder with a
        ``registry/`` sub-folder (the layout written by ``sabrkit.synthetic``).

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
        If a file is missing.
    """
    folder = _registry_dir(folder)
    parsed = validate_registry_folder(db, folder)
    counts: dict[str, int] = {}
    with db.transaction() as session:
        for name, (_, model) in REGISTRY_FILES.items():
            exclude = _NOT_STORED.get(name, set())
            records = [model(**row.record.model_dump(exclude=exclude)) for row in parsed[name]]
            session.add_all(records)
            session.flush()
            counts[model.__tablename__] = len(records)
    summary = LoadSummary(folder, counts)
    logger.info("%s", summary)
    return summary
