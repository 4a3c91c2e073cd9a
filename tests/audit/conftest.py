"""Audit fixtures: a migrated database (SQLite file, and PostgreSQL when
SABRKIT_TEST_POSTGRES_URL is set) holding a small registry entered through the ORM."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from sabrkit.audit import open_database
from sabrkit.db import Database
from sabrkit.db.testing import POSTGRES_URL_ENV, postgres_test_url, sqlite_test_url, temporary_postgres_schema
from sabrkit.registry import (
    AdverseEvent,
    Death,
    Lesion,
    Patient,
    PatientIdentifier,
    ProgressionEvent,
    SabrCourse,
    Visit,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_test_url(tmp_path)
        return
    server = postgres_test_url()
    if server is None:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_URL_ENV}, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test"
        )
    with temporary_postgres_schema(server) as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url, actor="test-coordinator")
    database.upgrade()
    yield database
    database.dispose()


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


@pytest.fixture
def make_patient():
    """Factory of valid Patient objects: ``make_patient("SABR-RCC-002", ecog=2)``."""
    return _patient


@pytest.fixture
def registry(db: Database) -> Database:
    """One patient with a key-table row, a lesion, a course, a visit, an AE, progression and death."""
    with db.transaction(actor="coordinator-a") as session:
        session.add(_patient())
        session.add(
            PatientIdentifier(
                study_id="SABR-RCC-001",
                hospital_number="H7777777",
                family_name="Testperson",
                given_name="Alan",
                date_of_birth=date(1960, 3, 14),
            )
        )
        session.add(
            Lesion(
                lesion_id="SABR-RCC-001-L1",
                study_id="SABR-RCC-001",
                lesion_number=1,
                site="lung",
                longest_diameter_mm=18.5,
            )
        )
        session.flush()
        session.add(
            SabrCourse(
                lesion_id="SABR-RCC-001-L1",
                total_dose_gy=54,
                fractions=3,
                start_date=date(2024, 6, 1),
                end_date=date(2024, 6, 5),
                technique="VMAT",
            )
        )
        session.add(
            Visit(
                study_id="SABR-RCC-001",
                visit_number=1,
                visit_date=date(2024, 7, 1),
                vrs_pain=1,
                tess_score=50,
            )
        )
        session.add(
            AdverseEvent(
                study_id="SABR-RCC-001",
                term="Fatigue",
                grade=1,
                ctcae_version="5.0",
                onset_date=date(2024, 6, 20),
                attribution_sabr="probable",
            )
        )
        session.add(
            ProgressionEvent(
                study_id="SABR-RCC-001", event_date=date(2024, 12, 1), progression_type="distant"
            )
        )
        session.add(Death(study_id="SABR-RCC-001", death_date=date(2025, 6, 1), cause="rcc"))
    return db
