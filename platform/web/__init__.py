"""Web application: FastAPI + server-rendered Jinja2 pages for lab staff, coordinators and researchers.

:func:`create_app` builds the app on one :class:`~sabrkit.db.Database`; ``sabrkit serve`` runs it
with uvicorn. Views call the same service functions as the CLI (registry capture, biobank
actions), so every change is audited with the logged-in user as actor.
"""

from sabrkit.web.accounts import (
    CurrentUser,
    UserSummary,
    authenticate,
    create_api_token,
    create_user,
    list_users,
    set_active,
    set_password,
    set_role,
)
from sabrkit.web.app import app_from_environment, create_app
from sabrkit.web.errors import AccessDeniedError, LoginError, LoginThrottledError
from sabrkit.web.roles import PERMISSIONS, ROLES, can
from sabrkit.web.settings import WebSettings
from sabrkit.web.tables import LoginFailure, WebSession, WebUser

__all__ = [
    "create_app",
    "app_from_environment",
    "WebSettings",
    "create_user",
    "set_password",
    "set_role",
    "set_active",
    "list_users",
    "create_api_token",
    "authenticate",
    "CurrentUser",
    "UserSummary",
    "WebUser",
    "WebSession",
    "LoginFailure",
    "ROLES",
    "PERMISSIONS",
    "can",
    "LoginError",
    "LoginThrottledError",
    "AccessDeniedError",
]
