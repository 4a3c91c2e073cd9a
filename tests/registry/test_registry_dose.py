"""BED and EQD2 against hand-worked values (alpha/beta = 10 Gy unless stated)."""

from __future__ import annotations

import numpy as np
import pytest

from sabrkit.errors import ValidationError
from sabrkit.registry import bed, bed10, eqd2


@pytest.mark.parametrize(
    ("dose", "fractions", "alpha_beta", "expected_bed", "expected_eqd2"),
    [
        (54.0, 3, 10.0, 151.2, 126.0),  # 54 * (1 + 18/10); 151.2 / 1.2
        (35.0, 5, 10.0, 59.5, 49.583333333),  # 35 * (1 + 7/10); 59.5 / 1.2
        (60.0, 8, 10.0, 105.0, 87.5),  # 60 * (1 + 7.5/10)
        (2.0, 1, 10.0, 2.4, 2.0),  # one 2 Gy fraction: EQD2 is the physical dose
        (54.0, 3, 3.0, 378.0, 226.8),  # late tissue: 54 * (1 + 18/3); 378 / (5/3)
    ],
)
def test_bed_and_eqd2_hand_worked(dose, fractions, alpha_beta, expected_bed, expected_eqd2):
    assert bed(dose, fractions, alpha_beta) == pytest.approx(expected_bed)
    assert eqd2(dose, fractions, alpha_beta) == pytest.approx(expected_eqd2)


def test_bed10_is_bed_with_alpha_beta_10_and_accepts_numpy_numbers():
    assert bed10(np.float64(54.0), np.int64(3)) == pytest.approx(151.2)


def test_conventional_fractionation_eqd2_equals_total_dose():
    assert eqd2(70.0, 35, 10.0) == pytest.approx(70.0)
    assert eqd2(70.0, 35, 3.0) == pytest.approx(70.0)


@pytest.mark.parametrize(
    ("dose", "fractions", "alpha_beta", "rule"),
    [
        (0.0, 3, 10.0, "total dose"),
        (54.0, 0, 10.0, "fractions"),
        (54.0, 2.5, 10.0, "fractions"),
        (54.0, 3, 0.0, "alpha/beta"),
        (float("nan"), 3, 10.0, "total dose"),
    ],
)
def test_invalid_dose_inputs_raise(dose, fractions, alpha_beta, rule):
    with pytest.raises(ValidationError, match=rule):
        bed(dose, fractions, alpha_beta)
