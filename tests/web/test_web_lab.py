"""Lab pages through the HTTP interface: scan, accession, aliquot, box map, thaw/consume/dispose,
labels, shipments; every change goes through the biobank services with the user as actor."""

from __future__ import annotations

import re

from sqlalchemy import select
from web_helpers import as_user

ACCESSION = {
    "study_id": "SABR-RCC-002",
    "timepoint": "month_6",
    "specimen_type": "plasma",
    "collected_at": "2026-03-02T08:30",
    "volume_ml": "4",
    "received_at": "2026-03-02T09:10",
    "processed_at": "2026-03-02T09:40",
    "centrifugation_g": "2000",
    "centrifugation_minutes": "10",
    "centrifugation_temperature": "room_temperature",
    "frozen_at": "2026-03-02T10:05",
    "storage_temperature_c": "-80",
    "primary_container": "PED",
    "pre_centrifugation_temperature": "room_temperature",
}
ID = re.compile(r"SABR-[A-Z]{2}-[0-9]{6}-[0-9A-Z]")


def _accession(lab, **changes) -> str:
    response = lab.post("/lab/accession", {**ACCESSION, **changes}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"].rsplit("/", 1)[-1]


def test_scan_finds_sample_patient_and_box(app):
    lab = as_user(app, "lab")
    with app.state.db.session() as session:
        from sabrkit.biobank.tables import Sample

        accession_id = session.scalar(select(Sample.accession_id).order_by(Sample.id))
    for code, target in (
        (accession_id, f"/lab/samples/{accession_id}"),
        (f"  {accession_id.lower()}\n", f"/lab/samples/{accession_id}"),
        ("SABR-RCC-004", "/registry/patients/SABR-RCC-004"),
        ("SABR-RCC-004-L1", "/registry/patients/SABR-RCC-004"),
        ("F1/S1/R1/B01:A1", "/lab/boxes/F1/S1/R1/B01"),
    ):
        response = lab.client.get("/find", params={"code": code}, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == target, code
    partial = lab.client.get("/find", params={"code": accession_id[:10]})
    assert partial.status_code == 404 and accession_id in partial.text  # offered as a candidate


def test_accession_aliquot_place_and_audit(app):
    from sabrkit.audit import audit_history
    from sabrkit.biobank import box_map, custody_history, freeze_thaw_count

    lab = as_user(app, "lab")
    accession_id = _accession(lab)
    page = lab.client.get(f"/lab/samples/{accession_id}")
    assert page.status_code == 200 and "Accessioned" in page.text and "SABR-RCC-002" in page.text
    assert "4 of 4 mL" in page.text and "PL-" in accession_id
    # aliquot 3 x 1 mL; the page lists the children
    response = lab.post(f"/lab/samples/{accession_id}/aliquot", {"quantities": "1, 1 1"})
    assert response.status_code == 200 and "3 aliquot(s)" in response.text
    children = sorted(set(ID.findall(response.text.split("Children")[1].split("</tr>")[0])))
    assert len(children) == 3 and "1 of 4 mL" in response.text
    # more than is left is refused with the biobank's message, nothing changes
    refused = lab.post(f"/lab/samples/{accession_id}/aliquot", {"quantities": "0.6, 0.6"})
    assert refused.status_code == 422 and "more than the parent has left" in refused.text
    # place a child on the box map by clicking a free position
    grid = lab.client.get("/lab/boxes/F1/S1/R1/B02", params={"sample": children[0]})
    assert 'name="position" value="A1"' in grid.text
    placed = lab.post("/lab/boxes/F1/S1/R1/B02/place", {"sample": children[0], "position": "A1"})
    assert placed.status_code == 200 and "Stored at F1/S1/R1/B02:A1" in placed.text
    assert box_map(app.state.db, "F1/S1/R1/B02").cells[(1, 1)] == children[0]
    # the same position for another sample: position occupied (409), no double booking
    taken = lab.post("/lab/boxes/F1/S1/R1/B02/place", {"sample": children[1], "position": "A1"})
    assert taken.status_code == 409 and "position occupied" in taken.text
    assert box_map(app.state.db, "F1/S1/R1/B02").cells[(1, 1)] == children[0]
    # moving the first child: clicking another free position moves it
    moved = lab.post("/lab/boxes/F1/S1/R1/B02/place", {"sample": children[0], "position": "B2"})
    assert "Moved to F1/S1/R1/B02:B2" in moved.text
    # thaw, consume part, dispose another
    confirm = lab.post(f"/lab/samples/{children[0]}/thaw")  # issue 16: thaw asks first
    assert confirm.status_code == 200 and f"Thaw {children[0]}?" in confirm.text
    assert freeze_thaw_count(app.state.db, children[0]) == 0
    assert "freeze-thaw cycle 1" in lab.post(f"/lab/samples/{children[0]}/thaw", {"confirmed": "yes"}).text
    assert freeze_thaw_count(app.state.db, children[0]) == 1
    consumed = lab.post(
        f"/lab/samples/{children[0]}/consume", {"amount": "0.25", "reason": "ctDNA assay batch 7"}
    )
    assert "0.75 left" in consumed.text
    assert (
        lab.post(f"/lab/samples/{children[2]}/dispose", {"reason": "", "confirmed": "yes"}).status_code == 422
    )
    asked = lab.post(f"/lab/samples/{children[2]}/dispose", {"reason": "tube cracked"})
    assert f"Dispose of {children[2]}?" in asked.text and "cannot be undone" in asked.text
    disposed = lab.post(f"/lab/samples/{children[2]}/dispose", {"reason": "tube cracked", "confirmed": "yes"})
    assert "Disposed" in disposed.text and "Read-only" in disposed.text and "Dispose…" not in disposed.text
    events = [e.event_type for e in custody_history(app.state.db, children[0])]
    assert events[-4:] == ["frozen", "moved", "thawed", "consumed"]
    assert all(e.operator == "lab" for e in custody_history(app.state.db, children[0])[-4:])
    entries = audit_history(app.state.db, "samples")
    assert {e.actor for e in entries if accession_id in (e.new_values or "")} == {"lab"}
    assert any(e.reason == "tube cracked" for e in entries)


def test_invalid_accession_reports_every_problem_and_keeps_values(app):
    lab = as_user(app, "lab")
    response = lab.post(
        "/lab/accession", {**ACCESSION, "study_id": "SABR-RCC-777", "processed_at": "2026-03-01T08:00"}
    )
    assert response.status_code == 422
    assert "patient not enrolled" in response.text and "processing before collection" in response.text
    assert 'value="SABR-RCC-777"' in response.text  # the form keeps what was typed


def test_labels_pdf_and_shipment_manifest(app):
    lab = as_user(app, "lab")
    accession_id = _accession(lab, study_id="SABR-RCC-005")
    pdf = lab.client.get("/lab/labels", params={"ids": f"{accession_id} "})
    assert (
        pdf.status_code == 200
        and pdf.headers["content-type"] == "application/pdf"
        and pdf.content[:4] == b"%PDF"
    )
    assert lab.client.get("/lab/labels", params={"ids": "SABR-PL-999999-Z"}).status_code in (404, 422)
    created = lab.post(
        "/lab/shipments",
        {"destination": "Central lab, Leeds", "purpose": "future_research"},
        follow_redirects=False,
    )
    code = created.headers["location"].rsplit("/", 1)[-1]
    assert lab.post(f"/lab/shipments/{code}/add", {"accession_ids": f"{accession_id}\n"}).status_code == 200
    assert "Ship now" in lab.post(f"/lab/shipments/{code}/ship").text  # asks first
    shipped = lab.post(f"/lab/shipments/{code}/ship", {"confirmed": "yes"})
    assert "1 sample(s) shipped" in shipped.text
    manifest = lab.client.get(f"/lab/shipments/{code}/manifest.csv")
    assert manifest.status_code == 200 and accession_id in manifest.text and "SABR-RCC-005" in manifest.text
    assert lab.client.get(f"/lab/shipments/{code}/manifest.pdf").content[:4] == b"%PDF"
    assert "in_transit" in lab.client.get(f"/lab/samples/{accession_id}").text


def test_api_lookup_and_placement(app):
    from sabrkit.web import create_api_token

    token = create_api_token(app.state.db, "lab", label="bench scanner", days=1, actor="test")
    lab = as_user(app, "lab")
    headers = {"Authorization": f"Bearer {token}"}
    created = lab.client.post(
        "/api/samples",
        headers=headers,
        json={
            k: v
            for k, v in ACCESSION.items()
            if k in ("study_id", "timepoint", "specimen_type", "collected_at")
        }
        | {"volume_ml": 2.0},
    )
    accession_id = created.json()["accession_id"]
    summary = lab.client.get(f"/api/samples/{accession_id}", headers=headers).json()
    assert (
        summary["status"] == "received"
        and summary["location"] is None
        and summary["study_id"] == "SABR-RCC-002"
    )
    detail = lab.client.get(f"/api/samples/{accession_id}/detail", headers=headers).json()
    assert detail["sample"]["status"] == "received" and [e["event_type"] for e in detail["events"]] == [
        "collected",
        "received",
    ]
    placed = lab.client.post(
        f"/api/samples/{accession_id}/place", headers=headers, json={"box": "F1/S1/R2/B01", "position": "J10"}
    )
    assert placed.json() == {"location": "F1/S1/R2/B01:J10"}
    assert (
        lab.client.get(f"/api/samples/{accession_id}", headers=headers).json()["location"]
        == "F1/S1/R2/B01:J10"
    )
    box = lab.client.get("/api/boxes/F1/S1/R2/B01", headers=headers).json()
    assert box["occupied"] == 1 and box["positions"][-1]["accession_id"] == accession_id
    again = lab.client.post(
        f"/api/samples/{accession_id}/place", headers=headers, json={"box": "F1/S1/R2/B01", "position": "J9"}
    )
    assert again.status_code == 422 and again.json()["error"] == "SampleStateError"
    missing = lab.client.get("/api/samples/SABR-PL-999999-Z", headers=headers)
    assert missing.status_code in (404, 422)
    bad = lab.client.post("/api/samples", headers=headers, json={"study_id": "SABR-RCC-001"})
    assert bad.status_code == 422 and bad.json()["errors"]
