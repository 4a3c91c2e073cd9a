"""Fixtures of the web tests: a small demo site built once per session, copied for each test.

The site is built with the package's own :func:`sabrkit.web.demo.build_demo` (synthetic cohort,
registry and biobank loaders, boxes, consents, one account per role) into a temp folder, like
datasette's fixture databases; each test gets a private copy of the SQLite file.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_helpers import CSRF, PASSWORDS, Browser, as_user  # noqa: F401  (re-exported for fixtures)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "browser: end-to-end tests in headless Chromium (Playwright); "
        "skipped when the chromium binary is missing (fail with SABRKIT_REQUIRE_BROWSER=1)",
    )


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo database file (12 patients, 20 stored samples), built once."""
    from sabrkit.web.demo import build_demo

    site = build_demo(
        tmp_path_factory.mktemp("web-demo"),
        n_patients=12,
        n_stored=20,
        passwords=PASSWORDS,
        password_profile="fast-insecure",
    )
    return site.folder / "sabrkit.db"


@pytest.fixture
def site_url(demo_template: Path, tmp_path: Path) -> str:
    """URL of a private copy of the demo database."""
    target = tmp_path / "site.db"
    shutil.copyfile(demo_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def app(site_url: str):
    from sabrkit.settings import Settings
    from sabrkit.web import WebSettings, create_app

    application = create_app(
        Settings(database_url=site_url), WebSettings(report_worker="thread", report_wait_seconds=300)
    )
    yield application
    application.state.db.dispose()


@pytest.fixture
def web(app) -> Iterator[Browser]:
    """A logged-out browser-like client."""
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        yield Browser(client)
