"""The audit room's error: a change the audit rules refuse (no reason, a key edit, a bypass)."""

from __future__ import annotations

from sabrkit.errors import SabrkitError

__all__ = ["AuditError"]


class AuditError(SabrkitError, PermissionError):
    """A change to an audited table breaks an audit rule, e.g. an update without a reason.

    The message names the table and the row (``visits row 17``), the rule and the fix.
    """
