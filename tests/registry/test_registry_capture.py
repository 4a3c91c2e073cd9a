"""Single-record entry (the CLI's enrol/visit/ae/...): same rules as imports, audited, last contact moves."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from sabrkit.audit import AuditError, AuditLogEntry, verify_audit
from sabrkit.errors import ImportValidationError, ValidationError
from sabrkit.registry import tables as m
from sabrkit.registry.capture import correct, delete, enrol, record

PATIENT = dict(
    study_id="SABR-RCC-010",
    mdt_date="2024-05-20",
    enrolment_date="2024-05-27",
    age_years=66,
    sex="F",
    ecog=1,
    kps=80,
    histology="clear_cell",
    imdc_risk="favourable",
    prior_nephrectomy="true",
    prior_systemic_lines=1,
    disease_state="oligoprogressive",
    n_metastases=2,
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


@pytest.fixture
def enrolled(db):
    enrol(
        db,
        PATIENT,
        ELIGIBLE,
        {
            "hospital_number": "H55",
            "family_name": "Fakename",
            "given_name": "Ann",
            "date_of_birth": "1958-02-01",
        },
        actor="coordinator",
    )
    record(
        db,
        {
            "lesion": dict(
                lesion_id="SABR-RCC-010-L1",
                study_id="SABR-RCC-010",
                lesion_number=1,
                site="bone",
                organ="T7 vertebral body",
                study_uid="1.2.3",
                series_uid="1.2.3.4",
                roi_name="GTV",
            ),
            "course": dict(
                lesion_id="SABR-RCC-010-L1",
                study_id="SABR-RCC-010",
                total_dose_gy=35,
                fractions=5,
                start_date="2024-06-03",
                end_date="2024-06-07",
                technique="VMAT",
            ),
        },
        actor="physicist",
    )
    return db


def test_enrolment_needs_every_criterion_and_the_mdt_decision(db):
    with pytest.raises(ImportValidationError) as caught:
        enrol(db, PATIENT, {**ELIGIBLE, "informed_consent": "false", "mdt_decision": "not_for_sabr"})
    columns = {e.column for e in caught.value.errors}
    assert {"informed_consent", "mdt_decision"} <= columns
    with db.session() as session:
        assert session.get(m.Patient, "SABR-RCC-010") is None


def test_visit_moves_the_last_contact_with_an_audited_reason(enrolled):
    record(
        enrolled,
        {
            "visit": dict(
                study_id="SABR-RCC-010", visit_number=1, visit_date="2024-07-04", vrs_pain=1, tess_score=44
            )
        },
        actor="nurse",
    )
    with enrolled.session() as session:
        assert session.get(m.Patient, "SABR-RCC-010").last_contact_date.isoformat() == "2024-07-04"
        update = session.scalars(
            select(AuditLogEntry).where(AuditLogEntry.action == "update").order_by(AuditLogEntry.id.desc())
        ).first()
    assert (update.table_name, update.actor, update.reason) == (
        "patients",
        "nurse",
        "last contact: visit on 2024-07-04",
    )
    assert json.loads(update.new_values)["last_contact_date"] == "2024-07-04"
    assert verify_audit(enrolled).ok


def test_bad_entries_name_field_value_and_rule(enrolled):
    with pytest.raises(ImportValidationError) as caught:
        record(
            enrolled,
            {"visit": dict(study_id="SABR-RCC-010", visit_number=1, visit_date="2024-07-04", vrs_pain=5)},
        )
    assert [(e.column, e.value) for e in caught.value.errors] == [("vrs_pain", "5")]
    with pytest.raises(ImportValidationError) as caught:
        record(enrolled, {"visit": dict(study_id="SABR-RCC-010", visit_number=3, visit_date="2024-07-04")})
    (error,) = caught.value.errors
    assert (
        error.column == "visit_date"
        and "visit 3 is due on 2024-09-02" in error.rule
        and "is visit 1" in error.rule
    )
    with pytest.raises(
        ImportValidationError, match=r"CTCAE v5.0 defines grades 1, 2, 3 for 'Fatigue', not 4"
    ):
        record(
            enrolled,
            {
                "ae": dict(
                    study_id="SABR-RCC-010",
                    term="fatigue",
                    grade=4,
                    ctcae_version="5.0",
                    onset_date="2024-06-10",
                    attribution_sabr="possible",
                )
            },
        )
    with pytest.raises(ImportValidationError, match="not a lesion of SABR-RCC-010"):
        record(
            enrolled,
            {
                "ae": dict(
                    study_id="SABR-RCC-010",
                    term="Pain",
                    grade=1,
                    ctcae_version="5.0",
                    onset_date="2024-06-10",
                    attribution_sabr="probable",
                    lesion_id="SABR-RCC-011-L1",
                )
            },
        )


def test_ungraded_adverse_event_is_accepted_and_corrected_later_with_a_reason(enrolled):
    record(
        enrolled,
        {
            "ae": dict(
                study_id="SABR-RCC-010",
                term="Bone pain",
                ctcae_version="5.0",
                onset_date="2024-06-05",
                attribution_sabr="probable",
                lesion_id="SABR-RCC-010-L1",
            )
        },
    )
    with enrolled.session() as session:
        event = session.scalars(select(m.AdverseEvent)).one()
    assert event.grade is None
    with pytest.raises(AuditError):
        correct(enrolled, "adverse_events", str(event.id), {"grade": "2"}, reason="")
    with pytest.raises(ValidationError, match="grade"):
        correct(enrolled, "adverse_events", str(event.id), {"grade": "9"}, reason="graded at visit 1")
    correct(
        enrolled, "adverse_events", str(event.id), {"grade": "2"}, reason="graded at visit 1", actor="doctor"
    )
    delete(enrolled, "adverse_events", str(event.id), reason="entered for the wrong patient", actor="doctor")
    history = [
        (e.action, e.reason)
        for e in enrolled.session().scalars(
            select(AuditLogEntry).where(AuditLogEntry.table_name == "adverse_events")
        )
    ]
    assert history == [
        ("insert", None),
        ("update", "graded at visit 1"),
        ("delete", "entered for the wrong patient"),
    ]
    assert verify_audit(enrolled).ok


def test_course_stores_bed_and_eqd2_with_alpha_beta(enrolled):
    with enrolled.session() as session:
        course = session.scalars(select(m.SabrCourse)).one()
    # 35 Gy / 5 fx: BED10 = 35 * (1 + 7/10) = 59.5 Gy; EQD2 = 59.5 / 1.2 = 49.58 Gy
    assert (course.alpha_beta_gy, course.bed_gy, course.eqd2_gy) == pytest.approx(
        (10.0, 59.5, 49.5833), abs=1e-3
    )
