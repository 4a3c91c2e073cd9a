"""Coordinator pages: enrolment with lesion and course, visits with CTCAE adverse events (only the
grades a term allows), assessments, events, the data-quality queue; all through registry capture."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from web_helpers import as_user

ENROL = {
    "study_id": "sabr-rcc-101",
    "mdt_date": "2026-06-01",
    "enrolment_date": "2026-06-08",
    "age_years": "63",
    "sex": "F",
    "ecog": "1",
    "histology": "clear_cell",
    "imdc_risk": "intermediate",
    "disease_state": "oligometastatic",
    "systemic_therapy": "tki",
    "prior_nephrectomy": "true",
    "rcc_confirmed": "true",
    "one_to_five_metastases": "true",
    "all_lesions_treatable": "true",
    "ecog_0_to_2": "true",
    "informed_consent": "true",
    "mdt_decision": "sabr_all_lesions",
    "hospital_number": "H5550101",
    "family_name": "Testova",
    "given_name": "Ada",
    "date_of_birth": "1963-02-03",
}


def _missing_visit(app, study_id: str) -> tuple[int, str]:
    """The first visit number without a record and its due date (a 'missing visit' query)."""
    from sabrkit.registry.schedule import scheduled_date
    from sabrkit.registry.tables import Lesion, SabrCourse, Visit

    with app.state.db.session() as session:
        index = session.scalar(
            select(func.min(SabrCourse.start_date)).join(Lesion).where(Lesion.study_id == study_id)
        )
        done = set(session.scalars(select(Visit.visit_number).where(Visit.study_id == study_id)))
    number = next(n for n in range(1, 30) if n not in done)
    return number, scheduled_date(index, number).isoformat()


def test_enrol_with_identifiers_then_lesion_course_visit(app):
    from sabrkit.audit import audit_history
    from sabrkit.registry.tables import PatientIdentifier

    coordinator = as_user(app, "coordinator")
    enrolled = coordinator.post("/registry/enrol", ENROL, follow_redirects=False)
    assert enrolled.status_code == 303 and enrolled.headers["location"] == "/registry/patients/SABR-RCC-101"
    page = coordinator.client.get("/registry/patients/SABR-RCC-101")
    assert "H5550101" in page.text and "Testova" in page.text
    with app.state.db.session() as session:
        assert session.get(PatientIdentifier, "SABR-RCC-101").family_name == "Testova"
    # the audit log names the coordinator and redacts the identifiers
    entries = audit_history(app.state.db, "patient_identifiers", "SABR-RCC-101")
    assert entries[0].actor == "coordinator" and "Testova" not in (entries[0].new_values or "")
    lesion = coordinator.post(
        "/registry/patients/SABR-RCC-101/lesion",
        {
            "lesion_number": "1",
            "site": "lung",
            "longest_diameter_mm": "14",
            "total_dose_gy": "54",
            "fractions": "3",
            "start_date": "2026-06-15",
            "end_date": "2026-06-19",
            "technique": "vmat",
        },
    )
    assert lesion.status_code == 200 and "SABR-RCC-101-L1" in lesion.text and "151.2" in lesion.text  # BED10
    visit = coordinator.post(
        "/registry/patients/SABR-RCC-101/visit",
        {
            "visit_number": "1",
            "visit_date": "2026-07-16",
            "vrs_pain": "1",
            "tess_score": "48",
            "ae_term": "Fatigue",
            "ae_grade": "2",
            "ae_onset_date": "2026-07-01",
            "ae_attribution_sabr": "possible",
        },
    )
    assert visit.status_code == 200 and "Recorded 1 visits, 1 adverse events" in visit.text
    assert "Fatigue" in visit.text


def test_visit_with_adverse_event_respects_ctcae_grades(app):
    from sabrkit.registry.tables import AdverseEvent, Visit

    coordinator = as_user(app, "coordinator")
    number, due = _missing_visit(app, "SABR-RCC-003")
    form = {
        "visit_number": str(number),
        "visit_date": due,
        "vrs_pain": "2",
        "tess_score": "41",
        "ae_term": ["Fatigue", ""],
        "ae_grade": ["4", ""],
        "ae_onset_date": [due, ""],
        "ae_attribution_sabr": ["probable", "definite"],
    }
    with app.state.db.session() as session:
        before = (
            session.scalar(select(func.count()).select_from(Visit)),
            session.scalar(select(func.count()).select_from(AdverseEvent)),
        )
    refused = coordinator.post("/registry/patients/SABR-RCC-003/visit", form)
    assert refused.status_code == 422
    assert "CTCAE v5.0 defines grades 1, 2, 3 for &#39;Fatigue&#39;, not 4" in refused.text
    assert f'value="{due}"' in refused.text  # what was typed is kept
    with app.state.db.session() as session:  # all-or-nothing: the visit was not written either
        assert (
            session.scalar(select(func.count()).select_from(Visit)),
            session.scalar(select(func.count()).select_from(AdverseEvent)),
        ) == before
    saved = coordinator.post(
        "/registry/patients/SABR-RCC-003/visit",
        {**form, "ae_grade": ["3", ""], "reason": "monthly visit, clinic note 12"},
    )
    assert saved.status_code == 200 and "Recorded 1 visits, 1 adverse events" in saved.text
    with app.state.db.session() as session:
        event = session.scalars(
            select(AdverseEvent)
            .where(AdverseEvent.study_id == "SABR-RCC-003")
            .order_by(AdverseEvent.id.desc())
        ).first()
        assert (event.term, event.grade, event.ctcae_version) == ("Fatigue", 3, "5.0")
    # the form offers the term list with each term's allowed grades for the grade picker
    page = coordinator.client.get("/registry/patients/SABR-RCC-003/visit")
    assert 'value="Fatigue" data-grades="1,2,3"' in page.text
    terms = coordinator.client.get("/api/ctcae/terms", params={"q": "fatig"}).json()
    # CTCAE v5.0: Fatigue, MedDRA 10016256, grades 1-3 (General disorders and administration site conditions)
    assert terms == [
        {
            "term": "Fatigue",
            "soc": "General disorders and administration site conditions",
            "grades": [1, 2, 3],
            "meddra_code": "10016256",
            "frequent": True,
        }
    ]


def test_unknown_term_and_empty_forms_are_refused(app):
    coordinator = as_user(app, "coordinator")
    unknown = coordinator.post(
        "/registry/patients/SABR-RCC-004/ae",
        {
            "ae_term": ["Fatigeu"],
            "ae_grade": ["1"],
            "ae_onset_date": ["2026-08-01"],
            "ae_attribution_sabr": ["possible"],
        },
    )
    assert unknown.status_code == 422 and "not a CTCAE v5.0 term" in unknown.text
    empty = coordinator.post("/registry/patients/SABR-RCC-004/ae", {"ae_term": [""]})
    assert empty.status_code == 422 and "enter at least one record" in empty.text
    bad_enrol = coordinator.post("/registry/enrol", {**ENROL, "study_id": "SABR-RCC-001", "age_years": "12"})
    assert bad_enrol.status_code == 422
    # issue 16: the error sits at its field and every value typed comes back, identifiers too (no-store page)
    assert 'id="error-age_years"' in bad_enrol.text and 'value="H5550101"' in bad_enrol.text
    assert bad_enrol.headers["cache-control"] == "no-store"


def test_assessment_and_events(app):
    from sabrkit.registry.tables import Death, LesionAssessment, TumourAssessment

    coordinator = as_user(app, "coordinator")
    detail = coordinator.client.get("/api/patients/SABR-RCC-005").json()
    lesion_id = detail["lesions"][0]["lesion_id"]
    day = (dt.date.fromisoformat(detail["patient"]["last_contact_date"]) + dt.timedelta(days=3)).isoformat()
    saved = coordinator.post(
        "/registry/patients/SABR-RCC-005/assessment",
        {
            "assessment_date": day,
            "modality": "ct",
            "overall_response": "SD",
            "lesion_id": lesion_id,
            f"local_status_{lesion_id}": "controlled",
            f"diameter_{lesion_id}": "9.5",
        },
    )
    assert saved.status_code == 200, saved.text
    with app.state.db.session() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(TumourAssessment)
                .where(TumourAssessment.study_id == "SABR-RCC-005")
            )
            >= 1
        )
        assert (
            session.scalars(
                select(LesionAssessment.local_status)
                .where(LesionAssessment.lesion_id == lesion_id)
                .order_by(LesionAssessment.id.desc())
            ).first()
            == "controlled"
        )
    later = (dt.date.fromisoformat(day) + dt.timedelta(days=10)).isoformat()
    death = coordinator.post(
        "/registry/patients/SABR-RCC-005/event", {"kind": "death", "death_date": later, "cause": "other"}
    )
    if detail["death"]:
        assert death.status_code == 422
    else:
        assert death.status_code == 200 and "Recorded 1 deaths" in death.text
        with app.state.db.session() as session:
            assert session.scalar(select(Death.cause).where(Death.study_id == "SABR-RCC-005")) == "other"


def test_quality_queue_lists_queries_and_filters(app):
    coordinator = as_user(app, "coordinator")
    page = coordinator.client.get("/registry/quality")
    assert page.status_code == 200 and "open quer" in page.text
    board = app.state.dashboard.dashboard(app.state.db)
    assert all(q["study_id"].startswith("SABR-RCC-") for q in board.queries)
    if board.queries:
        first = board.queries[0]
        filtered = coordinator.client.get(
            "/registry/quality", params={"issue": first["issue"], "study_id": first["study_id"]}
        )
        assert first["record"] in filtered.text
    assert coordinator.client.get("/api/quality").json() == board.queries
