"""Alembic migrations shipped in the package: they build exactly the ORM schema."""

from __future__ import annotations

from importlib.resources import files

from sqlalchemy import CheckConstraint, inspect

from sabrkit.audit import open_database
from sabrkit.db import current_revision, downgrade, head_revision, schema_differences, upgrade
from sabrkit.db.engine import make_engine
from sabrkit.db.migrate import MIGRATIONS_DIR, target_metadata

EXPECTED_TABLES = {
    "patients",
    "patient_identifiers",
    "lesions",
    "sabr_courses",
    "visits",
    "adverse_events",
    "progression_events",
    "deaths",
    "samples",
    "audit_log",
}


def test_migrations_ship_inside_the_package():
    versions = files("sabrkit.db.migrations.versions")
    assert (versions / "0001_initial.py").is_file()
    assert (files("sabrkit.db.migrations") / "script.py.mako").is_file()
    assert MIGRATIONS_DIR.parent.name == "db"
    assert head_revision() is not None and head_revision() >= "0002"


def test_metadata_holds_registry_and_biobank_tables():
    assert set(target_metadata().tables) >= EXPECTED_TABLES


def test_upgrade_builds_the_orm_schema(db_url: str):
    assert current_revision(db_url) is None
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    assert schema_differences(db_url) == []
    engine = make_engine(db_url)
    try:
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) == set(target_metadata().tables) | {"alembic_version"}
        # alembic's comparison ignores CHECK constraints: compare their names table by table
        for table in target_metadata().sorted_tables:
            expected = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
            reflected = {c["name"] for c in inspector.get_check_constraints(table.name)}
            assert reflected == expected, table.name
    finally:
        engine.dispose()


def test_upgrade_twice_is_harmless_and_downgrade_drops_everything(db_url: str):
    upgrade(db_url)
    upgrade(db_url)
    downgrade(db_url, "base")
    assert current_revision(db_url) is None
    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_database_upgrade_method(db_url: str):
    with open_database(db_url) as db:
        assert db.current_revision() is None
        db.upgrade()
        assert db.current_revision() == head_revision()
