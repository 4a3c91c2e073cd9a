"""End to end in headless Chromium (Playwright): log in, scan a barcode, accession + aliquot + place a
sample on the box map, record a visit with an adverse event, and see them on the dashboard.

A screenshot of each page is saved in ``$SABRKIT_TEST_ARTIFACTS`` (default ``tests/web/artifacts/``,
git-ignored). Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` Python
package (a dev dependency, imported plainly); the browser is launched with ``executable_path`` (never
``playwright install``). Without the Chromium binary the test skips, or fails when
``SABRKIT_REQUIRE_BROWSER=1`` (``.ci/run`` sets it, so CI never skips it).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import func, select
from web_helpers import PASSWORDS

CHROMIUM = os.environ.get("SABRKIT_CHROMIUM", "/usr/bin/chromium")
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _chromium() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


if _chromium() is None:
    _missing = (
        f"browser test needs Chromium at {CHROMIUM} or `chromium` on PATH "
        "(apt-get install -y chromium, or set SABRKIT_CHROMIUM to the binary)"
    )
    if os.environ.get("SABRKIT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SABRKIT_REQUIRE_BROWSER=1 requires it: {_missing}", pytrace=False)
    pytest.skip(_missing, allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(app) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a background thread."""
    import uvicorn

    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, daemon=True, name="uvicorn-e2e")
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("SABRKIT_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts") / "web-e2e"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _visit_to_record(app) -> tuple[str, int, str, str]:
    """A patient's first unrecorded visit (number, due date) and a CTCAE term new to the cohort."""
    from sabrkit.registry.ctcae import ctcae_terms
    from sabrkit.registry.schedule import scheduled_date
    from sabrkit.registry.tables import AdverseEvent, Lesion, SabrCourse, Visit

    study_id = "SABR-RCC-003"
    with app.state.db.session() as session:
        index = session.scalar(
            select(func.min(SabrCourse.start_date)).join(Lesion).where(Lesion.study_id == study_id)
        )
        done = set(session.scalars(select(Visit.visit_number).where(Visit.study_id == study_id)))
        used = {t.lower() for t in session.scalars(select(AdverseEvent.term))}
    number = next(n for n in range(1, 30) if n not in done)
    term = next(
        t.term
        for key, t in sorted(ctcae_terms().items())
        if key not in used and t.allowed_grades == (1, 2, 3)
    )
    return study_id, number, scheduled_date(index, number).isoformat(), term


def test_bench_to_dashboard_in_a_browser(app, server, artifacts):

    from sabrkit.biobank.tables import Sample

    with app.state.db.session() as session:
        n_samples = session.scalar(select(func.count()).select_from(Sample))
        stored = session.scalar(
            select(Sample.accession_id).where(Sample.status == "stored").order_by(Sample.id)
        )
    study_id, visit_number, visit_date, term = _visit_to_record(app)
    shots: list[str] = []

    with sync_playwright() as playwright:
        # no background networking: on a closed network Chromium would otherwise keep trying
        # (and failing) to reach Google's update, sync and component services
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
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)

        def shot(name: str) -> None:
            path = artifacts / f"{len(shots) + 1:02d}-{name}.png"
            page.screenshot(path=str(path), full_page=True)
            shots.append(path.name)

        def login(username: str, target: str) -> None:
            page.goto(server + target)
            expect(page).to_have_url(re.compile(r"/login\?next="))
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", PASSWORDS[username])
            page.click("button:has-text('Log in')")
            expect(page).to_have_url(re.compile(re.escape(target) + "$"))

        def logout() -> None:
            page.click("button:has-text('Log out')")
            expect(page).to_have_url(re.compile(r"/login$"))

        # lab: log in, scan a tube
        page.goto(server + "/lab")
        shot("login")
        login("lab", "/lab")
        shot("lab-bench")
        page.fill("header input[name=code]", stored)
        page.press("header input[name=code]", "Enter")
        expect(page).to_have_url(re.compile(f"/lab/samples/{stored}$"))
        expect(page.locator("h1")).to_contain_text(stored)
        shot("scanned-sample")

        # accession a new plasma sample
        page.goto(server + "/lab/accession")
        page.fill("input[name=study_id]", study_id)
        page.select_option("select[name=timepoint]", "month_6")
        page.select_option("select[name=specimen_type]", "plasma")
        page.fill("input[name=collected_at]", f"{visit_date}T08:30")
        page.fill("input[name=volume_ml]", "3")
        page.fill("input[name=received_at]", f"{visit_date}T09:00")
        shot("accession-form")
        page.click("button:has-text('Accession')")
        expect(page.locator(".flash.ok")).to_contain_text("Accessioned")
        accession_id = page.locator("h1 code").inner_text()
        shot("accessioned")

        # aliquot it
        page.fill("input[name=quantities]", "1, 1")
        page.click("button:has-text('Aliquot')")
        expect(page.locator(".flash.ok")).to_contain_text("2 aliquot(s)")
        aliquot = page.locator(".flash.ok").inner_text().split(": ", 1)[1].split(",")[0].strip()
        shot("aliquoted")

        # place the aliquot on the box map: scan it into the box page, click the first free position
        page.goto(server + "/lab/boxes/F1/S1/R1/B02")
        page.fill("main input[name=sample]", aliquot)
        page.press("main input[name=sample]", "Enter")
        free = page.locator("td.free button").first
        position = free.get_attribute("value")
        shot("box-map-choose")
        free.click()
        expect(page.locator(".flash.ok")).to_contain_text(f"Stored at F1/S1/R1/B02:{position}")
        cell = page.locator(f"td.occupied a[data-position='{position}']")
        expect(cell).to_have_attribute("title", f"{position}: {aliquot}")
        shot("box-map")
        logout()

        # coordinator: record a visit with an adverse event (only the grades the term allows)
        login("coordinator", f"/registry/patients/{study_id}/visit")
        page.fill("input[name=visit_date]", visit_date)
        page.fill("input[name=visit_number]", str(visit_number))
        page.select_option("select[name=vrs_pain]", "1")
        page.fill("input[name=tess_score]", "44")
        row = page.locator(".ae-row").first
        row.locator("input[name=ae_term]").fill(term)
        grades = row.locator("select[name=ae_grade] option")
        expect(grades).to_have_count(4)  # blank + 1, 2, 3: no 4 or 5 for this term
        assert [grades.nth(i).get_attribute("value") for i in range(4)] == ["", "1", "2", "3"]
        row.locator("select[name=ae_grade]").select_option("2")
        row.locator("input[name=ae_onset_date]").fill(visit_date)
        row.locator("select[name=ae_attribution_sabr]").select_option("possible")
        shot("visit-form")
        page.click("button:has-text('Save')")
        expect(page.locator(".flash.ok")).to_contain_text("1 visits, 1 adverse events")
        expect(page.locator("main")).to_contain_text(term)
        shot("patient-after-visit")
        logout()

        # researcher: the dashboard shows the new sample count and the new adverse event
        login("researcher", "/dashboard")
        expect(page.locator(".tile").filter(has_text="samples")).to_contain_text(str(n_samples + 3))
        expect(page.locator("table.toxicity")).to_contain_text(term)
        assert page.eval_on_selector("img.figure", "img => img.complete && img.naturalWidth > 0")
        shot("dashboard")
        page.goto(server + "/inventory")
        shot("inventory")
        browser.close()

    assert len(shots) == 12 and all((artifacts / name).stat().st_size > 10_000 for name in shots)
    with app.state.db.session() as session:
        placed = session.scalar(select(Sample.status).where(Sample.accession_id == aliquot))
    assert placed == "stored" and accession_id.startswith("SABR-PL-")
