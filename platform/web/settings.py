"""Settings of the web application (``SABRKIT_WEB_*`` environment variables).

The shared :class:`sabrkit.settings.Settings` says where the database and MLflow are; these
settings say how the web app treats its users: session lifetime, cookie flags, the failed-login
throttle and the links it shows. Like :class:`~sabrkit.settings.Settings`, an entry point builds
one :class:`WebSettings` and hands it to :func:`sabrkit.web.create_app`; nothing reads the
environment at import time. Every field is documented in ``docs/web.md`` (a test checks it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WebSettings"]


class WebSettings(BaseSettings):
    """How the web app runs: sessions, cookies, login throttling and outside links."""

    model_config = SettingsConfigDict(env_prefix="SABRKIT_WEB_", extra="forbid", frozen=True)

    session_hours: float = Field(
        12.0,
        gt=0,
        le=24 * 30,
        description="Hours a browser session stays valid after login (then the user logs in again).",
    )
    api_token_days: float = Field(
        365.0,
        gt=0,
        description="Days an API token (for instruments and scripts) stays valid.",
    )
    cookie_secure: bool = Field(
        False,
        description="Send the session cookie only over HTTPS (set true behind a TLS reverse proxy).",
    )
    max_failed_logins: int = Field(
        5,
        ge=1,
        description="Failed logins for one user name from one address before it is locked.",
    )
    max_failed_logins_per_address: int = Field(
        20,
        ge=1,
        description="Failed logins from one address (any user name) before the address is locked.",
    )
    lockout_minutes: float = Field(
        15.0,
        gt=0,
        description="Minutes a locked user name / address stays locked (failures older than this are forgotten).",
    )
    session_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="Seconds a checked session or API token is trusted without asking the database again "
        "(0: check every request). Logout and account changes made in the app take effect at once; "
        "changes made elsewhere (the CLI, another worker) within this many seconds.",
    )
    mlflow_ui_url: str | None = Field(
        None,
        description="URL of the MLflow UI the researcher pages link to (e.g. https://mlflow.example.org); "
        "unset: the pages show the `mlflow ui` command for the configured tracking URI.",
    )
    enrolment_target: int = Field(60, ge=1, description="Enrolment target shown on the cohort dashboard.")
    report_worker: Literal["process", "thread"] = Field(
        "process",
        description="Where the dashboard and the study report are built off the request path: a worker "
        "process (the build never slows other requests) or a thread (in-memory databases, tests).",
    )
    report_worker_niceness: int = Field(
        10,
        ge=0,
        le=19,
        description="How much lower the report worker process's CPU priority is than the web process's "
        "(Unix nice increment): on a machine with few cores a build then takes the CPU only when "
        "requests do not need it. 0: same priority.",
    )
    report_wait_seconds: float = Field(
        3.0,
        ge=0,
        description="Seconds a page waits for a build of the newest data before it shows the last "
        "one built (marked as updating) or, when there is none, a page that refreshes itself.",
    )
    project_dir: str = Field(
        ".",
        description="The DVC project whose pipeline outputs the researchers' Experiments page shows: "
        "`metrics/experiments/<name>.json` and `models/experiments/<name>/` (folds, plots) under it.",
    )
