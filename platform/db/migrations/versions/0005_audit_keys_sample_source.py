"""Keyed audit entries and source IDs of samples.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

* ``audit_log`` gains ``key_id`` and ``entry_mac``: the HMAC-SHA256 of the entry hash under a
  key kept outside the database (:mod:`sabrkit.audit.keys`). Entries written before this
  revision, or while no key was configured, keep them NULL; ``sabrkit audit verify`` names them.
* ``samples`` gains ``source_site`` and ``source_id`` (a tube barcode or LIMS ID), unique per
  site, so a re-imported sample file is recognised (:mod:`sabrkit.biobank.load`).

Both tables are referenced or guarded (triggers on ``audit_log``), so on SQLite the columns are
added with ``ALTER TABLE ADD COLUMN`` and the uniqueness is a unique index, never a table copy.
Written by hand; ``tests/db/test_db_migrations.py`` checks that the schema matches the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("key_id", sa.String(16), nullable=True))
    op.add_column("audit_log", sa.Column("entry_mac", sa.String(64), nullable=True))
    op.add_column("samples", sa.Column("source_site", sa.String(32), nullable=True))
    op.add_column("samples", sa.Column("source_id", sa.String(64), nullable=True))
    op.create_index("uq_samples_source_site_source_id", "samples", ["source_site", "source_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_samples_source_site_source_id", table_name="samples")
    with op.batch_alter_table("samples") as batch:
        batch.drop_column("source_id")
        batch.drop_column("source_site")
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":  # SQLite >= 3.35 drops a column in place (the triggers stay)
        op.execute("ALTER TABLE audit_log DROP COLUMN entry_mac")
        op.execute("ALTER TABLE audit_log DROP COLUMN key_id")
    else:
        op.drop_column("audit_log", "entry_mac")
        op.drop_column("audit_log", "key_id")
