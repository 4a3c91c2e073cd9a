"""compute_endpoints on hand-worked patients (day counts done on a calendar; months = days / 30.4375)."""

from __future__ import annotations

import pandas as pd
import pytest

from sabrkit.errors import ValidationError
from sabrkit.registry import ENDPOINT_COLUMNS, compute_endpoints

M = 30.4375


def _frames():
    patients = pd.DataFrame(
        {
            "study_id": ["SABR-RCC-004", "SABR-RCC-001", "SABR-RCC-002", "SABR-RCC-003"],
            "last_contact_date": ["2025-06-01", "2025-02-15", "2025-06-20", "2026-08-01"],
        }
    )
    sabr_courses = pd.DataFrame(
        {
            "study_id": ["SABR-RCC-001", "SABR-RCC-001", "SABR-RCC-002", "SABR-RCC-003", "SABR-RCC-004"],
            "start_date": ["2024-06-10", "2024-06-01", "2024-07-01", "2024-08-01", "2024-09-01"],
        }
    )
    progression = pd.DataFrame(
        {"study_id": ["SABR-RCC-001", "SABR-RCC-004"], "event_date": ["2024-12-01", "2025-01-01"]}
    )
    deaths = pd.DataFrame(
        {"study_id": ["SABR-RCC-001", "SABR-RCC-002"], "death_date": ["2025-03-01", "2025-07-01"]}
    )
    return patients, sabr_courses, progression, deaths


def test_hand_worked_endpoints():
    endpoints = compute_endpoints(*_frames())
    assert tuple(endpoints.columns) == ENDPOINT_COLUMNS
    assert endpoints["study_id"].tolist() == ["SABR-RCC-001", "SABR-RCC-002", "SABR-RCC-003", "SABR-RCC-004"]
    rows = endpoints.set_index("study_id")
    # 001: index = first fraction 2024-06-01 (not the later course); progression 2024-12-01
    #      = 183 days; death 2025-03-01 = 273 days (after the last contact: still an OS event)
    assert rows.loc["SABR-RCC-001", "index_date"] == pd.Timestamp("2024-06-01")
    assert rows.loc["SABR-RCC-001", "pfs_months"] == pytest.approx(183 / M)
    assert rows.loc["SABR-RCC-001", "os_months"] == pytest.approx(273 / M)
    assert rows.loc["SABR-RCC-001", ["pfs_event", "os_event"]].tolist() == [True, True]
    # 002: death without progression is a PFS event: 2024-07-01 -> 2025-07-01 = 365 days
    assert rows.loc["SABR-RCC-002", "pfs_months"] == pytest.approx(365 / M)
    assert rows.loc["SABR-RCC-002", "os_months"] == pytest.approx(365 / M)
    assert rows.loc["SABR-RCC-002", ["pfs_event", "os_event"]].tolist() == [True, True]
    # 003: no event: both censored at last contact, 2024-08-01 -> 2026-08-01 = 730 days
    assert rows.loc["SABR-RCC-003", "pfs_months"] == pytest.approx(730 / M)
    assert rows.loc["SABR-RCC-003", "os_months"] == pytest.approx(730 / M)
    assert rows.loc["SABR-RCC-003", ["pfs_event", "os_event"]].tolist() == [False, False]
    # 004: progression 2025-01-01 = 122 days; alive, OS censored at last contact 2025-06-01 = 273 days
    assert rows.loc["SABR-RCC-004", "pfs_months"] == pytest.approx(122 / M)
    assert rows.loc["SABR-RCC-004", "os_months"] == pytest.approx(273 / M)
    assert rows.loc["SABR-RCC-004", ["pfs_event", "os_event"]].tolist() == [True, False]
    assert endpoints["pfs_event"].dtype == bool and endpoints["os_event"].dtype == bool
    assert str(endpoints["index_date"].dtype).startswith("datetime64")


def test_death_before_progression_ends_pfs_at_death_and_earliest_progression_wins():
    patients, courses, _, _ = _frames()
    progression = pd.DataFrame(
        {
            "study_id": ["SABR-RCC-002", "SABR-RCC-004", "SABR-RCC-004"],
            "event_date": ["2025-08-01", "2025-03-01", "2025-01-01"],
        }
    )
    deaths = pd.DataFrame({"study_id": ["SABR-RCC-002"], "death_date": ["2025-07-01"]})
    rows = compute_endpoints(patients, courses, progression, deaths).set_index("study_id")
    assert rows.loc["SABR-RCC-002", "pfs_months"] == pytest.approx(365 / M)
    assert rows.loc["SABR-RCC-004", "pfs_months"] == pytest.approx(122 / M)


def test_events_of_patients_outside_the_cohort_are_ignored_and_empty_event_tables_work():
    patients, courses, _, _ = _frames()
    no_progression = pd.DataFrame({"study_id": [], "event_date": []})
    deaths = pd.DataFrame({"study_id": ["SABR-RCC-099"], "death_date": ["2025-01-01"]})
    endpoints = compute_endpoints(patients.iloc[[1]], courses, no_progression, deaths)
    assert endpoints["study_id"].tolist() == ["SABR-RCC-001"]
    assert not endpoints["pfs_event"].any() and not endpoints["os_event"].any()
    assert endpoints["pfs_months"].iloc[0] == pytest.approx((365 - 106) / M)  # 2024-06-01 -> 2025-02-15


def test_patient_without_sabr_course_is_named():
    patients, courses, progression, deaths = _frames()
    courses = courses[courses["study_id"] != "SABR-RCC-003"]
    with pytest.raises(ValidationError, match=r"SABR-RCC-003.*no SABR course.*fix: enter"):
        compute_endpoints(patients, courses, progression, deaths)


def test_progression_before_first_fraction_is_refused():
    patients, courses, _, deaths = _frames()
    progression = pd.DataFrame({"study_id": ["SABR-RCC-003"], "event_date": ["2024-07-30"]})
    with pytest.raises(ValidationError, match=r"SABR-RCC-003.*progression 2024-07-30"):
        compute_endpoints(patients, courses, progression, deaths)


def test_last_contact_before_first_fraction_is_refused_for_censored_patients():
    patients, courses, progression, deaths = _frames()
    patients.loc[patients["study_id"] == "SABR-RCC-003", "last_contact_date"] = "2024-07-01"
    with pytest.raises(ValidationError, match=r"SABR-RCC-003.*last contact"):
        compute_endpoints(patients, courses, progression, deaths)


def test_missing_column_and_duplicate_death_are_refused():
    patients, courses, progression, deaths = _frames()
    with pytest.raises(ValidationError, match="last_contact_date"):
        compute_endpoints(patients.drop(columns="last_contact_date"), courses, progression, deaths)
    with pytest.raises(ValidationError, match="more than one death"):
        compute_endpoints(patients, courses, progression, pd.concat([deaths, deaths]))
