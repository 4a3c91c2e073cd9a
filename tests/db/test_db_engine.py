"""make_engine and Database: SQLite pragmas, folder creation, transactions."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from sabrkit.audit import open_database
from sabrkit.db import Database, make_engine
from sabrkit.db.errors import WriteConflictError
from sabrkit.errors import ConfigError
from sabrkit.registry import Patient


def _patient(study_id: str = "SABR-RCC-001", **overrides: object) -> Patient:
    values: dict[str, object] = dict(
        study_id=study_id,
        mdt_date=date(2024, 5, 2),
        enrolment_date=date(2024, 5, 6),
        age_years=64,
        sex="M",
        ecog=1,
        histology="clear_cell",
        imdc_risk="intermediate",
        prior_nephrectomy=True,
        disease_state="oligometastatic",
        systemic_therapy="tki",
        last_contact_date=date(2025, 5, 6),
    )
    values.update(overrides)
    return Patient(**values)


def test_sqlite_engine_creates_folder_and_sets_pragmas(tmp_path: Path):
    path = tmp_path / "nested" / "deeper" / "sabrkit.db"
    engine = make_engine(f"sqlite:///{path}", busy_timeout_ms=1234)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 1234
    engine.dispose()
    assert path.is_file()


def test_bad_url_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot be parsed"):
        make_engine("not a url")


def test_transaction_commits_and_rolls_back(db: Database):
    with db.transaction() as session:
        session.add(_patient("SABR-RCC-001"))
    with pytest.raises(RuntimeError):
        with db.transaction() as session:
            session.add(_patient("SABR-RCC-002"))
            session.flush()
            raise RuntimeError("boom")
    with db.session() as session:
        assert session.scalars(select(Patient.study_id)).all() == ["SABR-RCC-001"]


def test_database_refuses_check_violation_and_keeps_nothing(db: Database):
    with pytest.raises(WriteConflictError):
        with db.transaction() as session:
            session.add(_patient("SABR-RCC-001"))
            session.add(_patient("SABR-RCC-002", ecog=7))
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 0


def test_in_memory_sqlite_database_can_be_migrated():
    with open_database("sqlite://") as db:
        db.upgrade()
        with db.transaction() as session:
            session.add(_patient())
        with db.session() as session:
            assert session.get(Patient, "SABR-RCC-001") is not None


def test_sqlite_write_transactions_begin_immediate(tmp_path: Path):
    """Database.transaction takes SQLite's write lock up front; plain sessions begin deferred."""
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    statements: list[str] = []
    with open_database(url) as db:
        db.upgrade()
        from sqlalchemy import event

        event.listen(
            db.engine,
            "before_cursor_execute",
            lambda conn, cursor, statement, *args: statements.append(statement),
        )
        with db.transaction() as session:
            session.execute(text("SELECT 1"))
        with db.session() as session:
            session.execute(text("SELECT 1"))
    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN DEFERRED"]


def test_transaction_records_actor_and_reason(db: Database):
    from sabrkit.audit import AuditLogEntry

    with db.transaction(actor="coordinator") as session:
        session.add(_patient())
    with db.transaction(actor="monitor", reason="source data verification") as session:
        session.get(Patient, "SABR-RCC-001").ecog = 2
    with db.session() as session:
        entries = session.execute(
            select(AuditLogEntry.actor, AuditLogEntry.action, AuditLogEntry.reason)
        ).all()
    assert [tuple(e) for e in entries] == [
        ("coordinator", "insert", None),
        ("monitor", "update", "source data verification"),
    ]
