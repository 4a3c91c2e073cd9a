"""Follow-up imaging: rigid registration recovers a known motion; diameters, size response, delta features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sabrkit.errors import ValidationError
from sabrkit.imaging.followup import (
    delta_features,
    longest_axial_diameter_mm,
    register_rigid,
    resample_to,
    size_response,
)


def test_rigid_registration_recovers_a_known_shift_and_rotation(tiny_cohort) -> None:
    images = pd.read_csv(tiny_cohort / "images.csv")
    planning = sitk.ReadImage(str(tiny_cohort / images.iloc[0].image_path))
    known = sitk.Euler3DTransform()
    known.SetCenter(planning.TransformContinuousIndexToPhysicalPoint([s / 2 for s in planning.GetSize()]))
    known.SetRotation(0.0, 0.0, np.deg2rad(4.0))
    known.SetTranslation((3.0, -2.0, 2.0))
    # the follow-up: follow_up(p) = planning(K^-1 p), so planning(p) = follow_up(K p): registration should find K
    follow_up = sitk.Resample(planning, planning, known.GetInverse(), sitk.sitkLinear, -1024.0)
    found = register_rigid(planning, follow_up)
    points = [
        planning.TransformContinuousIndexToPhysicalPoint([i, j, k])
        for i in (14, 28, 42)
        for j in (14, 28, 42)
        for k in (6, 12, 18)
    ]
    errors = [np.linalg.norm(np.subtract(found.TransformPoint(p), known.TransformPoint(p))) for p in points]
    assert max(errors) < 1.0  # mm, against the 3-4 mm of the applied motion
    aligned = resample_to(follow_up, planning, found)
    centre = tuple(slice(6, -6) for _ in range(3))
    before = np.abs(
        sitk.GetArrayFromImage(follow_up)[centre] - sitk.GetArrayFromImage(planning)[centre]
    ).mean()
    after = np.abs(sitk.GetArrayFromImage(aligned)[centre] - sitk.GetArrayFromImage(planning)[centre]).mean()
    assert after < 0.5 * before


def test_longest_axial_diameter_of_a_disc_and_size_response() -> None:
    mask = np.zeros((5, 60, 60), dtype=np.uint8)
    yy, xx = np.mgrid[:60, :60]
    mask[2] = (yy - 30) ** 2 + (xx - 30) ** 2 <= 20**2  # radius 20 voxels
    image = sitk.GetImageFromArray(mask)
    image.SetSpacing((0.5, 0.5, 2.0))
    assert longest_axial_diameter_mm(image) == pytest.approx(20.0, abs=0.6)  # 41 voxels across at 0.5 mm
    assert longest_axial_diameter_mm(sitk.GetImageFromArray(np.zeros((3, 5, 5), np.uint8))) == 0.0
    assert size_response(20.0, 0.0)[1] == "CR"
    assert size_response(20.0, 13.0) == (pytest.approx(-0.35), "PR")
    assert size_response(20.0, 25.0)[1] == "PD" and size_response(20.0, 23.0)[1] == "SD"
    with pytest.raises(ValidationError):
        size_response(0.0, 3.0)


def test_delta_features_per_month() -> None:
    baseline = pd.DataFrame(
        {"f": [10.0, 0.0], "g": [2.0, 4.0]}, index=pd.Index(["L1", "L2"], name="lesion_id")
    )
    follow = pd.DataFrame({"f": [16.0, 3.0], "g": [1.0, 4.0]}, index=pd.Index(["L1", "L2"], name="lesion_id"))
    delta = delta_features(baseline, follow, pd.Series({"L1": 3.0, "L2": 2.0}))
    assert delta.loc["L1", "delta_abs_f"] == pytest.approx(2.0) and delta.loc[
        "L1", "delta_rel_f"
    ] == pytest.approx(0.2)
    assert np.isnan(delta.loc["L2", "delta_rel_f"]) and delta.loc["L2", "delta_abs_g"] == 0.0
    with pytest.raises(ValidationError, match="after the baseline"):
        delta_features(baseline, follow, 0.0)
