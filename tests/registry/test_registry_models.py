"""The database itself refuses bad registry values (CHECK, foreign keys) and computes BED/EQD2."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from sabrkit.db import Database
from sabrkit.db.errors import WriteConflictError
from sabrkit.registry import AdverseEvent, Death, Lesion, Patient, ProgressionEvent, SabrCourse, Visit


def _patient(study_id: str = "SABR-RCC-001") -> Patient:
    return Patient(
        study_id=study_id,
        mdt_date=date(2024, 5, 2),
        enrolment_date=date(2024, 5, 6),
        age_years=64,
        sex="F",
        ecog=0,
        histology="clear_cell",
        imdc_risk="favourable",
        prior_nephrectomy=False,
        disease_state="oligoprogressive",
        systemic_therapy="none",
        last_contact_date=date(2025, 5, 6),
    )


def _lesion() -> Lesion:
    return Lesion(lesion_id="SABR-RCC-001-L1", study_id="SABR-RCC-001", lesion_number=1, site="lung")


@pytest.fixture
def seeded(db: Database) -> Database:
    with db.transaction() as session:
        session.add_all([_patient(), _lesion()])
    return db


def test_bed_and_eqd2_computed_on_insert_and_kept_on_update(seeded: Database):
    with seeded.transaction() as session:
        session.add_all(
            [
                SabrCourse(
                    lesion_id="SABR-RCC-001-L1",
                    total_dose_gy=54,
                    fractions=3,
                    start_date=date(2024, 6, 1),
                    end_date=date(2024, 6, 5),
                ),
                SabrCourse(
                    lesion_id="SABR-RCC-001-L1",
                    total_dose_gy=35,
                    fractions=5,
                    alpha_beta_gy=3.0,
                    start_date=date(2024, 7, 1),
                    end_date=date(2024, 7, 8),
                ),
            ]
        )
    with seeded.session() as session:
        first, second = session.scalars(select(SabrCourse).order_by(SabrCourse.start_date)).all()
        assert (first.alpha_beta_gy, first.bed_gy, first.eqd2_gy) == pytest.approx((10.0, 151.2, 126.0))
        # 35 * (1 + 7/3) = 116.667; / (1 + 2/3) = 70.0
        assert (second.bed_gy, second.eqd2_gy) == pytest.approx((116.6666667, 70.0))
    with seeded.transaction(reason="prescription corrected to 60 Gy / 8 fx") as session:
        course = session.scalars(select(SabrCourse).where(SabrCourse.fractions == 3)).one()
        course.total_dose_gy = 60.0
        course.fractions = 8
    with seeded.session() as session:
        course = session.scalars(select(SabrCourse).where(SabrCourse.fractions == 8)).one()
        assert course.bed_gy == pytest.approx(105.0)


BAD_RECORDS = {
    "vrs_pain 5": lambda: Visit(
        study_id="SABR-RCC-001", visit_number=1, visit_date=date(2024, 7, 1), vrs_pain=5
    ),
    "tess 61": lambda: Visit(
        study_id="SABR-RCC-001", visit_number=1, visit_date=date(2024, 7, 1), tess_score=61
    ),
    "grade 0": lambda: AdverseEvent(
        study_id="SABR-RCC-001",
        term="Fatigue",
        grade=0,
        ctcae_version="5.0",
        onset_date=date(2024, 7, 1),
        attribution_sabr="possible",
    ),
    "ctcae 3.0": lambda: AdverseEvent(
        study_id="SABR-RCC-001",
        term="Fatigue",
        grade=1,
        ctcae_version="3.0",
        onset_date=date(2024, 7, 1),
        attribution_sabr="possible",
    ),
    "progression type": lambda: ProgressionEvent(
        study_id="SABR-RCC-001", event_date=date(2024, 9, 1), progression_type="regional"
    ),
    "death cause": lambda: Death(study_id="SABR-RCC-001", death_date=date(2025, 1, 1), cause="unknown"),
    "zero fractions": lambda: SabrCourse(
        lesion_id="SABR-RCC-001-L1",
        total_dose_gy=54,
        fractions=0,
        bed_gy=1,
        eqd2_gy=1,
        start_date=date(2024, 6, 1),
        end_date=date(2024, 6, 5),
    ),
    "end before start": lambda: SabrCourse(
        lesion_id="SABR-RCC-001-L1",
        total_dose_gy=54,
        fractions=3,
        start_date=date(2024, 6, 5),
        end_date=date(2024, 6, 1),
    ),
    "lesion site": lambda: Lesion(
        lesion_id="SABR-RCC-001-L2", study_id="SABR-RCC-001", lesion_number=2, site="spleen"
    ),
    "unknown patient (foreign key)": lambda: Lesion(
        lesion_id="SABR-RCC-009-L1", study_id="SABR-RCC-009", lesion_number=1, site="lung"
    ),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_database_refuses_bad_values(seeded: Database, case: str):
    with pytest.raises(WriteConflictError):
        with seeded.transaction() as session:
            session.add(BAD_RECORDS[case]())
