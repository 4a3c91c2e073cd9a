"""Web application accounts: users, sessions and API tokens, failed logins.

Revision ID: 0004
Revises: 0003
Create Date: 2026-01-13

* ``web_users``: user name, role (admin / lab / coordinator / researcher), argon2 password hash,
  active flag (audited through ``sabrkit.audit``; the hash is redacted in the log).
* ``web_sessions``: browser sessions and API tokens (SHA-256 of the token only), the session's
  CSRF token and expiry.
* ``web_login_failures``: failed logins by user name and client address, for throttling.

Written by hand; ``tests/web/test_web_migration.py`` checks that the schema matches the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLES = ("admin", "lab", "coordinator", "researcher")
_KINDS = ("browser", "api")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table(
        "web_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(_in("role", _ROLES), name=op.f("ck_web_users_role_code")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_users")),
        sa.UniqueConstraint("username", name=op.f("uq_web_users_username")),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("client_address", sa.String(64), nullable=True),
        sa.Column("label", sa.String(100), nullable=True),
        sa.CheckConstraint(_in("kind", _KINDS), name=op.f("ck_web_sessions_kind_code")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["web_users.id"], name=op.f("fk_web_sessions_user_id_web_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"])
    op.create_table(
        "web_login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("client_address", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_login_failures")),
    )
    op.create_index(
        "ix_web_login_failures_username_failed_at", "web_login_failures", ["username", "failed_at"]
    )
    op.create_index(
        "ix_web_login_failures_client_address_failed_at",
        "web_login_failures",
        ["client_address", "failed_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_web_login_failures_client_address_failed_at", table_name="web_login_failures")
    op.drop_index("ix_web_login_failures_username_failed_at", table_name="web_login_failures")
    op.drop_table("web_login_failures")
    op.drop_index(op.f("ix_web_sessions_user_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_table("web_users")
