"""Enter single records (the CLI's ``sabrkit registry enrol/visit/ae/...``), checked like imports.

Each function takes the values as the coordinator typed them (text, as in a CSV cell), runs the
row model and every cross-record rule of :mod:`sabrkit.registry.checks` against the database,
and writes in one audited transaction. Problems are raised together as one
:class:`~sabrkit.errors.ImportValidationError` naming the field, value and rule.

A record dated after the patient's last contact (a visit, an assessment, an adverse event, a
progression) moves the last contact to that date in the same transaction; the audit log shows
it as an update of ``patients`` with the reason given (or ``"last contact: <record> on <date>"``).

:func:`correct` and :func:`delete` change what was entered; both need a reason. A deletion
removes the row from its table; the audit log keeps its last values, from which :func:`restore`
enters it again (listed by :func:`deleted_records`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from sabrkit.audit import AuditError, AuditLogEntry
from sabrkit.audit.chain import REDACTED_PREFIX, audited_table, python_value
from sabrkit.db.csv_import import RawRow
from sabrkit.db.database import Database
from sabrkit.errors import NotFoundError, RowError, ValidationError, format_problem
from sabrkit.registry import tables as m
from sabrkit.registry.checks import RegistryState
from sabrkit.registry.load import REGISTRY_FILES, LoadSummary, RegistrySource, validate_source, write_registry
from sabrkit.registry.rules import check_patient

__all__ = [
    "record",
    "enrol",
    "correct",
    "delete",
    "restore",
    "deleted_records",
    "DeletedRecord",
    "CAPTURE_KINDS",
    "MOVES_LAST_CONTACT",
    "RESTORE_REASON_PREFIX",
]

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
    _require_reason(reason, f"a correction of {table} row {row_key}")
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


def _require_reason(reason: str | None, what: str) -> None:
    """Refuse a change without a reason (the audit log records why every change was made)."""
    if not reason or not reason.strip():
        raise AuditError(format_problem(what, "every change needs a reason", "pass --reason"))


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


# ---- deleted records and their restore ----------------------------------------------------------
#
# A deletion removes the row from its table; the audit log's ``delete`` entry keeps every column of
# it as it was (``old_values``, plain values by column name, see sabrkit.audit.chain). That entry is
# all :func:`restore` needs: the table's model gives each column's type, so the logged values are
# turned back into the column's values (:func:`sabrkit.audit.chain.python_value`) and the row is
# inserted again under its own key, checked like an entry and logged as an insert.

#: Reason prefix of a restore's audit entries: ``"restore of deletion <audit id>: <reason>"``.
RESTORE_REASON_PREFIX = "restore of deletion"


@dataclass(frozen=True)
class DeletedRecord:
    """A registry row whose latest audit entry is its deletion and which is still absent."""

    audit_id: int
    table: str
    row_key: str
    study_id: str
    actor: str
    deleted_at: dt.datetime
    reason: str | None
    #: The row's last values as logged (redacted identifier columns hold a salted digest).
    values: dict[str, Any]
    #: Why it cannot be restored as is (None: it can be tried).
    not_restorable: str | None = None


def _registry_tables() -> dict[str, type[Any]]:
    return {model.__tablename__: model for _, model in REGISTRY_FILES.values()}


def _redaction_note(model: type[Any], values: Mapping[str, Any]) -> str | None:
    redacted = [
        name
        for name in getattr(model, "__audit_redacted_columns__", ())
        if isinstance(values.get(name), str) and values[name].startswith(REDACTED_PREFIX)
    ]
    if not redacted:
        return None
    return (
        f"the audit log keeps only salted digests of {', '.join(sorted(redacted))} (direct identifiers never "
        "enter the log), so the row cannot be rebuilt from it"
    )


def deleted_records(
    db: Database, *, table: str | None = None, study_id: str | None = None
) -> list[DeletedRecord]:
    """Registry rows deleted and not entered again: table, key, who, when, why, last values.

    For each (table, row key) of a registry table the newest ``delete`` entry of the audit log
    is taken; it is listed when no row with that key is in the table now (a restored or
    re-entered row is not listed). Newest deletion first.
    """
    tables = _registry_tables()
    if table is not None:
        _model(table)
    wanted = [table] if table is not None else list(tables)
    # deletions are few; the log may hold millions of import entries, so start from the deletions
    # and ask the (table_name, row_key) index whether anything happened to each row since
    query = (
        select(AuditLogEntry)
        .where(AuditLogEntry.action == "delete", AuditLogEntry.table_name.in_(wanted))
        .order_by(AuditLogEntry.id.desc())
    )
    found: list[DeletedRecord] = []
    seen: set[tuple[str, str]] = set()
    with db.session() as session:
        for entry in session.scalars(query):
            if (entry.table_name, entry.row_key) in seen:
                continue
            seen.add((entry.table_name, entry.row_key))
            later = session.scalar(
                select(func.count())
                .select_from(AuditLogEntry)
                .where(
                    AuditLogEntry.table_name == entry.table_name,
                    AuditLogEntry.row_key == entry.row_key,
                    AuditLogEntry.id > entry.id,
                )
            )
            if later or _row_exists(session, tables[entry.table_name], entry.row_key):
                continue
            model = tables[entry.table_name]
            values = json.loads(entry.old_values or "{}")
            owner = str(values.get("study_id") or str(values.get("lesion_id", "")).rsplit("-L", 1)[0])
            if study_id is not None and owner != study_id:
                continue
            found.append(
                DeletedRecord(
                    audit_id=entry.id,
                    table=entry.table_name,
                    row_key=entry.row_key,
                    study_id=owner,
                    actor=entry.actor,
                    deleted_at=entry.recorded_at,
                    reason=entry.reason,
                    values=values,
                    not_restorable=_redaction_note(model, values),
                )
            )
    return found


def _row_exists(session: Session, model: type[Any], row_key: str) -> bool:
    key_column = inspect(model).primary_key[0]
    try:
        key: Any = int(row_key) if key_column.type.python_type is int else row_key
    except ValueError:
        return False
    return session.get(model, key) is not None


def restore(
    db: Database, table: str, row_key: str, *, reason: str, actor: str | None = None
) -> DeletedRecord:
    """Enter a deleted registry row again, exactly as the audit log kept it at its deletion.

    The newest ``delete`` entry of the row gives every column's value; the row is inserted under
    its own key in one transaction, checked by its table's row model and by every row and
    cross-record rule of the patient's record (:func:`sabrkit.registry.rules.check_patient`, as
    after an entry or a correction), and logged as an insert with the reason
    ``"restore of deletion <audit id>: <reason>"``. A record dated after the patient's last
    contact moves the last contact, as an entry does.

    Returns
    -------
    DeletedRecord
        The deletion that was undone.

    Raises
    ------
    AuditError
        No reason given.
    NotFoundError
        No such registry table, or the row was never deleted.
    ValidationError
        A row with that key exists again; the patient (or lesion) it belongs to no longer exists;
        another row now holds its unique values; its identifiers are kept only as digests.
    ImportValidationError
        The restored row breaks a rule of the patient's record as it is now (every broken rule).
    """
    _require_reason(reason, f"a restore of {table} row {row_key}")
    model = _model(table)
    row_model = next(rm for rm, mod in REGISTRY_FILES.values() if mod is model)
    key_column = inspect(model).primary_key[0]
    with db.session() as session:
        entry = session.scalars(
            select(AuditLogEntry)
            .where(
                AuditLogEntry.table_name == table,
                AuditLogEntry.row_key == row_key,
                AuditLogEntry.action == "delete",
            )
            .order_by(AuditLogEntry.id.desc())
            .limit(1)
        ).first()
    if entry is None:
        raise NotFoundError(
            format_problem(
                f"{table} row {row_key}",
                "only a deleted row can be restored, and the audit log holds no deletion of this one",
                "list what can be restored with `sabrkit registry deleted`",
            )
        )
    values = json.loads(entry.old_values or "{}")
    owner = str(values.get("study_id") or str(values.get("lesion_id", "")).rsplit("-L", 1)[0])
    deleted = DeletedRecord(
        audit_id=entry.id,
        table=table,
        row_key=row_key,
        study_id=owner,
        actor=entry.actor,
        deleted_at=entry.recorded_at,
        reason=entry.reason,
        values=values,
        not_restorable=_redaction_note(model, values),
    )
    what = f"restore of {table} row {row_key} (deletion {entry.id})"
    if deleted.not_restorable:
        raise ValidationError(
            format_problem(
                what, deleted.not_restorable, "enter the record again with `sabrkit registry enrol`"
            ),
            field="row_key",
        )
    columns = {column.name: (key, column) for key, column in audited_table(inspect(model)).columns}
    unknown = sorted(set(values) - set(columns))
    if unknown:
        raise ValidationError(
            format_problem(
                f"{what}: logged column(s) {unknown}",
                f"the table {table} no longer has them (its schema changed since the deletion)",
                "enter the record again by hand",
            ),
            field="row_key",
        )
    typed = {key: python_value(values.get(name), column) for name, (key, column) in columns.items()}
    full_reason = f"{RESTORE_REASON_PREFIX} {entry.id}: {reason.strip()}"
    with db.transaction(actor=actor, reason=full_reason) as session:
        key = typed[inspect(model).get_property_by_column(key_column).key]
        if session.get(model, key) is not None:
            again = session.scalars(
                select(AuditLogEntry)
                .where(
                    AuditLogEntry.table_name == table,
                    AuditLogEntry.row_key == row_key,
                    AuditLogEntry.action == "insert",
                    AuditLogEntry.id > entry.id,
                )
                .order_by(AuditLogEntry.id.desc())
                .limit(1)
            ).first()
            since = (
                f" (audit entry {again.id}, {again.actor}, {again.recorded_at:%Y-%m-%d %H:%M}: {again.reason or 'entered'})"
                if again is not None
                else ""
            )
            raise ValidationError(
                format_problem(
                    f"{what}: {table} row {row_key} exists again{since}",
                    "a deleted row is restored only while its key is free (so never twice)",
                    f"correct the existing row instead: `sabrkit registry correct {table} {row_key} --set ...`",
                ),
                field="row_key",
            )
        refusals = _missing_parents(session, model, typed) or _unique_conflicts(session, model, typed, table)
        if refusals:
            raise ValidationError(format_problem(what, *refusals[0]), field="row_key")
        try:
            row_model.model_validate(
                {
                    k: v
                    for k, v in ({**typed, "study_id": owner} if model is m.SabrCourse else typed).items()
                    if v is not None
                }
            )
        except PydanticValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
            )
            raise ValidationError(
                format_problem(
                    what,
                    problems,
                    "the kept values no longer pass the table's checks: enter the record again by hand",
                ),
                field=str((exc.errors()[0].get("loc") or ("",))[0]),
            ) from None
        restored = model(**typed)
        session.add(restored)
        session.flush()
        kind = next((k for k, f in CAPTURE_KINDS.items() if REGISTRY_FILES[f][1] is model), "")
        day = typed.get(MOVES_LAST_CONTACT.get(kind, ""))
        patient = session.get(m.Patient, owner)
        if isinstance(day, dt.date) and patient is not None and day > patient.last_contact_date:
            patient.last_contact_date = day
        check_patient(session, owner, what=what)
    logger.info("restored %s row %s (deletion %d)", table, row_key, entry.id)
    return deleted


def _missing_parents(session: Session, model: type[Any], typed: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(problem, fix) for each row the restored row refers to that no longer exists."""
    problems = []
    for fk in model.__table__.foreign_keys:
        value = typed.get(fk.parent.key)
        if value is None:
            continue
        parent = fk.column.table
        exists = session.scalar(select(func.count()).select_from(parent).where(fk.column == value))
        if not exists:
            noun = {"patients": "patient", "lesions": "lesion"}.get(parent.name, f"{parent.name} row")
            problems.append(
                (
                    f"the {noun} it belongs to, {value} ({parent.name}), no longer exists",
                    f"restore {parent.name} row {value} first (`sabrkit registry deleted` lists it), then this row",
                )
            )
    return problems


def _unique_conflicts(
    session: Session, model: type[Any], typed: Mapping[str, Any], table: str
) -> list[tuple[str, str]]:
    """(problem, fix) for each unique constraint another row now holds the restored row's values of."""
    from sqlalchemy import UniqueConstraint

    sql_table = model.__table__
    groups = [tuple(c.columns) for c in sql_table.constraints if isinstance(c, UniqueConstraint)]
    groups += [(c,) for c in sql_table.columns if c.unique]
    mapper = inspect(model)
    problems = []
    for columns in groups:
        wanted = {c: typed.get(mapper.get_property_by_column(c).key) for c in columns}
        if any(v is None for v in wanted.values()):
            continue
        key_column = mapper.primary_key[0]
        holder = session.scalar(select(key_column).where(*(c == v for c, v in wanted.items())))
        if holder is not None:
            shown = ", ".join(
                f"{c.name}={'(hidden)' if c.name in getattr(model, '__audit_redacted_columns__', ()) else v}"
                for c, v in wanted.items()
            )
            problems.append(
                (
                    f"{table} row {holder} now holds {shown}, which must be unique",
                    f"delete or correct {table} row {holder} (with a reason) if it is the same record, "
                    "otherwise leave this one deleted",
                )
            )
    return problems
