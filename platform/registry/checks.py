"""Rules that span rows, files and the database, for imports and for single entries alike.

:class:`RegistryChecker` receives parsed rows per registry file (``patients.csv`` ...) and what
the database already holds (:func:`database_state`), and returns every broken rule as a
:class:`~sabrkit.errors.RowError`. The CLI's single-record commands run the same checker on a
one-row "file", so a visit typed in and a visit imported obey the same rules.

Rules (besides the per-row types, vocabularies and ranges of :mod:`sabrkit.registry.rows`):

* IDs: no duplicates in a file or against the database; references resolve (patients,
  lesions, courses); ``lesion_id`` = ``<study_id>-L<lesion_number>``.
* Dates: enrolment >= MDT; last contact >= enrolment; eligibility assessed on or before
  enrolment; SABR course end >= start, start >= MDT and <= last contact; visits, AEs,
  progression, death and off-study >= enrolment; visits, assessments and progression <= last
  contact; progression >= first fraction; death >= last contact and >= progression; AE
  resolution >= onset; therapy stop >= start; lesion assessments >= the lesion's first fraction.
* Eligibility: an enrolled patient meets every criterion and the MDT decided SABR to all lesions.
* Visits: the date matches the visit number (:func:`sabrkit.registry.schedule.visit_rule_problem`).
* Adverse events: the grade is one CTCAE defines for the term (:func:`sabrkit.registry.ctcae.check_ctcae`);
  an attributed lesion belongs to the patient.
* Off study for reason ``death`` needs the patient's death record.
* Calendar and death (:mod:`sabrkit.registry.rules`): no date after today or the data cut-off;
  no course, therapy line, visit, adverse event, assessment or progression after the patient's
  death; the last contact never after the death.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from sabrkit.db.csv_import import HIDDEN_VALUE, ParsedRow, row_error
from sabrkit.db.database import Database
from sabrkit.errors import RowError
from sabrkit.registry import tables as m
from sabrkit.registry.ctcae import check_ctcae
from sabrkit.registry.rules import AFTER_DEATH_REFUSED, future_date_errors, latest_allowed_date
from sabrkit.registry.schedule import visit_rule_problem

__all__ = ["RegistryState", "RegistryChecker", "database_state", "ASSESSMENT_BEFORE_MDT_DAYS"]

#: Baseline imaging may precede the MDT date by up to this many days.
ASSESSMENT_BEFORE_MDT_DAYS = 60


@dataclass
class RegistryState:
    """What the checks know about the registry: database rows, then the file rows checked so far."""

    patients: dict[str, Any] = field(default_factory=dict)  # study_id -> PatientRow or Patient
    raw_study_ids: set[str] = field(default_factory=set)  # every study_id in patients.csv, valid or not
    lesions: dict[str, str] = field(default_factory=dict)  # lesion_id -> study_id
    raw_lesion_ids: set[str] = field(default_factory=set)
    first_fraction: dict[str, date] = field(default_factory=dict)  # study_id -> first SABR fraction
    lesion_first_fraction: dict[str, date] = field(default_factory=dict)
    hospital_numbers: set[str] = field(default_factory=set)
    identifier_ids: set[str] = field(default_factory=set)
    eligibility_ids: set[str] = field(default_factory=set)
    visits: set[tuple[str, int]] = field(default_factory=set)
    therapy_lines: set[tuple[str, int]] = field(default_factory=set)
    tumour_assessments: set[tuple[str, date]] = field(default_factory=set)
    lesion_assessments: set[tuple[str, date]] = field(default_factory=set)
    progression_dates: dict[str, date] = field(default_factory=dict)
    death_dates: dict[str, date] = field(default_factory=dict)
    off_study_ids: set[str] = field(default_factory=set)


def database_state(db: Database) -> RegistryState:
    """Read what the rules need from the database (never the key table's identifiers)."""
    state = RegistryState()
    with db.session() as session:
        state.patients = {patient.study_id: patient for patient in session.scalars(select(m.Patient))}
        state.lesions = dict(session.execute(select(m.Lesion.lesion_id, m.Lesion.study_id)).all())
        first = select(m.Lesion.study_id, func.min(m.SabrCourse.start_date)).join(m.SabrCourse.lesion)
        state.first_fraction = dict(session.execute(first.group_by(m.Lesion.study_id)).all())
        per_lesion = select(m.SabrCourse.lesion_id, func.min(m.SabrCourse.start_date)).group_by(
            m.SabrCourse.lesion_id
        )
        state.lesion_first_fraction = dict(session.execute(per_lesion).all())
        for study_id, hospital_number in session.execute(
            select(m.PatientIdentifier.study_id, m.PatientIdentifier.hospital_number)
        ):
            state.identifier_ids.add(study_id)
            state.hospital_numbers.add(hospital_number)
        state.eligibility_ids = set(session.scalars(select(m.Eligibility.study_id)))
        state.visits = {(a, b) for a, b in session.execute(select(m.Visit.study_id, m.Visit.visit_number))}
        state.therapy_lines = {
            (a, b)
            for a, b in session.execute(
                select(m.SystemicTherapyLine.study_id, m.SystemicTherapyLine.line_number)
            )
        }
        state.tumour_assessments = {
            (a, b)
            for a, b in session.execute(
                select(m.TumourAssessment.study_id, m.TumourAssessment.assessment_date)
            )
        }
        state.lesion_assessments = {
            (a, b)
            for a, b in session.execute(
                select(m.LesionAssessment.lesion_id, m.LesionAssessment.assessment_date)
            )
        }
        state.progression_dates = dict(
            session.execute(select(m.ProgressionEvent.study_id, m.ProgressionEvent.event_date)).all()
        )
        state.death_dates = dict(session.execute(select(m.Death.study_id, m.Death.death_date)).all())
        state.off_study_ids = set(session.scalars(select(m.OffStudy.study_id)))
    return state


class RegistryChecker:
    """Cross-row and cross-file rules over parsed rows (missing files are empty lists)."""

    def __init__(
        self, state: RegistryState, parsed: dict[str, list[ParsedRow[Any]]], *, latest: date | None = None
    ):
        self.state = state
        self.parsed = parsed
        self.errors: list[RowError] = []
        self.latest = latest

    # ---- helpers -------------------------------------------------------------------------
    def add(self, label: str, row: int, column: str, value: object, rule: str) -> None:
        self.errors.append(row_error(label, row, column, value, rule))

    def rows(self, label: str) -> list[ParsedRow[Any]]:
        return self.parsed.get(label, [])

    def patient(self, label: str, row: ParsedRow[Any], study_id: str | None = None) -> Any:
        """The referenced patient, or None (an error is recorded unless its own row merely failed)."""
        study_id = study_id or row.record.study_id
        if study_id in self.state.patients:
            return self.state.patients[study_id]
        if study_id not in self.state.raw_study_ids:
            self.add(
                label,
                row.row,
                "study_id",
                study_id,
                "unknown patient: not in patients.csv nor in the registry",
            )
        return None

    def not_before(
        self, label: str, row: int, column: str, value: date, bound: date | None, what: str
    ) -> None:
        if bound is not None and value < bound:
            self.add(
                label, row, column, value.isoformat(), f"must be on or after {what} ({bound.isoformat()})"
            )

    def not_after(
        self, label: str, row: int, column: str, value: date, bound: date | None, what: str
    ) -> None:
        if bound is not None and value > bound:
            self.add(
                label, row, column, value.isoformat(), f"must be on or before {what} ({bound.isoformat()})"
            )

    def unique(
        self,
        label: str,
        column: str,
        key: Any,
        seen: set[Any],
        row: int,
        value: object,
        rule: str = "duplicate: appears more than once in the file",
    ) -> bool:
        if key in seen:
            self.add(label, row, column, value, rule)
            return False
        seen.add(key)
        return True

    def run(self) -> list[RowError]:
        latest = self.latest or latest_allowed_date()
        for label, rows in self.parsed.items():
            hidden = ("date_of_birth",) if label == "identifiers.csv" else ()
            self.errors.extend(future_date_errors(label, rows, latest, hidden))
        # deaths known before any other file is checked: the database's, then the file's (first one)
        self.deaths_known: dict[str, date] = dict(self.state.death_dates)
        for row in self.rows("deaths.csv"):
            self.deaths_known.setdefault(row.record.study_id, row.record.death_date)
        for check in (
            self.patients,
            self.identifiers,
            self.eligibility,
            self.lesions,
            self.sabr_courses,
            self.therapy_lines,
            self.visits,
            self.adverse_events,
            self.tumour_assessments,
            self.lesion_assessments,
            self.progression_events,
            self.deaths,
            self.off_study,
        ):
            check()
        self.after_death()
        self.stored_last_contact()
        return self.errors

    # ---- calendar and death (sabrkit.registry.rules) -------------------------------------------
    def after_death(self) -> None:
        """Nothing clinical after the patient's death (the death record itself excepted)."""
        for label, column in AFTER_DEATH_REFUSED.items():
            for row in self.rows(label):
                record = row.record
                study_id = getattr(record, "study_id", None) or self.state.lesions.get(record.lesion_id)
                self.not_after(
                    label,
                    row.row,
                    column,
                    getattr(record, column),
                    self.deaths_known.get(str(study_id)),
                    "the patient's death",
                )

    def stored_last_contact(self) -> None:
        """A stored patient's last contact (possibly moved by a new record) never after the death.

        Only patients this run touches are checked (their death stored, no new death in the file:
        a file's death is checked against the last contact by :meth:`deaths`).
        """
        touched = {getattr(row.record, "study_id", None) for rows in self.parsed.values() for row in rows}
        file_deaths = {row.record.study_id for row in self.rows("deaths.csv")}
        file_patients = {row.record.study_id for row in self.rows("patients.csv")}
        for study_id in sorted(s for s in touched if s and s not in file_deaths and s not in file_patients):
            patient = self.state.patients.get(study_id)
            death = self.state.death_dates.get(study_id)
            if patient is not None and death is not None and patient.last_contact_date > death:
                self.add(
                    "patients.csv",
                    0,
                    "last_contact_date",
                    patient.last_contact_date.isoformat(),
                    f"must be on or before the patient's death ({death.isoformat()})",
                )

    # ---- enrolment ---------------------------------------------------------------------------
    def patients(self) -> None:
        label, seen = "patients.csv", set[Any]()
        for row in self.rows(label):
            p = row.record
            if not self.unique(label, "study_id", p.study_id, seen, row.row, p.study_id):
                continue
            if p.study_id in self.state.patients:
                self.add(label, row.row, "study_id", p.study_id, "patient is already in the registry")
                continue
            self.not_before(label, row.row, "enrolment_date", p.enrolment_date, p.mdt_date, "the MDT date")
            self.not_before(
                label, row.row, "last_contact_date", p.last_contact_date, p.enrolment_date, "enrolment"
            )
        for row in self.rows(label):
            self.state.patients.setdefault(row.record.study_id, row.record)

    def identifiers(self) -> None:
        label, seen, numbers = "identifiers.csv", set[Any](), set(self.state.hospital_numbers)
        for row in self.rows(label):
            ident = row.record
            patient = self.patient(label, row)
            if not self.unique(label, "study_id", ident.study_id, seen, row.row, ident.study_id):
                continue
            if ident.study_id in self.state.identifier_ids:
                self.add(
                    label,
                    row.row,
                    "study_id",
                    ident.study_id,
                    "patient already has identifiers in the key table",
                )
            if ident.hospital_number in numbers:
                self.add(
                    label,
                    row.row,
                    "hospital_number",
                    HIDDEN_VALUE,
                    "hospital number already belongs to another patient",
                )
            numbers.add(ident.hospital_number)
            if patient is not None and ident.date_of_birth >= patient.mdt_date:
                self.add(label, row.row, "date_of_birth", HIDDEN_VALUE, "must be before the MDT date")

    def eligibility(self) -> None:
        label, seen = "eligibility.csv", set(self.state.eligibility_ids)
        criteria = (
            "rcc_confirmed",
            "one_to_five_metastases",
            "all_lesions_treatable",
            "ecog_0_to_2",
            "informed_consent",
        )
        for row in self.rows(label):
            check = row.record
            patient = self.patient(label, row)
            if not self.unique(
                label,
                "study_id",
                check.study_id,
                seen,
                row.row,
                check.study_id,
                "duplicate: the patient already has an eligibility record",
            ):
                continue
            for criterion in criteria:
                if not getattr(check, criterion):
                    self.add(
                        label,
                        row.row,
                        criterion,
                        "false",
                        "an enrolled patient must meet every eligibility criterion",
                    )
            if check.mdt_decision != "sabr_all_lesions":
                self.add(
                    label,
                    row.row,
                    "mdt_decision",
                    check.mdt_decision,
                    "an enrolled patient needs the MDT decision sabr_all_lesions",
                )
            if patient is not None:
                self.not_after(
                    label, row.row, "assessed_on", check.assessed_on, patient.enrolment_date, "enrolment"
                )

    def lesions(self) -> None:
        label, seen = "lesions.csv", set[Any]()
        for row in self.rows(label):
            lesion = row.record
            self.patient(label, row)
            if not self.unique(label, "lesion_id", lesion.lesion_id, seen, row.row, lesion.lesion_id):
                continue
            if lesion.lesion_id in self.state.lesions:
                self.add(label, row.row, "lesion_id", lesion.lesion_id, "lesion is already in the registry")
                continue
            expected = f"{lesion.study_id}-L{lesion.lesion_number}"
            if lesion.lesion_id != expected:
                self.add(
                    label,
                    row.row,
                    "lesion_id",
                    lesion.lesion_id,
                    f"must be <study_id>-L<lesion_number>, here {expected}",
                )
            self.state.lesions[lesion.lesion_id] = lesion.study_id

    def sabr_courses(self) -> None:
        label = "sabr_courses.csv"
        for row in self.rows(label):
            course = row.record
            self.not_before(label, row.row, "end_date", course.end_date, course.start_date, "start_date")
            owner = self.state.lesions.get(course.lesion_id)
            if owner is None:
                if course.lesion_id not in self.state.raw_lesion_ids:
                    self.add(
                        label,
                        row.row,
                        "lesion_id",
                        course.lesion_id,
                        "unknown lesion: not in lesions.csv nor in the registry",
                    )
                continue
            if owner != course.study_id:
                self.add(
                    label,
                    row.row,
                    "study_id",
                    course.study_id,
                    f"lesion {course.lesion_id} belongs to {owner}",
                )
                continue
            patient = self.state.patients.get(course.study_id)
            if patient is not None:
                self.not_before(
                    label, row.row, "start_date", course.start_date, patient.mdt_date, "the MDT date"
                )
                self.not_after(
                    label,
                    row.row,
                    "start_date",
                    course.start_date,
                    patient.last_contact_date,
                    "the last contact",
                )
            for mapping, key in (
                (self.state.first_fraction, course.study_id),
                (self.state.lesion_first_fraction, course.lesion_id),
            ):
                mapping[key] = min(course.start_date, mapping.get(key, course.start_date))

    def therapy_lines(self) -> None:
        label, seen = "systemic_therapy_lines.csv", set(self.state.therapy_lines)
        for row in self.rows(label):
            line = row.record
            self.patient(label, row)
            self.unique(
                label,
                "line_number",
                (line.study_id, line.line_number),
                seen,
                row.row,
                line.line_number,
                f"duplicate: {line.study_id} already has therapy line {line.line_number}",
            )
            if line.stop_date is not None:
                self.not_before(label, row.row, "stop_date", line.stop_date, line.start_date, "start_date")

    # ---- follow-up ---------------------------------------------------------------------------
    def visits(self) -> None:
        label, seen = "visits.csv", set(self.state.visits)
        for row in self.rows(label):
            visit = row.record
            patient = self.patient(label, row)
            self.unique(
                label,
                "visit_number",
                (visit.study_id, visit.visit_number),
                seen,
                row.row,
                visit.visit_number,
                f"duplicate: {visit.study_id} already has visit {visit.visit_number}",
            )
            if patient is None:
                continue
            self.not_before(
                label, row.row, "visit_date", visit.visit_date, patient.enrolment_date, "enrolment"
            )
            self.not_after(
                label, row.row, "visit_date", visit.visit_date, patient.last_contact_date, "the last contact"
            )
            index_date = self.state.first_fraction.get(visit.study_id)
            problem = (
                visit_rule_problem(index_date, visit.visit_number, visit.visit_date) if index_date else None
            )
            if problem:
                self.add(label, row.row, "visit_date", visit.visit_date.isoformat(), problem)

    def adverse_events(self) -> None:
        label = "adverse_events.csv"
        for row in self.rows(label):
            event = row.record
            patient = self.patient(label, row)
            problem = check_ctcae(event.term, event.grade, event.ctcae_version)
            if problem:
                column = "term" if "not a CTCAE" in problem or "specify" in problem else "grade"
                self.add(label, row.row, column, event.term if column == "term" else event.grade, problem)
            if event.resolution_date is not None:
                self.not_before(
                    label,
                    row.row,
                    "resolution_date",
                    event.resolution_date,
                    event.onset_date,
                    "the onset date",
                )
            if event.lesion_id is not None and self.state.lesions.get(event.lesion_id) != event.study_id:
                self.add(label, row.row, "lesion_id", event.lesion_id, f"not a lesion of {event.study_id}")
            if patient is not None:
                self.not_before(
                    label, row.row, "onset_date", event.onset_date, patient.enrolment_date, "enrolment"
                )

    def tumour_assessments(self) -> None:
        label, seen = "tumour_assessments.csv", set(self.state.tumour_assessments)
        for row in self.rows(label):
            check = row.record
            patient = self.patient(label, row)
            self.unique(
                label,
                "assessment_date",
                (check.study_id, check.assessment_date),
                seen,
                row.row,
                check.assessment_date.isoformat(),
                "duplicate: one assessment per patient and date",
            )
            if patient is not None:
                self.not_before(
                    label,
                    row.row,
                    "assessment_date",
                    check.assessment_date,
                    patient.mdt_date - timedelta(days=ASSESSMENT_BEFORE_MDT_DAYS),
                    f"{ASSESSMENT_BEFORE_MDT_DAYS} days before the MDT date",
                )
                self.not_after(
                    label,
                    row.row,
                    "assessment_date",
                    check.assessment_date,
                    patient.last_contact_date,
                    "the last contact",
                )

    def lesion_assessments(self) -> None:
        label, seen = "lesion_assessments.csv", set(self.state.lesion_assessments)
        for row in self.rows(label):
            check = row.record
            owner = self.state.lesions.get(check.lesion_id)
            if owner is None:
                if check.lesion_id not in self.state.raw_lesion_ids:
                    self.add(
                        label,
                        row.row,
                        "lesion_id",
                        check.lesion_id,
                        "unknown lesion: not in lesions.csv nor in the registry",
                    )
                continue
            self.unique(
                label,
                "assessment_date",
                (check.lesion_id, check.assessment_date),
                seen,
                row.row,
                check.assessment_date.isoformat(),
                "duplicate: one assessment per lesion and date",
            )
            self.not_before(
                label,
                row.row,
                "assessment_date",
                check.assessment_date,
                self.state.lesion_first_fraction.get(check.lesion_id),
                "the lesion's first SABR fraction",
            )
            patient = self.state.patients.get(owner)
            if patient is not None:
                self.not_after(
                    label,
                    row.row,
                    "assessment_date",
                    check.assessment_date,
                    patient.last_contact_date,
                    "the last contact",
                )

    def progression_events(self) -> None:
        label, seen = "progression_events.csv", set(self.state.progression_dates)
        for row in self.rows(label):
            event = row.record
            patient = self.patient(label, row)
            if not self.unique(
                label,
                "study_id",
                event.study_id,
                seen,
                row.row,
                event.study_id,
                "patient already has a progression (record the first progression only)",
            ):
                continue
            self.state.progression_dates[event.study_id] = event.event_date
            if patient is None:
                continue
            self.not_before(
                label, row.row, "event_date", event.event_date, patient.enrolment_date, "enrolment"
            )
            self.not_before(
                label,
                row.row,
                "event_date",
                event.event_date,
                self.state.first_fraction.get(event.study_id),
                "the first SABR fraction",
            )
            self.not_after(
                label, row.row, "event_date", event.event_date, patient.last_contact_date, "the last contact"
            )

    def deaths(self) -> None:
        label, seen = "deaths.csv", set(self.state.death_dates)
        for row in self.rows(label):
            death = row.record
            patient = self.patient(label, row)
            if not self.unique(
                label,
                "study_id",
                death.study_id,
                seen,
                row.row,
                death.study_id,
                "patient already has a death record",
            ):
                continue
            self.state.death_dates[death.study_id] = death.death_date
            if patient is None:
                continue
            self.not_before(
                label, row.row, "death_date", death.death_date, patient.enrolment_date, "enrolment"
            )
            self.not_before(
                label, row.row, "death_date", death.death_date, patient.last_contact_date, "the last contact"
            )
            self.not_before(
                label,
                row.row,
                "death_date",
                death.death_date,
                self.state.progression_dates.get(death.study_id),
                "the progression",
            )

    def off_study(self) -> None:
        label, seen = "off_study.csv", set(self.state.off_study_ids)
        for row in self.rows(label):
            record = row.record
            patient = self.patient(label, row)
            if not self.unique(
                label,
                "study_id",
                record.study_id,
                seen,
                row.row,
                record.study_id,
                "patient is already off study",
            ):
                continue
            if patient is not None:
                self.not_before(
                    label,
                    row.row,
                    "off_study_date",
                    record.off_study_date,
                    patient.enrolment_date,
                    "enrolment",
                )
            if record.reason == "death" and record.study_id not in self.state.death_dates:
                self.add(
                    label, row.row, "reason", "death", "off study for death needs the patient's death record"
                )
