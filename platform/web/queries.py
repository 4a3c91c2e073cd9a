"""Read-only lookups the pages show, through the app's :class:`~sabrkit.db.Database`.

Writes never happen here: every change goes through the rooms' service functions
(:mod:`sabrkit.registry.capture`, :mod:`sabrkit.biobank`). What the rooms already offer as a
read service is used as is (:func:`~sabrkit.biobank.locate`, :func:`~sabrkit.biobank.lineage`,
:func:`~sabrkit.biobank.custody_history`, :func:`~sabrkit.biobank.box_map` ...); the rest are
plain SELECTs with bound parameters (never string-built SQL), so whatever a search box receives
is only ever a value. Direct identifiers are read by :func:`patient_identifiers` alone, which
only the coordinator's pages call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, or_, select

from sabrkit.db.database import Database

__all__ = [
    "Found",
    "find_code",
    "sample_detail",
    "sample_list",
    "registry_record",
    "audit_entries",
    "CORRECTABLE",
    "sample_summary",
    "search_samples",
    "received_samples",
    "boxes",
    "patients",
    "patient_detail",
    "patient_identifiers",
    "shipments",
    "inventory",
    "data_version",
    "recent_audit",
    "ACCESSION_PATTERN",
    "STUDY_ID_PATTERN",
]

ACCESSION_PATTERN = re.compile(r"^SABR-[A-Z]{2}-[0-9]{6}-[0-9A-Z]$")
STUDY_ID_PATTERN = re.compile(r"^SABR-RCC-[0-9]{3,6}$")
_LESION = re.compile(r"^(SABR-RCC-[0-9]{3,6})-L[0-9]+$")


def _like_prefix(text: str) -> str:
    """A LIKE prefix pattern with ``%``, ``_`` and the escape character escaped."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True)
class Found:
    """What a scanned or typed code is: ``kind`` (sample, patient, box, none) and where to go."""

    kind: str
    code: str
    target: str | None
    candidates: tuple[str, ...] = ()


def find_code(db: Database, text: str) -> Found:
    """Resolve a scanned barcode or typed code to a sample, patient or box page.

    Exact accession IDs (any case, spaces ignored), study or lesion IDs and box paths
    (``F1/S1/R1/B01``, optionally ``:A1``) are recognised; otherwise up to 20 accession IDs
    or study IDs starting with the text are offered.
    """
    from sabrkit.biobank.tables import Sample, StorageUnit
    from sabrkit.registry.tables import Patient

    code = "".join(text.split())[:80]
    upper = code.upper()
    if not code:
        return Found("none", code, None)
    with db.session() as session:
        if ACCESSION_PATTERN.match(upper) and session.scalar(
            select(Sample.id).where(Sample.accession_id == upper)
        ):
            return Found("sample", upper, f"/lab/samples/{upper}")
        lesion = _LESION.match(upper)
        study_id = lesion.group(1) if lesion else upper
        if STUDY_ID_PATTERN.match(study_id) and session.scalar(
            select(Patient.study_id).where(Patient.study_id == study_id)
        ):
            return Found("patient", study_id, f"/registry/patients/{study_id}")
        box_path = code.split(":", 1)[0].strip("/")
        if session.scalar(
            select(StorageUnit.id).where(StorageUnit.path == box_path, StorageUnit.level == "box")
        ):
            return Found("box", box_path, f"/lab/boxes/{box_path}")
        prefix = _like_prefix(upper)
        candidates = list(
            session.scalars(
                select(Sample.accession_id)
                .where(Sample.accession_id.like(prefix, escape="\\"))
                .order_by(Sample.accession_id)
                .limit(20)
            )
        )
        candidates += list(
            session.scalars(
                select(Patient.study_id)
                .where(Patient.study_id.like(prefix, escape="\\"))
                .order_by(Patient.study_id)
                .limit(20 - len(candidates))
            )
        )
    return Found("none", code, None, tuple(candidates))


def sample_detail(db: Database, accession_id: str) -> dict[str, Any]:
    """Everything the sample page shows, from the biobank's read services (raises NotFoundError)."""
    from sabrkit.biobank import custody_history, freeze_thaw_count, get_sample, lineage, locate
    from sabrkit.biobank.tables import Shipment, ShipmentItem

    with db.session() as session:
        sample = get_sample(session, accession_id)
        columns = {c.key: getattr(sample, c.key) for c in sample.__table__.columns}
        drafts = list(
            session.scalars(
                select(Shipment.shipment_code)
                .where(Shipment.status == "draft")
                .order_by(Shipment.shipment_code)
            )
        )
        shipped_in = list(
            session.scalars(
                select(Shipment.shipment_code)
                .join(ShipmentItem, ShipmentItem.shipment_id == Shipment.id)
                .where(ShipmentItem.sample_id == sample.id)
            )
        )
    return {
        "sample": columns,
        "location": locate(db, accession_id),
        "freeze_thaw": freeze_thaw_count(db, accession_id),
        "lineage": lineage(db, accession_id),
        "events": custody_history(db, accession_id),
        "draft_shipments": drafts,
        "shipments": shipped_in,
    }


def sample_summary(db: Database, accession_id: str) -> dict[str, Any]:
    """What a scan needs to know, in one session: the sample's type, owner, status, amount left and location."""
    from sabrkit.biobank import get_sample
    from sabrkit.biobank.storage import sample_location

    with db.session() as session:
        sample = get_sample(session, accession_id)
        return {
            "accession_id": sample.accession_id,
            "study_id": sample.study_id,
            "timepoint": sample.timepoint,
            "specimen_type": sample.specimen_type,
            "kind": sample.kind,
            "status": sample.status,
            "remaining_quantity": sample.remaining_quantity,
            "quantity_unit": sample.quantity_unit,
            "location": sample_location(session, sample.id),
        }


def search_samples(db: Database, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """Samples whose accession ID or study ID starts with ``text``."""
    from sabrkit.biobank.tables import Sample

    prefix = _like_prefix("".join(text.split()).upper())
    with db.session() as session:
        rows = session.execute(
            select(
                Sample.accession_id, Sample.study_id, Sample.timepoint, Sample.specimen_type, Sample.status
            )
            .where(
                or_(Sample.accession_id.like(prefix, escape="\\"), Sample.study_id.like(prefix, escape="\\"))
            )
            .order_by(Sample.accession_id)
            .limit(limit)
        ).all()
    return [row._asdict() for row in rows]


def received_samples(db: Database, limit: int = 30) -> list[dict[str, Any]]:
    """The newest samples accessioned but not yet in storage (the bench's to-do list)."""
    from sabrkit.biobank.tables import Sample

    with db.session() as session:
        rows = session.execute(
            select(
                Sample.accession_id,
                Sample.study_id,
                Sample.timepoint,
                Sample.specimen_type,
                Sample.remaining_quantity,
                Sample.quantity_unit,
                Sample.received_at,
            )
            .where(Sample.status == "received")
            .order_by(Sample.id.desc())
            .limit(limit)
        ).all()
    return [row._asdict() for row in rows]


def boxes(db: Database) -> list[dict[str, Any]]:
    """Every box with its geometry and number of occupied positions."""
    from sabrkit.biobank.tables import SamplePosition, StorageUnit

    with db.session() as session:
        occupied = (
            select(SamplePosition.box_id, func.count().label("n")).group_by(SamplePosition.box_id).subquery()
        )
        rows = session.execute(
            select(
                StorageUnit.path,
                StorageUnit.n_rows,
                StorageUnit.n_columns,
                func.coalesce(occupied.c.n, 0).label("occupied"),
            )
            .outerjoin(occupied, occupied.c.box_id == StorageUnit.id)
            .where(StorageUnit.level == "box")
            .order_by(StorageUnit.path)
        ).all()
    return [dict(path=p, rows=r, columns=c, occupied=n, free=r * c - n) for p, r, c, n in rows]


def patients(
    db: Database,
    text: str = "",
    *,
    with_identifiers: bool = False,
    limit: int = 200,
    offset: int = 0,
    disease_state: str = "",
    therapy: str = "",
) -> list[dict[str, Any]]:
    """Patients whose study ID starts with ``text``; with identifiers (coordinators), also by hospital number or name.

    ``disease_state`` and ``therapy`` filter on those baseline fields; ``limit``/``offset`` page the list.
    """
    from sabrkit.registry.tables import Patient, PatientIdentifier

    query = "".join(text.split())
    statement = select(
        Patient.study_id,
        Patient.enrolment_date,
        Patient.sex,
        Patient.age_years,
        Patient.disease_state,
        Patient.systemic_therapy,
        Patient.last_contact_date,
    )
    if query:
        conditions = [Patient.study_id.like(_like_prefix(query.upper()), escape="\\")]
        if with_identifiers:
            words = text.strip()
            matched = select(PatientIdentifier.study_id).where(
                or_(
                    PatientIdentifier.hospital_number == words,
                    func.lower(PatientIdentifier.family_name).like(_like_prefix(words.lower()), escape="\\"),
                )
            )
            conditions.append(Patient.study_id.in_(matched))
        statement = statement.where(or_(*conditions))
    if disease_state:
        statement = statement.where(Patient.disease_state == disease_state)
    if therapy:
        statement = statement.where(Patient.systemic_therapy == therapy)
    with db.session() as session:
        rows = session.execute(statement.order_by(Patient.study_id).offset(max(0, offset)).limit(limit)).all()
    return [row._asdict() for row in rows]


def patient_detail(db: Database, study_id: str) -> dict[str, Any]:
    """A patient's registry record without identifiers: baseline, lesions, courses, visits, AEs, events, samples."""
    from sabrkit.biobank.tables import Sample
    from sabrkit.errors import NotFoundError, format_problem
    from sabrkit.registry import tables as m

    def rows(session: Any, model: Any, *where: Any, order: Any = None) -> list[dict[str, Any]]:
        statement = select(model).where(*where)
        if order is not None:
            statement = statement.order_by(order)
        return [
            {c.key: getattr(obj, c.key) for c in model.__table__.columns}
            for obj in session.scalars(statement)
        ]

    with db.session() as session:
        patient = session.get(m.Patient, study_id)
        if patient is None:
            raise NotFoundError(
                format_problem(
                    f"study ID {study_id!r}",
                    "the patient must be enrolled",
                    "check the ID, or enrol the patient first",
                )
            )
        lesion_ids = [lesion.lesion_id for lesion in patient.lesions]
        return {
            "patient": {c.key: getattr(patient, c.key) for c in m.Patient.__table__.columns},
            "eligibility": rows(session, m.Eligibility, m.Eligibility.study_id == study_id),
            "lesions": rows(session, m.Lesion, m.Lesion.study_id == study_id, order=m.Lesion.lesion_number),
            "courses": rows(
                session, m.SabrCourse, m.SabrCourse.lesion_id.in_(lesion_ids), order=m.SabrCourse.start_date
            ),
            "therapy_lines": rows(
                session,
                m.SystemicTherapyLine,
                m.SystemicTherapyLine.study_id == study_id,
                order=m.SystemicTherapyLine.line_number,
            ),
            "visits": rows(session, m.Visit, m.Visit.study_id == study_id, order=m.Visit.visit_number),
            "adverse_events": rows(
                session, m.AdverseEvent, m.AdverseEvent.study_id == study_id, order=m.AdverseEvent.onset_date
            ),
            "assessments": rows(
                session,
                m.TumourAssessment,
                m.TumourAssessment.study_id == study_id,
                order=m.TumourAssessment.assessment_date,
            ),
            "lesion_assessments": rows(
                session,
                m.LesionAssessment,
                m.LesionAssessment.lesion_id.in_(lesion_ids),
                order=m.LesionAssessment.assessment_date,
            ),
            "progression": rows(session, m.ProgressionEvent, m.ProgressionEvent.study_id == study_id),
            "death": rows(session, m.Death, m.Death.study_id == study_id),
            "off_study": rows(session, m.OffStudy, m.OffStudy.study_id == study_id),
            "samples": [
                r._asdict()
                for r in session.execute(
                    select(
                        Sample.accession_id,
                        Sample.timepoint,
                        Sample.specimen_type,
                        Sample.kind,
                        Sample.status,
                    )
                    .where(Sample.study_id == study_id)
                    .order_by(Sample.collected_at, Sample.accession_id)
                )
            ],
        }


def patient_identifiers(db: Database, study_id: str) -> dict[str, Any] | None:
    """The key-table row of a patient (direct identifiers). Callers must hold ``read_identifiers``."""
    from sabrkit.registry.tables import PatientIdentifier

    with db.session() as session:
        found = session.get(PatientIdentifier, study_id)
        if found is None:
            return None
        return {
            "hospital_number": found.hospital_number,
            "family_name": found.family_name,
            "given_name": found.given_name,
            "date_of_birth": found.date_of_birth,
        }


def shipments(db: Database) -> list[dict[str, Any]]:
    """Every shipment with its number of samples, newest first."""
    from sabrkit.biobank.tables import Shipment, ShipmentItem

    with db.session() as session:
        counts = (
            select(ShipmentItem.shipment_id, func.count().label("n"))
            .group_by(ShipmentItem.shipment_id)
            .subquery()
        )
        rows = session.execute(
            select(
                Shipment.shipment_code,
                Shipment.destination,
                Shipment.purpose_scope,
                Shipment.status,
                Shipment.created_at,
                Shipment.shipped_at,
                func.coalesce(counts.c.n, 0).label("n_samples"),
            )
            .outerjoin(counts, counts.c.shipment_id == Shipment.id)
            .order_by(Shipment.id.desc())
        ).all()
    return [row._asdict() for row in rows]


def inventory(db: Database) -> dict[str, Any]:
    """Samples by protocol timepoint and specimen type (all, and still available), and by status."""
    from sabrkit.biobank.tables import Sample
    from sabrkit.biobank.vocabulary import TIMEPOINTS, USABLE_STATUSES

    with db.session() as session:
        grid = session.execute(
            select(
                Sample.timepoint,
                Sample.specimen_type,
                func.count().label("n"),
                func.sum(case((Sample.status.in_(USABLE_STATUSES), 1), else_=0)).label("available"),
                func.count(func.distinct(Sample.study_id)).label("patients"),
            ).group_by(Sample.timepoint, Sample.specimen_type)
        ).all()
        by_status = dict(session.execute(select(Sample.status, func.count()).group_by(Sample.status)).all())
    types = sorted({row.specimen_type for row in grid})
    table: dict[str, dict[str, dict[str, int] | None]] = {tp: dict.fromkeys(types) for tp in TIMEPOINTS}
    patients_at: dict[str, int] = {}
    for row in grid:
        table[row.timepoint][row.specimen_type] = {"n": int(row.n), "available": int(row.available or 0)}
        patients_at[row.timepoint] = max(patients_at.get(row.timepoint, 0), int(row.patients))
    rows = [
        {"timepoint": tp, "cells": table[tp], "patients": patients_at.get(tp, 0)}
        for tp in TIMEPOINTS
        if any(table[tp].values())
    ]
    return {"specimen_types": types, "rows": rows, "by_status": by_status, "total": sum(by_status.values())}


def data_version(db: Database) -> int:
    """The newest audit-log entry's id: changes with every audited write (cache key of the dashboard)."""
    from sabrkit.audit.tables import AuditLogEntry

    with db.session() as session:
        return int(session.scalar(select(func.max(AuditLogEntry.id))) or 0)


def recent_audit(db: Database, limit: int = 100) -> list[dict[str, Any]]:
    """The newest audit-log entries (who, when, what, why), without the old/new values."""
    from sabrkit.audit.tables import AuditLogEntry

    with db.session() as session:
        rows = session.execute(
            select(
                AuditLogEntry.id,
                AuditLogEntry.recorded_at,
                AuditLogEntry.actor,
                AuditLogEntry.action,
                AuditLogEntry.table_name,
                AuditLogEntry.row_key,
                AuditLogEntry.reason,
            )
            .order_by(AuditLogEntry.id.desc())
            .limit(limit)
        ).all()
    return [row._asdict() for row in rows]


#: Registry tables whose rows the patient page offers to correct, with the words for one row.
CORRECTABLE = {
    "patients": "baseline",
    "patient_identifiers": "key-table entry",
    "eligibility": "eligibility",
    "lesions": "lesion",
    "sabr_courses": "SABR course",
    "systemic_therapy_lines": "therapy line",
    "visits": "visit",
    "adverse_events": "adverse event",
    "tumour_assessments": "tumour assessment",
    "lesion_assessments": "lesion assessment",
    "progression_events": "progression",
    "deaths": "death",
    "off_study": "off-study record",
}


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def registry_record(db: Database, table: str, row_key: str) -> dict[str, Any]:
    """One registry row for the correction form: its entered fields (name -> input kind) and values as text."""
    import datetime as dt

    from sqlalchemy import inspect

    from sabrkit.errors import NotFoundError, format_problem
    from sabrkit.registry.load import REGISTRY_FILES

    found = [
        (row_model, model) for row_model, model in REGISTRY_FILES.values() if model.__tablename__ == table
    ]
    if not found or table not in CORRECTABLE:
        raise NotFoundError(
            format_problem(f"table {table!r}", "a registry table", "use the patient page's links")
        )
    row_model, model = found[0]
    key_column = inspect(model).primary_key[0]
    with db.session() as session:
        try:
            key: Any = int(row_key) if key_column.type.python_type is int else row_key
        except ValueError:
            key = None
        row = session.get(model, key) if key is not None else None
        if row is None:
            raise NotFoundError(
                format_problem(
                    f"{CORRECTABLE[table]} {row_key}",
                    "the record must exist",
                    "open it from the patient page",
                )
            )
        columns = {c.key: c for c in inspect(model).columns}
        fields: dict[str, str] = {}
        for name in row_model.model_fields:
            column = columns.get(name)
            if column is None:
                continue
            python_type = column.type.python_type
            fields[name] = (
                "date"
                if python_type is dt.date
                else "datetime"
                if python_type is dt.datetime
                else "bool"
                if python_type is bool
                else "number"
                if python_type in (int, float)
                else "text"
            )
        values = {name: _as_text(getattr(row, name)) for name in fields}
        study_id = getattr(row, "study_id", None) or row.lesion.study_id
        label = f"{CORRECTABLE[table]} {row_key}"
        if table == "visits":
            label = f"visit {row.visit_number} ({values['visit_date']})"
        elif table == "adverse_events":
            label = f"adverse event {row.term} ({values['onset_date']})"
    return {
        "table": table,
        "row_key": row_key,
        "label": label,
        "study_id": study_id,
        "fields": fields,
        "values": values,
    }


def audit_entries(
    db: Database,
    *,
    actor: str = "",
    table: str = "",
    row_key: str = "",
    since: Any = None,
    until: Any = None,
    page: int = 1,
    per_page: int = 50,
) -> dict[str, Any]:
    """Audit-log entries, newest first, filtered (who, table, record, date range) and paged, with old -> new.

    Returns ``{"entries": [...], "total": n, "page": p, "pages": k}``; each entry carries ``changes``:
    ``[(field, old, new)]`` (only the fields that changed for an update; all fields of an insert or delete).
    Redacted values (direct identifiers, password hashes) stay redacted.
    """
    import datetime as dt
    import json

    from sabrkit.audit.tables import AuditLogEntry

    where = []
    if actor.strip():
        where.append(AuditLogEntry.actor == actor.strip())
    if table.strip():
        where.append(AuditLogEntry.table_name == table.strip())
    if row_key.strip():
        where.append(AuditLogEntry.row_key == row_key.strip())
    if since:
        where.append(AuditLogEntry.recorded_at >= dt.datetime.combine(since, dt.time.min))
    if until:
        where.append(
            AuditLogEntry.recorded_at < dt.datetime.combine(until, dt.time.min) + dt.timedelta(days=1)
        )
    page, per_page = max(1, page), max(1, min(per_page, 500))
    with db.session() as session:
        total = int(session.scalar(select(func.count()).select_from(AuditLogEntry).where(*where)) or 0)
        rows = session.execute(
            select(
                AuditLogEntry.id,
                AuditLogEntry.recorded_at,
                AuditLogEntry.actor,
                AuditLogEntry.action,
                AuditLogEntry.table_name,
                AuditLogEntry.row_key,
                AuditLogEntry.reason,
                AuditLogEntry.old_values,
                AuditLogEntry.new_values,
            )
            .where(*where)
            .order_by(AuditLogEntry.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
        tables = list(
            session.scalars(select(AuditLogEntry.table_name).distinct().order_by(AuditLogEntry.table_name))
        )
    entries = []
    for row in rows:
        old = json.loads(row.old_values) if row.old_values else {}
        new = json.loads(row.new_values) if row.new_values else {}
        names = sorted(set(old) | set(new))
        changes = [
            (name, old.get(name), new.get(name))
            for name in names
            if row.action != "update" or old.get(name) != new.get(name)
        ]
        entry = {
            key: getattr(row, key)
            for key in ("id", "recorded_at", "actor", "action", "table_name", "row_key", "reason")
        }
        entries.append(entry | {"changes": changes})
    return {
        "entries": entries,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // per_page)),
        "tables": tables,
    }


def sample_list(
    db: Database, text: str = "", *, status: str = "", page: int = 1, per_page: int = 50
) -> dict[str, Any]:
    """Samples filtered by an accession or study ID prefix and a status, newest first, one page at a time."""
    from sabrkit.biobank.tables import Sample

    where = []
    if text.strip():
        prefix = _like_prefix("".join(text.split()).upper())
        where.append(
            or_(Sample.accession_id.like(prefix, escape="\\"), Sample.study_id.like(prefix, escape="\\"))
        )
    if status.strip():
        where.append(Sample.status == status.strip())
    page, per_page = max(1, page), max(1, min(per_page, 500))
    with db.session() as session:
        total = int(session.scalar(select(func.count()).select_from(Sample).where(*where)) or 0)
        rows = session.execute(
            select(
                Sample.accession_id,
                Sample.study_id,
                Sample.timepoint,
                Sample.specimen_type,
                Sample.status,
                Sample.remaining_quantity,
                Sample.quantity_unit,
                Sample.received_at,
            )
            .where(*where)
            .order_by(Sample.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
    return {
        "rows": [row._asdict() for row in rows],
        "total": total,
        "page": page,
        "pages": max(1, -(-total // per_page)),
    }
