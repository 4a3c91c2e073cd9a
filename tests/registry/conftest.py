"""Database fixtures: a fresh SQLite file per test, and the same tests on PostgreSQL when
SABRKIT_TEST_POSTGRES_URL is set (one throw-away schema per test)."""

from __future__ import annotations

from pathlib import Path

import pytest

# ---- a small, hand-written, valid registry folder -------------------------------------------

REGISTRY_COLUMNS: dict[str, list[str]] = {
    "patients.csv": [
        "study_id",
        "mdt_date",
        "enrolment_date",
        "age_years",
        "sex",
        "ecog",
        "histology",
        "imdc_risk",
        "prior_nephrectomy",
        "disease_state",
        "systemic_therapy",
        "last_contact_date",
    ],
    "identifiers.csv": ["study_id", "hospital_number", "family_name", "given_name", "date_of_birth"],
    "lesions.csv": [
        "lesion_id",
        "study_id",
        "lesion_number",
        "site",
        "longest_diameter_mm",
        "series_uid",
        "roi_name",
    ],
    "sabr_courses.csv": [
        "lesion_id",
        "study_id",
        "total_dose_gy",
        "fractions",
        "start_date",
        "end_date",
        "technique",
    ],
    "visits.csv": ["study_id", "visit_number", "visit_date", "vrs_pain", "tess_score"],
    "adverse_events.csv": ["study_id", "term", "grade", "ctcae_version", "onset_date", "attribution_sabr"],
    "progression_events.csv": ["study_id", "event_date", "progression_type"],
    "deaths.csv": ["study_id", "death_date", "cause"],
}

_ROWS: dict[str, list[str]] = {
    "patients.csv": [
        "SABR-RCC-001,2024-05-20,2024-05-27,64,M,0,clear_cell,intermediate,true,oligometastatic,tki,2025-02-15",
        "SABR-RCC-002,2024-06-10,2024-06-17,71,F,1,non_clear_cell,favourable,false,oligoprogressive,ici,2025-06-20",
        "SABR-RCC-003,2024-07-15,2024-07-22,58,M,2,clear_cell,poor,true,oligometastatic,tki_ici,2026-08-01",
    ],
    "identifiers.csv": [
        "SABR-RCC-001,H1000001,Testperson,Alan,1960-03-14",
        "SABR-RCC-002,H1000002,Fakename,Berit,1953-01-02",
        "SABR-RCC-003,H1000003,Madeup,Carl,1966-11-30",
    ],
    "lesions.csv": [
        "SABR-RCC-001-L1,SABR-RCC-001,1,lung,18.5,1.2.826.0.1.3680043.8.498.1,GTV_L1",
        "SABR-RCC-001-L2,SABR-RCC-001,2,bone,25,1.2.826.0.1.3680043.8.498.2,GTV_L2",
        "SABR-RCC-002-L1,SABR-RCC-002,1,adrenal,32,,",
        "SABR-RCC-003-L1,SABR-RCC-003,1,lung,35,1.2.826.0.1.3680043.8.498.3,GTV_L1",
    ],
    "sabr_courses.csv": [
        "SABR-RCC-001-L2,SABR-RCC-001,35,5,2024-06-10,2024-06-16,VMAT",
        "SABR-RCC-001-L1,SABR-RCC-001,54,3,2024-06-01,2024-06-05,VMAT",
        "SABR-RCC-002-L1,SABR-RCC-002,60,8,2024-07-01,2024-07-12,VMAT",
        "SABR-RCC-003-L1,SABR-RCC-003,55,5,2024-08-01,2024-08-09,CyberKnife",
    ],
    "visits.csv": [
        "SABR-RCC-001,1,2024-07-01,1,50",
        "SABR-RCC-001,2,2024-08-01,2,48.5",
        "SABR-RCC-002,1,2024-08-01,0,",
        "SABR-RCC-003,1,2024-09-01,1,55",
    ],
    "adverse_events.csv": [
        "SABR-RCC-001,Fatigue,1,5.0,2024-06-20,probable",
        "SABR-RCC-003,Pneumonitis,2,5.0,2024-10-01,possible",
    ],
    "progression_events.csv": ["SABR-RCC-001,2024-12-01,distant"],
    "deaths.csv": ["SABR-RCC-001,2025-03-01,rcc", "SABR-RCC-002,2025-07-01,other"],
}


@pytest.fixture
def registry_tables() -> dict[str, list[dict[str, str]]]:
    """The valid registry as editable rows (file name -> list of column -> cell text)."""
    return {
        name: [dict(zip(REGISTRY_COLUMNS[name], line.split(","), strict=True)) for line in lines]
        for name, lines in _ROWS.items()
    }


def write_registry_folder(folder: Path, tables: dict[str, list[dict[str, str]]]) -> Path:
    """Write ``tables`` as the eight registry CSV files into ``folder``; returns ``folder``."""
    import csv

    folder.mkdir(parents=True, exist_ok=True)
    for name, columns in REGISTRY_COLUMNS.items():
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(tables.get(name, []))
    return folder


@pytest.fixture
def write_registry():
    """The folder writer, as a fixture (test modules cannot import this conftest)."""
    return write_registry_folder
