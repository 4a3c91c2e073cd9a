"""The study report and dashboard are built off the request path (issue 16): a page never waits for
a build beyond ``report_wait_seconds``, results are cached by data version, and after a change the
last report is shown (marked, self-refreshing) until the new one is ready."""

from __future__ import annotations

import time

import pytest
from web_helpers import as_user


def _until_fresh(client, path: str, timeout: float = 600.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(path)
        if (
            response.status_code == 200
            and response.headers.get("x-fresh", "true") == "true"
            and "being built" not in response.text
        ):
            return response
        time.sleep(0.5)
    raise AssertionError(f"{path} was not built within {timeout} s")


@pytest.mark.slow
def test_reports_are_built_in_a_worker_process_and_cached_by_data_version(site_url):
    from sabrkit.biobank import create_storage
    from sabrkit.settings import Settings
    from sabrkit.web import WebSettings, create_app
    from sabrkit.web.queries import data_version

    app = create_app(
        Settings(database_url=site_url), WebSettings(report_worker="process", report_wait_seconds=0)
    )
    try:
        researcher = as_user(app, "researcher")
        started = time.perf_counter()
        first = researcher.client.get("/reports/study")
        assert time.perf_counter() - started < 5  # answered at once, not after the build
        assert (
            first.status_code == 202 and "being built" in first.text and 'http-equiv="refresh"' in first.text
        )
        report = _until_fresh(researcher.client, "/reports/study")
        version = data_version(app.state.db)
        assert report.headers["x-data-version"] == str(version) and "<html" in report.text.lower()
        started = time.perf_counter()
        again = researcher.client.get("/reports/study")  # cached: same data version, no rebuild
        assert again.status_code == 200 and again.text == report.text and time.perf_counter() - started < 2
        # the dashboard has its own worker: it is built even while nothing else is asked
        _until_fresh(researcher.client, "/dashboard")
        # a change: the last report is served at once, marked stale and self-refreshing, until the new one is built
        create_storage(app.state.db, "F8/S1/R1/B01", geometry="9x9", operator="test")
        stale = researcher.client.get("/reports/study")
        assert (
            stale.status_code == 200
            and stale.headers["x-fresh"] == "false"
            and stale.headers["refresh"] == "5"
        )
        assert stale.headers["x-data-version"] == str(version)
        fresh = _until_fresh(researcher.client, "/reports/study")
        assert int(fresh.headers["x-data-version"]) == data_version(app.state.db) > version
    finally:
        app.state.dashboard.close()
        app.state.db.dispose()
