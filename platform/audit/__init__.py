"""Append-only, hash-chained audit log shared by every room (registry, biobank, ...).

Mark a model ``class Visit(Audited, Base)``; every change made through a session of a
:class:`sabrkit.db.Database` opened with :func:`open_database` is then logged in the same transaction, with who
(``Database.transaction(actor=...)``) and why (``reason=...``, required for updates and
deletes). :func:`verify_audit` detects any change made behind the platform's back.
"""

from sabrkit.audit.chain import canonical_json, entry_hash
from sabrkit.audit.errors import AuditError
from sabrkit.audit.listeners import (
    AUDIT_ACTOR,
    AUDIT_REASON,
    append_entries,
    insert_audited,
    insert_audited_rows,
    install_audit,
    open_database,
    set_audit_context,
)
from sabrkit.audit.tables import AUDIT_ACTIONS, GENESIS_HASH, Audited, AuditLogEntry
from sabrkit.audit.verify import AuditProblem, AuditReport, audit_history, audited_models, verify_audit

__all__ = [
    "Audited",
    "AuditLogEntry",
    "AuditError",
    "AuditReport",
    "AuditProblem",
    "verify_audit",
    "audit_history",
    "audited_models",
    "install_audit",
    "open_database",
    "set_audit_context",
    "insert_audited",
    "insert_audited_rows",
    "append_entries",
    "canonical_json",
    "entry_hash",
    "AUDIT_ACTOR",
    "AUDIT_REASON",
    "AUDIT_ACTIONS",
    "GENESIS_HASH",
]
