"""Date and cross-record rules (sabrkit.registry.rules) on every write path: import, single entry, correct, API.

Each rule is broken once per path; the test asserts the error names the field and the rule, and
that the database is unchanged. Future dates are tested with 2099 (after any "today") and with
an explicit data cut-off (``SABRKIT_DATA_CUTOFF``), so the tests do not depend on the clock.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from sabrkit.db import Database
from sabrkit.errors import ImportValidationError, ValidationError
from sabrkit.registry import REGISTRY_FILES, load_registry_folder
from sabrkit.registry import tables as m
from sabrkit.registry.capture import correct, delete, enrol, record
from sabrkit.registry.rules import (
    CUTOFF_ENV,
    FutureDateError,
    check_not_future,
    latest_allowed_date,
    patient_rule_errors,
)

PATIENT = dict(
    study_id="SABR-RCC-010",
    mdt_date="2024-05-20",
    enrolment_date="2024-05-27",
    age_years=66,
    sex="F",
    ecog=1,
    histology="clear_cell",
    imdc_risk="favourable",
    prior_nephrectomy="true",
    disease_state="oligoprogressive",
    systemic_therapy="ici",
    last_contact_date="2024-05-27",
)
ELIGIBLE = dict(
    assessed_on="2024-05-20",
    rcc_confirmed="true",
    one_to_five_metastases="true",
    all_lesions_treatable="true",
    ecog_0_to_2="true",
    informed_consent="true",
    mdt_decision="sabr_all_lesions",
)
SID = "SABR-RCC-010"


def _snapshot(db: Database) -> dict[str, list[tuple]]:
    """Every registry row (and the audit log length): equal before and after a refused write."""
    from sabrkit.audit import AuditLogEntry

    out: dict[str, list[tuple]] = {}
    with db.session() as session:
        for _, model in REGISTRY_FILES.values():
            columns = list(model.__table__.c)
            out[model.__tablename__] = sorted(
                tuple(map(str, row)) for row in session.execute(select(*columns))
            )
        out["audit"] = [(session.scalar(select(func.count()).select_from(AuditLogEntry)),)]
    return out


@pytest.fixture
def patient(db):
    """SABR-RCC-010: enrolled 2024-05-27, one course 2024-06-03..07, visit 1 on 2024-07-04, died 2024-09-01."""
    enrol(db, PATIENT, ELIGIBLE, actor="coordinator")
    record(
        db,
        {
            "lesion": dict(lesion_id=f"{SID}-L1", study_id=SID, lesion_number=1, site="bone"),
            "course": dict(
                lesion_id=f"{SID}-L1",
                study_id=SID,
                total_dose_gy=35,
                fractions=5,
                start_date="2024-06-03",
                end_date="2024-06-07",
            ),
        },
        actor="physicist",
    )
    record(db, {"visit": dict(study_id=SID, visit_number=1, visit_date="2024-07-04")}, actor="nurse")
    record(
        db,
        {
            "ae": dict(
                study_id=SID,
                term="Fatigue",
                grade=1,
                ctcae_version="5.0",
                onset_date="2024-06-20",
                attribution_sabr="possible",
            )
        },
        actor="nurse",
    )
    record(db, {"death": dict(study_id=SID, death_date="2024-09-01", cause="rcc")}, actor="doctor")
    return db


def _errors(caught: pytest.ExceptionInfo) -> list[tuple[str, str]]:
    return [(e.column.rsplit(":", 1)[-1], e.rule) for e in caught.value.errors]


# ---- the one-field helpers -------------------------------------------------------------------------


def test_latest_allowed_date_is_today_or_the_earlier_cutoff(monkeypatch):
    monkeypatch.delenv(CUTOFF_ENV, raising=False)
    assert latest_allowed_date(dt.date(2026, 1, 5)) == dt.date(2026, 1, 5)
    monkeypatch.setenv(CUTOFF_ENV, "2025-12-31")
    assert latest_allowed_date(dt.date(2026, 1, 5)) == dt.date(2025, 12, 31)
    assert latest_allowed_date(dt.date(2025, 6, 1)) == dt.date(2025, 6, 1)
    monkeypatch.setenv(CUTOFF_ENV, "31/12/2025")
    with pytest.raises(ValidationError, match="YYYY-MM-DD") as caught:
        latest_allowed_date()
    assert caught.value.field == CUTOFF_ENV


def test_check_not_future_names_the_field_and_hides_identifiers():
    check_not_future("collection_date", dt.date(2024, 1, 1))
    with pytest.raises(FutureDateError, match="collection_date 2099-01-01") as caught:
        check_not_future("collection_date", dt.date(2099, 1, 1))
    assert caught.value.field == "collection_date"
    with pytest.raises(FutureDateError) as caught:
        check_not_future("date_of_birth", dt.date(2099, 1, 1), hidden=True)
    assert "2099" not in str(caught.value)


# ---- import -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "index", "column", "value", "rule"),
    [
        ("adverse_events.csv", 0, "onset_date", "2099-03-01", "must not lie after today"),
        ("deaths.csv", 1, "death_date", "2099-01-01", "must not lie after today"),
        ("patients.csv", 2, "last_contact_date", "2099-12-31", "must not lie after today"),
        ("visits.csv", 0, "visit_date", "2024-05-01", "must be on or after enrolment"),
        ("adverse_events.csv", 0, "onset_date", "2024-05-01", "must be on or after enrolment"),
        ("progression_events.csv", 0, "event_date", "2024-05-01", "must be on or after enrolment"),
        ("deaths.csv", 0, "death_date", "2024-05-01", "must be on or after enrolment"),
        (
            "adverse_events.csv",
            0,
            "onset_date",
            "2025-03-05",
            "must be on or before the patient's death (2025-03-01)",
        ),
        ("deaths.csv", 1, "death_date", "2025-06-01", "must be on or after the last contact (2025-06-20)"),
    ],
)
def test_import_refuses_each_date_rule(
    db, registry_tables, write_registry, tmp_path, file, index, column, value, rule
):
    registry_tables[file][index][column] = value
    before = _snapshot(db)
    with pytest.raises(ImportValidationError) as caught:
        load_registry_folder(db, write_registry(tmp_path / "registry", registry_tables))
    assert any(
        c == f"{file}:{column}" and rule in e.rule for c, e in ((e.column, e) for e in caught.value.errors)
    ), caught.value.errors
    assert _snapshot(db) == before


def test_import_refuses_dates_after_the_data_cutoff(
    db, registry_tables, write_registry, tmp_path, monkeypatch
):
    monkeypatch.setenv(CUTOFF_ENV, "2025-06-30")  # patient 002's last contact is 2025-06-20, 003's 2026-08-01
    with pytest.raises(ImportValidationError) as caught:
        load_registry_folder(db, write_registry(tmp_path / "registry", registry_tables))
    assert ("last_contact_date", "must not lie after today/the data cut-off (2025-06-30)") in _errors(caught)
    assert ("death_date", "must not lie after today/the data cut-off (2025-06-30)") in _errors(
        caught
    )  # 2025-07-01
    monkeypatch.delenv(CUTOFF_ENV)
    assert load_registry_folder(db, tmp_path / "registry").total > 0


def test_import_of_a_record_after_a_stored_death_is_refused(db, registry_tables, write_registry, tmp_path):
    load_registry_folder(db, write_registry(tmp_path / "first", registry_tables))
    tables = {name: [] for name in registry_tables}
    tables["visits.csv"] = [
        dict(study_id="SABR-RCC-002", visit_number="2", visit_date="2025-07-15", vrs_pain="", tess_score="")
    ]
    with pytest.raises(ImportValidationError) as caught:
        load_registry_folder(db, write_registry(tmp_path / "second", tables))
    assert ("visit_date", "must be on or before the patient's death (2025-07-01)") in _errors(caught)


# ---- single entry (CLI, web forms) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "values", "column", "rule"),
    [
        (
            "ae",
            dict(
                term="Nausea",
                grade=1,
                ctcae_version="5.0",
                onset_date="2099-03-01",
                attribution_sabr="possible",
            ),
            "onset_date",
            "must not lie after today",
        ),
        ("visit", dict(visit_number=2, visit_date="2099-01-01"), "visit_date", "must not lie after today"),
        (
            "visit",
            dict(visit_number=2, visit_date="2024-05-01"),
            "visit_date",
            "must be on or after enrolment",
        ),
        (
            "ae",
            dict(
                term="Nausea",
                grade=1,
                ctcae_version="5.0",
                onset_date="2024-05-01",
                attribution_sabr="possible",
            ),
            "onset_date",
            "must be on or after enrolment",
        ),
        (
            "ae",
            dict(
                term="Nausea",
                grade=1,
                ctcae_version="5.0",
                onset_date="2024-10-01",
                attribution_sabr="possible",
            ),
            "onset_date",
            "must be on or before the patient's death (2024-09-01)",
        ),
        (
            "progression",
            dict(event_date="2024-10-01", progression_type="local"),
            "event_date",
            "must be on or before the patient's death",
        ),
        (
            "assessment",
            dict(assessment_date="2024-10-01", overall_response="PD"),
            "assessment_date",
            "must be on or before the patient's death",
        ),
        (
            "progression",
            dict(event_date="2024-05-01", progression_type="local"),
            "event_date",
            "must be on or after enrolment",
        ),
    ],
)
def test_single_entry_refuses_each_date_rule(patient, kind, values, column, rule):
    before = _snapshot(patient)
    with pytest.raises(ImportValidationError) as caught:
        record(patient, {kind: {"study_id": SID, **values}}, actor="nurse")
    assert any(c == column and rule in r for c, r in _errors(caught)), _errors(caught)
    assert caught.value.field in {column, "last_contact_date"}
    assert _snapshot(patient) == before


def test_ae_after_death_does_not_move_the_last_contact(patient):
    with pytest.raises(ImportValidationError):
        record(
            patient,
            {
                "ae": dict(
                    study_id=SID,
                    term="Nausea",
                    grade=1,
                    ctcae_version="5.0",
                    onset_date="2024-12-01",
                    attribution_sabr="possible",
                )
            },
        )
    with patient.session() as session:
        assert session.get(m.Patient, SID).last_contact_date == dt.date(2024, 7, 4)


def test_death_in_the_future_is_refused_on_single_entry(db):
    enrol(db, PATIENT, ELIGIBLE)
    with pytest.raises(ImportValidationError) as caught:
        record(db, {"death": dict(study_id=SID, death_date="2031-01-01", cause="rcc")})
    assert (
        "death_date",
        f"must not lie after today/the data cut-off ({latest_allowed_date().isoformat()})",
    ) in _errors(caught)


# ---- correct (re-runs the row and cross-record rules) -------------------------------------------------


def _id(db: Database, model, **where) -> str:
    with db.session() as session:
        query = select(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return str(session.scalars(query).one().id)


@pytest.mark.parametrize(
    ("table", "where", "changes", "rule"),
    [
        ("visits", {"visit_number": 1}, {"visit_date": "2020-01-01"}, "must be on or after enrolment"),
        ("visits", {"visit_number": 1}, {"visit_date": "2099-01-01"}, "must not lie after today"),
        (
            "adverse_events",
            {"term": "Fatigue"},
            {"onset_date": "2024-10-01"},
            "must be on or before the patient's death",
        ),
        (
            "adverse_events",
            {"term": "Fatigue"},
            {"onset_date": "2024-05-01"},
            "must be on or after enrolment",
        ),
        ("deaths", {}, {"death_date": "2024-06-30"}, "must be on or after the last contact"),
        ("deaths", {}, {"death_date": "2099-06-30"}, "must not lie after today"),
    ],
)
def test_correct_reruns_the_cross_record_rules(patient, table, where, changes, rule):
    model = {"visits": m.Visit, "adverse_events": m.AdverseEvent, "deaths": m.Death}[table]
    key = _id(patient, model, **where)
    before = _snapshot(patient)
    with pytest.raises(ImportValidationError) as caught:
        correct(patient, table, key, changes, reason="typo", actor="doctor")
    assert any(rule in r for _, r in _errors(caught)), _errors(caught)
    assert f"correction of {table} row {key}" in str(caught.value) and "nothing was changed" in str(
        caught.value
    )
    assert _snapshot(patient) == before


def test_correct_last_contact_past_death_or_today_is_refused(patient):
    before = _snapshot(patient)
    for value, rule in (
        ("2024-10-01", "must be on or after the last contact (2024-10-01)"),
        ("2099-01-01", "must not lie after today"),
    ):
        with pytest.raises(ImportValidationError) as caught:
            correct(patient, "patients", SID, {"last_contact_date": value}, reason="typo")
        assert any(rule in r for _, r in _errors(caught)), _errors(caught)
    assert _snapshot(patient) == before


def test_valid_correction_still_passes_and_bad_keys_are_named(patient):
    key = _id(patient, m.Visit, visit_number=1)
    correct(patient, "visits", key, {"visit_date": "2024-07-03"}, reason="date typo")
    with patient.session() as session:
        assert session.get(m.Visit, int(key)).visit_date == dt.date(2024, 7, 3)
    assert patient_rule_errors(patient.session(), SID) == []
    with pytest.raises(ValidationError, match="rows are numbered") as caught:
        correct(patient, "visits", "abc", {"visit_date": "2024-07-05"}, reason="x")
    assert caught.value.field == "row_key"


def test_delete_of_a_referenced_patient_is_refused_by_name(patient):
    before = _snapshot(patient)
    with pytest.raises(ValidationError, match=r"referred to by .*lesions row") as caught:
        delete(patient, "patients", SID, reason="entered twice")
    assert "Traceback" not in str(caught.value)
    assert _snapshot(patient) == before


# ---- API (the web app's JSON endpoint calls the same service) ------------------------------------------


@pytest.fixture
def api(patient):
    from fastapi.testclient import TestClient

    from sabrkit.settings import Settings
    from sabrkit.web import WebSettings, create_app
    from sabrkit.web.accounts import create_user

    create_user(
        patient,
        "coordinator",
        "coord-password-1",
        "coordinator",
        actor="test",
        password_profile="fast-insecure",
    )
    app = create_app(Settings(database_url=patient.url.render_as_string(hide_password=False)), WebSettings())
    with TestClient(app) as client:
        page = client.get("/login")
        import re

        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        client.post(
            "/login",
            data={
                "username": "coordinator",
                "password": "coord-password-1",
                "csrf_token": token,
                "next": "/",
            },
            follow_redirects=False,
        )
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/account").text).group(1)
        yield client, csrf
    app.state.db.dispose()


@pytest.mark.parametrize(
    ("kind", "values", "field", "rule"),
    [
        (
            "ae",
            dict(
                term="Nausea",
                grade=1,
                ctcae_version="5.0",
                onset_date="2099-03-01",
                attribution_sabr="possible",
            ),
            "onset_date",
            "must not lie after today",
        ),
        (
            "visit",
            dict(visit_number=2, visit_date="2024-05-01"),
            "visit_date",
            "must be on or after enrolment",
        ),
        (
            "ae",
            dict(
                term="Nausea",
                grade=1,
                ctcae_version="5.0",
                onset_date="2024-10-01",
                attribution_sabr="possible",
            ),
            "onset_date",
            "must be on or before the patient's death",
        ),
        ("death", dict(death_date="2099-01-01", cause="rcc"), "death_date", "must not lie after today"),
    ],
)
def test_api_refuses_each_date_rule(api, patient, kind, values, field, rule):
    client, csrf = api
    before = _snapshot(patient)
    response = client.post(
        "/api/registry",
        headers={"X-CSRF-Token": csrf},
        json={"entries": {kind: {"study_id": SID, **values}}, "reason": "test"},
    )
    assert response.status_code == 422, response.text
    body = json.loads(response.text)
    assert any(e["field"] == field and rule in e["rule"] for e in body["errors"]), body
    assert _snapshot(patient) == before


def test_reimporting_a_registry_folder_gives_one_message(db, registry_tables, write_registry, tmp_path):
    folder = write_registry(tmp_path / "registry", registry_tables)
    load_registry_folder(db, folder)
    before = _snapshot(db)
    with pytest.raises(ImportValidationError) as caught:
        load_registry_folder(db, folder)
    assert len(caught.value.errors) == 1
    assert "3 of the 3 patient(s) of patients.csv are already in the registry" in str(caught.value)
    assert _snapshot(db) == before
