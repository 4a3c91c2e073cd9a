"""Date and cross-record rules shared by every write path (import, single entry, ``correct``, web, API).

The rules of this module are the ones a record must obey against *the calendar* and *the rest of
the patient's record*:

* **No future dates**: no clinical or sample date after :func:`latest_allowed_date` (today, or
  the data cut-off ``SABRKIT_DATA_CUTOFF`` when that is earlier).
* **Not before enrolment**: visits, adverse events, progression and death on or after enrolment
  (:mod:`sabrkit.registry.checks` holds these with the other date-order rules).
* **Nothing clinical after death**: a SABR course, therapy line, visit, adverse event, tumour or
  lesion assessment or progression dated after the patient's death is refused; only the death
  record itself (and the administrative off-study record) may carry that date or later.
* **Last contact** never after the death or after :func:`latest_allowed_date`.

:class:`~sabrkit.registry.checks.RegistryChecker` applies them to imports and single entries
(:func:`sabrkit.registry.capture.record`, which the web forms and the API call);
:func:`patient_rule_errors` re-runs every row and cross-record rule over one patient's stored
record (what :func:`sabrkit.registry.capture.correct` does after a change, before it commits).
:func:`check_not_future` is the one-field form for callers outside the registry (biobank sample
dates, web form hints); it raises :class:`FutureDateError`, whose ``field`` names the field.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from sabrkit.db.csv_import import HIDDEN_VALUE, ParsedRow, row_error
from sabrkit.errors import ImportValidationError, RowError, ValidationError, format_problem

__all__ = [
    "CUTOFF_ENV",
    "AFTER_DEATH_REFUSED",
    "FutureDateError",
    "latest_allowed_date",
    "check_not_future",
    "future_date_errors",
    "patient_rule_errors",
    "check_patient",
]

logger = logging.getLogger(__name__)

#: Environment variable holding the data cut-off (YYYY-MM-DD); dates after it are refused.
CUTOFF_ENV = "SABRKIT_DATA_CUTOFF"

#: Registry file -> the date column that may not fall after the patient's death.
AFTER_DEATH_REFUSED: dict[str, str] = {
    "sabr_courses.csv": "start_date",
    "systemic_therapy_lines.csv": "start_date",
    "visits.csv": "visit_date",
    "adverse_events.csv": "onset_date",
    "tumour_assessments.csv": "assessment_date",
    "lesion_assessments.csv": "assessment_date",
    "progression_events.csv": "event_date",
}


class FutureDateError(ValidationError):
    """A date lies after today (or the data cut-off); ``field`` names the field."""


def latest_allowed_date(today: dt.date | None = None) -> dt.date:
    """The last date a record may carry: today, or the data cut-off when that is earlier.

    Parameters
    ----------
    today : datetime.date, optional
        The current date (default: :meth:`datetime.date.today`, the machine's local date).

    Raises
    ------
    ValidationError
        ``SABRKIT_DATA_CUTOFF`` is set but is not a YYYY-MM-DD date.
    """
    today = today or dt.date.today()
    text = os.environ.get(CUTOFF_ENV, "").strip()
    if not text:
        return today
    try:
        cutoff = dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            format_problem(
                f"{CUTOFF_ENV}={text!r}",
                "the data cut-off is a YYYY-MM-DD date",
                f"set {CUTOFF_ENV} to a date such as 2026-11-01, or unset it",
            ),
            field=CUTOFF_ENV,
        ) from None
    return min(today, cutoff)


def _bound_text(bound: dt.date) -> str:
    return f"today/the data cut-off ({bound.isoformat()})"


def check_not_future(
    field: str, value: dt.date | dt.datetime | None, *, latest: dt.date | None = None, hidden: bool = False
) -> None:
    """Raise :class:`FutureDateError` if ``value`` lies after :func:`latest_allowed_date`.

    Parameters
    ----------
    field : str
        Name of the field (carried by the error as ``field``).
    value : date or datetime or None
        The value (None passes).
    latest : date, optional
        The bound (default: :func:`latest_allowed_date`).
    hidden : bool
        The value is a direct identifier (a date of birth): the message does not show it.
    """
    if value is None:
        return
    day = value.date() if isinstance(value, dt.datetime) else value
    bound = latest or latest_allowed_date()
    if day > bound:
        shown = HIDDEN_VALUE if hidden else day.isoformat()
        raise FutureDateError(
            format_problem(
                f"{field} {shown}",
                f"no date may lie after {_bound_text(bound)}",
                f"correct {field} (a typo in the year?)",
            ),
            field=field,
        )


def future_date_errors(
    label: str, rows: Iterable[ParsedRow[Any]], latest: dt.date, hidden_columns: Iterable[str] = ()
) -> list[RowError]:
    """Every date (or date-time) of the parsed rows that lies after ``latest``, as row errors."""
    hidden = set(hidden_columns)
    errors: list[RowError] = []
    for row in rows:
        for column, value in row.record:
            if isinstance(value, dt.datetime):
                day = value.date()
            elif isinstance(value, dt.date):
                day = value
            else:
                continue
            if day > latest:
                shown = HIDDEN_VALUE if column in hidden else value.isoformat()
                errors.append(
                    row_error(label, row.row, column, shown, f"must not lie after {_bound_text(latest)}")
                )
    return errors


# ---- one patient's stored record ------------------------------------------------------------------


def _as_row(row_model: type[BaseModel], obj: Any, extra: Mapping[str, Any] | None = None) -> BaseModel:
    values = {name: getattr(obj, name, None) for name in row_model.model_fields}
    values.update(extra or {})
    return row_model.model_validate({k: v for k, v in values.items() if v is not None})


def _key(obj: Any) -> int:
    from sqlalchemy import inspect

    identity = inspect(obj).identity
    return identity[0] if identity and isinstance(identity[0], int) else 0


def patient_rule_errors(session: Session, study_id: str, *, latest: dt.date | None = None) -> list[RowError]:
    """Re-run every row and cross-record rule over one patient's stored record.

    The patient's rows are read from ``session`` (so changes flushed but not committed count),
    turned back into the import row models and checked by
    :class:`~sabrkit.registry.checks.RegistryChecker` as if the whole record were imported into a
    registry holding every other patient. Errors name the table and column
    (``"visits:visit_date"``) and, as row, the record's integer key (0 for text keys).

    Parameters
    ----------
    session : Session
        Open session (inside the transaction of the change being checked).
    study_id : str
        The patient.
    latest : date, optional
        Bound of the no-future-date rule (default: :func:`latest_allowed_date`).

    Returns
    -------
    list of RowError
        Empty when the record obeys every rule.
    """
    from pydantic import ValidationError as PydanticValidationError

    from sabrkit.registry import tables as m
    from sabrkit.registry.checks import RegistryChecker, RegistryState
    from sabrkit.registry.load import REGISTRY_FILES

    session.flush()
    patient = session.get(m.Patient, study_id)
    if patient is None:
        return []
    lesion_ids = list(session.scalars(select(m.Lesion.lesion_id).where(m.Lesion.study_id == study_id)))
    parsed: dict[str, list[ParsedRow[Any]]] = {}
    errors: list[RowError] = []
    for name, (row_model, model) in REGISTRY_FILES.items():
        if model is m.SabrCourse or model is m.LesionAssessment:
            query = select(model).where(model.lesion_id.in_(lesion_ids))
        else:
            query = select(model).where(model.study_id == study_id)
        rows: list[ParsedRow[Any]] = []
        table = model.__tablename__
        for obj in session.scalars(query):
            extra = {"study_id": study_id} if model is m.SabrCourse else None
            try:
                rows.append(ParsedRow(_key(obj), _as_row(row_model, obj, extra)))
            except PydanticValidationError as exc:
                for problem in exc.errors():
                    column = str((problem.get("loc") or ("(row)",))[0])
                    value = HIDDEN_VALUE if model is m.PatientIdentifier else getattr(obj, column, None)
                    errors.append(row_error(table, _key(obj), column, value, str(problem.get("msg"))))
        parsed[name] = rows
    state = RegistryState()
    state.raw_study_ids = {study_id}
    state.raw_lesion_ids = set(lesion_ids)
    state.hospital_numbers = set(
        session.scalars(
            select(m.PatientIdentifier.hospital_number).where(m.PatientIdentifier.study_id != study_id)
        )
    )
    errors.extend(RegistryChecker(state, parsed, latest=latest).run())
    tables = {name: model.__tablename__ for name, (_, model) in REGISTRY_FILES.items()}
    return [RowError(e.row, _table_column(e.column, tables), e.value, e.rule) for e in errors]


def _table_column(column: str, tables: Mapping[str, str]) -> str:
    label, _, name = column.partition(":")
    return f"{tables.get(label, label)}:{name}" if name else column


def check_patient(session: Session, study_id: str, *, what: str, latest: dt.date | None = None) -> None:
    """Raise :class:`~sabrkit.errors.ImportValidationError` if the patient's record breaks a rule.

    ``what`` names the change being checked (``"correction of visits row 22"``); the caller's
    transaction rolls back when this raises.
    """
    errors = patient_rule_errors(session, study_id, latest=latest)
    if errors:
        logger.info("%s refused: %d rule(s) broken", what, len(errors))
        raise ImportValidationError(what, errors, changed=True)
