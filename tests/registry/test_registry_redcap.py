"""REDCap-style exports (one row per record and event) load through the same rules as CSV folders."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sabrkit.audit import verify_audit
from sabrkit.errors import ImportValidationError
from sabrkit.registry import tables as m
from sabrkit.registry.load import validate_source, write_registry
from sabrkit.registry.redcap import read_redcap_export

HEADER = [
    "record_id",
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "mdt_date",
    "enrolment_date",
    "age_years",
    "sex",
    "ecog",
    "kps",
    "histology",
    "imdc_risk",
    "prior_nephrectomy",
    "disease_state",
    "systemic_therapy",
    "prior_systemic_lines",
    "n_metastases",
    "last_contact_date",
    "hospital_number",
    "family_name",
    "given_name",
    "date_of_birth",
    "elig_assessed_on",
    "elig_rcc_confirmed",
    "elig_one_to_five_metastases",
    "elig_all_lesions_treatable",
    "elig_ecog_0_to_2",
    "elig_informed_consent",
    "mdt_decision",
    "lesion_number",
    "site",
    "longest_diameter_mm",
    "total_dose_gy",
    "fractions",
    "start_date",
    "end_date",
    "technique",
    "agent",
    "therapy_class",
    "therapy_start_date",
    "visit_date",
    "vrs_pain",
    "tess_score",
    "assessment_date",
    "overall_response",
    "ae_term",
    "ae_grade",
    "ae_onset_date",
    "ae_attribution",
    "ae_lesion_number",
    "la_lesion_number",
    "la_date",
    "la_local_status",
    "progression_date",
    "progression_type",
    "death_date",
    "death_cause",
    "off_study_date",
    "off_study_reason",
]


def _rows() -> list[dict[str, str]]:
    rows = []
    for n, (sid, therapy) in enumerate((("SABR-RCC-001", "tki"), ("SABR-RCC-002", "none")), start=1):
        rows.append(
            dict(
                record_id=sid,
                redcap_event_name="enrolment_arm_1",
                mdt_date="2024-05-20",
                enrolment_date="2024-05-27",
                age_years="64",
                sex="M",
                ecog="0",
                kps="90",
                histology="clear_cell",
                imdc_risk="intermediate",
                prior_nephrectomy="1",
                disease_state="oligometastatic",
                systemic_therapy=therapy,
                prior_systemic_lines="1",
                n_metastases="2",
                last_contact_date="2024-05-27",
                hospital_number=f"H99{n}",
                family_name="Fakename",
                given_name="Test",
                date_of_birth="1960-01-01",
                elig_assessed_on="2024-05-20",
                elig_rcc_confirmed="1",
                elig_one_to_five_metastases="1",
                elig_all_lesions_treatable="1",
                elig_ecog_0_to_2="1",
                elig_informed_consent="1",
                mdt_decision="sabr_all_lesions",
            )
        )
        rows.append(
            dict(
                record_id=sid,
                redcap_event_name="enrolment_arm_1",
                redcap_repeat_instrument="lesion",
                redcap_repeat_instance="1",
                lesion_number="1",
                site="lung",
                longest_diameter_mm="18",
                total_dose_gy="54",
                fractions="3",
                start_date="2024-06-03",
                end_date="2024-06-07",
                technique="VMAT",
            )
        )
        for month in (0, 1, 2):
            day = {0: "2024-06-03", 1: "2024-07-03", 2: "2024-08-02"}[month]
            rows.append(
                dict(
                    record_id=sid,
                    redcap_event_name=f"month_{month}_arm_1",
                    visit_date=day,
                    vrs_pain="1",
                    tess_score="48",
                )
            )
        rows.append(
            dict(
                record_id=sid,
                redcap_event_name="month_2_arm_1",
                redcap_repeat_instrument="adverse_event",
                redcap_repeat_instance="1",
                ae_term="Cough",
                ae_grade="1",
                ae_onset_date="2024-07-01",
                ae_attribution="probable",
                ae_lesion_number="1",
            )
        )
        rows.append(
            dict(
                record_id=sid,
                redcap_event_name="month_2_arm_1",
                redcap_repeat_instrument="lesion_assessment",
                redcap_repeat_instance="1",
                la_lesion_number="1",
                la_date="2024-08-02",
                la_local_status="controlled",
            )
        )
    rows.append(
        dict(
            record_id="SABR-RCC-001",
            redcap_event_name="enrolment_arm_1",
            redcap_repeat_instrument="systemic_therapy",
            redcap_repeat_instance="1",
            agent="cabozantinib",
            therapy_class="tki",
            therapy_start_date="2024-04-01",
        )
    )
    rows.append(
        dict(
            record_id="SABR-RCC-002",
            redcap_event_name="end_of_study_arm_1",
            last_contact_date="2024-09-01",
            progression_date="2024-08-20",
            progression_type="distant",
            death_date="2024-09-10",
            death_cause="rcc",
            off_study_date="2024-09-10",
            off_study_reason="death",
        )
    )
    return rows


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_valid_export_loads_every_event_and_instrument(db, tmp_path):
    source = read_redcap_export(_write(tmp_path / "redcap.csv", _rows()))
    summary = write_registry(db, validate_source(db, source), source.name)
    assert summary.counts == {
        "patients": 2,
        "patient_identifiers": 2,
        "eligibility": 2,
        "lesions": 2,
        "sabr_courses": 2,
        "systemic_therapy_lines": 1,
        "visits": 6,
        "adverse_events": 2,
        "lesion_assessments": 2,
        "progression_events": 1,
        "deaths": 1,
        "off_study": 1,
    }
    with db.session() as session:
        assert session.get(m.Patient, "SABR-RCC-002").last_contact_date.isoformat() == "2024-09-01"
        assert session.scalar(select(func.count()).select_from(m.Visit).where(m.Visit.visit_number == 2)) == 2
    assert verify_audit(db).ok


def test_bad_export_names_the_redcap_row_and_field(db, tmp_path):
    rows = _rows()
    rows[0]["sex"] = "male"  # enrolment row, file row 2
    rows[4]["redcap_event_name"] = "month_1_arm_1"  # month 2's visit labelled month 1: duplicate visit 1
    rows[5]["ae_grade"] = "5"  # Cough allows grades 1-3
    rows.append(dict(record_id="SABR-RCC-001", redcap_event_name="week_1_arm_1"))
    source = read_redcap_export(_write(tmp_path / "redcap.csv", rows))
    with pytest.raises(ImportValidationError) as caught:
        validate_source(db, source)
    found = {(e.row, e.column) for e in caught.value.errors}
    assert (2, "redcap.csv:sex") in found
    assert (6, "redcap.csv:redcap_event_name") in found or (6, "redcap.csv:visit_date") in found
    assert (7, "redcap.csv:ae_grade") in found
    assert (len(rows) + 1, "redcap.csv:redcap_event_name") in found
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(m.Patient)) == 0
