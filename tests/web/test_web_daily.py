"""Daily work through HTTP (issue 16): corrections and deletions with reasons, duplicate accessions,
lists with search, filters and paging, the CTCAE term search with the study's terms first."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from test_web_lab import ACCESSION
from web_helpers import as_user


def test_correction_needs_a_reason_and_reruns_the_rules(app):
    from sabrkit.audit.tables import AuditLogEntry
    from sabrkit.registry.tables import Visit

    coordinator = as_user(app, "coordinator")
    with app.state.db.session() as session:
        visit = session.scalars(select(Visit).order_by(Visit.id)).first()
        visit_id, old_tess = visit.id, visit.tess_score
    path = f"/registry/correct/visits/{visit_id}"
    form = coordinator.client.get(path)
    assert form.status_code == 200 and 'name="tess_score"' in form.text
    no_reason = coordinator.post(path, {"tess_score": "12"})
    assert (
        no_reason.status_code == 422
        and 'id="error-reason"' in no_reason.text
        and 'value="12"' in no_reason.text
    )
    nothing = coordinator.post(path, {"reason": "checked"})
    assert nothing.status_code == 422 and "no value changed" in nothing.text
    done = coordinator.post(
        path, {"tess_score": "12", "reason": "transcription error"}, follow_redirects=False
    )
    assert done.status_code == 303
    with app.state.db.session() as session:
        assert session.get(Visit, visit_id).tess_score == 12
        entry = session.scalars(
            select(AuditLogEntry)
            .where(AuditLogEntry.table_name == "visits", AuditLogEntry.row_key == str(visit_id))
            .order_by(AuditLogEntry.id.desc())
        ).first()
        assert (entry.action, entry.actor, entry.reason) == ("update", "coordinator", "transcription error")
    assert old_tess != 12
    # researchers cannot correct; the key table is the coordinator's only
    assert as_user(app, "researcher").post(path, {"tess_score": "1", "reason": "x"}).status_code == 403
    admin = as_user(app, "admin")
    assert admin.client.get("/registry/correct/patient_identifiers/SABR-RCC-001").status_code == 403


def test_delete_asks_for_confirmation_and_a_reason(app):
    from sabrkit.registry.tables import AdverseEvent

    coordinator = as_user(app, "coordinator")
    with app.state.db.session() as session:
        event_id = session.scalar(select(AdverseEvent.id).order_by(AdverseEvent.id))
    path = f"/registry/delete/adverse_events/{event_id}"
    asked = coordinator.post(path, {})
    assert (
        asked.status_code == 200 and "Delete adverse event" in asked.text and 'name="confirmed"' in asked.text
    )
    no_reason = coordinator.post(path, {"confirmed": "yes"})
    assert no_reason.status_code == 422 and 'id="error-reason"' in no_reason.text
    with app.state.db.session() as session:
        assert session.get(AdverseEvent, event_id) is not None
    done = coordinator.post(
        path, {"confirmed": "yes", "reason": "entered on the wrong patient"}, follow_redirects=False
    )
    assert done.status_code == 303
    with app.state.db.session() as session:
        assert session.get(AdverseEvent, event_id) is None
    # a lesion others refer to is refused with the reason
    refused = coordinator.post(
        "/registry/delete/lesions/SABR-RCC-001-L1", {"confirmed": "yes", "reason": "x"}
    )
    assert refused.status_code == 422 and "referred to by" in refused.text


def test_deleted_records_list_and_restore_with_confirmation(app):
    from sabrkit.audit import verify_audit
    from sabrkit.audit.tables import AuditLogEntry
    from sabrkit.registry.tables import AdverseEvent

    coordinator = as_user(app, "coordinator")
    with app.state.db.session() as session:
        event = session.scalars(select(AdverseEvent).order_by(AdverseEvent.id)).first()
        before = {c.key: getattr(event, c.key) for c in AdverseEvent.__table__.columns}
    key = str(before["id"])
    deleted = coordinator.post(
        f"/registry/delete/adverse_events/{key}", {"confirmed": "yes", "reason": "wrong patient"}
    )
    assert deleted.status_code == 200
    listing = coordinator.client.get("/registry/deleted")
    assert (
        listing.status_code == 200
        and f"adverse_events {key}" in listing.text
        and "wrong patient" in listing.text
    )
    path = f"/registry/restore/adverse_events/{key}"
    asked = coordinator.post(path, {})
    assert asked.status_code == 200 and 'name="confirmed"' in asked.text and "Restore" in asked.text
    no_reason = coordinator.post(path, {"confirmed": "yes"})
    assert no_reason.status_code == 422 and 'id="error-reason"' in no_reason.text
    with app.state.db.session() as session:
        assert session.get(AdverseEvent, before["id"]) is None
    # researchers may not restore (nor see the list); lab neither
    assert as_user(app, "researcher").post(path, {"confirmed": "yes", "reason": "x"}).status_code == 403
    assert as_user(app, "lab").client.get("/registry/deleted").status_code == 403
    done = coordinator.post(
        path, {"confirmed": "yes", "reason": "right patient after all"}, follow_redirects=False
    )
    assert done.status_code == 303
    with app.state.db.session() as session:
        event = session.get(AdverseEvent, before["id"])
        assert {c.key: getattr(event, c.key) for c in AdverseEvent.__table__.columns} == before
        entry = session.scalars(
            select(AuditLogEntry)
            .where(AuditLogEntry.table_name == "adverse_events", AuditLogEntry.row_key == key)
            .order_by(AuditLogEntry.id.desc())
        ).first()
    assert (entry.action, entry.actor) == ("insert", "coordinator")
    assert entry.reason.startswith("restore of deletion ") and entry.reason.endswith(
        ": right patient after all"
    )
    again = coordinator.post(path, {"confirmed": "yes", "reason": "again"})
    assert again.status_code == 404 and "not yet restored" in again.text
    assert verify_audit(app.state.db).ok


def test_duplicate_accession_asks_first(app):
    from sabrkit.biobank.tables import Sample

    lab = as_user(app, "lab")
    first = lab.post("/lab/accession", ACCESSION, follow_redirects=False)
    assert first.status_code == 303
    first_id = first.headers["location"].rsplit("/", 1)[-1]
    with app.state.db.session() as session:
        n = session.scalar(select(func.count()).select_from(Sample))
    again = lab.post("/lab/accession", ACCESSION)
    assert again.status_code == 422 and first_id in again.text and 'id="error-collected_at"' in again.text
    assert 'name="confirm_duplicate"' in again.text
    with app.state.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Sample)) == n
    second = lab.post("/lab/accession", {**ACCESSION, "confirm_duplicate": "yes"}, follow_redirects=False)
    assert second.status_code == 303 and second.headers["location"].rsplit("/", 1)[-1] != first_id


def test_sample_and_patient_lists_search_filter_and_page(app):
    from sabrkit.biobank.tables import Sample

    lab = as_user(app, "lab")
    with app.state.db.session() as session:
        total = session.scalar(select(func.count()).select_from(Sample))
        stored = session.scalar(select(func.count()).select_from(Sample).where(Sample.status == "stored"))
    everything = lab.client.get("/lab", params={"status": ""})
    assert f"{total} found" in everything.text
    pages = -(-total // 50)
    if pages > 1:
        last = lab.client.get("/lab", params={"status": "", "page": pages})
        assert len(re.findall(r'<tr><td><a href="/lab/samples/', last.text)) == total - 50 * (pages - 1)
    only_stored = lab.client.get("/lab", params={"status": "stored"})
    assert f"{stored} found" in only_stored.text
    by_patient = lab.client.get("/lab", params={"status": "", "q": "SABR-RCC-002"})
    rows = re.findall(r"<td>(SABR-RCC-\d{3})</td>", by_patient.text)
    assert rows and set(rows) == {"SABR-RCC-002"}
    researcher = as_user(app, "researcher")
    filtered = researcher.client.get("/registry/patients", params={"disease_state": "oligoprogressive"})
    assert "oligometastatic</td>" not in filtered.text


def test_ctcae_terms_offer_the_full_v5_list_with_study_terms_first(app):
    researcher = as_user(app, "researcher")
    terms = researcher.client.get("/api/ctcae/terms", params={"q": "hypo"}).json()
    names = [t["term"] for t in terms]
    assert "Hypokalemia" in names and names.index("Hypokalemia") < names.index("Hypoglycemia")
    hiccups = researcher.client.get("/api/ctcae/terms", params={"q": "hiccups"}).json()
    assert hiccups[0]["grades"] == [1, 2, 3] and hiccups[0]["meddra_code"] == "10020039"


def test_a_future_sample_date_is_refused_at_its_field(app):
    from sabrkit.registry.rules import latest_allowed_date

    lab = as_user(app, "lab")
    page = lab.client.get("/lab/accession")
    assert f'max="{latest_allowed_date().isoformat()}T23:59"' in page.text  # the browser mirrors the rule
    future = {
        **ACCESSION,
        "collected_at": "2031-03-02T08:30",
        "received_at": "2031-03-02T09:10",
        "processed_at": "2031-03-02T09:40",
        "frozen_at": "2031-03-02T10:05",
    }
    refused = lab.post("/lab/accession", future)
    assert refused.status_code == 422
    at_field = refused.text.split('id="error-collected_at"', 1)[1].split("</span>", 1)[0]
    assert "must not lie after today" in at_field
    assert 'value="2031-03-02T08:30"' in refused.text and 'value="SABR-RCC-002"' in refused.text


def test_sample_correction_with_a_reason(app):
    from sabrkit.audit.tables import AuditLogEntry
    from sabrkit.biobank.tables import Sample

    lab = as_user(app, "lab")
    with app.state.db.session() as session:
        sample = session.scalars(
            select(Sample).where(Sample.kind == "primary", Sample.status == "stored").order_by(Sample.id)
        ).first()
        accession_id, sample_id, timepoint = sample.accession_id, sample.id, sample.timepoint
    path = f"/lab/samples/{accession_id}/correct"
    page = lab.client.get(path)
    assert page.status_code == 200 and 'name="collected_at"' in page.text
    new_timepoint = "month_12" if timepoint != "month_12" else "month_6"
    no_reason = lab.post(path, {"timepoint": new_timepoint})
    assert no_reason.status_code == 422 and 'id="error-reason"' in no_reason.text
    future = lab.post(path, {"collected_at": "2031-01-01T08:00", "reason": "typo"})
    assert (
        future.status_code == 422
        and "must not lie after today" in future.text.split('id="error-collected_at"')[1]
    )
    done = lab.post(
        path, {"timepoint": new_timepoint, "reason": "label said month 12"}, follow_redirects=False
    )
    assert done.status_code == 303
    with app.state.db.session() as session:
        assert session.get(Sample, sample_id).timepoint == new_timepoint
        entry = session.scalars(
            select(AuditLogEntry)
            .where(AuditLogEntry.table_name == "samples")
            .order_by(AuditLogEntry.id.desc())
        ).first()
        assert (entry.action, entry.actor, entry.reason) == ("update", "lab", "label said month 12")


def test_duplicate_accession_through_the_api_needs_allow_duplicate(app):
    """The rule is the biobank service's: the API gets the same refusal and the same confirmation."""
    from sabrkit.web import create_api_token

    token = create_api_token(app.state.db, "lab", label="scanner", days=1, actor="test")
    client = as_user(app, "lab").client
    headers = {"Authorization": f"Bearer {token}"}
    tube = {k: ACCESSION[k] for k in ("study_id", "timepoint", "specimen_type", "collected_at")} | {
        "volume_ml": 2.0
    }
    first = client.post("/api/samples", headers=headers, json=tube)
    assert first.status_code == 201
    again = client.post("/api/samples", headers=headers, json=tube)
    assert again.status_code == 422 and first.json()["accession_id"] in again.text
    second = client.post("/api/samples", headers=headers, json=tube | {"allow_duplicate": True})
    assert second.status_code == 201 and second.json()["accession_id"] != first.json()["accession_id"]
