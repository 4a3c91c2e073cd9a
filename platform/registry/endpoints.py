"""Patient-level time-to-event endpoints: progression-free and overall survival from SABR.

Rules (the registration's endpoints, from the index treatment):

* index date = the first SABR fraction: the earliest ``start_date`` over the patient's courses;
* PFS event = the first progression (any type: local, distant or both) or death from any
  cause, whichever comes first; without either, PFS is censored at the last contact;
* OS event = death from any cause; without it, OS is censored at the last contact;
* months = days / 30.4375 (the mean month of the Gregorian calendar: 365.25 / 12).

A death after the last contact date still counts (deaths are ascertained from registries, not
only at visits). Only the first progression per patient is used; several rows for one patient
take the earliest date.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import pandas as pd
from sqlalchemy import select

from sabrkit.db.database import Database
from sabrkit.errors import ValidationError, format_problem
from sabrkit.registry import tables as m
from sabrkit.timescale import DAYS_PER_MONTH

__all__ = ["DAYS_PER_MONTH", "ENDPOINT_COLUMNS", "compute_endpoints", "endpoints_from_db"]

logger = logging.getLogger(__name__)

ENDPOINT_COLUMNS = ("study_id", "index_date", "pfs_months", "pfs_event", "os_months", "os_event")


def _require_columns(frame: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValidationError(
            format_problem(
                f"{name} table lacks column(s) {', '.join(missing)}",
                f"{name} needs the columns {', '.join(columns)}",
                "pass the registry tables with their documented column names",
            )
        )


def _dates(frame: pd.DataFrame, name: str, column: str) -> pd.Series:
    try:
        values = pd.to_datetime(frame[column], errors="raise")
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            format_problem(
                f"{name}.{column} holds a value that is not a date ({exc})",
                "dates are ISO YYYY-MM-DD",
                f"correct {name}.{column}",
            )
        ) from exc
    if values.isna().any():
        bad = frame.loc[values.isna(), "study_id"].tolist()
        raise ValidationError(
            format_problem(
                f"{name}.{column} is empty for {', '.join(map(str, bad))}",
                f"every {name} row needs {column}",
                "enter the missing dates",
            )
        )
    return values.dt.normalize()


def _first_by_patient(frame: pd.DataFrame, name: str, column: str) -> pd.Series:
    _require_columns(frame, name, ("study_id", column))
    if frame.empty:
        return pd.Series(dtype="datetime64[ns]", name=column)
    dates = _dates(frame, name, column)
    return dates.groupby(frame["study_id"].to_numpy()).min()


def _check_not_before_index(end: pd.Series, index_date: pd.Series, what: str) -> None:
    early = end.notna() & (end < index_date)
    if early.any():
        cases = ", ".join(
            f"{study_id} ({what} {end[study_id].date()} < first fraction {index_date[study_id].date()})"
            for study_id in end.index[early]
        )
        raise ValidationError(
            format_problem(
                cases,
                f"the {what} cannot precede the index date (first SABR fraction)",
                "correct the dates in the registry",
            )
        )


def compute_endpoints(
    patients: pd.DataFrame,
    sabr_courses: pd.DataFrame,
    progression_events: pd.DataFrame,
    deaths: pd.DataFrame,
) -> pd.DataFrame:
    """PFS and OS from the first SABR fraction, one row per patient.

    .. math::

        t_{PFS} = (\\min(d_{prog}, d_{death}, \\text{if none } d_{last}) - d_{index}) / 30.4375,
        \\qquad t_{OS} = (d_{death} \\text{ or } d_{last} - d_{index}) / 30.4375

    Parameters
    ----------
    patients : DataFrame
        ``study_id``, ``last_contact_date``; defines the rows of the result (events of other
        patients are ignored).
    sabr_courses : DataFrame
        ``study_id``, ``start_date`` (one row per course).
    progression_events : DataFrame
        ``study_id``, ``event_date`` (first progression; the earliest row per patient is used).
    deaths : DataFrame
        ``study_id``, ``death_date`` (at most one row per patient).

    Returns
    -------
    DataFrame
        ``study_id, index_date (datetime64), pfs_months, pfs_event (bool), os_months,
        os_event (bool)``, sorted by ``study_id``.

    Raises
    ------
    ValidationError
        A column is missing, a date does not parse, a patient appears twice or has two deaths,
        a patient has no SABR course (no index date), or an event or last contact precedes the
        first fraction.
    """
    _require_columns(patients, "patients", ("study_id", "last_contact_date"))
    duplicated = patients["study_id"][patients["study_id"].duplicated()].unique().tolist()
    if duplicated:
        raise ValidationError(
            format_problem(
                f"patients {', '.join(map(str, duplicated))} appear twice",
                "one row per patient",
                "remove the duplicate patient rows",
            )
        )
    _require_columns(deaths, "deaths", ("study_id", "death_date"))
    twice = deaths["study_id"][deaths["study_id"].duplicated()].unique().tolist()
    if twice:
        raise ValidationError(
            format_problem(
                f"patients {', '.join(map(str, twice))} have more than one death",
                "at most one death per patient",
                "remove the wrong death records",
            )
        )
    study_ids = pd.Index(patients["study_id"], name="study_id")
    last_contact = pd.Series(_dates(patients, "patients", "last_contact_date").to_numpy(), index=study_ids)
    index_date = _first_by_patient(sabr_courses, "sabr_courses", "start_date").reindex(study_ids)
    if index_date.isna().any():
        untreated = ", ".join(map(str, index_date.index[index_date.isna()]))
        raise ValidationError(
            format_problem(
                f"patient(s) {untreated} have no SABR course",
                "the index date is the first SABR fraction, so every patient needs at least one course",
                "enter the patient's SABR course(s), or leave the patient out of the endpoint table",
            )
        )
    progression = _first_by_patient(progression_events, "progression_events", "event_date").reindex(study_ids)
    death = _first_by_patient(deaths, "deaths", "death_date").reindex(study_ids)
    _check_not_before_index(progression, index_date, "progression")
    _check_not_before_index(death, index_date, "death")
    pfs_event_date = pd.concat([progression, death], axis=1).min(axis=1)
    pfs_event = pfs_event_date.notna()
    # the last contact is a censoring time whenever the patient is alive
    _check_not_before_index(last_contact.where(death.isna()), index_date, "last contact")
    pfs_end = pfs_event_date.where(pfs_event, last_contact)
    os_event = death.notna()
    os_end = death.where(os_event, last_contact)
    endpoints = pd.DataFrame(
        {
            "study_id": study_ids.astype(str),
            "index_date": index_date.to_numpy(),
            "pfs_months": ((pfs_end - index_date).dt.days / DAYS_PER_MONTH).to_numpy(dtype=float),
            "pfs_event": pfs_event.to_numpy(dtype=bool),
            "os_months": ((os_end - index_date).dt.days / DAYS_PER_MONTH).to_numpy(dtype=float),
            "os_event": os_event.to_numpy(dtype=bool),
        }
    )
    return endpoints.sort_values("study_id", ignore_index=True)


def _frame(rows: Iterable[tuple[object, ...]], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(columns))


def endpoints_from_db(db: Database) -> pd.DataFrame:
    """:func:`compute_endpoints` over every patient in the registry database.

    Raises
    ------
    ValidationError
        As :func:`compute_endpoints` (e.g. a patient without a SABR course).
    """
    with db.session() as session:
        patients = _frame(
            session.execute(select(m.Patient.study_id, m.Patient.last_contact_date)),
            ("study_id", "last_contact_date"),
        )
        courses = _frame(
            session.execute(select(m.Lesion.study_id, m.SabrCourse.start_date).join(m.SabrCourse.lesion)),
            ("study_id", "start_date"),
        )
        progression = _frame(
            session.execute(select(m.ProgressionEvent.study_id, m.ProgressionEvent.event_date)),
            ("study_id", "event_date"),
        )
        deaths = _frame(
            session.execute(select(m.Death.study_id, m.Death.death_date)), ("study_id", "death_date")
        )
    endpoints = compute_endpoints(patients, courses, progression, deaths)
    logger.info(
        "endpoints for %d patient(s): %d PFS event(s), %d death(s)",
        len(endpoints),
        int(endpoints["pfs_event"].sum()),
        int(endpoints["os_event"].sum()),
    )
    return endpoints
