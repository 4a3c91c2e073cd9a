from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import SimpleITK as sitk

from sabrkit.errors import ConfigError, EmptyMaskError, ImageGeometryError
from sabrkit.imaging import check_mask_not_empty, check_same_grid, grid_differences


@pytest.fixture
def pair(make_ct_case: Callable) -> tuple[sitk.Image, sitk.Image]:
    return make_ct_case()


def test_same_grid_passes(pair: tuple[sitk.Image, sitk.Image]) -> None:
    image, mask = pair
    check_same_grid(image, mask, "SABR-RCC-001-L1")
    assert grid_differences(image, mask) == []


def test_spacing_mismatch_names_case_both_values_and_fix(pair: tuple[sitk.Image, sitk.Image]) -> None:
    image, mask = pair
    mask.SetSpacing((1.0, 1.0, 2.0))
    with pytest.raises(ImageGeometryError) as info:
        check_same_grid(image, mask, "SABR-RCC-003-L2")
    message = str(info.value)
    assert "SABR-RCC-003-L2" in message
    assert "image spacing (0.8, 0.8, 2) != mask spacing (1, 1, 2)" in message
    assert "origin" not in message.split(";")[0] and "fix: resample the mask" in message
    assert isinstance(info.value, ValueError)


def test_every_differing_property_is_listed(
    pair: tuple[sitk.Image, sitk.Image], make_ct_case: Callable
) -> None:
    image, _ = pair
    _, other = make_ct_case(size_xyz=(40, 40, 21))
    other.SetOrigin((0.0, 0.0, 0.0))
    other.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    problems = grid_differences(image, other)
    assert [p.split()[1] for p in problems] == ["size", "origin", "direction"]
    assert "(40, 40, 20)" in problems[0] and "(40, 40, 21)" in problems[0]


def test_tolerance_is_relative_to_spacing(pair: tuple[sitk.Image, sitk.Image]) -> None:
    image, mask = pair
    origin = np.array(image.GetOrigin())
    mask.SetOrigin(tuple(origin + 0.5e-4 * 0.8))  # half of tolerance * spacing[0]
    check_same_grid(image, mask, "L1", tolerance=1e-4)
    mask.SetOrigin(tuple(origin + 2e-4 * 0.8))
    with pytest.raises(ImageGeometryError, match="origin"):
        check_same_grid(image, mask, "L1", tolerance=1e-4)
    with pytest.raises(ConfigError):
        check_same_grid(image, mask, "L1", tolerance=-1.0)


def test_mask_voxel_count_and_empty_mask(pair: tuple[sitk.Image, sitk.Image]) -> None:
    _, mask = pair
    assert check_mask_not_empty(mask, "L1") == int(sitk.GetArrayViewFromImage(mask).sum())
    with pytest.raises(EmptyMaskError) as info:
        check_mask_not_empty(mask, "SABR-RCC-009-L1", label=2)
    assert (
        "SABR-RCC-009-L1" in str(info.value) and "label 2" in str(info.value) and "[0, 1]" in str(info.value)
    )
    empty = mask * 0
    with pytest.raises(EmptyMaskError, match="SABR-RCC-009-L3"):
        check_mask_not_empty(empty, "SABR-RCC-009-L3")
