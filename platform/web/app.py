"""The FastAPI application: :func:`create_app` wires the database, templates, routers and guards.

One :class:`~sabrkit.db.Database` is created here (or handed in) and kept on ``app.state``;
views reach it through :func:`sabrkit.web.security.get_db` and call the same service functions
as the CLI. Pages are server-rendered Jinja2 templates; the JSON API lives under ``/api/`` and
is described by OpenAPI at ``/openapi.json`` (Swagger UI at ``/docs``), both behind the login.

Run it with ``sabrkit serve`` (uvicorn); :func:`app_from_environment` is the factory uvicorn
imports for ``--reload``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from sabrkit.audit import open_database
from sabrkit.db.database import Database
from sabrkit.errors import SabrkitError
from sabrkit.settings import Settings
from sabrkit.web.dashboard import DashboardCache
from sabrkit.web.rendering import error_payload, error_status, make_templates, render
from sabrkit.web.security import LoginRequired, SessionCache, current_user, optional_user
from sabrkit.web.settings import WebSettings

__all__ = ["create_app", "app_from_environment", "SecurityHeaders"]

logger = logging.getLogger(__name__)

_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# the study report is a self-contained page with inline styles; Swagger UI and ReDoc run one inline
# script each, their assets come from this server (fastapi-offline's bundle), never from a CDN
_DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'"
)
_RELAXED_CSP = {
    "/reports/study": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "/docs": _DOCS_CSP,
    "/redoc": _DOCS_CSP,
}
#: Where the Swagger UI / ReDoc files are served from (fastapi-offline's package folder).
DOCS_ASSETS = "/static/api-docs"


class SecurityHeaders:
    """ASGI middleware adding the security headers to every response (no per-request Python objects).

    API responses (``/api/...``, ``/openapi.json``) may carry identifiers: they get
    ``Cache-Control: no-store`` (pages get it from :func:`~sabrkit.web.rendering.render`).
    """

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        csp = _RELAXED_CSP.get(path, _CSP)
        api = path.startswith("/api/") or path == "/openapi.json"

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if csp:
                    headers.append((b"content-security-policy", csp.encode("ascii")))
                if api:
                    headers = [(k, v) for k, v in headers if k.lower() not in (b"cache-control", b"pragma")]
                    headers += [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Any:
        if _is_api(request):
            return JSONResponse(
                {"error": "LoginRequired", "detail": "log in, or send Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(SabrkitError)
    async def sabrkit_error(request: Request, exc: SabrkitError) -> Any:
        status = error_status(exc)
        if status >= 500:
            logger.exception("unexpected error on %s", request.url.path, exc_info=exc)
        if _is_api(request):
            return JSONResponse(error_payload(exc), status_code=status)
        user = getattr(request.state, "user", None)
        return render(request, "error.html", user, status_code=status, error=exc, title="Not possible")

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Any:
        problems = [{"field": ".".join(str(p) for p in e["loc"][1:]), "rule": e["msg"]} for e in exc.errors()]
        if _is_api(request):
            return JSONResponse(
                {"error": "RequestValidationError", "detail": "invalid request", "errors": problems},
                status_code=422,
            )
        user = getattr(request.state, "user", None)
        lines = "; ".join(f"{p['field']}: {p['rule']}" for p in problems)
        return render(
            request,
            "error.html",
            user,
            status_code=422,
            error=f"invalid request: {lines}",
            title="Invalid request",
        )


def create_app(
    settings: Settings,
    web_settings: WebSettings | None = None,
    *,
    database: Database | None = None,
    migrate: bool = True,
) -> FastAPI:
    """Build the web application.

    Parameters
    ----------
    settings : Settings
        Where the database and MLflow are (``SABRKIT_*``).
    web_settings : WebSettings, optional
        Sessions, cookies, throttling, links (``SABRKIT_WEB_*``); default: read from the environment.
    database : Database, optional
        An open database to use (tests, the demo); default: one opened from ``settings.database_url``
        and disposed of when the app shuts down.
    migrate : bool
        Upgrade the schema to the newest revision at start-up; when false (``sabrkit serve``) the
        schema must already be current (:meth:`~sabrkit.db.Database.require_current_schema`).
    """
    from sabrkit.version import __version__
    from sabrkit.web.routes import admin, api, auth, corrections, lab, registry, research, shipments

    web_settings = web_settings or WebSettings()
    owned = database is None
    db = database or open_database(settings.database_url, actor="web")
    if migrate:
        db.upgrade()
    else:
        db.require_current_schema()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.dashboard.close()
        if owned:
            db.dispose()

    app = FastAPI(
        title="sabrkit",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        description="JSON API of the SABR RCC registry and biobank: the same services as the "
        "`sabrkit` CLI. Authenticate with `Authorization: Bearer <token>` "
        "(`sabrkit users token USER`) or a browser session plus the `X-CSRF-Token` header.",
    )
    app.state.db = db
    app.state.settings = settings
    app.state.web_settings = web_settings
    app.state.templates = make_templates()
    app.state.dashboard = DashboardCache(
        target=web_settings.enrolment_target,
        database_url=db.url.render_as_string(hide_password=False),
        worker=web_settings.report_worker,
        wait_seconds=web_settings.report_wait_seconds,
        worker_niceness=web_settings.report_worker_niceness,
    )
    app.state.session_cache = SessionCache(web_settings.session_cache_seconds)
    app.add_middleware(SecurityHeaders)
    app.mount(
        DOCS_ASSETS, StaticFiles(directory=str(files("fastapi_offline").joinpath("static"))), name="api-docs"
    )
    app.mount("/static", StaticFiles(directory=str(files("sabrkit.web").joinpath("static"))), name="static")
    for module in (auth, lab, shipments, corrections, registry, research, admin, api):
        app.include_router(module.router)
    _install_error_handlers(app)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(user: Any = Depends(current_user)) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(user: Any = Depends(current_user)) -> Any:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="sabrkit API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(user: Any = Depends(current_user)) -> Any:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="sabrkit API",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def home(request: Request, user: Any = Depends(optional_user)) -> Any:
        if user is None:
            return RedirectResponse("/login", status_code=303)
        start = {
            "lab": "/lab",
            "coordinator": "/registry/patients",
            "researcher": "/dashboard",
            "admin": "/admin/users",
        }.get(user.role, "/find")
        return RedirectResponse(start, status_code=303)

    logger.info("web app ready on %s", db)
    return app


def app_from_environment() -> FastAPI:
    """The app configured from ``SABRKIT_*`` and ``SABRKIT_WEB_*`` (uvicorn's factory for ``--reload``).

    Like ``sabrkit serve``, it never migrates: run ``sabrkit registry migrate`` first.
    """
    return create_app(Settings(), WebSettings(), migrate=False)
