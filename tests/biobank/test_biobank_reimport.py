"""Idempotent sample imports: a re-imported file adds nothing; duplicates are refused (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sabrkit.biobank import Sample, load_samples
from sabrkit.biobank.load import accession_sample
from sabrkit.db import Database
from sabrkit.errors import ImportValidationError

COLUMNS = ["study_id", "timepoint", "specimen_type", "collected_at", "volume_ml", "source_id"]
ROWS = [
    ["SABR-RCC-002", "baseline", "serum", "2024-06-12T09:30", "2.0", ""],
    ["SABR-RCC-001", "month_1", "plasma", "2024-07-01T10:00", "4.5", "TUBE-0001"],
    ["SABR-RCC-001", "baseline", "urine", "2024-05-27T08:15", "20", ""],
    ["SABR-RCC-001", "baseline", "plasma", "2024-05-27T08:15", "4.0", "TUBE-0002"],
    ["SABR-RCC-001", "baseline", "plasma", "2024-05-27T08:15", "3.0", ""],  # a second plasma tube, no barcode
]


def _write(path: Path, rows: list[list[str]], columns: list[str] = COLUMNS) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def _count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Sample))


def test_reimporting_the_same_file_leaves_the_count_unchanged(enrolled_db: Database, tmp_path: Path):
    path = _write(tmp_path / "samples.csv", ROWS)
    first = load_samples(enrolled_db, path)
    assert (first.n_samples, first.n_already) == (5, 0)
    again = load_samples(enrolled_db, path)
    assert (again.n_samples, again.n_already, again.accession_ids) == (0, 5, ())
    assert str(again).endswith("5 already imported, 0 new; nothing written")
    assert _count(enrolled_db) == 5
    with enrolled_db.session() as session:
        assert (
            session.scalars(select(Sample.source_site).where(Sample.source_id == "TUBE-0001")).one() == "main"
        )


def test_a_file_extending_an_imported_one_adds_only_the_new_rows(enrolled_db: Database, tmp_path: Path):
    load_samples(enrolled_db, _write(tmp_path / "first.csv", ROWS[:3]))
    extra = ["SABR-RCC-003", "baseline", "serum", "2024-06-20T09:00", "2.0", "TUBE-0003"]
    summary = load_samples(enrolled_db, _write(tmp_path / "all.csv", [*ROWS, extra]))
    assert (summary.n_samples, summary.n_already) == (3, 3)
    assert "3 already imported, 3 new" in str(summary)
    assert _count(enrolled_db) == 6


def test_exact_duplicate_rows_and_repeated_source_ids_are_refused(enrolled_db: Database, tmp_path: Path):
    rows = [*ROWS, ROWS[0], ["SABR-RCC-002", "month_1", "serum", "2024-07-12T09:30", "2.0", "TUBE-0001"]]
    with pytest.raises(ImportValidationError) as caught:
        load_samples(enrolled_db, _write(tmp_path / "dup.csv", rows))
    found = [(e.row, e.column.split(":")[-1], e.rule.split(":")[0]) for e in caught.value.errors]
    assert (7, "(row)", "exact duplicate of row 2") in found
    assert (8, "source_id", "source ID already on row 3 (site main)") in found
    assert _count(enrolled_db) == 0


def test_a_source_id_reused_for_another_sample_is_refused(enrolled_db: Database, tmp_path: Path):
    load_samples(enrolled_db, _write(tmp_path / "first.csv", ROWS[:2]))
    other = [["SABR-RCC-003", "baseline", "serum", "2024-06-20T09:00", "2.0", "TUBE-0001"]]
    with pytest.raises(ImportValidationError, match="already names another sample"):
        load_samples(enrolled_db, _write(tmp_path / "second.csv", other))
    # the same barcode at another site is another tube
    summary = load_samples(
        enrolled_db, _write(tmp_path / "site.csv", [other[0] + ["site-b"]], [*COLUMNS, "source_site"])
    )
    assert summary.n_samples == 1
    with pytest.raises(ImportValidationError, match="already accessioned"):
        accession_sample(
            enrolled_db,
            {
                "study_id": "SABR-RCC-001",
                "timepoint": "month_1",
                "specimen_type": "plasma",
                "collected_at": "2024-07-01T10:00",
                "volume_ml": "4.5",
                "source_id": "TUBE-0001",
            },
        )
    assert _count(enrolled_db) == 3


def test_sample_dates_after_today_are_refused(enrolled_db: Database, tmp_path: Path):
    with pytest.raises(ImportValidationError) as caught:
        load_samples(
            enrolled_db,
            _write(
                tmp_path / "f.csv", [["SABR-RCC-001", "baseline", "serum", "2099-05-27T08:15", "2.0", ""]]
            ),
        )
    assert [e.column for e in caught.value.errors] == ["f.csv:collected_at"]
    assert "must not lie after today" in caught.value.errors[0].rule
