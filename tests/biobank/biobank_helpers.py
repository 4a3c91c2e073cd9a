"""Helpers shared by the biobank tests (patients, quick accessioning)."""

from __future__ import annotations

import datetime as dt

from sabrkit.biobank.samples import SampleIntake, accession_samples
from sabrkit.db import Database
from sabrkit.registry import Patient

STUDY_IDS = ("SABR-RCC-001", "SABR-RCC-002", "SABR-RCC-003")


def make_patient(study_id: str, enrolment: dt.date = dt.date(2024, 5, 6)) -> Patient:
    return Patient(
        study_id=study_id,
        mdt_date=enrolment - dt.timedelta(days=4),
        enrolment_date=enrolment,
        age_years=60,
        sex="M" if study_id.endswith(("1", "3")) else "F",
        ecog=1,
        histology="clear_cell",
        imdc_risk="intermediate",
        prior_nephrectomy=True,
        disease_state="oligometastatic",
        systemic_therapy="tki_ici",
        last_contact_date=dt.date(2025, 5, 6),
    )


def add_samples(
    db: Database,
    n: int,
    *,
    study_id: str = "SABR-RCC-001",
    specimen_type: str = "plasma",
    volume_ml: float = 4.0,
    timepoint: str = "baseline",
    operator: str = "lab1",
) -> list[str]:
    """Accession ``n`` samples quickly (one transaction) and return their accession IDs."""
    intake = SampleIntake.model_validate(
        dict(
            study_id=study_id,
            timepoint=timepoint,
            specimen_type=specimen_type,
            collected_at="2024-05-27T08:00",
            volume_ml=volume_ml,
        )
    )
    with db.transaction(actor=operator) as session:
        return accession_samples(session, [intake] * n, operator=operator)
