"""ORM models of follow-up: visits, adverse events, tumour assessments, progression, death, off-study.

Visits are scheduled monthly from the first SABR fraction (visit *n* at month *n*, visit 0 the
baseline); their windows are checked on entry (:mod:`sabrkit.registry.schedule`). Adverse
events store the CTCAE version with the term and grade; a grade may be missing (reported as a
data query) but never outside the grades its term allows (:mod:`sabrkit.registry.ctcae`).
Every model is :class:`~sabrkit.audit.Audited`.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Date, Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sabrkit.audit.tables import Audited
from sabrkit.db.base import Base
from sabrkit.registry.keys import LESION_ID_LENGTH, STUDY_ID_LENGTH, lesion_fk, patient_fk
from sabrkit.registry.vocabulary import (
    ASSESSMENT_MODALITIES,
    ATTRIBUTIONS,
    CTCAE_VERSIONS,
    DEATH_CAUSES,
    LOCAL_STATUSES,
    OFF_STUDY_REASONS,
    PROGRESSION_TYPES,
    RECIST_RESPONSES,
    sql_in,
)

if TYPE_CHECKING:
    from sabrkit.registry.tables import Patient

__all__ = [
    "Visit",
    "AdverseEvent",
    "TumourAssessment",
    "LesionAssessment",
    "ProgressionEvent",
    "Death",
    "OffStudy",
]


class Visit(Audited, Base):
    """A monthly follow-up visit with pain (VRS 0-4, higher = worse) and TESS (0-60, higher = better)."""

    __tablename__ = "visits"
    __audit_label_columns__ = ("study_id", "visit_number")
    __table_args__ = (
        UniqueConstraint("study_id", "visit_number"),
        CheckConstraint("visit_number >= 0", name="visit_number_nonnegative"),
        CheckConstraint("vrs_pain BETWEEN 0 AND 4", name="vrs_pain_range"),
        CheckConstraint("tess_score BETWEEN 0 AND 60", name="tess_score_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), patient_fk(), index=True)
    visit_number: Mapped[int] = mapped_column(Integer)
    visit_date: Mapped[date] = mapped_column(Date)
    vrs_pain: Mapped[int | None] = mapped_column(Integer)
    tess_score: Mapped[float | None] = mapped_column(Float)

    patient: Mapped[Patient] = relationship(back_populates="visits")


class AdverseEvent(Audited, Base):
    """An adverse event: CTCAE term and grade (NULL = not yet graded), version, dates, attribution.

    Acute or late is derived, not stored: acute when the onset is at most 90 days after the
    last SABR fraction given before it (:mod:`sabrkit.registry.exports`).
    """

    __tablename__ = "adverse_events"
    __audit_label_columns__ = ("study_id", "term")
    __table_args__ = (
        CheckConstraint("grade BETWEEN 1 AND 5", name="grade_range"),
        CheckConstraint(sql_in("ctcae_version", CTCAE_VERSIONS), name="ctcae_version_code"),
        CheckConstraint(sql_in("attribution_sabr", ATTRIBUTIONS), name="attribution_sabr_code"),
        CheckConstraint(
            "resolution_date IS NULL OR resolution_date >= onset_date", name="resolution_after_onset"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), patient_fk(), index=True)
    term: Mapped[str] = mapped_column(String(128))
    grade: Mapped[int | None] = mapped_column(Integer)
    ctcae_version: Mapped[str] = mapped_column(String(8))
    onset_date: Mapped[date] = mapped_column(Date)
    attribution_sabr: Mapped[str] = mapped_column(String(10))
    resolution_date: Mapped[date | None] = mapped_column(Date)
    #: The treated lesion the event is attributed to, when one is.
    lesion_id: Mapped[str | None] = mapped_column(String(LESION_ID_LENGTH), lesion_fk())

    patient: Mapped[Patient] = relationship(back_populates="adverse_events")


class TumourAssessment(Audited, Base):
    """A restaging (RECIST 1.1 overall response), usually at a follow-up visit."""

    __tablename__ = "tumour_assessments"
    __audit_label_columns__ = ("study_id", "assessment_date")
    __table_args__ = (
        UniqueConstraint("study_id", "assessment_date"),
        CheckConstraint(sql_in("overall_response", RECIST_RESPONSES), name="overall_response_code"),
        CheckConstraint(sql_in("modality", ASSESSMENT_MODALITIES), name="modality_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), patient_fk(), index=True)
    assessment_date: Mapped[date] = mapped_column(Date)
    visit_number: Mapped[int | None] = mapped_column(Integer)
    modality: Mapped[str] = mapped_column(String(10))
    overall_response: Mapped[str] = mapped_column(String(2))


class LesionAssessment(Audited, Base):
    """Local status of one treated lesion at an assessment (local control is judged per lesion)."""

    __tablename__ = "lesion_assessments"
    __audit_label_columns__ = ("lesion_id", "assessment_date")
    __table_args__ = (
        UniqueConstraint("lesion_id", "assessment_date"),
        CheckConstraint(sql_in("local_status", LOCAL_STATUSES), name="local_status_code"),
        CheckConstraint("longest_diameter_mm > 0", name="longest_diameter_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lesion_id: Mapped[str] = mapped_column(String(LESION_ID_LENGTH), lesion_fk(), index=True)
    assessment_date: Mapped[date] = mapped_column(Date)
    local_status: Mapped[str] = mapped_column(String(16))
    longest_diameter_mm: Mapped[float | None] = mapped_column(Float)


class ProgressionEvent(Audited, Base):
    """The patient's first progression (RECIST 1.1): local, distant or both."""

    __tablename__ = "progression_events"
    __audit_label_columns__ = ("study_id",)
    __table_args__ = (
        CheckConstraint(sql_in("progression_type", PROGRESSION_TYPES), name="progression_type_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), patient_fk(), unique=True)
    event_date: Mapped[date] = mapped_column(Date)
    progression_type: Mapped[str] = mapped_column(String(8))

    patient: Mapped[Patient] = relationship(back_populates="progression_event")


class Death(Audited, Base):
    """A patient's death and its cause (``rcc`` or ``other``)."""

    __tablename__ = "deaths"
    __audit_label_columns__ = ("study_id",)
    __table_args__ = (CheckConstraint(sql_in("cause", DEATH_CAUSES), name="cause_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), patient_fk(), unique=True)
    death_date: Mapped[date] = mapped_column(Date)
    cause: Mapped[str] = mapped_column(String(8))

    patient: Mapped[Patient] = relationship(back_populates="death")


class OffStudy(Audited, Base):
    """The end of a patient's participation: date and reason (no visits are expected after it)."""

    __tablename__ = "off_study"
    __audit_label_columns__ = ("study_id",)
    __table_args__ = (CheckConstraint(sql_in("reason", OFF_STUDY_REASONS), name="reason_code"),)

    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), patient_fk(), primary_key=True)
    off_study_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(24))

    patient: Mapped[Patient] = relationship(back_populates="off_study")
