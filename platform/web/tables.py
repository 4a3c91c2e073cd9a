"""ORM models of the web app: user accounts, sessions (and API tokens), failed logins.

``web_users`` is :class:`~sabrkit.audit.Audited`: creating an account, changing its role or
password or deactivating it is logged with who and why (the password hash is redacted to a
digest in the log). Sessions and failed logins are bookkeeping that changes on every login, so
they are not audited; a session row stores only the SHA-256 of its token, never the token.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sabrkit.audit.tables import Audited
from sabrkit.db.base import Base
from sabrkit.web.roles import ROLES

__all__ = ["WebUser", "WebSession", "LoginFailure", "SESSION_KINDS"]

SESSION_KINDS: tuple[str, ...] = ("browser", "api")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class WebUser(Audited, Base):
    """A person who logs in to the web app, with one role (:mod:`sabrkit.web.roles`)."""

    __tablename__ = "web_users"
    __audit_label_columns__ = ("username",)
    __audit_redacted_columns__ = ("password_hash",)
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    password_changed_at: Mapped[datetime] = mapped_column(DateTime)

    sessions: Mapped[list[WebSession]] = relationship(back_populates="user")

    def __repr__(self) -> str:
        return f"WebUser({self.username!r}, role={self.role!r})"


class WebSession(Base):
    """A logged-in browser session or an API token: SHA-256 of the token, owner, CSRF token, expiry."""

    __tablename__ = "web_sessions"
    __table_args__ = (CheckConstraint(_in("kind", SESSION_KINDS), name="kind_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    client_address: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(100))

    user: Mapped[WebUser] = relationship(back_populates="sessions")


class LoginFailure(Base):
    """One failed login: the user name as typed (lower case), the client address and when."""

    __tablename__ = "web_login_failures"
    __table_args__ = (
        Index("ix_web_login_failures_username_failed_at", "username", "failed_at"),
        Index("ix_web_login_failures_client_address_failed_at", "client_address", "failed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    client_address: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(DateTime)
