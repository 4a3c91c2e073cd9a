"""Storage hierarchy, placement, moves, search by location and the box map."""

from __future__ import annotations

import json

import pytest
from biobank_helpers import add_samples

from sabrkit.biobank import (
    PositionOccupiedError,
    SampleStateError,
    box_map,
    create_storage,
    custody_history,
    find_samples,
    locate,
    move_sample,
    place_sample,
)
from sabrkit.biobank.storage import parse_position, position_label
from sabrkit.db import Database
from sabrkit.errors import NotFoundError, ValidationError


def test_positions_and_geometry_parse():
    assert parse_position("A1") == (1, 1) and parse_position("j10") == (10, 10)
    assert position_label(9, 9) == "I9"
    for bad in ("1A", "AA1", "A0", ""):
        with pytest.raises(ValidationError):
            parse_position(bad)


def test_storage_levels_boxes_and_placement(enrolled_db: Database):
    assert create_storage(
        enrolled_db, "F1/S1/R1/B01", geometry="9x9", temperature_c=-80, operator="lab1"
    ) == ["F1", "F1/S1", "F1/S1/R1", "F1/S1/R1/B01"]
    assert create_storage(enrolled_db, "F1/S1/R1/B02", geometry="10x10", operator="lab1") == ["F1/S1/R1/B02"]
    with pytest.raises(ValidationError, match="needs a geometry"):
        create_storage(enrolled_db, "F1/S1/R1/B03", operator="lab1")
    with pytest.raises(ValidationError, match="box geometry"):
        create_storage(enrolled_db, "F1/S1/R1/B03", geometry="30x10", operator="lab1")
    a, b, c = add_samples(enrolled_db, 3)
    assert place_sample(enrolled_db, a, "F1/S1/R1/B01", "A1", operator="lab1") == "F1/S1/R1/B01:A1"
    with pytest.raises(PositionOccupiedError) as caught:
        place_sample(enrolled_db, b, "F1/S1/R1/B01", "a1", operator="lab1")
    assert (caught.value.box, caught.value.position) == ("F1/S1/R1/B01", "A1")
    assert "position occupied: F1/S1/R1/B01 position A1" in str(caught.value) and a in str(caught.value)
    with pytest.raises(ValidationError, match="the box is 9x9"):
        place_sample(enrolled_db, b, "F1/S1/R1/B01", "J1", operator="lab1")
    with pytest.raises(NotFoundError, match="box 'F1/S1'"):
        place_sample(enrolled_db, b, "F1/S1", "A1", operator="lab1")
    with pytest.raises(SampleStateError, match="already stored"):
        place_sample(enrolled_db, a, "F1/S1/R1/B01", "B1", operator="lab1")
    place_sample(enrolled_db, b, "F1/S1/R1/B02", "J10", operator="lab1")
    place_sample(enrolled_db, c, "F1/S1/R1/B01", "I9", operator="lab1")

    assert (
        move_sample(enrolled_db, a, "F1/S1/R1/B02", "A1", operator="lab2", reason="box B01 reorganised")
        == "F1/S1/R1/B02:A1"
    )
    moved = custody_history(enrolled_db, a)[-1]
    assert (moved.event_type, moved.operator, moved.location, moved.details) == (
        "moved",
        "lab2",
        "F1/S1/R1/B02:A1",
        "from F1/S1/R1/B01:A1",
    )
    assert locate(enrolled_db, a) == "F1/S1/R1/B02:A1"
    place_sample(enrolled_db, add_samples(enrolled_db, 1)[0], "F1/S1/R1/B01", "A1", operator="lab1")  # freed

    assert [s.accession_id for s in find_samples(enrolled_db, "F1/S1/R1/B02")] == [a, b]
    assert len(find_samples(enrolled_db, "F1")) == 4
    assert [s.accession_id for s in find_samples(enrolled_db, "F1/S1/R1/B02:J10")] == [b]
    assert find_samples(enrolled_db, "F2") == [] and find_samples(enrolled_db, "F1/S1/R1/B0") == []


def test_box_map_text_and_json(enrolled_db: Database):
    create_storage(enrolled_db, "F1/S1/R1/B01", geometry="8x12", operator="lab1")
    a, b = add_samples(enrolled_db, 2)
    place_sample(enrolled_db, a, "F1/S1/R1/B01", "A1", operator="lab1")
    place_sample(enrolled_db, b, "F1/S1/R1/B01", "H12", operator="lab1")
    grid = box_map(enrolled_db, "F1/S1/R1/B01")
    assert (grid.n_rows, grid.n_columns, grid.n_occupied) == (8, 12, 2)
    data = json.loads(grid.to_json())
    assert (data["occupied"], data["free"], len(data["positions"])) == (2, 94, 96)
    assert data["positions"][0] == {"position": "A1", "row": 1, "col": 1, "accession_id": a}
    assert data["positions"][-1]["accession_id"] == b
    text = grid.to_text()
    assert "2 occupied, 94 free" in text and a[5:14] in text and text.splitlines()[-1].startswith("H")
