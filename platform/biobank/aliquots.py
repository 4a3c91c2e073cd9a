"""Aliquots, derivatives and pools with parent -> child lineage and quantity accounting.

A child takes an amount of its parent (in the parent's unit): the parent's row is locked
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writes hold the write lock from ``BEGIN
IMMEDIATE``), the amount is checked against what is left, and the parent's
``remaining_quantity`` goes down in the same transaction. The database backs this up with
``CHECK (remaining_quantity >= 0)``, so no interleaving of requests can oversubscribe a parent.
A parent with nothing left becomes ``depleted``; consumed, disposed and depleted samples cannot
be used again (:class:`~sabrkit.biobank.errors.SampleStateError`).

Kinds of children: ``aliquot`` (same material, split), ``derivative`` (new material extracted,
e.g. DNA from buffy coat, with its own yield and unit), ``pool`` (several parents of one
participant and one material combined).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sabrkit.audit import insert_audited
from sabrkit.biobank.accession import make_accession_id
from sabrkit.biobank.consent import refuse_after_withdrawal
from sabrkit.biobank.custody import record_event
from sabrkit.biobank.errors import QuantityError, SampleStateError
from sabrkit.biobank.samples import get_sample, next_serials
from sabrkit.biobank.storage import release_position, sample_location
from sabrkit.biobank.tables import DisposalTask, Sample, SampleDerivation
from sabrkit.biobank.vocabulary import DEFAULT_UNITS, DERIVATIVE_SPECIMEN_TYPES, USABLE_STATUSES
from sabrkit.db.database import Database
from sabrkit.errors import ValidationError, format_problem

__all__ = ["aliquot_sample", "derive_sample", "pool_samples", "consume_sample", "dispose_sample", "lineage"]

logger = logging.getLogger(__name__)
_LAB = "biobank processing lab"


def _usable(sample: Sample) -> None:
    if sample.status not in USABLE_STATUSES:
        raise SampleStateError(
            format_problem(
                f"{sample.accession_id} has status {sample.status}",
                "consumed, disposed, depleted and in-transit samples cannot be used",
                "choose another sample (see `sabrkit biobank show`)",
            )
        )


def _take(sample: Sample, amount: float) -> None:
    """Take ``amount`` (parent's unit) from a locked sample; depleted when nothing is left."""
    _usable(sample)
    if sample.remaining_quantity is None:
        raise QuantityError(
            format_problem(
                f"{sample.accession_id} has no recorded quantity",
                "a child's amount is taken from a known quantity",
                "record the parent's volume/quantity first",
            )
        )
    if not amount > 0:
        raise QuantityError(
            format_problem(
                f"amount {amount!r} {sample.quantity_unit}", "amounts are positive", "enter the amount taken"
            )
        )
    if amount > sample.remaining_quantity + 1e-9:
        raise QuantityError(
            format_problem(
                f"taking {amount:g} {sample.quantity_unit} from {sample.accession_id}",
                f"a child never takes more than the parent has left ({sample.remaining_quantity:g} {sample.quantity_unit})",
                "take less, or use another parent",
            )
        )
    left = sample.remaining_quantity - amount
    sample.remaining_quantity = 0.0 if left < 1e-9 else left
    if sample.remaining_quantity == 0.0:
        sample.status = "depleted"


def _children(
    session: Session,
    parents: Sequence[tuple[Sample, float]],
    kind: str,
    specimen_type: str,
    quantities: Sequence[float],
    unit: str,
    at: datetime,
    operator: str,
) -> list[str]:
    first = parents[0][0]
    serials = next_serials(session, specimen_type, len(quantities))
    rows = []
    for serial, quantity in zip(serials, quantities, strict=True):
        rows.append(
            dict(
                accession_id=make_accession_id(specimen_type, serial),
                study_id=first.study_id,
                timepoint=first.timepoint,
                specimen_type=specimen_type,
                kind=kind,
                collected_at=first.collected_at,
                received_at=at,
                processed_at=at,
                sprec_code=first.sprec_code if kind == "aliquot" else None,
                sprec_version=first.sprec_version if kind == "aliquot" else None,
                primary_container=first.primary_container if kind == "aliquot" else None,
                quantity=quantity,
                remaining_quantity=quantity,
                quantity_unit=unit,
                status="received",
            )
        )
    insert_audited(session, Sample, rows)
    accession_ids: list[str] = [str(row["accession_id"]) for row in rows]
    children = {
        s.accession_id: s
        for s in session.execute(select(Sample).where(Sample.accession_id.in_(accession_ids))).scalars()
    }
    links = []
    for parent, taken in parents:
        share = taken / len(quantities)
        for accession_id in accession_ids:
            links.append(
                dict(
                    parent_id=parent.id,
                    child_id=children[accession_id].id,
                    quantity_taken=share,
                    created_at=at,
                )
            )
    insert_audited(session, SampleDerivation, links)
    event = "aliquoted" if kind == "aliquot" else "processed"
    for parent, taken in parents:
        record_event(
            session,
            parent,
            event,
            operator=operator,
            occurred_at=at,
            location=sample_location(session, parent.id) or _LAB,
            details=f"{taken:g} {parent.quantity_unit} -> {', '.join(accession_ids)}",
        )
    for accession_id in accession_ids:
        record_event(
            session,
            children[accession_id],
            event,
            operator=operator,
            location=_LAB,
            occurred_at=at,
            details="from " + ", ".join(parent.accession_id for parent, _ in parents),
        )
    return accession_ids


def aliquot_sample(
    db: Database, parent_id: str, quantities: Sequence[float], *, operator: str, at: datetime | None = None
) -> list[str]:
    """Split ``quantities`` (parent's unit, one per aliquot) off a parent; returns the new IDs.

    Raises
    ------
    QuantityError
        The aliquots together take more than the parent has left.
    SampleStateError
        The parent is consumed, disposed, depleted or in transit.
    """
    if not quantities:
        raise ValidationError(
            format_problem("no aliquot volumes", "at least one aliquot", "pass --quantity per aliquot")
        )
    at = at or datetime.now().replace(microsecond=0)
    with db.transaction(actor=operator, reason=f"aliquot {parent_id}") as session:
        parent = get_sample(session, parent_id, for_update=True)
        refuse_after_withdrawal(session, parent, "aliquoting")
        _take(parent, float(sum(quantities)))
        return _children(
            session,
            [(parent, float(sum(quantities)))],
            "aliquot",
            parent.specimen_type,
            [float(q) for q in quantities],
            parent.quantity_unit,
            at,
            operator,
        )


def derive_sample(
    db: Database,
    parent_id: str,
    specimen_type: str,
    *,
    taken: float,
    yield_quantity: float,
    unit: str | None = None,
    operator: str,
    at: datetime | None = None,
) -> str:
    """Extract a derivative (DNA, RNA, cfDNA) from ``taken`` of a parent; returns the new ID."""
    if specimen_type not in DERIVATIVE_SPECIMEN_TYPES:
        raise ValidationError(
            format_problem(
                f"derivative type {specimen_type!r}",
                "one of " + ", ".join(DERIVATIVE_SPECIMEN_TYPES),
                "use a listed type",
            )
        )
    at = at or datetime.now().replace(microsecond=0)
    with db.transaction(actor=operator, reason=f"extract {specimen_type} from {parent_id}") as session:
        parent = get_sample(session, parent_id, for_update=True)
        refuse_after_withdrawal(session, parent, f"extracting {specimen_type}")
        _take(parent, taken)
        return _children(
            session,
            [(parent, taken)],
            "derivative",
            specimen_type,
            [yield_quantity],
            unit or DEFAULT_UNITS[specimen_type],
            at,
            operator,
        )[0]


def pool_samples(
    db: Database, parts: Mapping[str, float], *, operator: str, at: datetime | None = None
) -> str:
    """Pool amounts of several samples of one participant and one material into a new sample."""
    if len(parts) < 2:
        raise ValidationError(
            format_problem(
                f"pool of {len(parts)} sample(s)",
                "a pool combines two or more samples",
                "list at least two parents",
            )
        )
    at = at or datetime.now().replace(microsecond=0)
    with db.transaction(actor=operator, reason="pool " + ", ".join(parts)) as session:
        parents = [
            (get_sample(session, accession_id, for_update=True), float(amount))
            for accession_id, amount in sorted(parts.items())
        ]
        kinds = {(p.study_id, p.specimen_type, p.quantity_unit) for p, _ in parents}
        if len(kinds) != 1:
            raise ValidationError(
                format_problem(
                    "pool of " + ", ".join(parts),
                    "pooled samples share participant, material and unit",
                    "pool only one participant's samples of one material",
                )
            )
        for parent, amount in parents:
            refuse_after_withdrawal(session, parent, "pooling")
            _take(parent, amount)
        first = parents[0][0]
        return _children(
            session,
            parents,
            "pool",
            first.specimen_type,
            [sum(a for _, a in parents)],
            first.quantity_unit,
            at,
            operator,
        )[0]


def consume_sample(
    db: Database,
    accession_id: str,
    *,
    amount: float | None = None,
    operator: str,
    reason: str,
    location: str = _LAB,
    at: datetime | None = None,
) -> float:
    """Use up ``amount`` (default: all that is left) in an assay; returns what is left."""
    at = at or datetime.now().replace(microsecond=0)
    with db.transaction(actor=operator, reason=reason) as session:
        sample = get_sample(session, accession_id, for_update=True)
        refuse_after_withdrawal(session, sample, "consuming")
        _usable(sample)
        take = sample.remaining_quantity if amount is None else amount
        if take is None:
            sample.status = "consumed"
        else:
            _take(sample, take)
            if sample.remaining_quantity == 0.0:
                sample.status = "consumed"
        if sample.status == "consumed":
            release_position(session, sample)
        record_event(
            session,
            sample,
            "consumed",
            operator=operator,
            location=location,
            occurred_at=at,
            details=f"{take:g} {sample.quantity_unit}: {reason}" if take is not None else reason,
        )
        return float(sample.remaining_quantity or 0.0)


def dispose_sample(
    db: Database, accession_id: str, *, operator: str, reason: str, at: datetime | None = None
) -> None:
    """Destroy a sample: frees its position, closes its open disposal tasks, ``disposed`` event."""
    at = at or datetime.now().replace(microsecond=0)
    with db.transaction(actor=operator, reason=reason) as session:
        sample = get_sample(session, accession_id, for_update=True)
        if sample.status in ("consumed", "disposed"):
            raise SampleStateError(
                format_problem(
                    f"{accession_id} has status {sample.status}",
                    "a sample is disposed of once",
                    "nothing to do",
                )
            )
        location = release_position(session, sample) or _LAB
        sample.status = "disposed"
        for task in session.execute(
            select(DisposalTask).where(DisposalTask.sample_id == sample.id, DisposalTask.status == "open")
        ).scalars():
            task.status, task.completed_at, task.completed_by = "done", at, operator
        record_event(
            session, sample, "disposed", operator=operator, location=location, occurred_at=at, details=reason
        )


def lineage(db: Database, accession_id: str) -> dict[str, list[str]]:
    """Parents and children of a sample: ``{"parents": [...], "children": [...]}``."""
    from sqlalchemy.orm import aliased

    with db.session() as session:
        sample = get_sample(session, accession_id)
        other = aliased(Sample)
        parents = session.execute(
            select(other.accession_id)
            .join(SampleDerivation, SampleDerivation.parent_id == other.id)
            .where(SampleDerivation.child_id == sample.id)
            .order_by(other.accession_id)
        ).scalars()
        parent_list = list(parents)
        children = session.execute(
            select(other.accession_id)
            .join(SampleDerivation, SampleDerivation.child_id == other.id)
            .where(SampleDerivation.parent_id == sample.id)
            .order_by(other.accession_id)
        ).scalars()
        return {"parents": parent_list, "children": list(children)}
