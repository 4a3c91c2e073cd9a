"""SPREC 3.0 codes derived from recorded times and conditions, against hand-worked examples.

Each example below was coded by hand from the SPREC fluid table (see sabrkit.biobank.sprec for
the version and sources); the arithmetic is written next to it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sabrkit.biobank.sprec import (
    SPREC_VERSION,
    Centrifugation,
    Preanalytics,
    centrifugation_code,
    derive_sprec,
    post_centrifugation_code,
    pre_centrifugation_code,
    storage_code,
)
from sabrkit.errors import ValidationError

T0 = datetime(2024, 5, 27, 8, 0)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


HAND_WORKED = [
    # double-spun plasma, K-EDTA: processed 1.5 h after collection at RT -> A; 2000 g 10 min 2-10 °C braking -> D;
    # 16000 g 10 min 2-10 °C braking -> J; spins end 09:50, frozen 10:05 = 15 min at 2-10 °C -> A;
    # 0.5-2 mL PP tube at -80 °C -> A
    (
        Preanalytics(
            "plasma",
            T0,
            "PED",
            at(1.5),
            "room_temperature",
            Centrifugation(2000, 10, "refrigerated", True),
            Centrifugation(16000, 10, "refrigerated", True),
            "refrigerated",
            at(2 + 5 / 60),
            "pp_tube_0.5_2ml",
            -80,
        ),
        "PL2-PED-A-D-J-A-A",
    ),
    # serum, SST: clotted 2.5 h at RT -> C; 1500 g 10 min RT braking -> B; no second spin -> N;
    # spin ends 10:40, frozen 11:40 = exactly 1 h (bands are [lower, upper)) at RT -> D; cryotube -80 °C -> D
    (
        Preanalytics(
            "serum",
            T0,
            "SST",
            at(2.5),
            "room_temperature",
            Centrifugation(1500, 10, "room_temperature", True),
            None,
            "room_temperature",
            at(3 + 40 / 60),
            "cryotube_1_2ml",
            -80,
        ),
        "SER-SST-C-B-N-D-D",
    ),
    # whole blood, K-EDTA, kept at 2-10 °C for 45 min then aliquoted -> B; never spun -> N, N, N;
    # original tube at -20 °C -> Y
    (
        Preanalytics(
            "whole_blood",
            T0,
            "PED",
            at(0.75),
            "refrigerated",
            frozen_at=at(1),
            storage_container="original_primary_container",
            storage_temperature_c=-20,
        ),
        "BLD-PED-B-N-N-N-Y",
    ),
    # spot urine, nothing recorded but the container -> every derived element unknown (X)
    (Preanalytics("urine", T0, "PPS"), "URN-PPS-X-X-X-X-X"),
    # single-spun plasma processed after exactly 4 h at 2-10 °C -> F; 2000 g 10 min RT no braking -> A; N;
    # frozen 25 h after the spin at RT -> J; 40-500 µL PP tube in liquid nitrogen (-196 °C) -> W
    (
        Preanalytics(
            "plasma",
            T0,
            "PED",
            at(4),
            "refrigerated",
            Centrifugation(2000, 10, "room_temperature", False),
            None,
            "room_temperature",
            at(4 + 10 / 60 + 25),
            "pp_tube_40_500ul",
            -196,
        ),
        "PL1-PED-F-A-N-J-W",
    ),
    # PBMC from a CPT tube at 35-38 °C, processed after 1 h -> O; 800 g 30 min RT no braking -> M; N;
    # frozen 3 h after the spin at 2-10 °C -> E; cryotube in liquid nitrogen -> C
    (
        Preanalytics(
            "pbmc",
            T0,
            "CPT",
            at(1),
            "body",
            Centrifugation(800, 30, "room_temperature", False),
            None,
            "refrigerated",
            at(1.5 + 3),
            "cryotube_1_2ml",
            -196,
        ),
        "CEL-CPT-O-M-N-E-C",
    ),
]


@pytest.mark.parametrize(("record", "expected"), HAND_WORKED)
def test_hand_worked_examples(record: Preanalytics, expected: str):
    assert derive_sprec(record) == expected


def test_version_is_stated():
    assert SPREC_VERSION == "3.0"


def test_tissue_and_complex_derivatives_get_no_fluid_code():
    assert derive_sprec(Preanalytics("ffpe", T0)) is None
    assert derive_sprec(Preanalytics("dna", T0)) is None


@pytest.mark.parametrize(
    ("hours", "temperature", "code"),
    [
        (1.99, "room_temperature", "A"),
        (2.0, "room_temperature", "C"),
        (2.0, "refrigerated", "D"),
        (11.9, "refrigerated", "H"),
        (12, "room_temperature", "I"),
        (47.9, "refrigerated", "L"),
        (48, "room_temperature", "M"),
        (100, "refrigerated", "N"),
        (1, "body", "O"),
        (3, "body", "Z"),
        (None, "room_temperature", "X"),
        (1, None, "X"),
    ],
)
def test_pre_centrifugation_bands(hours: float | None, temperature: str | None, code: str):
    delay = None if hours is None else timedelta(hours=hours)
    assert pre_centrifugation_code(delay, temperature) == code


def test_centrifugation_and_post_and_storage_elements():
    assert centrifugation_code(Centrifugation(4000, 10, "room_temperature", True)) == "E"
    assert centrifugation_code(Centrifugation(8000, 15, "refrigerated", True)) == "H"
    assert (
        centrifugation_code(Centrifugation(4000, 10, "room_temperature", False)) == "Z"
    )  # not a SPREC option
    assert centrifugation_code(Centrifugation(2000, 5, "room_temperature", True)) == "Z"
    assert centrifugation_code(None) == "N" and centrifugation_code(None, known=False) == "X"
    assert post_centrifugation_code(timedelta(hours=10), "refrigerated", centrifuged=True) == "G"
    assert post_centrifugation_code(None, None, centrifuged=False) == "N"
    assert storage_code("pp_tube_0.5_2ml", -25) == "B"
    assert storage_code("pp_tube_0.5_2ml", -140) == "V"
    assert storage_code("microplate", -50) == "Z"  # between the bands
    with pytest.raises(ValidationError, match="storage container"):
        storage_code("bag of ice", -80)


def test_inconsistent_records_are_refused():
    with pytest.raises(ValidationError, match="processing at 2024-05-27T07:00 before collection"):
        derive_sprec(Preanalytics("plasma", T0, processed_at=at(-1)))
    with pytest.raises(ValidationError, match="freezing"):
        derive_sprec(Preanalytics("plasma", T0, processed_at=at(1), frozen_at=at(0.5)))
    with pytest.raises(ValidationError, match="end of centrifugation"):  # frozen during the 15-minute spin
        derive_sprec(
            Preanalytics(
                "plasma", T0, processed_at=at(1), centrifugation=Centrifugation(2000, 15), frozen_at=at(1.1)
            )
        )
    with pytest.raises(ValidationError, match="primary container"):
        derive_sprec(Preanalytics("plasma", T0, "ABC"))
    with pytest.raises(ValidationError, match="g-force and minutes"):
        Centrifugation(0, 10)
