"""Enter single records (the CLI's ``sabrkit registry enrol/visit/ae/...``), checked like imports.

Each function takes the values as the coordinator typed them (text, as in a CSV cell), runs the
row model and every cross-record rule of :mod:`sabrkit.registry.checks` against the database,
and writes in one audited transaction. Problems are raised together as one
:class:`~sabrkit.errors.ImportValidationError` naming the field, value and rule.

A record dated after the patient's last contact (a visit, an assessment, an adverse event, a
progression) moves the last contact to that date in the same transaction; the audit log shows
it as an update of ``patients`` with the reason given (or ``"last contact: <record> on <date>"``).

:func:`correct` and :func:`delete` change what was entered; both need a reason.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from sabrkit.audit import AuditError
from sabrkit.db.csv_import import RawRow
from sabrkit.db.database import Database
from sabrkit.errors import NotFoundError, RowError, ValidationError, format_problem
from sabrkit.registry import tables as m
from sabrkit.registry.checks import RegistryState
from sabrkit.registry.load import REGISTRY_FILES, LoadSummary, RegistrySource, validate_source, write_registry
from sabrkit.registry.rules import check_patient

__all__ = ["record", "enrol", "correct", "delete", "CAPTURE_KINDS", "MOVES_LAST_CONTACT"]

logger = logging.getLogger(__name__)

#: Entry kinds of the CLI and the registry file each writes.
CAPTURE_KINDS: dict[str, str] = {
    "patient": "patients.csv",
    "identifiers": "identifiers.csv",
    "eligibility": "eligibility.csv",
    "lesion": "lesions.csv",
    "course": "sabr_courses.csv",
    "therapy": "systemic_therapy_lines.csv",
    "visit": "visits.csv",
    "ae": "adverse_events.csv",
    "assessment": "tumour_assessments.csv",
    "lesion-assessment": "lesion_assessments.csv",
    "progression": "progression_events.csv",
    "death": "deaths.csv",
    "off-study": "off_study.csv",
}
#: Kinds whose date moves the patient's last contact forward: kind -> date column.
MOVES_LAST_CONTACT: dict[str, str] = {
    "course": "end_date",
    "visit": "visit_date",
    "ae": "onset_date",
    "assessment": "assessment_date",
    "lesion-assessment": "assessment_date",
    "progression": "event_date",
}


def _cells(values: Mapping[str, object]) -> dict[str, str]:
    return {
        key: str(value).strip() for key, value in values.items() if value is not None and str(value).strip()
    }


def _relabel(error: RowError) -> RowError:
    return RowError(error.row, error.column.split(":", 1)[-1], error.value, error.rule)


def _study_id(kind: str, cells: Mapping[str, str]) -> str:
    if "study_id" in cells:
        return cells["study_id"]
    return cells.get("lesion_id", "").rsplit("-L", 1)[0]


def record(
    db: Database,
    entries: Mapping[str, Mapping[str, object] | Sequence[Mapping[str, object]]],
    *,
    actor: str | None = None,
    reason: str | None = None,
) -> LoadSummary:
    """Validate and write records of the given kinds, in one transaction.

    Parameters
    ----------
    entries : mapping
        Kind (:data:`CAPTURE_KINDS`) -> field values, or a list of them (text or values; empty
        ones are dropped). Errors name the field (and, for lists, the record's position as row).
    actor, reason
        Who and why (audit log). A reason is required when an existing row changes.

    Raises
    ------
    ImportValidationError
        Every broken rule (``column`` is the field name); nothing was written.
    """
    unknown = [kind for kind in entries if kind not in CAPTURE_KINDS]
    if unknown:
        raise ValidationError(
            format_problem(
                f"entry kind(s) {unknown}",
                f"kinds are {', '.join(CAPTURE_KINDS)}",
                "use one of the listed kinds",
            )
        )
    cells = {
        kind: [_cells(v) for v in ([values] if isinstance(values, Mapping) else values)]
        for kind, values in entries.items()
    }
    rows = {
        CAPTURE_KINDS[kind]: [RawRow(i, v) for i, v in enumerate(values, start=1)]
        for kind, values in cells.items()
    }
    moves: dict[str, dt.date] = {}
    for kind, column in MOVES_LAST_CONTACT.items():
        for values in cells.get(kind, []):
            try:
                day = dt.date.fromisoformat(values.get(column, ""))
            except ValueError:
                continue  # the row model reports the bad date
            study_id = _study_id(kind, values)
            moves[study_id] = max(day, moves.get(study_id, day))

    def prepare(state: RegistryState) -> None:
        for study_id, day in moves.items():
            patient = state.patients.get(study_id)
            if isinstance(patient, m.Patient) and day > patient.last_contact_date:
                patient.last_contact_date = day

    name = "sabrkit registry " + "+".join(entries)
    parsed = validate_source(
        db, RegistrySource(name=name, rows=rows, relabel=_relabel), prepare_state=prepare
    )

    def move_last_contact(session: Session) -> None:
        for study_id, day in moves.items():
            patient = session.get(m.Patient, study_id)
            if patient is not None and day > patient.last_contact_date:
                patient.last_contact_date = day

    needs_move = bool(moves) and _moves_forward(db, moves)
    if needs_move and reason is None:
        kind = next(k for k in entries if k in MOVES_LAST_CONTACT)
        reason = f"last contact: {kind} on {max(moves.values()).isoformat()}"
    return write_registry(
        db, parsed, name, actor=actor, reason=reason, also=move_last_contact if needs_move else None
    )


def _moves_forward(db: Database, moves: Mapping[str, dt.date]) -> bool:
    with db.session() as session:
        current = dict(
            session.execute(
                select(m.Patient.study_id, m.Patient.last_contact_date).where(
                    m.Patient.study_id.in_(list(moves))
                )
            ).all()
        )
    return any(study_id in current and day > current[study_id] for study_id, day in moves.items())


def enrol(
    db: Database,
    patient: Mapping[str, object],
    eligibility: Mapping[str, object],
    identifiers: Mapping[str, object] | None = None,
    *,
    actor: str | None = None,
) -> LoadSummary:
    """Enrol a patient: baseline, eligibility and MDT decision (and key-table row), in one transaction."""
    entries: dict[str, Mapping[str, object]] = {
        "patient": patient,
        "eligibility": {**eligibility, "study_id": patient.get("study_id")},
    }
    if identifiers:
        entries["identifiers"] = {**identifiers, "study_id": patient.get("study_id")}
    return record(db, entries, actor=actor)


def _model(table: str) -> type[Any]:
    for _, model in REGISTRY_FILES.values():
        if model.__tablename__ == table:
            return model
    raise NotFoundError(
        format_problem(
            f"table {table!r}",
            "a registry table",
            "use one of " + ", ".join(mod.__tablename__ for _, mod in REGISTRY_FILES.values()),
        )
    )


def _row(session: Session, table: str, row_key: str) -> Any:
    model = _model(table)
    key_column = inspect(model).primary_key[0]
    key: Any = row_key
    if key_column.type.python_type is int:
        try:
            key = int(row_key)
        except ValueError:
            raise ValidationError(
                format_problem(
                    f"{table} row key {row_key!r}",
                    f"{table} rows are numbered (an integer key)",
                    "give the row number shown by an export or `sabrkit registry audit history`",
                ),
                field="row_key",
            ) from None
    found = session.get(model, key)
    if found is None:
        raise NotFoundError(
            format_problem(
                f"{table} row {row_key}",
                "the row must exist",
                "list the rows with `sabrkit registry audit history` or an export",
            )
        )
    return found


def correct(
    db: Database,
    table: str,
    row_key: str,
    changes: Mapping[str, str],
    *,
    reason: str,
    actor: str | None = None,
) -> None:
    """Change columns of one row, with a reason; the patient's whole record is re-checked.

    The changed row is validated by its table's row model, then every row and cross-record rule
    (:func:`sabrkit.registry.rules.patient_rule_errors`: date order, visit windows, nothing after
    death, no future date ...) is re-run over the patient's record inside the transaction; a
    broken rule rolls the change back.

    Raises
    ------
    ValidationError
        A value the field does not accept (``field`` names it).
    ImportValidationError
        The change breaks a cross-record rule (every broken rule listed); nothing was changed.
    NotFoundError
        No such table or row.
    """
    if not reason or not reason.strip():
        raise AuditError(
            format_problem(
                f"a correction of {table} row {row_key}", "every change needs a reason", "pass --reason"
            )
        )
    model = _model(table)
    row_model = next(rm for rm, mod in REGISTRY_FILES.values() if mod is model)
    with db.transaction(actor=actor, reason=reason) as session:
        found = _row(session, table, row_key)
        current = {c.key: getattr(found, c.key) for c in inspect(model).column_attrs}
        merged = {k: v for k, v in current.items() if v is not None} | dict(changes)
        if model is m.SabrCourse:
            merged["study_id"] = found.lesion.study_id
        unknown = sorted(set(changes) - set(row_model.model_fields))
        if unknown:
            raise ValidationError(
                format_problem(
                    f"column(s) {unknown} of {table}",
                    "only entered fields can be corrected",
                    "use one of " + ", ".join(row_model.model_fields),
                )
            )
        try:
            checked = row_model.model_validate({k: v for k, v in merged.items() if v is not None and v != ""})
        except PydanticValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
            )
            first = exc.errors()[0].get("loc") or ("",)
            raise ValidationError(
                format_problem(
                    f"correction of {table} row {row_key}", problems, "give values the field accepts"
                ),
                field=str(first[0]),
            ) from None
        for column in changes:
            setattr(found, column, getattr(checked, column))
        check_patient(session, _owner(found), what=f"correction of {table} row {row_key}")
    logger.info("corrected %s row %s: %s", table, row_key, ", ".join(changes))


def _owner(found: Any) -> str:
    """The study ID of the patient a registry row belongs to."""
    if isinstance(found, m.Patient):
        return str(found.study_id)
    study_id = getattr(found, "study_id", None)
    if study_id is None:
        study_id = str(getattr(found, "lesion_id", "")).rsplit("-L", 1)[0]
    return str(study_id)


def delete(db: Database, table: str, row_key: str, *, reason: str, actor: str | None = None) -> None:
    """Delete one row with a reason (the audit log keeps its last values).

    A patient or lesion that other records still refer to is not deleted (delete those first);
    the rest of the patient's record is re-checked (an off-study record for death needs the
    death record ...).

    Raises
    ------
    ValidationError
        The row is still referred to, or its removal breaks a rule of the patient's record.
    """
    with db.transaction(actor=actor, reason=reason) as session:
        found = _row(session, table, row_key)
        dependants = _dependants(session, found)
        if dependants:
            raise ValidationError(
                format_problem(
                    f"{table} row {row_key} is referred to by {', '.join(dependants)}",
                    "a record is deleted only once nothing refers to it",
                    "delete (or correct) the referring records first, each with a reason",
                ),
                field="row_key",
            )
        owner = _owner(found)
        session.delete(found)
        if not isinstance(found, m.Patient):
            check_patient(session, owner, what=f"deletion of {table} row {row_key}")
    logger.info("deleted %s row %s", table, row_key)


def _dependants(session: Session, found: Any) -> list[str]:
    """Tables (with row counts) whose rows refer to ``found`` by a foreign key (registry or biobank)."""
    from sqlalchemy import func

    own = found.__table__
    names = []
    for table in own.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table is not own or table is own:
                continue
            value = getattr(found, fk.column.key)
            n = session.scalar(select(func.count()).select_from(table).where(fk.parent == value)) or 0
            if n:
                names.append(f"{n} {table.name} row(s)")
    return names
