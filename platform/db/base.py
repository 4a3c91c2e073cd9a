"""Declarative base shared by the registry and the biobank: one MetaData, one naming convention.

Every table of sabrkit (registry and biobank rooms) is declared on :class:`Base`, so one
``Base.metadata`` describes the whole database and one Alembic history migrates it. Constraint
names follow :data:`NAMING_CONVENTION`, so migrations can drop or alter a constraint by a name
that is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

__all__ = ["Base", "NAMING_CONVENTION"]

#: Constraint names: ``pk_patients``, ``fk_lesions_study_id_patients``, ``ck_visits_vrs_pain_range``.
#: Check constraints must be given a short name (``CheckConstraint(..., name="vrs_pain_range")``).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every ORM model of sabrkit (registry and biobank share one MetaData)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
