"""load_samples: deterministic accessioning, all-or-nothing validation."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from sabrkit.biobank import Sample, load_samples, next_serial, validate_accession_id
from sabrkit.db import Database
from sabrkit.errors import ImportValidationError
from sabrkit.registry import Patient

COLUMNS = ["study_id", "timepoint", "specimen_type", "collected_at", "volume_ml"]
ROWS = [
    ["SABR-RCC-002", "baseline", "serum", "2024-06-12T09:30", "2.0"],
    ["SABR-RCC-001", "month_1", "plasma", "2024-07-01T10:00", "4.5"],
    ["SABR-RCC-001", "baseline", "urine", "2024-05-27T08:15", "20"],
    ["SABR-RCC-001", "baseline", "plasma", "2024-05-27T08:15", "4.0"],
    ["SABR-RCC-001", "end_of_sabr", "pbmc", "2024-06-05T11:00", ""],
]


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def _patient(study_id: str) -> Patient:
    return Patient(
        study_id=study_id, mdt_date=date(2024, 5, 2), enrolment_date=date(2024, 5, 6), age_years=60, sex="M",
        ecog=1, histology="clear_cell", imdc_risk="intermediate", prior_nephrectomy=True,
        disease_state="oligometastatic", systemic_therapy="tki_ici", last_contact_date=date(2025, 5, 6),
    )


@pytest.fixture
def registry_db(db: Database) -> Database:
    with db.transaction() as session:
        session.add_all([_patient("SABR-RCC-001"), _patient("SABR-RCC-002")])
    return db


def _by_sample(db: Database) -> dict[tuple[str, str, str], str]:
    with db.session() as session:
        return {
            (s.study_id, s.timepoint, s.specimen_type): s.accession_id for s in session.scalars(select(Sample))
        }


def test_samples_get_deterministic_accession_ids(registry_db: Database, tmp_path: Path):
    summary = load_samples(registry_db, _write(tmp_path / "samples.csv", ROWS))
    assert summary.n_samples == 5
    # order: study ID, collection time, protocol timepoint, specimen type
    assert [a[:14] for a in summary.accession_ids] == [
        "SABR-PL-000001", "SABR-UR-000002", "SABR-PB-000003", "SABR-PL-000004", "SABR-SE-000005",
    ]
    for accession_id in summary.accession_ids:
        validate_accession_id(accession_id)
    ids = _by_sample(registry_db)
    assert ids[("SABR-RCC-001", "baseline", "urine")] == summary.accession_ids[1]
    with registry_db.session() as session:
        pbmc = session.scalars(select(Sample).where(Sample.specimen_type == "pbmc")).one()
        assert pbmc.volume_ml is None and pbmc.status == "received"
    # the same rows in another order give the same IDs in a fresh database
    with Database.from_url(f"sqlite:///{tmp_path / 'other.db'}") as other:
        other.upgrade()
        with other.transaction() as session:
            session.add_all([_patient("SABR-RCC-001"), _patient("SABR-RCC-002")])
        load_samples(other, _write(tmp_path / "shuffled.csv", ROWS[::-1]))
        assert _by_sample(other) == ids


def test_serials_continue_after_existing_samples(registry_db: Database, tmp_path: Path):
    load_samples(registry_db, _write(tmp_path / "first.csv", ROWS[:2]))
    assert next_serial(registry_db) == 3
    second = load_samples(registry_db, _write(tmp_path / "second.csv", ROWS[2:]))
    assert [int(a[8:14]) for a in second.accession_ids] == [3, 4, 5]


def test_bad_rows_are_all_reported_and_nothing_is_written(registry_db: Database, tmp_path: Path):
    rows = [
        ["SABR-RCC-001", "baseline", "plasma", "2024-05-27T08:15", "4.0"],  # fine
        ["SABR-RCC-077", "baseline", "plasma", "2024-05-27T08:15", "4.0"],  # unknown patient
        ["SABR-RCC-001", "week_2", "plasma", "2024-05-27T08:15", "4.0"],  # timepoint
        ["SABR-RCC-001", "baseline", "saliva", "2024-05-27T08:15", "4.0"],  # specimen type
        ["SABR-RCC-001", "baseline", "plasma", "27/05/2024", "4.0"],  # datetime format
        ["SABR-RCC-001", "baseline", "plasma", "2024-05-27T08:15", "-1"],  # volume
        ["RCC-1", "baseline", "plasma", "2024-05-27T08:15", "4.0"],  # study ID format
        ["SABR-RCC-001", "baseline", "plasma", "2024-05-27T08:15Z", "4.0"],  # time zone
    ]
    with pytest.raises(ImportValidationError) as caught:
        load_samples(registry_db, _write(tmp_path / "samples.csv", rows))
    reported = {(e.row, e.column) for e in caught.value.errors}
    assert reported == {
        (3, "samples.csv:study_id"), (4, "samples.csv:timepoint"), (5, "samples.csv:specimen_type"),
        (6, "samples.csv:collected_at"), (7, "samples.csv:volume_ml"), (8, "samples.csv:study_id"),
        (9, "samples.csv:collected_at"),
    }
    with registry_db.session() as session:
        assert session.scalar(select(func.count()).select_from(Sample)) == 0


def test_database_refuses_bad_sample_values(registry_db: Database):
    with pytest.raises(IntegrityError):
        with registry_db.transaction() as session:
            session.add(Sample(accession_id="SABR-PL-1", study_id="SABR-RCC-001", timepoint="baseline",
                               specimen_type="plasma", collected_at=date(2024, 5, 27)))
