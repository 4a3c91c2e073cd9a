"""Login, logout and the user's own password.

The login form carries a double-submit CSRF token (cookie + hidden field); a successful login
replaces any earlier session (no session fixation) and sets an HttpOnly, SameSite=Lax cookie
(``Secure`` when ``SABRKIT_WEB_COOKIE_SECURE=true``). Failed logins are counted per user name
and address and throttled (:func:`sabrkit.web.accounts.authenticate`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request

from sabrkit.db.database import Database
from sabrkit.errors import SabrkitError
from sabrkit.web.accounts import CurrentUser, authenticate, close_session, open_session, set_password
from sabrkit.web.errors import LoginError
from sabrkit.web.rendering import error_status, redirect, render
from sabrkit.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    FormFields,
    check_login_csrf,
    client_address,
    current_user,
    form_fields,
    get_db,
    get_web_settings,
    new_login_csrf,
    optional_user,
    require,
)
from sabrkit.web.settings import WebSettings

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only local paths: ``/lab``, never ``//evil.example`` or ``https://...``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(
    request: Request, *, next_path: str, status_code: int = 200, error: Any = None, username: str = ""
) -> Any:
    token = new_login_csrf()
    response = render(
        request,
        "login.html",
        None,
        status_code=status_code,
        error=error,
        csrf_token=token,
        next_path=next_path,
        username=username,
        title="Log in",
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/login",
        secure=request.app.state.web_settings.cookie_secure,
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/", user: CurrentUser | None = Depends(optional_user)) -> Any:
    if user is not None:
        return redirect(_safe_next(next))
    return _login_page(request, next_path=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    form: FormFields = Depends(check_login_csrf),
    db: Database = Depends(get_db),
    settings: WebSettings = Depends(get_web_settings),
) -> Any:
    username = (form.get("username") or "").strip()
    next_path = _safe_next(form.get("next"))
    try:
        user_id, name = authenticate(
            db, username, form.get("password") or "", client_address(request), settings
        )
    except LoginError as exc:
        return _login_page(
            request,
            next_path=next_path,
            status_code=error_status(exc) if error_status(exc) == 429 else 401,
            error=exc,
            username=username,
        )
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        close_session(db, old)
        request.app.state.session_cache.clear()
    token = open_session(
        db,
        user_id,
        lifetime=timedelta(hours=settings.session_hours),
        client_address=client_address(request),
        actor=name,
    )
    response = redirect(next_path)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(
    request: Request, user: CurrentUser = Depends(require("read")), db: Database = Depends(get_db)
) -> Any:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        close_session(db, token)
        request.app.state.session_cache.clear()
    response = redirect("/login", "Logged out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account")
def account(request: Request, user: CurrentUser = Depends(current_user)) -> Any:
    return render(request, "account.html", user, title="My account")


@router.post("/account/password")
def change_password(
    request: Request,
    user: CurrentUser = Depends(require("read")),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
    settings: WebSettings = Depends(get_web_settings),
) -> Any:
    try:
        authenticate(db, user.username, form.get("current_password") or "", client_address(request), settings)
        if (form.get("new_password") or "") != (form.get("repeat_password") or ""):
            return render(
                request,
                "account.html",
                user,
                status_code=422,
                error="the two new passwords differ",
                title="My account",
            )
        set_password(
            db,
            user.username,
            form.get("new_password") or "",
            actor=user.username,
            reason="password changed by its owner",
        )
        request.app.state.session_cache.clear()
    except SabrkitError as exc:
        return render(
            request, "account.html", user, status_code=error_status(exc), error=exc, title="My account"
        )
    response = redirect("/login", "Password changed: log in with the new one.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
