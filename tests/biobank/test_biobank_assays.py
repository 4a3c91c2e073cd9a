"""Assay results: all-or-nothing import with per-row errors, export joined to patients."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from biobank_helpers import add_samples
from sqlalchemy import func, select

from sabrkit.biobank import (
    add_consent_form,
    assay_feature_table,
    assay_results_table,
    import_assay_results,
    record_consent,
)
from sabrkit.biobank.tables import AssayResult
from sabrkit.db import Database
from sabrkit.errors import ImportValidationError

HEADER = ["accession_id", "analyte", "value", "unit", "method", "batch", "lod", "measured_on"]


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


@pytest.fixture
def assay_db(enrolled_db: Database) -> tuple[Database, list[str], list[str]]:
    add_consent_form(enrolled_db, "1.0", "consent", date(2024, 1, 1), operator="c")
    for study_id in ("SABR-RCC-001", "SABR-RCC-002"):
        record_consent(
            enrolled_db, study_id, "1.0", date(2024, 5, 6), ["storage", "future_research"], operator="c"
        )
    first = add_samples(enrolled_db, 2, study_id="SABR-RCC-001") + add_samples(
        enrolled_db, 1, study_id="SABR-RCC-001", timepoint="month_3"
    )
    second = add_samples(enrolled_db, 1, study_id="SABR-RCC-002")
    return enrolled_db, first, second


def test_bad_rows_reported_together_nothing_written(assay_db, tmp_path: Path):
    db, first, _ = assay_db
    rows = [
        [first[0], "IL6", "4.2", "pg/mL", "ELISA", "B1", "1.0", "2024-08-01"],
        ["SABR-PL-000999-X", "IL6", "1", "pg/mL", "ELISA", "B1", "1.0", "2024-08-01"],  # malformed
        [
            first[0].replace("000001", "000077")[:-1] + "Z",
            "IL6",
            "1",
            "pg/mL",
            "ELISA",
            "B1",
            "",
            "2024-08-01",
        ],
        [first[1], "IL 6", "1", "pg/mL", "ELISA", "B1", "", "2024-08-01"],  # analyte name
        [first[1], "IL6", "1", "pg/mL", "ELISA", "B1", "-1", "2024-08-01"],  # LOD < 0
        [first[1], "IL6", "1", "pg/mL", "ELISA", "B1", "", "2024-05-01"],  # before collection
    ]
    with pytest.raises(ImportValidationError) as caught:
        import_assay_results(db, _write(tmp_path / "a.csv", rows), operator="lab2")
    assert {(e.row, e.column.split(":")[1]) for e in caught.value.errors} == {
        (3, "accession_id"),
        (4, "accession_id"),
        (5, "analyte"),
        (6, "lod"),
        (7, "measured_on"),
    }
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(AssayResult)) == 0
    summary = import_assay_results(db, _write(tmp_path / "b.csv", rows[:1]), operator="lab2", dry_run=True)
    assert summary.dry_run and summary.n_results == 1


def test_export_joined_to_patients_and_wide_features(assay_db, tmp_path: Path):
    db, first, second = assay_db
    rows = [
        [first[0], "ctDNA_VAF", "0.8", "%", "ddPCR", "R1", "0.1", "2024-08-01"],
        [first[1], "ctDNA_VAF", "0.05", "%", "ddPCR", "R1", "0.1", "2024-08-01"],  # below LOD
        [first[2], "ctDNA_VAF", "", "%", "ddPCR", "R2", "0.1", "2024-10-01"],  # not detected
        [second[0], "IL6", "3.0", "pg/mL", "ELISA", "E1", "1.0", "2024-08-02"],
    ]
    import_assay_results(db, _write(tmp_path / "a.csv", rows), operator="lab2")
    table = assay_results_table(db)
    assert list(table.columns[:3]) == ["study_id", "accession_id", "timepoint"]
    assert len(table) == 4 and list(table["below_lod"]) == [False, True, True, False]
    wide = assay_feature_table(db).set_index("study_id")
    # baseline: mean of 0.8 and LOD/2 = 0.05 -> 0.425; month_3: not detected -> LOD/2 = 0.05
    assert wide.loc["SABR-RCC-001", "ctDNA_VAF_baseline"] == pytest.approx(0.425)
    assert wide.loc["SABR-RCC-001", "ctDNA_VAF_month_3"] == pytest.approx(0.05)
    assert wide.loc["SABR-RCC-002", "IL6_baseline"] == 3.0
    # a participant without consent is left out
    [third] = add_samples(db, 1, study_id="SABR-RCC-003")
    import_assay_results(
        db,
        _write(tmp_path / "c.csv", [[third, "IL6", "1", "pg/mL", "ELISA", "E2", "", "2024-08-01"]]),
        operator="lab2",
    )
    assert "SABR-RCC-003" not in set(assay_results_table(db)["study_id"])
