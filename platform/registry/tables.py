"""ORM models of the clinical registry at enrolment: patients, their key table, eligibility and the
MDT decision, lesions, SABR courses and systemic therapy lines. Follow-up records (visits,
adverse events, tumour assessments, progression, death, off-study) are in
:mod:`sabrkit.registry.followup_tables` and re-exported here.

Primary keys: the pseudonymous ``study_id`` for patients (``SABR-RCC-001``) and ``lesion_id``
for lesions (``SABR-RCC-001-L2``); integer surrogate keys for repeated records. Ranges and
vocabularies are CHECK constraints, so the database refuses bad values whatever wrote them; the
CSV import (:mod:`sabrkit.registry.load`) checks the same rules first to report every bad row.
Direct identifiers live only in :class:`PatientIdentifier` (table ``patient_identifiers``).
Every model is :class:`~sabrkit.audit.Audited`: each change is logged with who, when and why.
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

from sabrkit.audit.tables import Audited
from sabrkit.db.base import Base
from sabrkit.registry.dose import DEFAULT_ALPHA_BETA_GY, bed, eqd2
from sabrkit.registry.followup_tables import (
    AdverseEvent,
    Death,
    LesionAssessment,
    OffStudy,
    ProgressionEvent,
    TumourAssessment,
    Visit,
)
from sabrkit.registry.followup_tables import __all__ as _followup_all
from sabrkit.registry.keys import LESION_ID_LENGTH, STUDY_ID_LENGTH, patient_fk
from sabrkit.registry.vocabulary import (
    DISEASE_STATES,
    HISTOLOGIES,
    IMDC_RISKS,
    LESION_SITES,
    MDT_DECISIONS,
    SEXES,
    SYSTEMIC_THERAPIES,
    THERAPY_CLASSES,
    sql_in,
)

__all__ = [
    "Patient",
    "PatientIdentifier",
    "Eligibility",
    "Lesion",
    "SabrCourse",
    "SystemicTherapyLine",
    *_followup_all,  # the follow-up tables, listed once in their own module
    "STUDY_ID_LENGTH",
    "LESION_ID_LENGTH",
]

_patient_fk = patient_fk


class Patient(Audited, Base):
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
        CheckConstraint("kps BETWEEN 0 AND 100 AND kps % 10 = 0", name="kps_range"),
        CheckConstraint("prior_systemic_lines >= 0", name="prior_systemic_lines_nonnegative"),
        CheckConstraint("n_metastases >= 1", name="n_metastases_positive"),
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
    #: Karnofsky performance status (0-100, steps of 10), if recorded besides ECOG.
    kps: Mapped[int | None] = mapped_column(Integer)
    #: Lines of systemic therapy before enrolment.
    prior_systemic_lines: Mapped[int | None] = mapped_column(Integer)
    #: Number of metastases at enrolment (all sites, treated or not).
    n_metastases: Mapped[int | None] = mapped_column(Integer)

    identifier: Mapped[PatientIdentifier | None] = relationship(back_populates="patient")
    eligibility: Mapped[Eligibility | None] = relationship(back_populates="patient")
    therapy_lines: Mapped[list[SystemicTherapyLine]] = relationship(
        back_populates="patient", order_by="SystemicTherapyLine.line_number"
    )
    lesions: Mapped[list[Lesion]] = relationship(back_populates="patient", order_by="Lesion.lesion_number")
    visits: Mapped[list[Visit]] = relationship(back_populates="patient", order_by="Visit.visit_number")
    adverse_events: Mapped[list[AdverseEvent]] = relationship(back_populates="patient")
    progression_event: Mapped[ProgressionEvent | None] = relationship(back_populates="patient")
    death: Mapped[Death | None] = relationship(back_populates="patient")
    off_study: Mapped[OffStudy | None] = relationship(back_populates="patient")

    def __repr__(self) -> str:
        return f"Patient({self.study_id!r})"


class Eligibility(Audited, Base):
    """The eligibility check and the MDT decision that admitted a patient (one row per patient).

    A patient is enrolled only when every criterion holds and the MDT decided SABR to all
    lesions (:attr:`eligible`). The criteria follow the registration: histologically confirmed
    RCC, 1-5 metastases (oligometastatic or oligoprogressive), every lesion treatable with SABR,
    ECOG 0-2, written informed consent.
    """

    __tablename__ = "eligibility"
    __audit_label_columns__ = ("study_id",)
    __table_args__ = (CheckConstraint(sql_in("mdt_decision", MDT_DECISIONS), name="mdt_decision_code"),)

    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), _patient_fk(), primary_key=True)
    assessed_on: Mapped[date] = mapped_column(Date)
    rcc_confirmed: Mapped[bool] = mapped_column(Boolean)
    one_to_five_metastases: Mapped[bool] = mapped_column(Boolean)
    all_lesions_treatable: Mapped[bool] = mapped_column(Boolean)
    ecog_0_to_2: Mapped[bool] = mapped_column(Boolean)
    informed_consent: Mapped[bool] = mapped_column(Boolean)
    mdt_decision: Mapped[str] = mapped_column(String(20))
    mdt_note: Mapped[str | None] = mapped_column(String(500))

    patient: Mapped[Patient] = relationship(back_populates="eligibility")

    @property
    def eligible(self) -> bool:
        """Every criterion met and the MDT decided SABR to all lesions."""
        return (
            all(
                (
                    self.rcc_confirmed,
                    self.one_to_five_metastases,
                    self.all_lesions_treatable,
                    self.ecog_0_to_2,
                    self.informed_consent,
                )
            )
            and self.mdt_decision == "sabr_all_lesions"
        )


class PatientIdentifier(Audited, Base):
    """Key table: links a study ID to the hospital's direct identifiers (coordinator role only)."""

    __tablename__ = "patient_identifiers"
    __audit_redacted_columns__ = ("hospital_number", "family_name", "given_name", "date_of_birth")

    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), _patient_fk(), primary_key=True)
    hospital_number: Mapped[str] = mapped_column(String(32), unique=True)
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[date] = mapped_column(Date)

    patient: Mapped[Patient] = relationship(back_populates="identifier")

    def __repr__(self) -> str:  # never show the identifiers themselves
        return f"PatientIdentifier({self.study_id!r})"


class Lesion(Audited, Base):
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
    #: Organ or sub-site in words (``right lower lobe``, ``T7 vertebral body``).
    organ: Mapped[str | None] = mapped_column(String(64))
    #: DICOM StudyInstanceUID of the planning CT (``series_uid`` is its SeriesInstanceUID).
    study_uid: Mapped[str | None] = mapped_column(String(64))

    patient: Mapped[Patient] = relationship(back_populates="lesions")
    sabr_courses: Mapped[list[SabrCourse]] = relationship(
        back_populates="lesion", order_by="SabrCourse.start_date"
    )

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


class SabrCourse(Audited, Base):
    """One SABR course to one lesion; BED and EQD2 are computed on insert from dose, fractions
    and the stored alpha/beta (see :mod:`sabrkit.registry.dose`)."""

    __tablename__ = "sabr_courses"
    __audit_label_columns__ = ("lesion_id",)
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


class SystemicTherapyLine(Audited, Base):
    """A line of systemic therapy given with SABR: agent(s), class (TKI, ICI, TKI + ICI), dates."""

    __tablename__ = "systemic_therapy_lines"
    __audit_label_columns__ = ("study_id", "line_number")
    __table_args__ = (
        UniqueConstraint("study_id", "line_number"),
        CheckConstraint("line_number >= 1", name="line_number_positive"),
        CheckConstraint(sql_in("therapy_class", THERAPY_CLASSES), name="therapy_class_code"),
        CheckConstraint("stop_date IS NULL OR stop_date >= start_date", name="stop_after_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(STUDY_ID_LENGTH), _patient_fk(), index=True)
    line_number: Mapped[int] = mapped_column(Integer)
    agent: Mapped[str] = mapped_column(String(100))
    therapy_class: Mapped[str] = mapped_column(String(8))
    start_date: Mapped[date] = mapped_column(Date)
    stop_date: Mapped[date | None] = mapped_column(Date)

    patient: Mapped[Patient] = relationship(back_populates="therapy_lines")
