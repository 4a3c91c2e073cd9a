"""Chain of custody: append-only events per sample, and the freeze-thaw count derived from them.

Every action on a sample (accession, processing, aliquoting, freezing, thawing, moving,
shipping, consumption, disposal) appends one :class:`~sabrkit.biobank.tables.CustodyEvent`
with operator, time and location; the table refuses UPDATE and DELETE (migration ``0003``).
Nothing about a sample's history is typed in: the freeze-thaw count is counted from the events.

Freeze-thaw count of a sample :math:`s` created from parent :math:`p` at time :math:`t_s`:

.. math::

    \\mathrm{FT}(s) = \\#\\{\\text{thawed events of } s\\}
                     + \\max_{p \\in \\mathrm{parents}(s)} \\mathrm{FT}(p;\\, t < t_s)

i.e. an aliquot carries the cycles its parent went through before the aliquot was made (for a
pool, the most-thawed parent's); a primary sample starts at 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sabrkit.biobank.tables import CustodyEvent, Sample, SampleDerivation
from sabrkit.biobank.vocabulary import CUSTODY_EVENT_TYPES
from sabrkit.db.database import Database
from sabrkit.errors import ValidationError, format_problem

__all__ = ["CustodyRecord", "record_event", "custody_history", "freeze_thaw_count", "freeze_thaw_counts"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CustodyRecord:
    """One event as read back: what, when, who, where (and details)."""

    accession_id: str
    event_type: str
    occurred_at: datetime
    operator: str
    location: str
    details: str | None

    def __str__(self) -> str:
        text = f"{self.occurred_at:%Y-%m-%dT%H:%M}  {self.event_type:<24} {self.operator:<16} {self.location}"
        return f"{text}  ({self.details})" if self.details else text


def record_event(
    session: Session,
    sample: Sample,
    event_type: str,
    *,
    operator: str,
    location: str,
    occurred_at: datetime | None = None,
    details: str | None = None,
    shipment_id: int | None = None,
) -> CustodyEvent:
    """Append one custody event to ``sample`` in the session's transaction.

    Raises
    ------
    ValidationError
        Unknown event type, or an empty operator or location.
    """
    if event_type not in CUSTODY_EVENT_TYPES:
        raise ValidationError(
            format_problem(
                f"custody event {event_type!r}",
                "one of " + ", ".join(CUSTODY_EVENT_TYPES),
                "use a listed event",
            )
        )
    if not operator.strip() or not location.strip():
        raise ValidationError(
            format_problem(
                f"custody event {event_type!r} of {sample.accession_id}",
                "every event names its operator and location",
                "pass --operator and a location",
            )
        )
    event = CustodyEvent(
        sample_id=sample.id,
        event_type=event_type,
        occurred_at=occurred_at or datetime.now().replace(microsecond=0),
        operator=operator,
        location=location,
        details=details,
        shipment_id=shipment_id,
    )
    session.add(event)
    return event


def custody_history(db: Database, accession_id: str) -> list[CustodyRecord]:
    """Every event of a sample, oldest first (ties in recording order)."""
    from sabrkit.biobank.samples import get_sample

    with db.session() as session:
        sample = get_sample(session, accession_id)
        rows = session.execute(
            select(CustodyEvent)
            .where(CustodyEvent.sample_id == sample.id)
            .order_by(CustodyEvent.occurred_at, CustodyEvent.id)
        ).scalars()
        return [
            CustodyRecord(accession_id, e.event_type, e.occurred_at, e.operator, e.location, e.details)
            for e in rows
        ]


def _thaws(session: Session, sample_id: int, before: datetime | None) -> int:
    statement = (
        select(func.count())
        .select_from(CustodyEvent)
        .where(CustodyEvent.sample_id == sample_id, CustodyEvent.event_type == "thawed")
    )
    if before is not None:
        statement = statement.where(CustodyEvent.occurred_at <= before)
    return int(session.execute(statement).scalar_one())


def _count(session: Session, sample_id: int, before: datetime | None, depth: int = 0) -> int:
    if depth > 50:  # lineage is a DAG built forwards in time; this only guards against corrupt data
        raise ValidationError(
            format_problem(
                f"sample id {sample_id}",
                "lineage deeper than 50 generations",
                "check sample_derivations for a cycle",
            )
        )
    links = session.execute(
        select(SampleDerivation.parent_id, SampleDerivation.created_at).where(
            SampleDerivation.child_id == sample_id
        )
    ).all()
    inherited = max(
        (
            _count(session, parent_id, created_at if before is None else min(created_at, before), depth + 1)
            for parent_id, created_at in links
        ),
        default=0,
    )
    return _thaws(session, sample_id, before) + inherited


def freeze_thaw_count(db: Database, accession_id: str) -> int:
    """Freeze-thaw cycles of a sample, counted from custody events (see the module docstring)."""
    from sabrkit.biobank.samples import get_sample

    with db.session() as session:
        return _count(session, get_sample(session, accession_id).id, None)


def freeze_thaw_counts(session: Session, sample_ids: list[int]) -> dict[int, int]:
    """Freeze-thaw cycles of many samples (exports, manifests): one query for thaws, lineage walked
    only for samples that have parents."""
    counts: dict[int, int] = dict.fromkeys(sample_ids, 0)
    if not sample_ids:
        return counts
    chunk = 5000
    for start in range(0, len(sample_ids), chunk):
        ids = sample_ids[start : start + chunk]
        for sample_id, thaws in session.execute(
            select(CustodyEvent.sample_id, func.count())
            .where(CustodyEvent.sample_id.in_(ids), CustodyEvent.event_type == "thawed")
            .group_by(CustodyEvent.sample_id)
        ):
            counts[sample_id] = int(thaws)
        children = set(
            session.execute(
                select(SampleDerivation.child_id).where(SampleDerivation.child_id.in_(ids))
            ).scalars()
        )
        for child_id in children:
            counts[child_id] = _count(session, child_id, None)
    return counts
