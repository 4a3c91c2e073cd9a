"""ORM models of the clinical registry: patients, their key table, lesions, SABR courses, visits,
adverse events, first progression and death.

Primary keys: the pseudonymous ``study_id`` for patients (``SABR-RCC-001``) and ``lesion_id``
for lesions (``SABR-RCC-001-L2``); integer surrogate keys for repeated records. Ranges and
vocabularies are CHECK constraints, so the database refuses bad values whatever wrote them; the
CSV import (:mod:`sabrkit.registry.load`) checks the same rules first to report every bad row.
Direct identifiers live only in :class:`PatientIdentifier` (table ``patient_identifiers``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sabrkit.db.base import Base
from sabrkit.registry.dose import DEFAULT_ALPHA_BETA_GY, bed, eqd2
from sabrkit.registry.vocabulary import (
    ATTRIBUTIONS,
    CTCAE_VERSIONS,
    DEATH_CAUSES,
    DISEASE_STATES,
    HISTOLOGIES,
    IMDC_RISKS,
    LESION_SITES,
    PROGRESSION_TYPES,
    SEXES,
    SYSTEMIC_THERAPIES,
    sql_in,
)

__all__ = [
    "Patient",
    "PatientIdentifier",
    "Lesion",
    "SabrCourse",
    "Visit",
    "AdverseEvent",
    "ProgressionEvent",
    "Death",
    "STUDY_ID_LENGTH",
    "LESION_ID_LENGTH",
]

STUDY_ID_LENGTH = 32
LESION_ID_LENGTH = 40


def _patient_fk() -> Any:
    return ForeignKey("patients.study_id", onupdate="CASCADE")


class Patient(Base):
    """A registry participant, known only by the pseudonymous study ID."""

    __tablename__ = "patients"
    __table_args__ = (
        CheckConstraint("age_years BETWEEN 18 AND 120", name="age_years_range"),
        CheckConstraint(sql_in("sex", SEXES), name="sex_code"),
        CheckConstraint("ecog BETWEEN 0 AND 4", name="ecog_range"),
        CheckConstraint(sql_in("histology", HISTOLOGIES), name="histology_code"),
        CheckConstraint(sql_in("imdc_risk", IMDC_RISKS), name="imdc_risk_code"),
        CheckConstraint(sql_in("disease_state", DISEASE_STATES), name="disease_state_code"),
        CheckConstraint(sql_in("systemic_therapy", SYSTEMIC_THERAPIES), name="systemic_therapy_code"),
        CheckConstraint("enrolment_date >= mdt_date", name="enrolment_after_mdt"),
        CheckConstraint("last_contact_date >= enrolment_date", name="last_contact_after_enrolment"),
    )

    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), primary_key=True)
    mdt_date: Mapped[date] = mapped_column(Date)
    enrolment_date: Mapped[date] = mapped_column(Date)
    age_years: Mapped[int] = mapped_column(Integer)
    sex: Mapped[str] = mapped_column(String(1))
    ecog: Mapped[int] = mapped_column(Integer)
    histology: Mapped[str] = mapped_column(String(20))
    imdc_risk: Mapped[str] = mapped_column(String(16))
    prior_nephrectomy: Mapped[bool] = mapped_column(Boolean)
    disease_state: Mapped[str] = mapped_column(String(20))
    systemic_therapy: Mapped[str] = mapped_column(String(10))
    last_contact_date: Mapped[date] = mapped_column(Date)

    identifier: Mapped[PatientIdentifier | None] = relationship(back_populates="patient")
    lesions: Mapped[list[Lesion]] = relationship(back_populates="patient", order_by="Lesion.lesion_number")
    visits: Mapped[list[Visit]] = relationship(back_populates="patient", order_by="Visit.visit_number")
    adverse_events: Mapped[list[AdverseEvent]] = relationship(back_populates="patient")
    progression_event: Mapped[ProgressionEvent | None] = relationship(back_populates="patient")
    death: Mapped[Death | None] = relationship(back_populates="patient")

    def __repr__(self) -> str:
        return f"Patient({self.study_id!r})"


class PatientIdentifier(Base):
    """Key table: links a study ID to the hospital's direct identifiers (coordinator role only)."""

    __tablename__ = "patient_identifiers"

    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), _patient_fk(), primary_key=True)
    hospital_number: Mapped[str] = mapped_column(String(32), unique=True)
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[date] = mapped_column(Date)

    patient: Mapped[Patient] = relationship(back_populates="identifier")

    def __repr__(self) -> str:  # never show the identifiers themselves
        return f"PatientIdentifier({self.study_id!r})"


class Lesion(Base):
    """A treated metastasis; ``lesion_id`` = ``<study_id>-L<lesion_number>``."""

    __tablename__ = "lesions"
    __table_args__ = (
        UniqueConstraint("study_id", "lesion_number"),
        CheckConstraint("lesion_number >= 1", name="lesion_number_positive"),
        CheckConstraint(sql_in("site", LESION_SITES), name="site_code"),
        CheckConstraint("longest_diameter_mm > 0", name="longest_diameter_positive"),
    )

    lesion_id: Mapped[str] = mapped_column(String(LESION_ID_LENGTH), primary_key=True)
    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), _patient_fk(), index=True)
    lesion_number: Mapped[int] = mapped_column(Integer)
    site: Mapped[str] = mapped_column(String(20))
    longest_diameter_mm: Mapped[float | None] = mapped_column(Float)
    series_uid: Mapped[str | None] = mapped_column(String(64))
    roi_name: Mapped[str | None] = mapped_column(String(64))

    patient: Mapped[Patient] = relationship(back_populates="lesions")
    sabr_courses: Mapped[list[SabrCourse]] = relationship(back_populates="lesion", order_by="SabrCourse.start_date")

    def __repr__(self) -> str:
        return f"Lesion({self.lesion_id!r}, site={self.site!r})"


def _course_parameter(context: DefaultExecutionContext, name: str) -> Any:
    return context.get_current_parameters().get(name)


def _alpha_beta(value: float | None) -> float:
    return DEFAULT_ALPHA_BETA_GY if value is None else value


def _bed_on_insert(context: DefaultExecutionContext) -> float:
    return bed(
        _course_parameter(context, "total_dose_gy"),
        _course_parameter(context, "fractions"),
        _alpha_beta(_course_parameter(context, "alpha_beta_gy")),
    )


def _eqd2_on_insert(context: DefaultExecutionContext) -> float:
    return eqd2(
        _course_parameter(context, "total_dose_gy"),
        _course_parameter(context, "fractions"),
        _alpha_beta(_course_parameter(context, "alpha_beta_gy")),
    )


class SabrCourse(Base):
    """One SABR course to one lesion; BED and EQD2 are computed on insert from dose, fractions
    and the stored alpha/beta (see :mod:`sabrkit.registry.dose`)."""

    __tablename__ = "sabr_courses"
    __table_args__ = (
        CheckConstraint("total_dose_gy > 0", name="total_dose_positive"),
        CheckConstraint("fractions >= 1", name="fractions_positive"),
        CheckConstraint("alpha_beta_gy > 0", name="alpha_beta_positive"),
        CheckConstraint("end_date >= start_date", name="end_after_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lesion_id: Mapped[str] = mapped_column(
        String(LESION_ID_LENGTH), ForeignKey("lesions.lesion_id", onupdate="CASCADE"), index=True
    )
    total_dose_gy: Mapped[float] = mapped_column(Float)
    fractions: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    technique: Mapped[str | None] = mapped_column(String(32))
    alpha_beta_gy: Mapped[float] = mapped_column(
        Float, default=DEFAULT_ALPHA_BETA_GY, server_default=text(repr(DEFAULT_ALPHA_BETA_GY))
    )
    bed_gy: Mapped[float] = mapped_column(Float, default=_bed_on_insert)
    eqd2_gy: Mapped[float] = mapped_column(Float, default=_eqd2_on_insert)

    lesion: Mapped[Lesion] = relationship(back_populates="sabr_courses")

    def __repr__(self) -> str:
        return f"SabrCourse({self.lesion_id!r}, {self.total_dose_gy:g} Gy/{self.fractions} fx)"


@event.listens_for(SabrCourse, "before_update")
def _recompute_dose_on_update(mapper: Any, connection: Any, course: SabrCourse) -> None:
    """Keep BED and EQD2 consistent when dose, fractions or alpha/beta are edited."""
    alpha_beta = _alpha_beta(course.alpha_beta_gy)
    course.bed_gy = bed(course.total_dose_gy, course.fractions, alpha_beta)
    course.eqd2_gy = eqd2(course.total_dose_gy, course.fractions, alpha_beta)


class Visit(Base):
    """A (monthly) follow-up visit with pain (VRS 0-4, higher = worse) and TESS (0-60, higher = better)."""

    __tablename__ = "visits"
    __table_args__ = (
        UniqueConstraint("study_id", "visit_number"),
        CheckConstraint("visit_number >= 0", name="visit_number_nonnegative"),
        CheckConstraint("vrs_pain BETWEEN 0 AND 4", name="vrs_pain_range"),
        CheckConstraint("tess_score BETWEEN 0 AND 60", name="tess_score_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), _patient_fk(), index=True)
    visit_number: Mapped[int] = mapped_column(Integer)
    visit_date: Mapped[date] = mapped_column(Date)
    vrs_pain: Mapped[int | None] = mapped_column(Integer)
    tess_score: Mapped[float | None] = mapped_column(Float)

    patient: Mapped[Patient] = relationship(back_populates="visits")


class AdverseEvent(Base):
    """An adverse event graded with CTCAE (grade 1-5); the CTCAE version is stored with it."""

    __tablename__ = "adverse_events"
    __table_args__ = (
        CheckConstraint("grade BETWEEN 1 AND 5", name="grade_range"),
        CheckConstraint(sql_in("ctcae_version", CTCAE_VERSIONS), name="ctcae_version_code"),
        CheckConstraint(sql_in("attribution_sabr", ATTRIBUTIONS), name="attribution_sabr_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), _patient_fk(), index=True)
    term: Mapped[str] = mapped_column(String(128))
    grade: Mapped[int] = mapped_column(Integer)
    ctcae_version: Mapped[str] = mapped_column(String(8))
    onset_date: Mapped[date] = mapped_column(Date)
    attribution_sabr: Mapped[str] = mapped_column(String(10))

    patient: Mapped[Patient] = relationship(back_populates="adverse_events")


class ProgressionEvent(Base):
    """The patient's first progression (RECIST 1.1): local, distant or both."""

    __tablename__ = "progression_events"
    __table_args__ = (CheckConstraint(sql_in("progression_type", PROGRESSION_TYPES), name="progression_type_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), _patient_fk(), unique=True)
    event_date: Mapped[date] = mapped_column(Date)
    progression_type: Mapped[str] = mapped_column(String(8))

    patient: Mapped[Patient] = relationship(back_populates="progression_event")


class Death(Base):
    """A patient's death and its cause (``rcc`` or ``other``)."""

    __tablename__ = "deaths"
    __table_args__ = (CheckConstraint(sql_in("cause", DEATH_CAUSES), name="cause_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), _patient_fk(), unique=True)
    death_date: Mapped[date] = mapped_column(Date)
    cause: Mapped[str] = mapped_column(String(8))

    patient: Mapped[Patient] = relationship(back_populates="death")
