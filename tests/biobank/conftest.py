"""Database fixtures: a fresh SQLite file per test, and the same tests on PostgreSQL when
SABRKIT_TEST_POSTGRES_URL is set (one throw-away schema per test)."""

from __future__ import annotations

import pytest

from sabrkit.db import Database


@pytest.fixture
def enrolled_db(db: Database) -> Database:
    """A migrated database with three enrolled patients (enrolment 2024-05-06)."""
    from biobank_helpers import STUDY_IDS, make_patient

    with db.transaction(actor="coordinator") as session:
        session.add_all([make_patient(study_id) for study_id in STUDY_IDS])
    return db
