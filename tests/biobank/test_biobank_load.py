"""Bulk accessioning from CSV: deterministic IDs, SPREC stored, every bad row reported, all or nothing."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sabrkit.audit import open_database
from sabrkit.biobank import Sample, custody_history, load_samples, validate_accession_id
from sabrkit.biobank.tables import BiobankCounter
from sabrkit.db import Database
from sabrkit.db.errors import WriteConflictError
from sabrkit.errors import ImportValidationError

COLUMNS = ["study_id", "timepoint", "specimen_type", "collected_at", "volume_ml"]
ROWS = [
    ["SABR-RCC-002", "baseline", "serum", "2024-06-12T09:30", "2.0"],
    ["SABR-RCC-001", "month_1", "plasma", "2024-07-01T10:00", "4.5"],
    ["SABR-RCC-001", "baseline", "urine", "2024-05-27T08:15", "20"],
    ["SABR-RCC-001", "baseline", "plasma", "2024-05-27T08:15", "4.0"],
    ["SABR-RCC-001", "end_of_sabr", "pbmc", "2024-06-05T11:00", ""],
]


def _write(path: Path, rows: list[list[str]], columns: list[str] = COLUMNS) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def _by_sample(db: Database) -> dict[tuple[str, str, str], str]:
    with db.session() as session:
        return {
            (s.study_id, s.timepoint, s.specimen_type): s.accession_id
            for s in session.scalars(select(Sample))
        }


def test_samples_get_deterministic_accession_ids(enrolled_db: Database, tmp_path: Path):
    summary = load_samples(enrolled_db, _write(tmp_path / "samples.csv", ROWS), operator="lab1")
    assert summary.n_samples == 5
    # order: study ID, collection time, protocol timepoint, specimen type; serials count per specimen code
    assert [a[:14] for a in summary.accession_ids] == [
        "SABR-PL-000001",
        "SABR-UR-000001",
        "SABR-PB-000001",
        "SABR-PL-000002",
        "SABR-SE-000001",
    ]
    for accession_id in summary.accession_ids:
        validate_accession_id(accession_id)
    with enrolled_db.session() as session:
        pbmc = session.scalars(select(Sample).where(Sample.specimen_type == "pbmc")).one()
        assert pbmc.quantity is None and pbmc.status == "received" and pbmc.kind == "primary"
        plasma = session.scalars(select(Sample).where(Sample.accession_id == summary.accession_ids[0])).one()
        assert (plasma.quantity, plasma.remaining_quantity, plasma.quantity_unit) == (4.0, 4.0, "mL")
        assert (plasma.sprec_code, plasma.sprec_version) == ("PL1-XXX-X-X-X-X-X", "3.0")
    events = [e.event_type for e in custody_history(enrolled_db, summary.accession_ids[0])]
    assert events == ["collected", "received"]


def test_same_rows_in_another_order_get_the_same_ids(enrolled_db: Database, tmp_path: Path):
    load_samples(enrolled_db, _write(tmp_path / "a.csv", ROWS))
    with open_database(f"sqlite:///{tmp_path / 'other.db'}") as other:
        other.upgrade()
        from biobank_helpers import STUDY_IDS, make_patient

        with other.transaction() as session:
            session.add_all([make_patient(s) for s in STUDY_IDS])
        load_samples(other, _write(tmp_path / "shuffled.csv", ROWS[::-1]))
        assert _by_sample(other) == _by_sample(enrolled_db)


def test_serials_continue_per_specimen_code(enrolled_db: Database, tmp_path: Path):
    load_samples(enrolled_db, _write(tmp_path / "first.csv", ROWS[:2]))
    second = load_samples(enrolled_db, _write(tmp_path / "second.csv", ROWS[2:]))
    assert [a[:14] for a in second.accession_ids] == ["SABR-PL-000002", "SABR-UR-000001", "SABR-PB-000001"]
    with enrolled_db.session() as session:
        counters = dict(session.execute(select(BiobankCounter.name, BiobankCounter.value)).all())
    assert counters == {"accession:PL": 2, "accession:SE": 1, "accession:UR": 1, "accession:PB": 1}


def test_preanalytical_columns_give_the_sprec_code(enrolled_db: Database, tmp_path: Path):
    columns = [
        *COLUMNS,
        "primary_container",
        "processed_at",
        "pre_centrifugation_temperature",
        "centrifugation_g",
        "centrifugation_minutes",
        "centrifugation_temperature",
        "centrifugation_braking",
        "post_centrifugation_temperature",
        "frozen_at",
        "storage_container",
        "storage_temperature_c",
    ]
    row = [
        "SABR-RCC-001",
        "baseline",
        "serum",
        "2024-05-27T08:00",
        "2.0",
        "SST",
        "2024-05-27T10:30",
        "room_temperature",
        "1500",
        "10",
        "room_temperature",
        "true",
        "room_temperature",
        "2024-05-27T11:40",
        "cryotube_1_2ml",
        "-80",
    ]
    summary = load_samples(enrolled_db, _write(tmp_path / "s.csv", [row], columns))
    with enrolled_db.session() as session:
        sample = session.scalars(select(Sample).where(Sample.accession_id == summary.accession_ids[0])).one()
    assert sample.sprec_code == "SER-SST-C-B-N-D-D"  # hand-worked in test_biobank_sprec.py
    assert sample.processed_at - sample.collected_at == datetime(2024, 1, 1, 10, 30) - datetime(
        2024, 1, 1, 8, 0
    )


def test_every_bad_row_is_reported_and_nothing_is_written(enrolled_db: Database, tmp_path: Path):
    columns = [*COLUMNS, "processed_at", "primary_container", "centrifugation_g"]
    ok = ["SABR-RCC-001", "baseline", "plasma", "2024-05-27T08:15", "4.0", "", "", ""]
    rows = [
        ok,
        ["SABR-RCC-077", *ok[1:]],  # 3: patient not enrolled
        ["SABR-RCC-001", "week_2", *ok[2:]],  # 4: unknown timepoint
        ["SABR-RCC-001", "baseline", "saliva", *ok[3:]],  # 5: unknown specimen type
        [*ok[:3], "27/05/2024", *ok[4:]],  # 6: datetime format
        [*ok[:4], "-1", *ok[5:]],  # 7: volume
        [*ok[:5], "2024-05-27T07:00", "", ""],  # 8: processing before collection
        [*ok[:3], "2024-05-01T08:00", *ok[4:]],  # 9: collected before enrolment
        [*ok[:6], "XYZ", ""],  # 10: unknown SPREC container
        [*ok[:7], "2000"],  # 11: g-force without minutes
        [
            "SABR-RCC-001",
            "baseline",
            "ffpe",
            "2024-05-27T08:15",
            "1",
            "",
            "",
            "",
        ],  # 12: FFPE is counted, not mL
    ]
    with pytest.raises(ImportValidationError) as caught:
        load_samples(enrolled_db, _write(tmp_path / "samples.csv", rows, columns))
    reported = {(e.row, e.column.split(":")[1]) for e in caught.value.errors}
    assert reported == {
        (3, "study_id"),
        (4, "timepoint"),
        (5, "specimen_type"),
        (6, "collected_at"),
        (7, "volume_ml"),
        (8, "processed_at"),
        (9, "collected_at"),
        (10, "primary_container"),
        (11, "centrifugation_minutes"),
        (12, "volume_ml"),
    }
    messages = {e.row: e.rule for e in caught.value.errors}
    assert "not enrolled" in messages[3] and "processing before collection" in messages[8]
    assert "before the patient's enrolment" in messages[9]
    with enrolled_db.session() as session:
        assert session.scalar(select(func.count()).select_from(Sample)) == 0


def test_database_refuses_bad_sample_values(enrolled_db: Database):
    with pytest.raises(WriteConflictError):
        with enrolled_db.transaction() as session:
            session.add(
                Sample(
                    accession_id="SABR-PL-000001-C",
                    study_id="SABR-RCC-001",
                    timepoint="baseline",
                    specimen_type="plasma",
                    collected_at=datetime(2024, 5, 27),
                    quantity=2.0,
                    remaining_quantity=3.0,
                )
            )  # more left than there ever was
