"""Database fixtures: a fresh SQLite file per test, and the same tests on PostgreSQL when
SABRKIT_TEST_POSTGRES_URL is set (one throw-away schema per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sabrkit.db import Database
from sabrkit.db.testing import POSTGRES_URL_ENV, postgres_test_url, sqlite_test_url, temporary_postgres_schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield sqlite_test_url(tmp_path)
        return
    server = postgres_test_url()
    if server is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_ENV}, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test")
    with temporary_postgres_schema(server) as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated, empty database."""
    database = Database.from_url(db_url)
    database.upgrade()
    yield database
    database.dispose()



@pytest.fixture
def enrolled_db(db: Database) -> Database:
    """A migrated database with three enrolled patients (enrolment 2024-05-06)."""
    from biobank_helpers import STUDY_IDS, make_patient

    with db.transaction(actor="coordinator") as session:
        session.add_all([make_patient(study_id) for study_id in STUDY_IDS])
    return db
