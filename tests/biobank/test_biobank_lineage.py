"""Aliquots, derivatives and pools: lineage, quantity accounting, unusable samples, freeze-thaw counts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from biobank_helpers import add_samples
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from sabrkit.biobank import (
    QuantityError,
    SampleStateError,
    aliquot_sample,
    consume_sample,
    create_storage,
    custody_history,
    derive_sample,
    dispose_sample,
    freeze_thaw_count,
    lineage,
    place_sample,
    pool_samples,
    thaw_sample,
)
from sabrkit.biobank.tables import Sample
from sabrkit.db import Database


def _t0() -> datetime:
    """Five minutes after now: after the samples a test adds are received (computed per test,
    since a module-level constant goes stale when the suite runs long)."""
    return datetime.now().replace(microsecond=0) + timedelta(minutes=5)


def _sample(db: Database, accession_id: str) -> Sample:
    with db.session() as session:
        return session.execute(select(Sample).where(Sample.accession_id == accession_id)).scalar_one()


def test_aliquots_take_from_the_parent_and_never_more_than_is_left(enrolled_db: Database):
    [parent] = add_samples(enrolled_db, 1, volume_ml=4.0)
    children = aliquot_sample(enrolled_db, parent, [1.0, 1.0, 0.5], operator="lab1")
    assert [c[:8] for c in children] == ["SABR-PL-"] * 3 and len(set(children)) == 3
    assert _sample(enrolled_db, parent).remaining_quantity == pytest.approx(1.5)
    assert lineage(enrolled_db, parent) == {"parents": [], "children": sorted(children)}
    assert lineage(enrolled_db, children[0]) == {"parents": [parent], "children": []}
    child = _sample(enrolled_db, children[0])
    assert (child.kind, child.quantity, child.study_id, child.timepoint) == (
        "aliquot",
        1.0,
        "SABR-RCC-001",
        "baseline",
    )
    with pytest.raises(QuantityError, match=r"never takes more than the parent has left \(1.5 mL\)"):
        aliquot_sample(enrolled_db, parent, [1.0, 1.0], operator="lab1")
    assert _sample(enrolled_db, parent).remaining_quantity == pytest.approx(
        1.5
    )  # refused request changed nothing
    aliquot_sample(enrolled_db, parent, [1.5], operator="lab1")
    assert (_sample(enrolled_db, parent).remaining_quantity, _sample(enrolled_db, parent).status) == (
        0.0,
        "depleted",
    )
    with pytest.raises(SampleStateError, match="status depleted"):
        aliquot_sample(enrolled_db, parent, [0.1], operator="lab1")


def test_consumed_and_disposed_samples_cannot_be_used(enrolled_db: Database):
    a, b = add_samples(enrolled_db, 2, volume_ml=2.0)
    assert consume_sample(enrolled_db, a, amount=0.5, operator="lab1", reason="ELISA batch 7") == 1.5
    assert consume_sample(enrolled_db, a, operator="lab1", reason="ELISA batch 8") == 0.0
    assert _sample(enrolled_db, a).status == "consumed"
    with pytest.raises(SampleStateError, match="consumed"):
        aliquot_sample(enrolled_db, a, [0.1], operator="lab1")
    dispose_sample(enrolled_db, b, operator="lab1", reason="tube cracked")
    for action in (
        lambda: aliquot_sample(enrolled_db, b, [0.1], operator="lab1"),
        lambda: consume_sample(enrolled_db, b, operator="lab1", reason="x"),
        lambda: dispose_sample(enrolled_db, b, operator="lab1", reason="again"),
    ):
        with pytest.raises(SampleStateError, match="disposed"):
            action()


def test_derivative_and_pool(enrolled_db: Database):
    [buffy] = add_samples(enrolled_db, 1, specimen_type="buffy_coat", volume_ml=1.0)
    dna = derive_sample(enrolled_db, buffy, "dna", taken=0.5, yield_quantity=12.5, operator="lab1")
    extracted = _sample(enrolled_db, dna)
    assert dna.startswith("SABR-DN-") and (extracted.kind, extracted.quantity, extracted.quantity_unit) == (
        "derivative",
        12.5,
        "ug",
    )
    assert _sample(enrolled_db, buffy).remaining_quantity == 0.5
    a, b = add_samples(enrolled_db, 2, volume_ml=1.0)
    pooled = pool_samples(enrolled_db, {a: 0.5, b: 1.0}, operator="lab1")
    assert (_sample(enrolled_db, pooled).kind, _sample(enrolled_db, pooled).quantity) == ("pool", 1.5)
    assert lineage(enrolled_db, pooled)["parents"] == sorted([a, b])
    assert _sample(enrolled_db, b).status == "depleted"
    [other_patient] = add_samples(enrolled_db, 1, study_id="SABR-RCC-002")
    with pytest.raises(Exception, match="share participant"):
        pool_samples(enrolled_db, {a: 0.1, other_patient: 0.1}, operator="lab1")


def test_freeze_thaw_counts_equal_the_hand_worked_example(enrolled_db: Database):
    T0 = _t0()
    # parent: frozen, thawed (1), frozen, thawed (2), aliquoted -> child inherits 2;
    # child: frozen, thawed -> 3; parent refrozen and thawed once more -> 3; child stays 3.
    create_storage(enrolled_db, "F1/S1/R1/B01", geometry="9x9", operator="lab1")
    [parent] = add_samples(enrolled_db, 1)
    box = "F1/S1/R1/B01"
    place_sample(enrolled_db, parent, box, "A1", operator="lab1", at=T0)
    thaw_sample(enrolled_db, parent, operator="lab1", at=T0 + timedelta(days=10))
    place_sample(enrolled_db, parent, box, "A1", operator="lab1", at=T0 + timedelta(days=10, hours=1))
    assert thaw_sample(enrolled_db, parent, operator="lab1", at=T0 + timedelta(days=20)) == 2
    [child] = aliquot_sample(
        enrolled_db, parent, [1.0], operator="lab1", at=T0 + timedelta(days=20, minutes=30)
    )
    assert freeze_thaw_count(enrolled_db, child) == 2
    place_sample(enrolled_db, child, box, "A2", operator="lab1", at=T0 + timedelta(days=20, hours=1))
    thaw_sample(enrolled_db, child, operator="lab1", at=T0 + timedelta(days=30))
    place_sample(enrolled_db, parent, box, "A1", operator="lab1", at=T0 + timedelta(days=21))
    thaw_sample(enrolled_db, parent, operator="lab1", at=T0 + timedelta(days=40))
    assert (freeze_thaw_count(enrolled_db, parent), freeze_thaw_count(enrolled_db, child)) == (3, 3)
    kinds = [e.event_type for e in custody_history(enrolled_db, parent)]
    assert kinds == [
        "collected",
        "received",
        "frozen",
        "thawed",
        "frozen",
        "thawed",
        "aliquoted",
        "frozen",
        "thawed",
    ]


def test_custody_events_are_append_only_in_the_database(enrolled_db: Database):
    [accession_id] = add_samples(enrolled_db, 1)
    for statement in ("UPDATE custody_events SET operator = 'someone else'", "DELETE FROM custody_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            with enrolled_db.engine.begin() as connection:
                connection.execute(text(statement))
    assert len(custody_history(enrolled_db, accession_id)) == 2
