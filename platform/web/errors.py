"""Errors of the web layer: failed or throttled logins, and a role without the needed permission."""

from __future__ import annotations

from datetime import datetime

from sabrkit.errors import SabrkitError

__all__ = ["LoginError", "LoginThrottledError", "AccessDeniedError"]


class LoginError(SabrkitError, PermissionError):
    """A user name and password that do not match an active account (deliberately vague)."""


class LoginThrottledError(LoginError):
    """Too many failed logins for this user name or address; ``until`` says when it unlocks (UTC)."""

    def __init__(self, message: str, *, until: datetime):
        super().__init__(message)
        self.until = until


class AccessDeniedError(SabrkitError, PermissionError):
    """The logged-in user's role does not hold the permission an action needs."""
