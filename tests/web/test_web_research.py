"""Researcher pages: cohort dashboard against the registry's own analyses, inventory, study report."""

from __future__ import annotations

import pytest
from web_helpers import as_user


def test_dashboard_matches_the_registry_analyses(app):
    from sabrkit.registry.analyses import endpoint_frame
    from sabrkit.registry.exports import build_analysis_tables
    from sabrkit.registry.frames import registry_frames
    from sabrkit.registry.survival import survival_at

    researcher = as_user(app, "researcher")
    page = researcher.client.get("/dashboard")
    assert page.status_code == 200
    assert "12</span> of 60 enrolled" in page.text
    assert "/reports/study" in page.text and "mlflow ui --backend-store-uri" in page.text
    png = researcher.client.get("/dashboard/km.png")
    assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    summary = researcher.client.get("/api/dashboard").json()
    tables = build_analysis_tables(registry_frames(app.state.db))
    pfs = endpoint_frame(tables.adtte, "PFS")
    expected = survival_at(pfs["AVAL"], pfs["EVENT"], 12.0)
    assert summary["landmarks"]["PFS 12 months"]["estimate"] == pytest.approx(expected.estimate)
    assert summary["n_patients"] == 12 and summary["target"] == 60
    assert 0 < summary["completeness"]["visit_completeness"] <= 1
    terms = {row["term"] for row in summary["toxicity"]}
    assert terms == set(tables.ae.loc[tables.ae["AETOXGR"].notna(), "AEDECOD"])
    for term in list(terms)[:3]:
        assert term in page.text


def test_dashboard_follows_new_data(app):
    researcher, coordinator = as_user(app, "researcher"), as_user(app, "coordinator")
    first = researcher.client.get("/api/dashboard").json()
    again = researcher.client.get("/api/dashboard").json()
    assert again["data_version"] == first["data_version"]  # cached while nothing changes
    detail = coordinator.client.get("/api/patients/SABR-RCC-006").json()
    onset = detail["patient"]["enrolment_date"]
    response = coordinator.client.post(
        "/api/registry",
        headers={"X-CSRF-Token": coordinator.csrf},
        json={
            "entries": {
                "ae": {
                    "study_id": "SABR-RCC-006",
                    "term": "Pneumonitis",
                    "grade": 2,
                    "ctcae_version": "5.0",
                    "onset_date": onset,
                    "attribution_sabr": "probable",
                }
            },
            "reason": "test",
        },
    )
    assert response.status_code == 201, response.text
    after = researcher.client.get("/api/dashboard").json()
    assert after["data_version"] > first["data_version"]
    assert any(row["term"] == "Pneumonitis" for row in after["toxicity"])


def test_inventory_by_timepoint(app):
    from sqlalchemy import func, select

    from sabrkit.biobank.tables import Sample

    researcher = as_user(app, "researcher")
    inventory = researcher.client.get("/api/inventory").json()
    with app.state.db.session() as session:
        total = session.scalar(select(func.count()).select_from(Sample))
        baseline_plasma = session.scalar(
            select(func.count())
            .select_from(Sample)
            .where(Sample.timepoint == "baseline", Sample.specimen_type == "plasma")
        )
    assert inventory["total"] == total
    baseline = next(row for row in inventory["rows"] if row["timepoint"] == "baseline")
    assert baseline["cells"]["plasma"]["n"] == baseline_plasma
    page = researcher.client.get("/inventory")
    assert page.status_code == 200 and "baseline" in page.text


@pytest.mark.slow
def test_study_report_page(app):
    researcher = as_user(app, "researcher")
    report = researcher.client.get("/reports/study")
    assert report.status_code == 200 and "<html" in report.text.lower()
    assert "Kaplan" in report.text or "PFS" in report.text
    assert "unsafe-inline" in report.headers["content-security-policy"]
