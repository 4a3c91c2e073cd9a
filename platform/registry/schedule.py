"""The monthly visit schedule and its windows.

Visit *n* (0-24) is scheduled *n* months after the index date (the first SABR fraction):

.. math:: d_n = d_{index} + \\mathrm{round}(30.4375\\, n) \\text{ days}

Two windows apply:

* the **protocol window**, :math:`|d - d_n| \\le 7` days: a visit outside it is accepted but
  listed as *out of window* in the study report's data-quality list;
* the **matching limit**, :math:`|d - d_n| \\le 15` days: a visit further away is refused on
  entry, because its date belongs to another visit number (the message names which).

Visit 0 (baseline) is due on the index date and may fall between enrolment and the index date
(its protocol window is [-30, +7] days). A scheduled visit is *missing* once its protocol window
has closed before the end of follow-up (death, off-study or the data cut-off) without a record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sabrkit.timescale import DAYS_PER_MONTH

__all__ = [
    "VISIT_WINDOW_DAYS",
    "VISIT_MATCH_DAYS",
    "BASELINE_WINDOW_BEFORE_DAYS",
    "LAST_SCHEDULED_VISIT",
    "scheduled_date",
    "window_problem",
    "visit_rule_problem",
    "expected_visit_numbers",
    "missing_visit_numbers",
]

#: Protocol window (days either side of the scheduled date).
VISIT_WINDOW_DAYS = 7
#: A visit further than this from its scheduled date is refused (it belongs to another visit).
VISIT_MATCH_DAYS = 15
#: Visit 0 may be up to this many days before the first fraction.
BASELINE_WINDOW_BEFORE_DAYS = 30
#: Monthly visits run to month 24 (about 2 years of follow-up).
LAST_SCHEDULED_VISIT = 24


def scheduled_date(index_date: dt.date, visit_number: int) -> dt.date:
    """The date visit ``visit_number`` is due: ``index_date`` + round(30.4375 n) days."""
    return index_date + dt.timedelta(days=int(round(visit_number * DAYS_PER_MONTH)))


def _window(visit_number: int) -> tuple[int, int]:
    return (
        (-BASELINE_WINDOW_BEFORE_DAYS, VISIT_WINDOW_DAYS)
        if visit_number == 0
        else (-VISIT_WINDOW_DAYS, VISIT_WINDOW_DAYS)
    )


def window_problem(index_date: dt.date, visit_number: int, visit_date: dt.date) -> str | None:
    """Why a visit is out of its protocol window (a data query), or None when it is in it."""
    due = scheduled_date(index_date, visit_number)
    offset = (visit_date - due).days
    low, high = _window(visit_number)
    if low <= offset <= high:
        return None
    return (
        f"visit {visit_number} on {visit_date.isoformat()} is {offset:+d} days from its scheduled date "
        f"{due.isoformat()} (window {low:+d} to {high:+d} days)"
    )


def visit_rule_problem(index_date: dt.date, visit_number: int, visit_date: dt.date) -> str | None:
    """Why a visit must be refused (its date belongs to another visit number), or None."""
    if visit_number > LAST_SCHEDULED_VISIT:
        return f"visits are scheduled monthly up to visit {LAST_SCHEDULED_VISIT}"
    offset = (visit_date - scheduled_date(index_date, visit_number)).days
    low = -BASELINE_WINDOW_BEFORE_DAYS if visit_number == 0 else -VISIT_MATCH_DAYS
    if low <= offset <= VISIT_MATCH_DAYS:
        return None
    months = (visit_date - index_date).days / DAYS_PER_MONTH
    nearest = max(0, int(round(months)))
    return (
        f"visit {visit_number} is due on {scheduled_date(index_date, visit_number).isoformat()} "
        f"(month {visit_number} after the first fraction on {index_date.isoformat()}); a visit on "
        f"{visit_date.isoformat()} is visit {nearest} - correct the visit number or the date"
    )


def expected_visit_numbers(
    index_date: dt.date, follow_up_end: dt.date, last_visit: int = LAST_SCHEDULED_VISIT
) -> list[int]:
    """Visits whose protocol window closed on or before ``follow_up_end`` (they should exist)."""
    return [
        n
        for n in range(last_visit + 1)
        if scheduled_date(index_date, n) + dt.timedelta(days=_window(n)[1]) <= follow_up_end
    ]


def missing_visit_numbers(recorded: Iterable[int], index_date: dt.date, follow_up_end: dt.date) -> list[int]:
    """Expected visits without a record."""
    have = set(recorded)
    return [n for n in expected_visit_numbers(index_date, follow_up_end) if n not in have]
