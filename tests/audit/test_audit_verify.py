"""`verify_audit` detects changes made behind the platform's back, and the log is append-only."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from sabrkit.audit import AuditLogEntry, audited_models, verify_audit
from sabrkit.db import Database

#: One direct SQL UPDATE per audited registry table (key column, SET clause).
DIRECT_UPDATES = {
    "patients": ("study_id", "ecog = 2"),
    "patient_identifiers": ("study_id", "family_name = 'Changed'"),
    "lesions": ("lesion_id", "longest_diameter_mm = 99.5"),
    "sabr_courses": ("id", "total_dose_gy = 60"),
    "visits": ("id", "vrs_pain = 4"),
    "adverse_events": ("id", "grade = 3"),
    "progression_events": ("id", "progression_type = 'local'"),
    "deaths": ("id", "cause = 'other'"),
}


def test_untouched_database_passes(registry: Database):
    report = verify_audit(registry)
    assert report.ok, str(report)
    assert report.n_entries == 8 and report.n_rows == 8
    assert set(DIRECT_UPDATES) <= set(report.tables)


def test_every_audited_registry_table_is_covered():
    audited = {model.__tablename__ for model in audited_models()}
    assert set(DIRECT_UPDATES) <= audited


@pytest.mark.parametrize("table", sorted(DIRECT_UPDATES))
def test_direct_sql_update_is_detected_naming_the_row(registry: Database, table: str):
    key_column, assignment = DIRECT_UPDATES[table]
    with registry.engine.begin() as connection:
        key = connection.execute(text(f"SELECT {key_column} FROM {table}")).scalar_one()
        connection.execute(text(f"UPDATE {table} SET {assignment}"))
    report = verify_audit(registry)
    assert not report.ok
    assert [(p.kind, p.table_name, p.row_key) for p in report.problems] == [("updated", table, str(key))]
    assert f"{table} row {key}" in str(report)


def test_direct_sql_insert_and_delete_are_detected(registry: Database):
    with registry.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO visits (study_id, visit_number, visit_date, vrs_pain) "
                "VALUES ('SABR-RCC-001', 2, '2024-08-01', 0)"
            )
        )
        connection.execute(text("DELETE FROM adverse_events"))
    kinds = {(p.kind, p.table_name) for p in verify_audit(registry).problems}
    assert kinds == {("inserted", "visits"), ("deleted", "adverse_events")}


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET actor = 'someone else' WHERE id = 3", "DELETE FROM audit_log WHERE id = 3"],
)
def test_audit_log_refuses_update_and_delete(registry: Database, statement: str):
    with pytest.raises(DatabaseError, match="append-only"):
        with registry.engine.begin() as connection:
            connection.execute(text(statement))
    assert verify_audit(registry).ok


def _drop_append_only_triggers(db: Database) -> None:
    """What a database owner could do; the chain must still reveal the edit."""
    with db.engine.begin() as connection:
        if db.dialect_name == "sqlite":
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_update_delete ON audit_log"))


def test_edited_or_deleted_entries_break_the_chain(registry: Database):
    _drop_append_only_triggers(registry)
    with registry.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET actor = 'someone else' WHERE id = 2"))
    problems = verify_audit(registry).problems
    assert [(p.kind, p.row_key) for p in problems] == [("chain", "2")]
    assert "edited" in problems[0].detail
    with registry.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id = 5"))
    details = " ".join(p.detail for p in verify_audit(registry).problems)
    assert "audit_log entry 6" in details and "expected id 5" in details


def test_audit_log_table_is_in_the_orm():
    assert AuditLogEntry.__tablename__ == "audit_log"
