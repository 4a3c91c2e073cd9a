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


def test_a_report_worker_ends_when_the_web_server_is_gone(tmp_path):
    """The worker watches its parent: a stopped or killed server leaves no orphaned build process."""
    import os
    import subprocess
    import sys
    import time

    pid_file, script = tmp_path / "worker.pid", tmp_path / "server.py"
    script.write_text(  # stands in for the web server: starts a worker as the pool does, then waits
        "import multiprocessing as mp, sys, time\n"
        "from sabrkit.web.dashboard import _exit_with_parent\n"
        "def worker(path):\n"
        "    import os, threading\n"
        "    threading.Thread(target=_exit_with_parent, args=(os.getppid(), 0.1), daemon=True).start()\n"
        "    open(path + '.tmp', 'w').write(str(os.getpid()))\n"
        "    os.replace(path + '.tmp', path)\n"
        "    time.sleep(120)\n"
        "if __name__ == '__main__':\n"
        "    mp.get_context('spawn').Process(target=worker, args=(sys.argv[1],)).start()\n"
        "    time.sleep(120)\n"
    )
    server = subprocess.Popen([sys.executable, str(script), str(pid_file)], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while not pid_file.is_file():
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
    finally:
        if not pid_file.is_file():
            server.kill()
    worker = int(pid_file.read_text())
    os.kill(worker, 0)  # alive while the server runs
    server.kill()  # no shutdown at all
    server.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the worker outlived its server"
        time.sleep(0.1)
