"""The ``audit_log`` table and the :class:`Audited` mixin that puts a model's changes into it.

Every insert, update and delete of a row of an :class:`Audited` model, made through a session
of :class:`sabrkit.db.Database`, appends one :class:`AuditLogEntry` in the same transaction
(:mod:`sabrkit.audit.listeners`), so a rollback loses both the change and its entry.

An entry holds who (``actor``), when (``recorded_at``, UTC), what (``action``, ``table_name``,
``row_key``, the full row before in ``old_values`` and after in ``new_values``, as canonical
JSON text) and why (``reason``, required for updates and deletes). Entries form a hash chain:

.. math:: h_i = \\mathrm{SHA256}(\\mathrm{canonical\\_json}(e_i) \\,\\Vert\\, h_{i-1}),
          \\qquad h_0 = \\texttt{"0"} \\times 64

where :math:`e_i` holds every column of entry *i* except ``entry_hash`` (its ``id`` included),
so editing, deleting or inserting an entry breaks the chain at that entry
(:func:`sabrkit.audit.verify_audit`). The database refuses UPDATE and DELETE on ``audit_log``
with a trigger (migration ``0002``). Since migration ``0005`` each entry also carries
``entry_mac = HMAC-SHA256(key, entry_hash)`` under a key kept outside the database, and signed
checkpoints of the chain head are written outside it (:mod:`sabrkit.audit.keys`,
:mod:`sabrkit.audit.checkpoint`), so someone who can write the database but lacks the key can
neither append, recompute nor truncate the chain unnoticed.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sabrkit.db.base import Base

__all__ = ["AuditLogEntry", "Audited", "AUDIT_ACTIONS", "GENESIS_HASH"]

#: ``action`` values of an entry.
AUDIT_ACTIONS: tuple[str, ...] = ("insert", "update", "delete")
#: ``prev_hash`` of the first entry of the chain.
GENESIS_HASH = "0" * 64


class Audited:
    """Mixin for ORM models whose every change is written to ``audit_log``.

    Put it before :class:`sabrkit.db.Base`: ``class Visit(Audited, Base): ...``.

    Class attributes a model may set:

    ``__audit_label_columns__``
        Columns that describe a row to a person in audit messages (``("study_id",
        "visit_number")``); the row key itself is always the primary key.
    ``__audit_redacted_columns__``
        Columns whose values never enter the audit log (direct identifiers in the key table):
        the log keeps a salted SHA-256 digest instead, enough to detect a change.
    """

    __audit_label_columns__: ClassVar[tuple[str, ...]] = ()
    __audit_redacted_columns__: ClassVar[tuple[str, ...]] = ()


class AuditLogEntry(Base):
    """One append-only, hash-chained entry of the audit log (never updated nor deleted)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint("action IN ('insert', 'update', 'delete')", name="action_code"),
        Index("ix_audit_log_table_name_row_key", "table_name", "row_key"),
    )

    #: Position in the chain (1, 2, ...), assigned by the writer under a lock, never by a sequence.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(8))
    table_name: Mapped[str] = mapped_column(String(64))
    row_key: Mapped[str] = mapped_column(String(255))
    old_values: Mapped[str | None] = mapped_column(Text)
    new_values: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Id of the HMAC key (:mod:`sabrkit.audit.keys`) that keyed the entry; NULL: written without a key.
    key_id: Mapped[str | None] = mapped_column(String(16))
    #: HMAC-SHA256 (hex) of ``entry_hash`` under that key: only the key's holder can write a valid one.
    entry_mac: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"AuditLogEntry({self.id}, {self.action} {self.table_name} {self.row_key!r} by {self.actor!r})"
