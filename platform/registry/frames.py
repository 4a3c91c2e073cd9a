"""Read the registry tables into DataFrames (never the key table), for exports and analyses.

:func:`registry_frames` returns one DataFrame per registry table with its column names; dates
are ``datetime64[ns]`` (midnight). It is the only place the export and report code read the
database, so analyses stay pure functions of DataFrames.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from sqlalchemy import select

from sabrkit.db.database import Database
from sabrkit.registry import tables as m

__all__ = ["REGISTRY_TABLES", "registry_frames"]

logger = logging.getLogger(__name__)

#: Table name -> ORM model of every registry table an export reads (no ``patient_identifiers``).
REGISTRY_TABLES: dict[str, type[Any]] = {
    "patients": m.Patient,
    "eligibility": m.Eligibility,
    "lesions": m.Lesion,
    "sabr_courses": m.SabrCourse,
    "systemic_therapy_lines": m.SystemicTherapyLine,
    "visits": m.Visit,
    "adverse_events": m.AdverseEvent,
    "tumour_assessments": m.TumourAssessment,
    "lesion_assessments": m.LesionAssessment,
    "progression_events": m.ProgressionEvent,
    "deaths": m.Death,
    "off_study": m.OffStudy,
}


def _columns(model: type[Any]) -> list[str]:
    return [column.name for column in model.__table__.columns]


def _typed(frame: pd.DataFrame, model: type[Any]) -> pd.DataFrame:
    from sqlalchemy import Date

    for column in model.__table__.columns:
        if isinstance(column.type, Date):
            frame[column.name] = pd.to_datetime(frame[column.name])
    return frame


def registry_frames(db: Database) -> dict[str, pd.DataFrame]:
    """Every registry table (except the key table) as a DataFrame; courses carry their ``study_id``."""
    frames: dict[str, pd.DataFrame] = {}
    with db.session() as session:
        connection = session.connection()
        for name, model in REGISTRY_TABLES.items():
            table = model.__table__
            rows = connection.execute(select(table)).all()
            frames[name] = _typed(pd.DataFrame(rows, columns=_columns(model)), model)
    owner = frames["lesions"].set_index("lesion_id")["study_id"]
    frames["sabr_courses"]["study_id"] = frames["sabr_courses"]["lesion_id"].map(owner)
    logger.info(
        "read %d patients, %d visits from the registry", len(frames["patients"]), len(frames["visits"])
    )
    return frames
