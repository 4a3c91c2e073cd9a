"""load_registry_folder: a valid folder loads in one go; bad rows are all reported, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from sabrkit.db import Database
from sabrkit.errors import ImportValidationError, ValidationError
from sabrkit.registry import (
    CLINICAL_COVARIATE_COLUMNS,
    REGISTRY_FILES,
    clinical_covariates_from_db,
    endpoints_from_db,
    load_registry_folder,
)
from sabrkit.registry import tables as m

M = 30.4375
ALL_MODELS = [model for _, model in REGISTRY_FILES.values()]


def _counts(db: Database) -> dict[str, int]:
    with db.session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in ALL_MODELS
        }


def test_valid_folder_loads_with_dose_endpoints_and_covariates(db, registry_tables, write_registry, tmp_path):
    folder = write_registry(tmp_path / "registry", registry_tables)
    summary = load_registry_folder(db, folder)
    assert summary.counts == {
        "patients": 3,
        "patient_identifiers": 3,
        "lesions": 4,
        "sabr_courses": 4,
        "visits": 4,
        "adverse_events": 2,
        "progression_events": 1,
        "deaths": 2,
    }
    assert summary.total == 23
    assert {k: v for k, v in _counts(db).items() if v or k in summary.counts} == summary.counts
    with db.session() as session:
        course = session.scalars(
            select(m.SabrCourse).where(m.SabrCourse.lesion_id == "SABR-RCC-001-L1")
        ).one()
        assert (course.alpha_beta_gy, course.bed_gy, course.eqd2_gy) == pytest.approx((10.0, 151.2, 126.0))
        visit = session.scalars(select(m.Visit).where(m.Visit.study_id == "SABR-RCC-002")).one()
        assert visit.tess_score is None and visit.vrs_pain == 0
        assert session.get(m.Patient, "SABR-RCC-001").prior_nephrectomy is True
        assert session.get(m.AdverseEvent, 1).ctcae_version == "5.0"

    endpoints = endpoints_from_db(db).set_index("study_id")
    assert endpoints.loc["SABR-RCC-001", "pfs_months"] == pytest.approx(183 / M)
    assert endpoints.loc["SABR-RCC-002", ["pfs_event", "os_event"]].tolist() == [True, True]
    assert endpoints.loc["SABR-RCC-003", "os_months"] == pytest.approx(730 / M)
    assert not endpoints.loc["SABR-RCC-003", "os_event"]

    covariates = clinical_covariates_from_db(db)
    assert tuple(covariates.columns) == CLINICAL_COVARIATE_COLUMNS
    rows = covariates.set_index("study_id")
    assert rows["n_lesions"].to_dict() == {"SABR-RCC-001": 2, "SABR-RCC-002": 1, "SABR-RCC-003": 1}
    assert rows["max_bed10_gy"].to_dict() == pytest.approx(
        {"SABR-RCC-001": 151.2, "SABR-RCC-002": 105.0, "SABR-RCC-003": 115.5}
    )
    text = covariates.to_csv()
    assert "Testperson" not in text and "H1000001" not in text


def test_cohort_folder_with_registry_subfolder_is_accepted(db, registry_tables, write_registry, tmp_path):
    write_registry(tmp_path / "cohort" / "registry", registry_tables)
    assert load_registry_folder(db, tmp_path / "cohort").counts["patients"] == 3


def test_every_bad_row_is_reported_and_nothing_is_written(db, registry_tables, write_registry, tmp_path):
    t = registry_tables
    t["patients.csv"][1]["ecog"] = "7"  # range
    t["patients.csv"][2]["sex"] = "X"  # vocabulary
    t["identifiers.csv"][1]["hospital_number"] = "H1000001"  # duplicate key-table value (hidden)
    t["lesions.csv"][0]["site"] = "spleen"  # vocabulary
    t["lesions.csv"].append(dict(t["lesions.csv"][2], lesion_id="SABR-RCC-099-L1", study_id="SABR-RCC-099"))
    t["sabr_courses.csv"][1]["end_date"] = "2024-05-30"  # ends before it starts
    t["sabr_courses.csv"][2]["fractions"] = "0"  # range
    t["sabr_courses.csv"][3]["total_dose_gy"] = "sixty"  # type
    t["visits.csv"][0]["vrs_pain"] = "5"  # VRS 0-4
    t["visits.csv"][1]["tess_score"] = "61"  # TESS 0-60
    t["visits.csv"][3]["visit_date"] = "2024-13-01"  # not a date
    t["adverse_events.csv"][0]["grade"] = "6"  # CTCAE grade 1-5
    t["adverse_events.csv"][1]["ctcae_version"] = "3.0"  # unknown CTCAE version
    t["progression_events.csv"][0]["event_date"] = "2024-05-01"  # before enrolment
    t["deaths.csv"][1]["death_date"] = "1751328000"  # a Unix timestamp, not an ISO date
    t["deaths.csv"].append(
        {"study_id": "SABR-RCC-042", "death_date": "2025-01-01", "cause": "rcc"}
    )  # unknown
    folder = write_registry(tmp_path / "registry", t)

    with pytest.raises(ImportValidationError) as caught:
        load_registry_folder(db, folder)
    error = caught.value
    reported = {(e.column, e.row) for e in error.errors}
    expected = {
        ("patients.csv:ecog", 3),
        ("patients.csv:sex", 4),
        ("identifiers.csv:hospital_number", 3),
        ("lesions.csv:site", 2),
        ("lesions.csv:study_id", 6),
        ("sabr_courses.csv:end_date", 3),
        ("sabr_courses.csv:fractions", 4),
        ("sabr_courses.csv:total_dose_gy", 5),
        ("visits.csv:vrs_pain", 2),
        ("visits.csv:tess_score", 3),
        ("visits.csv:visit_date", 5),
        ("adverse_events.csv:grade", 2),
        ("adverse_events.csv:ctcae_version", 3),
        ("progression_events.csv:event_date", 2),
        ("deaths.csv:death_date", 3),
        ("deaths.csv:study_id", 4),
    }
    assert expected <= reported, expected - reported
    rules: dict[tuple[str, int], str] = {}
    for e in error.errors:
        rules[(e.column, e.row)] = rules.get((e.column, e.row), "") + e.rule + "; "
    assert "unknown patient" in rules[("lesions.csv:study_id", 6)]
    assert "on or after start_date" in rules[("sabr_courses.csv:end_date", 3)]
    assert "on or after enrolment" in rules[("progression_events.csv:event_date", 2)]
    assert "on or after the first SABR fraction" in rules[("progression_events.csv:event_date", 2)]
    assert error.source == str(folder)
    message = str(error)
    assert "nothing was imported" in message
    assert "H1000001" not in message and "Fakename" not in message  # key-table values never shown
    assert set(_counts(db).values()) == {0}


def test_header_problems_are_reported_at_row_1(db, registry_tables, write_registry, tmp_path):
    folder = write_registry(tmp_path / "registry", registry_tables)
    lines = (folder / "visits.csv").read_text().splitlines()
    lines[0] = lines[0].replace("tess_score", "tess")
    (folder / "visits.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportValidationError) as caught:
        load_registry_folder(db, folder)
    assert {(e.column, e.row) for e in caught.value.errors} == {("visits.csv:tess", 1)}
    assert "unknown column" in caught.value.errors[0].rule


def test_one_bad_patient_row_does_not_cascade_into_its_lesions(db, registry_tables, write_registry, tmp_path):
    registry_tables["patients.csv"][0]["age_years"] = "sixty"
    folder = write_registry(tmp_path / "registry", registry_tables)
    with pytest.raises(ImportValidationError) as caught:
        load_registry_folder(db, folder)
    assert [(e.column, e.row) for e in caught.value.errors] == [("patients.csv:age_years", 2)]


def test_loading_the_same_patients_twice_is_refused(db, registry_tables, write_registry, tmp_path):
    folder = write_registry(tmp_path / "registry", registry_tables)
    load_registry_folder(db, folder)
    before = _counts(db)
    with pytest.raises(ImportValidationError, match="already in the registry"):
        load_registry_folder(db, folder)
    assert _counts(db) == before


def test_missing_file_is_named(db, registry_tables, write_registry, tmp_path: Path):
    folder = write_registry(tmp_path / "registry", registry_tables)
    (folder / "deaths.csv").unlink()
    with pytest.raises(ValidationError, match=r"deaths.csv"):
        load_registry_folder(db, folder)


def test_empty_registry_gives_empty_tables(db):
    assert endpoints_from_db(db).empty
    covariates = clinical_covariates_from_db(db)
    assert covariates.empty and tuple(covariates.columns) == CLINICAL_COVARIATE_COLUMNS
