"""Admin pages: accounts (create, role, password reset, deactivate, API tokens) and the audit trail.

Account changes are :mod:`sabrkit.web.accounts` services, audited with the admin as actor and
the reason typed; the audit page lists the newest entries of the shared audit log.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request

from sabrkit.db.database import Database
from sabrkit.errors import SabrkitError, ValidationError, format_problem
from sabrkit.web import accounts, queries
from sabrkit.web.accounts import CurrentUser
from sabrkit.web.rendering import error_status, redirect, render
from sabrkit.web.roles import ROLE_HELP, ROLES
from sabrkit.web.security import FormFields, form_fields, get_db, require

router = APIRouter(include_in_schema=False)
ADMIN = require("manage_users")


def _page(
    request: Request,
    user: CurrentUser,
    db: Database,
    *,
    status_code: int = 200,
    error: Any = None,
    token: str | None = None,
    values: dict[str, str] | None = None,
) -> Any:
    return render(
        request,
        "users.html",
        user,
        users=accounts.list_users(db),
        roles=ROLES,
        role_help=ROLE_HELP,
        status_code=status_code,
        error=error,
        token=token,
        title="Users",
        values=values or {},
    )


@router.get("/admin/users")
def users(request: Request, user: CurrentUser = Depends(ADMIN), db: Database = Depends(get_db)) -> Any:
    return _page(request, user, db)


@router.post("/admin/users")
def create(
    request: Request,
    user: CurrentUser = Depends(ADMIN),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    try:
        accounts.create_user(
            db,
            form.get("username") or "",
            form.get("password") or "",
            form.get("role") or "",
            display_name=form.text("display_name"),
            actor=user.username,
            reason=form.text("reason"),
        )
    except SabrkitError as exc:
        kept = {k: v for k, v in form.items() if k in ("username", "display_name", "role", "reason")}
        return _page(request, user, db, status_code=error_status(exc), error=exc, values=kept)
    return redirect("/admin/users", f"Account {form.get('username', '').strip().lower()} created")


@router.post("/admin/users/{username}/{action}")
def change(
    request: Request,
    username: str,
    action: str,
    user: CurrentUser = Depends(ADMIN),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    reason = form.text("reason")
    token = None
    try:
        if not reason:
            raise ValidationError(
                format_problem(
                    "no reason",
                    "every account change needs a reason",
                    "type why (it goes into the audit log)",
                )
            )
        if action == "role":
            accounts.set_role(db, username, form.get("role") or "", actor=user.username, reason=reason)
        elif action == "password":
            accounts.set_password(
                db, username, form.get("password") or "", actor=user.username, reason=reason
            )
        elif action in ("deactivate", "activate"):
            if username == user.username and action == "deactivate":
                raise ValidationError(
                    format_problem(
                        "deactivating your own account", "an admin stays able to log in", "ask another admin"
                    )
                )
            accounts.set_active(db, username, action == "activate", actor=user.username, reason=reason)
        elif action == "unlock":
            removed = accounts.unlock(db, username, actor=user.username, reason=reason)
            request.app.state.session_cache.clear()
            return redirect(
                "/admin/users", f"{username}: login unlocked ({removed} failed login(s) forgotten)"
            )
        elif action == "token":
            token = accounts.create_api_token(
                db,
                username,
                label=reason[:100],
                days=request.app.state.web_settings.api_token_days,
                actor=user.username,
            )
        else:
            raise ValidationError(
                format_problem(
                    f"action {action!r}",
                    "role, password, unlock, activate, deactivate or token",
                    "use the buttons of the users page",
                )
            )
    except SabrkitError as exc:
        return _page(request, user, db, status_code=error_status(exc), error=exc)
    request.app.state.session_cache.clear()
    if token:
        return _page(request, user, db, token=token)
    return redirect("/admin/users", f"{username}: {action} done")


@router.get("/admin/audit")
def audit(
    request: Request,
    actor: str = "",
    table: str = "",
    row_key: str = "",
    since: date | None = None,
    until: date | None = None,
    page: int = 1,
    user: CurrentUser = Depends(ADMIN),
    db: Database = Depends(get_db),
) -> Any:
    found = queries.audit_entries(
        db, actor=actor, table=table, row_key=row_key, since=since, until=until, page=page
    )
    filters = {
        "actor": actor,
        "table": table,
        "row_key": row_key,
        "since": since.isoformat() if since else "",
        "until": until.isoformat() if until else "",
    }
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(request, "audit.html", user, filters=filters, query=query, title="Audit trail", **found)
