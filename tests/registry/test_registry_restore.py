"""Deleted registry records: listed from the audit log and restored exactly, checked like an entry."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import inspect, select
from test_registry_capture import enrolled  # noqa: F401 - the fixture

from sabrkit.audit import AuditError, AuditLogEntry, verify_audit
from sabrkit.errors import ImportValidationError, NotFoundError, ValidationError
from sabrkit.registry import tables as m
from sabrkit.registry.capture import delete, deleted_records, record, restore

SID = "SABR-RCC-010"
VISIT = dict(study_id=SID, visit_number=1, visit_date="2024-07-04", vrs_pain=1, tess_score=44.5)


def _columns(obj) -> dict:
    return {attr.key: getattr(obj, attr.key) for attr in inspect(type(obj)).column_attrs}


def _visit(db) -> m.Visit:
    record(db, {"visit": VISIT}, actor="nurse")
    with db.session() as session:
        return session.scalars(select(m.Visit).where(m.Visit.study_id == SID)).one()


def test_delete_then_restore_gives_back_the_identical_row(enrolled):  # noqa: F811
    visit = _visit(enrolled)
    before = _columns(visit)
    # what was typed, as the column holds it (independent of the audit log's serialisation)
    assert {k: before[k] for k in VISIT} == {
        "study_id": SID,
        "visit_number": 1,
        "visit_date": dt.date(2024, 7, 4),
        "vrs_pain": 1,
        "tess_score": 44.5,
    }
    with enrolled.session() as session:
        course = session.scalars(select(m.SabrCourse)).one()
    course_before = _columns(course)
    delete(enrolled, "visits", str(visit.id), reason="entered twice", actor="nurse")
    delete(enrolled, "sabr_courses", str(course.id), reason="wrong lesion", actor="physicist")
    listed = deleted_records(enrolled)
    assert [(d.table, d.row_key, d.actor, d.reason) for d in listed] == [
        ("sabr_courses", str(course.id), "physicist", "wrong lesion"),
        ("visits", str(visit.id), "nurse", "entered twice"),
    ]
    assert listed[1].study_id == SID and listed[1].not_restorable is None

    undone = restore(enrolled, "visits", str(visit.id), reason="was not a duplicate", actor="coordinator")
    restore(enrolled, "sabr_courses", str(course.id), reason="lesion was right", actor="physicist")
    assert undone.audit_id == listed[1].audit_id
    with enrolled.session() as session:
        after = _columns(session.get(m.Visit, visit.id))
        course_after = _columns(session.get(m.SabrCourse, course.id))
        entry = session.scalars(
            select(AuditLogEntry)
            .where(AuditLogEntry.table_name == "visits", AuditLogEntry.row_key == str(visit.id))
            .order_by(AuditLogEntry.id.desc())
        ).first()
    for name, value in before.items():
        assert after[name] == value and type(after[name]) is type(value), name
    for name, value in course_before.items():  # BED and EQD2 as stored, not recomputed
        assert course_after[name] == value, name
    assert (entry.action, entry.actor, entry.reason) == (
        "insert",
        "coordinator",
        f"restore of deletion {undone.audit_id}: was not a duplicate",
    )
    assert deleted_records(enrolled) == []
    assert verify_audit(enrolled).ok


def test_restore_is_refused_twice_never_deleted_and_without_reason(enrolled):  # noqa: F811
    visit = _visit(enrolled)
    with pytest.raises(NotFoundError, match="holds no deletion"):
        restore(enrolled, "visits", str(visit.id), reason="x")
    delete(enrolled, "visits", str(visit.id), reason="entered twice")
    with pytest.raises(AuditError, match="needs a reason"):
        restore(enrolled, "visits", str(visit.id), reason=" ")
    restore(enrolled, "visits", str(visit.id), reason="was right")
    with pytest.raises(ValidationError, match=r"exists again .*restore of deletion") as caught:
        restore(enrolled, "visits", str(visit.id), reason="again")
    assert caught.value.field == "row_key"
    assert verify_audit(enrolled).ok


def test_restore_after_a_conflicting_new_row_is_refused(enrolled):  # noqa: F811
    visit = _visit(enrolled)
    # a later row keeps the deleted key from being reused (SQLite hands out max + 1)
    record(enrolled, {"visit": {**VISIT, "visit_number": 2, "visit_date": "2024-08-05"}})
    delete(enrolled, "visits", str(visit.id), reason="wrong date")
    record(enrolled, {"visit": {**VISIT, "visit_date": "2024-07-05"}})
    with pytest.raises(ValidationError, match=r"now holds study_id=SABR-RCC-010, visit_number=1"):
        restore(enrolled, "visits", str(visit.id), reason="undo")
    with enrolled.session() as session:
        assert session.get(m.Visit, visit.id) is None
    assert [d.row_key for d in deleted_records(enrolled)] == [str(visit.id)]


def test_restore_of_a_row_whose_patient_is_gone_is_refused(enrolled):  # noqa: F811
    visit = _visit(enrolled)
    delete(enrolled, "visits", str(visit.id), reason="test record")
    with enrolled.session() as session:
        course_id = session.scalar(select(m.SabrCourse.id))
    for table, key in (
        ("sabr_courses", str(course_id)),
        ("lesions", f"{SID}-L1"),
        ("eligibility", SID),
        ("patient_identifiers", SID),
        ("patients", SID),
    ):
        delete(enrolled, table, key, reason="test patient")
    with pytest.raises(
        ValidationError, match=r"the patient it belongs to, SABR-RCC-010 \(patients\), no longer"
    ):
        restore(enrolled, "visits", str(visit.id), reason="undo")
    with pytest.raises(ValidationError, match="only salted digests of date_of_birth, family_name"):
        restore(enrolled, "patient_identifiers", SID, reason="undo")
    listed = {d.table: d for d in deleted_records(enrolled, study_id=SID)}
    assert listed["patient_identifiers"].not_restorable and listed["patients"].not_restorable is None
    assert verify_audit(enrolled).ok


def test_restore_reruns_the_rules_of_the_record_as_it_is_now(enrolled, monkeypatch):  # noqa: F811
    visit = _visit(enrolled)
    delete(enrolled, "visits", str(visit.id), reason="entered early")
    monkeypatch.setenv("SABRKIT_DATA_CUTOFF", "2024-07-01")
    with pytest.raises(ImportValidationError) as caught:
        restore(enrolled, "visits", str(visit.id), reason="undo")
    assert "visits:visit_date" in {e.column for e in caught.value.errors}
    with enrolled.session() as session:
        assert session.get(m.Visit, visit.id) is None
