"""The audit log: who/when/what/why for every change, reasons required, rollbacks, redaction."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, select, update

from sabrkit.audit import (
    GENESIS_HASH,
    AuditError,
    AuditLogEntry,
    audit_history,
    entry_hash,
    insert_audited,
    insert_audited_rows,
    open_database,
    verify_audit,
)
from sabrkit.db import Database
from sabrkit.registry import Patient, PatientIdentifier, Visit


def _entries(db: Database) -> list[AuditLogEntry]:
    with db.session() as session:
        return list(session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id)))


def test_every_insert_is_logged_and_chained(registry: Database):
    entries = _entries(registry)
    assert [e.table_name for e in entries].count("patients") == 1
    assert {e.table_name for e in entries} == {
        "patients",
        "patient_identifiers",
        "lesions",
        "sabr_courses",
        "visits",
        "adverse_events",
        "progression_events",
        "deaths",
    }
    assert [e.id for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == GENESIS_HASH
    for before, entry in zip([None, *entries], entries):
        assert entry.action == "insert" and entry.actor == "coordinator-a" and entry.old_values is None
        if before is not None:
            assert entry.prev_hash == before.entry_hash
    course = next(e for e in entries if e.table_name == "sabr_courses")
    logged = json.loads(course.new_values)
    # BED10 of 54 Gy / 3 fx = 151.2 Gy: the computed default is logged as stored
    assert logged["bed_gy"] == pytest.approx(151.2) and logged["alpha_beta_gy"] == 10.0
    assert verify_audit(registry).ok


def test_hash_is_sha256_of_canonical_entry_plus_previous_hash():
    import hashlib

    entry = {
        "id": 1,
        "recorded_at": "2026-01-01T00:00:00.000000",
        "actor": "a",
        "action": "insert",
        "table_name": "visits",
        "row_key": "1",
        "old_values": None,
        "new_values": '{"x":1}',
        "reason": None,
        "prev_hash": GENESIS_HASH,
    }
    canonical = (
        '{"action":"insert","actor":"a","id":1,"new_values":"{\\"x\\":1}","old_values":null,'
        '"prev_hash":"' + GENESIS_HASH + '","reason":null,"recorded_at":"2026-01-01T00:00:00.000000",'
        '"row_key":"1","table_name":"visits"}'
    )
    assert entry_hash(entry, GENESIS_HASH) == hashlib.sha256((canonical + GENESIS_HASH).encode()).hexdigest()


def test_update_without_reason_is_refused_naming_table_and_row(registry: Database):
    with pytest.raises(AuditError, match=r"visits row \d+ \(study_id=SABR-RCC-001, visit_number=1\).*reason"):
        with registry.transaction() as session:
            session.scalars(select(Visit)).one().vrs_pain = 3
    with pytest.raises(PermissionError, match="a delete of patient_identifiers row SABR-RCC-001"):
        with registry.transaction() as session:
            session.delete(session.get(PatientIdentifier, "SABR-RCC-001"))
    with registry.session() as session:
        assert session.scalars(select(Visit.vrs_pain)).one() == 1
    assert verify_audit(registry).ok


def test_update_and_delete_with_reason_record_old_new_who_and_why(registry: Database):
    with registry.transaction(
        actor="coordinator-b", reason="query 7: pain score transcribed wrongly"
    ) as session:
        visit = session.scalars(select(Visit)).one()
        visit.vrs_pain = 2
        visit.tess_score = 50  # same value (int vs stored 50.0): not a change
    with registry.transaction(actor="coordinator-b", reason="duplicate entry") as session:
        session.delete(session.scalars(select(Visit)).one())
    entries = _entries(registry)
    updated, deleted = entries[-2], entries[-1]
    assert (updated.action, updated.actor, updated.reason) == (
        "update",
        "coordinator-b",
        "query 7: pain score transcribed wrongly",
    )
    old, new = json.loads(updated.old_values), json.loads(updated.new_values)
    assert (old["vrs_pain"], new["vrs_pain"]) == (1, 2)
    assert old["tess_score"] == new["tess_score"] == 50.0
    assert (
        deleted.action == "delete"
        and deleted.new_values is None
        and json.loads(deleted.old_values)["vrs_pain"] == 2
    )
    assert len(audit_history(registry, "visits", updated.row_key)) == 3
    assert verify_audit(registry).ok


def test_setting_an_unchanged_value_needs_no_reason_and_logs_nothing(registry: Database):
    n_before = len(_entries(registry))
    with registry.transaction() as session:
        session.get(Patient, "SABR-RCC-001").ecog = 1
    assert len(_entries(registry)) == n_before


def test_rollback_loses_the_change_and_its_entry(registry: Database, make_patient):
    n_before = len(_entries(registry))
    with pytest.raises(RuntimeError):
        with registry.transaction(reason="will fail") as session:
            session.add(make_patient("SABR-RCC-002"))
            session.get(Patient, "SABR-RCC-001").ecog = 2
            session.flush()
            raise RuntimeError("boom")
    assert len(_entries(registry)) == n_before
    assert verify_audit(registry).ok


def test_primary_key_change_is_refused(registry: Database):
    with pytest.raises(AuditError, match="primary key"):
        with registry.transaction(reason="renumber") as session:
            session.get(PatientIdentifier, "SABR-RCC-001").study_id = "SABR-RCC-009"


def test_direct_identifiers_never_enter_the_log(registry: Database):
    with registry.transaction(reason="name corrected after ID check") as session:
        session.get(PatientIdentifier, "SABR-RCC-001").family_name = "Testpersson"
    with registry.session() as session:
        texts = session.execute(select(AuditLogEntry.old_values, AuditLogEntry.new_values)).all()
    blob = json.dumps([list(t) for t in texts])
    for secret in ("H7777777", "Testperson", "Alan", "1960-03-14"):
        assert secret not in blob
    assert verify_audit(registry).ok


def test_orm_bulk_statements_on_audited_tables_are_refused(registry: Database):
    with pytest.raises(AuditError, match="ORM bulk UPDATE on audited table visits"):
        with registry.transaction(reason="bulk") as session:
            session.execute(update(Visit).values(vrs_pain=0))


def test_insert_audited_fast_path_logs_every_row(registry: Database):
    rows = [
        dict(
            study_id="SABR-RCC-001",
            visit_number=n,
            visit_date=date(2024, 7, 1 + n),
            vrs_pain=n % 5,
            tess_score=40 + n,
        )
        for n in range(2, 12)
    ]
    with registry.transaction(actor="importer") as session:
        assert insert_audited(session, Visit, rows) == 10
    with registry.session() as session:
        assert session.scalar(select(func.count()).select_from(Visit)) == 11
        assert session.scalar(select(func.count()).where(AuditLogEntry.actor == "importer")) == 10
    assert verify_audit(registry).ok


def test_direct_and_returning_bulk_paths_log_the_same_row(registry: Database):
    """Reserved keys + driver executemany (the fast path) log exactly what INSERT ... RETURNING logs."""
    from sabrkit.audit.listeners import _direct_insert_plan

    assert _direct_insert_plan(Visit.__table__, registry.engine.dialect) is not None
    base = dict(study_id="SABR-RCC-001", visit_date=date(2024, 8, 1), vrs_pain=2, tess_score=41.0)
    with registry.transaction(actor="importer") as session:
        (direct_id,) = insert_audited_rows(session, Visit, [dict(base, visit_number=20)])
        explicit = session.scalar(select(func.max(Visit.id))) + 100
        (returned_id,) = insert_audited_rows(session, Visit, [dict(base, visit_number=21, id=explicit)])
    assert returned_id == explicit and direct_id < explicit
    with registry.session() as session:
        logged = dict(
            session.execute(
                select(AuditLogEntry.row_key, AuditLogEntry.new_values).where(
                    AuditLogEntry.table_name == "visits"
                )
            ).all()
        )
    direct, returning = json.loads(logged[str(direct_id)]), json.loads(logged[str(explicit)])
    for row in (direct, returning):
        row.pop("id"), row.pop("visit_number")
    assert direct == returning
    assert verify_audit(registry).ok  # the stored rows equal their logged state


def test_computed_defaults_take_the_returning_path(registry: Database):
    from sabrkit.audit.listeners import _direct_insert_plan
    from sabrkit.registry.tables import SabrCourse

    assert _direct_insert_plan(SabrCourse.__table__, registry.engine.dialect) is None


def test_fast_sqlite_datetime_binding_equals_sqlalchemys():
    import datetime as dt

    from sqlalchemy import Column, DateTime, MetaData, Table
    from sqlalchemy.dialects import sqlite

    from sabrkit.audit.chain import plain_value
    from sabrkit.audit.listeners import _binder

    column = Column("at", DateTime)
    Table("t", MetaData(), column)
    dialect = sqlite.dialect()
    fast, general = _binder(column, dialect), DateTime().dialect_impl(dialect).bind_processor(dialect)
    for value in (
        dt.datetime(2024, 5, 1, 10, 0),
        dt.datetime(999, 1, 2, 3, 4, 5, 6),
        dt.datetime(2026, 12, 31, 23, 59, 59, 999999),
    ):
        assert fast(value, plain_value(value, column)) == fast(value) == general(value)


def test_fast_entry_hash_equals_the_canonical_json_definition():
    import datetime as dt
    import hashlib

    from sabrkit.audit.chain import canonical_json

    entry = {
        "id": 41,
        "recorded_at": dt.datetime(2026, 1, 2, 3, 4, 5, 6),
        "actor": 'Zoë "qa"',
        "action": "update",
        "table_name": "visits",
        "row_key": "17",
        "old_values": '{"a":"ä\\n"}',
        "new_values": None,
        "reason": "query 7: naïve\ttab",
        "prev_hash": "ab" * 32,
    }
    as_text = {**entry, "recorded_at": "2026-01-02T03:04:05.000006"}
    expected = hashlib.sha256((canonical_json(as_text) + entry["prev_hash"]).encode()).hexdigest()
    assert entry_hash(entry, entry["prev_hash"]) == expected


def test_bulk_chain_hashes_equal_entry_by_entry_hashes():
    import datetime as dt

    from sabrkit.audit.chain import chain_hashes

    pending = [
        ("insert", "visits", "1", None, '{"x":"é"}'),
        ("update", "visits", "1", '{"x":"é"}', '{"x":2}'),
        ("delete", "lesions", "SABR-RCC-001-L1", '{"y":null}', None),
    ]
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 600)
    fast = chain_hashes(
        pending, first_id=8, recorded_at=when, actor='a "b"', reason="why\n", prev_hash="cd" * 32
    )
    prev, slow = "cd" * 32, []
    for offset, (action, table, key, old, new) in enumerate(pending):
        prev = entry_hash(
            {
                "id": 8 + offset,
                "recorded_at": when,
                "actor": 'a "b"',
                "action": action,
                "table_name": table,
                "row_key": key,
                "old_values": old,
                "new_values": new,
                "reason": "why\n",
                "prev_hash": prev,
            },
            prev,
        )
        slow.append(prev)
    assert fast == slow


def test_every_new_database_is_audited_even_after_others_were_collected(make_patient):
    """SQLAlchemy's event registry is keyed by id(); a recycled id must not skip the listeners."""
    import gc

    for attempt in range(100):
        open_database("sqlite://").dispose()
        if attempt % 25 == 0:
            gc.collect()
    with open_database("sqlite://") as db:
        db.upgrade()
        with db.transaction() as session:
            session.add(make_patient())
        with pytest.raises(AuditError):
            with db.transaction() as session:
                session.get(Patient, "SABR-RCC-001").ecog = 2
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(AuditLogEntry)) == 1


def test_python_value_inverts_plain_value_for_each_column_type():
    import datetime as dt
    import decimal

    from sqlalchemy import Boolean, Column, Date, DateTime, Float, Integer, Numeric, String

    from sabrkit.audit.chain import plain_value, python_value

    cases = [
        (Column("a", Integer), 7),
        (Column("b", Float), 0.1 + 0.2),
        (Column("c", Numeric(10, 3)), decimal.Decimal("12.500")),
        (Column("d", Boolean), False),
        (Column("e", Date), dt.date(2024, 2, 29)),
        (Column("f", DateTime), dt.datetime(2024, 2, 29, 23, 59, 1, 5)),
        (Column("g", DateTime(timezone=True)), dt.datetime(2024, 2, 29, 23, 59, tzinfo=dt.UTC)),
        (Column("h", String(8)), "Åsa"),
        (Column("i", String(8)), None),
    ]
    for column, value in cases:
        logged = plain_value(value, column)
        back = python_value(logged, column)
        assert back == value and type(back) is type(value), column.name
        assert plain_value(back, column) == logged
