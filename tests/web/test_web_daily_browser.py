"""Daily work in headless Chromium (issue 16, Done when): a correction with its reason in the audit
log, an error at its field with every value kept, a future date refused at the field, return to
freezer, dispose with confirmation, keyboard-only placement, Hypokalemia grade 3, the researcher's
Experiments page. Screenshots go to ``$SABRKIT_TEST_ARTIFACTS/web-daily/``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_web_e2e import _chromium, server  # noqa: F401  (the uvicorn fixture; the module skips without Chromium)
from web_helpers import PASSWORDS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=_chromium(),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    folder = (
        Path(os.environ.get("SABRKIT_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts") / "web-daily"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Session:
    """A browser page logged in as one user, with a screenshot helper."""

    def __init__(self, chromium: object, base: str, folder: Path, prefix: str):
        self.context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.base, self.folder, self.prefix, self.n = base, folder, prefix, 0

    def login(self, username: str, target: str) -> None:
        from playwright.sync_api import expect

        self.page.goto(self.base + target)
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORDS[username])
        self.page.click("button:has-text('Log in')")
        expect(self.page).to_have_url(re.compile(re.escape(target.split("?")[0])))

    def shot(self, name: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.prefix}-{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5_000
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def session(chromium, server, shots, request) -> Iterator[Session]:  # noqa: F811
    opened = Session(chromium, server, shots, request.node.name.removeprefix("test_"))
    yield opened
    opened.close()


def _patient_alive(app) -> str:
    from sabrkit.registry.tables import Death, Patient

    with app.state.db.session() as session:
        dead = set(session.scalars(select(Death.study_id)))
        return next(
            s for s in session.scalars(select(Patient.study_id).order_by(Patient.study_id)) if s not in dead
        )


def _sample(app, status: str) -> str:
    from sabrkit.biobank.tables import Sample

    with app.state.db.session() as session:
        return session.scalar(
            select(Sample.accession_id)
            .where(Sample.status == status, Sample.kind == "primary")
            .order_by(Sample.id)
        )


def test_correct_a_visit_vrs_with_a_reason_and_see_it_in_the_audit_log(app, session):
    from playwright.sync_api import expect

    from sabrkit.registry.tables import Visit

    study_id = _patient_alive(app)
    with app.state.db.session() as db_session:
        visit = db_session.scalars(
            select(Visit).where(Visit.study_id == study_id).order_by(Visit.visit_number)
        ).first()
        old = visit.vrs_pain
        visit_id = visit.id
    new = 3 if old != 3 else 2
    page = session.page
    session.login("coordinator", f"/registry/patients/{study_id}")
    page.click(f"a[href='/registry/correct/visits/{visit_id}']")
    expect(page.locator("h1")).to_contain_text("Correct visit")
    page.fill("input[name=vrs_pain]", str(new))
    page.fill("input[name=reason]", "source document checked: pain was worse")
    session.shot("correction-form")
    page.click("button:has-text('Save correction')")
    expect(page.locator(".flash.ok")).to_contain_text(f"Pain (VRS) {old} -> {new}")
    session.shot("patient-after-correction")
    with app.state.db.session() as db_session:
        assert db_session.get(Visit, visit_id).vrs_pain == new
    page.click("button:has-text('Log out')")
    session.login("admin", f"/admin/audit?table=visits&row_key={visit_id}")
    row = page.locator("table.audit tbody tr").filter(has_text="source document checked: pain was worse")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("coordinator")
    expect(row.locator("td.changes")).to_contain_text(f"vrs_pain: {old} → {new}")
    session.shot("audit-log")


def test_an_error_is_shown_at_its_field_and_every_value_stays(app, session):
    from playwright.sync_api import expect

    page = session.page
    session.login("coordinator", "/registry/enrol")
    values = {
        "study_id": "SABR-RCC-001",
        "mdt_date": "2026-03-01",
        "enrolment_date": "2026-03-08",
        "age_years": "63",
        "ecog": "1",
        "kps": "90",
        "n_metastases": "2",
        "prior_systemic_lines": "1",
        "hospital_number": "H7770001",
        "family_name": "Fieldkept",
        "given_name": "Ada",
        "date_of_birth": "1963-02-03",
    }
    for name, value in values.items():
        page.fill(f"input[name={name}]", value)
    page.select_option("select[name=sex]", "F")
    for name in (
        "rcc_confirmed",
        "one_to_five_metastases",
        "all_lesions_treatable",
        "ecog_0_to_2",
        "informed_consent",
    ):
        page.check(f"input[name={name}]")
    page.click("button:has-text('Enrol')")
    # SABR-RCC-001 is enrolled already: the message sits at the Study ID field
    error = page.locator("#error-study_id")
    expect(error).to_contain_text("already in the registry")
    expect(page.locator("input[name=study_id]")).to_have_attribute("aria-invalid", "true")
    for name, value in values.items():  # identifiers too
        expect(page.locator(f"input[name={name}]")).to_have_value(value)
    expect(page.locator("select[name=sex]")).to_have_value("F")
    session.shot("error-at-field")


def test_a_future_date_is_refused_at_its_field(app, session):
    from playwright.sync_api import expect

    from sabrkit.registry.rules import latest_allowed_date
    from sabrkit.registry.tables import Visit

    study_id = _patient_alive(app)
    with app.state.db.session() as db_session:
        n_visits = db_session.scalar(
            select(func.count()).select_from(Visit).where(Visit.study_id == study_id)
        )
    future = (latest_allowed_date() + dt.timedelta(days=30)).isoformat()
    page = session.page
    session.login("coordinator", f"/registry/patients/{study_id}/visit")
    page.fill("input[name=visit_date]", future)
    # shown while typing (the date input mirrors the service's rule) ...
    expect(page.locator("#live-error-visit_date")).to_contain_text("must not lie after today")
    session.shot("future-date-while-typing")
    # ... and refused by the registry service when sent anyway (browser checks switched off)
    page.eval_on_selector("form.form-grid", "form => { form.noValidate = true; }")
    page.select_option("select[name=vrs_pain]", "1")
    page.click("button:has-text('Save')")
    expect(page.locator("#error-visit_date")).to_contain_text("must not lie after today")
    expect(page.locator("input[name=visit_date]")).to_have_value(future)
    session.shot("future-date-refused")
    with app.state.db.session() as db_session:
        assert (
            db_session.scalar(select(func.count()).select_from(Visit).where(Visit.study_id == study_id))
            == n_visits
        )


def test_thaw_then_return_to_freezer(app, session):
    from playwright.sync_api import expect

    from sabrkit.biobank import freeze_thaw_count, locate

    accession_id = _sample(app, "stored")
    location = locate(app.state.db, accession_id)
    page = session.page
    session.login("lab", f"/lab/samples/{accession_id}")
    page.click("button:has-text('Thaw…')")
    expect(page.locator("h1")).to_contain_text(f"Thaw {accession_id}?")
    session.shot("thaw-confirmation")
    page.click("button[data-confirm-button]")
    expect(page.locator(".flash.ok")).to_contain_text("freeze-thaw cycle 1")
    expect(page.locator("h1 .status")).to_have_text("in_use")
    session.shot("thawed")
    page.click(f"button:has-text('Return to freezer ({location})')")
    expect(page.locator(".flash.ok")).to_contain_text(f"Returned to the freezer at {location}")
    expect(page.locator("h1 .status")).to_have_text("stored")
    session.shot("returned")
    assert (
        locate(app.state.db, accession_id) == location and freeze_thaw_count(app.state.db, accession_id) == 1
    )


def test_dispose_with_confirmation_then_read_only(app, session):
    from playwright.sync_api import expect

    from sabrkit.biobank.tables import Sample

    accession_id = _sample(app, "stored")
    page = session.page
    session.login("lab", f"/lab/samples/{accession_id}")
    page.fill("form.danger input[name=reason]", "tube cracked in the freezer")
    page.click("button:has-text('Dispose…')")
    expect(page.locator("h1")).to_contain_text(f"Dispose of {accession_id}?")
    expect(page.locator("main")).to_contain_text("cannot be undone")
    with app.state.db.session() as db_session:  # nothing happened yet
        assert db_session.scalar(select(Sample.status).where(Sample.accession_id == accession_id)) == "stored"
    session.shot("dispose-confirmation")
    page.click("button[data-confirm-button]")
    expect(page.locator(".flash.ok")).to_contain_text("Disposed")
    expect(page.locator("section.readonly")).to_contain_text("disposed")
    expect(page.locator("button:has-text('Thaw…'), button:has-text('Aliquot')")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text("e+")
    session.shot("disposed-read-only")


def test_keyboard_only_placement(app, session):
    from playwright.sync_api import expect

    from sabrkit.biobank import box_map, locate
    from sabrkit.biobank.storage import position_label

    box = "F1/S1/R1/B02"
    received = _sample(app, "received")
    grid = box_map(app.state.db, box)
    free = [
        (r, c)
        for r in range(1, grid.n_rows + 1)
        for c in range(1, grid.n_columns + 1)
        if not grid.cells[(r, c)]
    ]
    typed = position_label(*free[-1])  # the last free position: far from the first
    page = session.page
    session.login("lab", f"/lab/boxes/{box}")
    # scanner flow: the sample field has the focus; a scanner types the code and Enter
    expect(page.locator("main input[name=sample][data-scanner]")).to_be_focused()
    page.keyboard.type(received)
    page.keyboard.press("Enter")
    # the position field has the focus (first free pre-filled and selected): type the position and Enter
    expect(page.locator("#position-entry")).to_be_focused()
    page.keyboard.type(typed)
    session.shot("typed-position")
    page.keyboard.press("Enter")
    expect(page.locator(".flash.ok")).to_contain_text(f"Stored at {box}:{typed}")
    assert locate(app.state.db, received) == f"{box}:{typed}"
    session.shot("stored-by-keyboard")
    # arrow keys on the map: one tab stop for the grid, arrows move, Enter stores
    second = next(a for a in _received_all(app) if a != received)
    page.keyboard.type(second)  # the sample field has the focus again
    page.keyboard.press("Enter")
    expect(page.locator("#position-entry")).to_be_focused()
    first_free = page.locator("#position-entry").input_value()
    for _ in range(3):  # Store button, box switcher, then the map's one tab stop
        page.keyboard.press("Tab")
    expect(page.locator(f"td.free button[data-position='{first_free}']")).to_be_focused()
    grid = box_map(app.state.db, box)
    r, c = _parse(first_free)
    target, keys = next(
        ((r2, c2), k)
        for (r2, c2), k in (((r, c + 1), "ArrowRight"), ((r + 1, c), "ArrowDown"))
        if (r2, c2) in grid.cells and not grid.cells[(r2, c2)]
    )
    page.keyboard.press(keys)
    label = position_label(*target)
    expect(page.locator(f"td.free button[data-position='{label}']")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".flash.ok")).to_contain_text(f"Stored at {box}:{label}")
    session.shot("stored-by-arrows")
    # browser-side checks must be valid patterns (Chromium compiles `pattern` with the `v` flag, where an
    # unescaped '-' at the end of a class is a syntax error and the check silently disappears)
    check = (
        "els => els.map(e => { try { new RegExp('^(?:' + e.pattern + ')$', 'v'); return null; } "
        "catch (error) { return e.name + ': ' + e.pattern; } }).filter(Boolean)"
    )
    for path in (f"/lab/boxes/{box}?sample={second}", "/lab/accession"):
        page.goto(session.base + path)
        assert page.eval_on_selector_all("[pattern]", check) == [], path


def _received_all(app) -> list[str]:
    from sabrkit.biobank.tables import Sample

    with app.state.db.session() as session:
        return list(
            session.scalars(
                select(Sample.accession_id).where(Sample.status == "received").order_by(Sample.id)
            )
        )


def _parse(position: str) -> tuple[int, int]:
    from sabrkit.biobank.storage import parse_position

    return parse_position(position)


def test_hypokalemia_grade_3_is_entered(app, session):
    from playwright.sync_api import expect

    from sabrkit.registry.rules import latest_allowed_date
    from sabrkit.registry.tables import AdverseEvent, Patient

    study_id = _patient_alive(app)
    with app.state.db.session() as db_session:
        last_contact = db_session.get(Patient, study_id).last_contact_date
    onset = min(last_contact, latest_allowed_date()).isoformat()
    page = session.page
    session.login("coordinator", f"/registry/patients/{study_id}/ae")
    row = page.locator(".ae-row").first
    row.locator("input[name=ae_term]").fill("Hypokalemia")
    grades = row.locator("select[name=ae_grade] option")
    expect(grades).to_have_count(6)  # blank + 1-5 (CTCAE v5.0 defines all five for Hypokalemia)
    row.locator("select[name=ae_grade]").select_option("3")
    row.locator("input[name=ae_onset_date]").fill(onset)
    row.locator("select[name=ae_attribution_sabr]").select_option("unrelated")
    session.shot("hypokalemia-form")
    page.click("button:has-text('Save')")
    expect(page.locator(".flash.ok")).to_contain_text("1 adverse events")
    expect(page.locator("main")).to_contain_text("Hypokalemia")
    session.shot("hypokalemia-recorded")
    with app.state.db.session() as db_session:
        event = db_session.scalars(
            select(AdverseEvent).where(AdverseEvent.study_id == study_id, AdverseEvent.term == "Hypokalemia")
        ).one()
        assert (event.grade, event.ctcae_version, event.onset_date.isoformat()) == (3, "5.0", onset)


def test_delete_then_restore_from_deleted_records(app, session):
    from playwright.sync_api import expect

    from sabrkit.registry.tables import AdverseEvent

    with app.state.db.session() as db_session:
        event = db_session.scalars(select(AdverseEvent).order_by(AdverseEvent.id.desc())).first()
        before = {c.key: getattr(event, c.key) for c in AdverseEvent.__table__.columns}
    key, study_id = before["id"], before["study_id"]
    page = session.page
    session.login("coordinator", f"/registry/correct/adverse_events/{key}")
    page.click("button:has-text('Delete this record…')")
    page.fill("input[name=reason]", "entered on the wrong patient")
    page.click("button[data-confirm-button]")
    expect(page.locator(".flash.ok")).to_contain_text("Deleted")
    page.goto(session.base + "/registry/patients")
    page.click("a:has-text('Deleted records')")
    row = page.locator("tbody tr").filter(has_text=f"adverse_events {key}")
    expect(row).to_contain_text("entered on the wrong patient")
    session.shot("deleted-records")
    row.locator("button:has-text('Restore…')").click()
    expect(page.locator("h1")).to_contain_text(f"Restore Adverse events row {key} of {study_id}?")
    page.fill("input[name=reason]", "source document: it was this patient")
    session.shot("restore-confirmation")
    page.click("button[data-confirm-button]")
    expect(page.locator(".flash.ok")).to_contain_text(f"Restored Adverse events row {key}")
    with app.state.db.session() as db_session:
        restored = db_session.get(AdverseEvent, key)
        assert {c.key: getattr(restored, c.key) for c in AdverseEvent.__table__.columns} == before
