"""One specimen at a time (the bench form, the JSON API): the same rules and writes as an import row."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sabrkit.audit import AuditLogEntry, verify_audit
from sabrkit.biobank import accession_sample
from sabrkit.biobank.tables import CustodyEvent, Sample
from sabrkit.errors import ImportValidationError


def test_one_specimen_gets_an_id_custody_events_and_audit_entries(enrolled_db):
    accession_id = accession_sample(
        enrolled_db,
        {
            "study_id": "SABR-RCC-001",
            "timepoint": "baseline",
            "specimen_type": "plasma",
            "collected_at": "2024-06-03T09:30",
            "volume_ml": 4,
            "centrifugation_g": "",
            "frozen_at": None,
        },
        operator="lab1",
    )
    assert accession_id.startswith("SABR-PL-")
    with enrolled_db.session() as session:
        sample = session.execute(select(Sample).where(Sample.accession_id == accession_id)).scalar_one()
        events = session.scalars(
            select(CustodyEvent.event_type).where(CustodyEvent.sample_id == sample.id)
        ).all()
        logged = session.scalar(
            select(func.count()).where(
                AuditLogEntry.table_name == "samples", AuditLogEntry.row_key == str(sample.id)
            )
        )
    assert sample.remaining_quantity == 4.0 and sample.quantity_unit == "mL"
    assert sorted(events) == ["collected", "received"] and logged == 1
    assert verify_audit(enrolled_db).ok


def test_every_problem_is_reported_and_nothing_written(enrolled_db):
    with enrolled_db.session() as session:
        before = session.scalar(select(func.count()).select_from(Sample))
    with pytest.raises(ImportValidationError) as caught:
        accession_sample(
            enrolled_db,
            {
                "study_id": "SABR-RCC-001",
                "timepoint": "month_5",
                "specimen_type": "plasma",
                "collected_at": "2024-06-03T09:30",
                "colour": "red",
            },
            label="form",
        )
    columns = {error.column for error in caught.value.errors}
    assert {"form:timepoint", "form:colour"} <= columns, columns
    with pytest.raises(ImportValidationError, match="processing before collection"):
        accession_sample(
            enrolled_db,
            {
                "study_id": "SABR-RCC-001",
                "timepoint": "baseline",
                "specimen_type": "serum",
                "collected_at": "2024-06-03T09:30",
                "processed_at": "2024-06-03T08:00",
            },
        )
    with enrolled_db.session() as session:
        assert session.scalar(select(func.count()).select_from(Sample)) == before


def test_a_second_tube_of_the_same_minute_needs_confirmation(enrolled_db):
    """The duplicate-accession rule lives in the service: the web form and the API only confirm."""
    from sabrkit.biobank import DuplicateAccessionError

    tube = {
        "study_id": "SABR-RCC-001",
        "timepoint": "baseline",
        "specimen_type": "plasma",
        "collected_at": "2024-06-03T09:30",
        "volume_ml": 4,
    }
    first = accession_sample(enrolled_db, tube, operator="lab1")
    with enrolled_db.session() as session:
        before = session.scalar(select(func.count()).select_from(Sample))
    with pytest.raises(DuplicateAccessionError, match=first) as caught:
        accession_sample(enrolled_db, {**tube, "collected_at": "2024-06-03T09:30:40"}, operator="lab1")
    assert caught.value.accession_ids == [first] and caught.value.field == "collected_at"
    with enrolled_db.session() as session:
        assert session.scalar(select(func.count()).select_from(Sample)) == before
    # another minute, another type or another timepoint is another tube
    accession_sample(enrolled_db, {**tube, "collected_at": "2024-06-03T09:31"}, operator="lab1")
    accession_sample(enrolled_db, {**tube, "specimen_type": "serum"}, operator="lab1")
    second = accession_sample(enrolled_db, tube, operator="lab1", allow_duplicate=True)
    assert second != first
