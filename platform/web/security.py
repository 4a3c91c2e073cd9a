"""FastAPI dependencies that guard every request: who is asking, may they, and is the form genuine.

* :func:`current_user` reads the session cookie (browsers) or ``Authorization: Bearer <token>``
  (instruments and scripts, API tokens from ``sabrkit users token``); without either it raises
  :class:`LoginRequired`, which the app turns into a redirect to ``/login`` (pages) or a 401 (API).
* :func:`require` adds a permission check (:mod:`sabrkit.web.roles`) and, for every unsafe
  method (POST, PUT, PATCH, DELETE) of a browser session, the CSRF check: the request must carry
  the session's own CSRF token, in the form field ``csrf_token`` or the ``X-CSRF-Token`` header,
  compared in constant time. Bearer-token requests carry no ambient credentials and need none.
* The login form, made before any session exists, uses a double-submit token: a random value
  in a cookie that must equal the form's hidden field.
* Origin check (OWASP CSRF cheat sheet, "verifying origin with standard headers"): an unsafe
  request of a browser session (and the login form) whose ``Origin`` header, or failing that
  ``Referer``, names another host than the request's ``Host`` is refused, even with a valid token.
  Browsers send ``Origin`` on every cross-site POST; a request carrying neither header (a script,
  a privacy proxy) is judged by the token alone.

Forms are parsed here (``application/x-www-form-urlencoded`` only, at most 256 KiB), so the web
app needs no multipart parser; a file upload is refused with 415.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends, Request

from sabrkit.db.database import Database
from sabrkit.errors import SabrkitError
from sabrkit.web.accounts import CurrentUser, user_for_token
from sabrkit.web.errors import AccessDeniedError
from sabrkit.web.roles import can
from sabrkit.web.settings import WebSettings

__all__ = [
    "SESSION_COOKIE",
    "LOGIN_CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "LoginRequired",
    "CsrfError",
    "FormTooLargeError",
    "UnsupportedFormError",
    "FormFields",
    "SessionCache",
    "get_db",
    "get_web_settings",
    "client_address",
    "current_user",
    "optional_user",
    "require",
    "form_fields",
    "check_login_csrf",
    "new_login_csrf",
    "check_origin",
]

SESSION_COOKIE = "sabrkit_session"
LOGIN_CSRF_COOKIE = "sabrkit_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_BYTES = 256 * 1024
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class LoginRequired(Exception):
    """No valid session or token came with the request."""


class CsrfError(SabrkitError, PermissionError):
    """An unsafe request of a browser session without the session's CSRF token."""


class FormTooLargeError(SabrkitError, ValueError):
    """A form body over :data:`MAX_FORM_BYTES`."""


class UnsupportedFormError(SabrkitError, ValueError):
    """A form that is not URL-encoded (file uploads are not accepted)."""


class SessionCache:
    """Recently checked sessions and tokens (by SHA-256 of the token), trusted for ``ttl`` seconds.

    Saves the session query on most requests. :meth:`clear` is called on logout and on every
    account change made through the app, so those take effect at once in this process.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, CurrentUser]] = {}

    def get(self, key: str) -> CurrentUser | None:
        if self.ttl <= 0:
            return None
        found = self._entries.get(key)
        if found is None or time.monotonic() - found[0] > self.ttl:
            return None
        return found[1]

    def put(self, key: str, user: CurrentUser) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic(), user)

    def clear(self) -> None:
        self._entries.clear()


class FormFields(dict):
    """Form fields: ``form["x"]`` is the last value sent for ``x``; :meth:`getlist` gives them all."""

    def __init__(self, pairs: list[tuple[str, str]]):
        super().__init__(pairs)
        self._pairs = pairs

    def getlist(self, name: str) -> list[str]:
        """Every value sent for ``name``, in order."""
        return [value for key, value in self._pairs if key == name]

    def text(self, name: str) -> str | None:
        """The field stripped of spaces, or None when missing or blank."""
        value = self.get(name)
        return value.strip() or None if isinstance(value, str) else None


async def get_db(request: Request) -> Database:
    """The app's one :class:`~sabrkit.db.Database` (views never open connections of their own)."""
    return request.app.state.db


async def get_web_settings(request: Request) -> WebSettings:
    """The app's :class:`~sabrkit.web.settings.WebSettings`."""
    return request.app.state.web_settings


def client_address(request: Request) -> str:
    """The client's address (the proxy's, unless uvicorn runs with ``--proxy-headers``)."""
    return request.client.host if request.client else "unknown"


async def form_fields(request: Request) -> FormFields:
    """The request's URL-encoded form (parsed once per request and cached on ``request.state``)."""
    cached = getattr(request.state, "form_fields", None)
    if cached is not None:
        return cached
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormTooLargeError(
            f"form of {len(body)} bytes; rule: at most {MAX_FORM_BYTES} bytes; fix: send less"
        )
    if body and content_type not in ("application/x-www-form-urlencoded", ""):
        raise UnsupportedFormError(
            f"form sent as {content_type!r}; rule: forms are URL-encoded; "
            "fix: send application/x-www-form-urlencoded (or use the JSON API)"
        )
    fields = FormFields(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    request.state.form_fields = fields
    return fields


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def optional_user(request: Request, db: Database = Depends(get_db)) -> CurrentUser | None:
    """The logged-in user, or None.

    Runs on the event loop (one indexed SQLite/PostgreSQL read of about a millisecond), which
    saves a thread-pool round trip on every request.
    """
    cached = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    token = _bearer(request)
    kind = "api" if token else "browser"
    token = token or request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    cache: SessionCache = request.app.state.session_cache
    key = hashlib.sha256(f"{kind}:{token}".encode()).hexdigest()
    user = cache.get(key)
    if user is None:
        user = user_for_token(db, token, kind=kind)
        if user is not None:
            cache.put(key, user)
    request.state.user = user
    return user


async def current_user(user: CurrentUser | None = Depends(optional_user)) -> CurrentUser:
    """The logged-in user; raises :class:`LoginRequired` without a valid session or token."""
    if user is None:
        raise LoginRequired()
    return user


def check_origin(request: Request) -> None:
    """Refuse a request whose ``Origin`` (or ``Referer``) host differs from its ``Host``.

    Raises
    ------
    CsrfError
        The request came from a page of another site.
    """
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return
    host = request.headers.get("host", "").strip().lower()
    sent = urlsplit(source.strip())
    if source.strip().lower() == "null" or not sent.netloc or sent.netloc.lower() != host:
        raise CsrfError(
            f"request from {source[:100]!r} to host {host!r}; rule: forms are accepted only from this "
            "site's own pages (Origin/Referer must match the host); fix: open the page from this site "
            "and submit it again"
        )


async def _check_csrf(request: Request, user: CurrentUser) -> None:
    if request.method not in _UNSAFE or user.session_kind == "api":
        return
    check_origin(request)
    sent = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not sent and content_type in ("application/x-www-form-urlencoded", ""):
        sent = (await form_fields(request)).get(CSRF_FIELD)
    if not sent or not hmac.compare_digest(str(sent), user.csrf_token):
        raise CsrfError(
            "request without a valid CSRF token; rule: every form carries the session's token; "
            "fix: reload the page and submit the form again"
        )


def require(permission: str) -> Callable[..., Any]:
    """A dependency: the logged-in user, who must hold ``permission``; unsafe methods also need CSRF."""

    async def dependency(request: Request, user: CurrentUser = Depends(current_user)) -> CurrentUser:
        if not can(user.role, permission):
            raise AccessDeniedError(
                f"{user.username} ({user.role}) may not do this; rule: needs the "
                f"{permission!r} permission; fix: ask an admin, or log in with another account"
            )
        await _check_csrf(request, user)
        return user

    dependency.__name__ = f"require_{permission}"
    return dependency


def new_login_csrf() -> str:
    """A fresh token for the login form's double-submit cookie."""
    return secrets.token_urlsafe(24)


async def check_login_csrf(request: Request) -> FormFields:
    """The login form, after checking its origin and its hidden token against the login cookie."""
    check_origin(request)
    fields = await form_fields(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    sent = fields.get(CSRF_FIELD)
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        raise CsrfError(
            "login form without its CSRF token; rule: the login form must come from this site; "
            "fix: reload the login page (cookies must be enabled)"
        )
    return fields
