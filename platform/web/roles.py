"""Roles of web users and what each may do.

Four roles (issue 8): ``admin`` manages accounts and may do the lab's and the coordinators'
work; ``lab`` accessions, aliquots, stores, thaws, ships and labels samples; ``coordinator``
enrols patients and enters visits, adverse events, assessments and events, and is the only role
that reads the key table of direct identifiers (DESIGN.md: "readable by the coordinator role");
``researcher`` reads pseudonymous data only and never writes.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["Role", "ROLES", "PERMISSIONS", "Permission", "can", "ROLE_HELP"]

Role = Literal["admin", "lab", "coordinator", "researcher"]
ROLES: tuple[str, ...] = get_args(Role)

Permission = Literal[
    "read",  # pseudonymous registry and biobank pages, dashboard, API reads
    "write_biobank",  # accession, aliquot, place, move, thaw, consume, dispose, ship, labels
    "write_registry",  # enrol, visits, AEs, assessments, events, corrections
    "read_identifiers",  # the key table (hospital number, name, date of birth)
    "manage_users",  # create accounts, change roles, reset passwords
]

#: Permissions of each role.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "write_biobank", "write_registry", "manage_users"}),
    "lab": frozenset({"read", "write_biobank"}),
    "coordinator": frozenset({"read", "write_registry", "read_identifiers"}),
    "researcher": frozenset({"read"}),
}

ROLE_HELP: dict[str, str] = {
    "admin": "manages accounts; may do lab and coordinator work; does not see direct identifiers",
    "lab": "accession, aliquot, store, thaw, ship, consume, dispose and label samples",
    "coordinator": "enrol patients, enter visits, AEs, assessments, events; reads the identifier key table",
    "researcher": "read-only: dashboard, inventory, reports; pseudonymous IDs only",
}


def can(role: str, permission: str) -> bool:
    """Whether ``role`` holds ``permission`` (unknown roles hold nothing)."""
    return permission in PERMISSIONS.get(role, frozenset())
