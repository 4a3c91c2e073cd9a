"""N4 bias-field correction and z-score / percentile normalisation (array and dict forms)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from monai.transforms import Compose

from sabrkit.errors import ConfigError, EmptyMaskError
from sabrkit.imaging import (
    N4BiasFieldCorrection,
    N4BiasFieldCorrectiond,
    PercentileNormalize,
    PercentileNormalized,
    ZScoreNormalize,
    ZScoreNormalized,
)


def _mr_like(rng: np.random.Generator, bias: bool = True) -> tuple[sitk.Image, np.ndarray]:
    """Two tissues (100 and 160) in a body ellipsoid, times a smooth bias field varying 0.6..1.4."""
    z, y, x = np.mgrid[0:24, 0:48, 0:48].astype(float)
    body = ((x - 23.5) / 21) ** 2 + ((y - 23.5) / 21) ** 2 + ((z - 11.5) / 11) ** 2 < 1
    tissue = np.where(((x - 23.5) / 8) ** 2 + ((y - 23.5) / 8) ** 2 < 1, 160.0, 100.0) * body
    field = 1.0 + 0.4 * (x - 23.5) / 23.5 if bias else np.ones_like(x)
    image = sitk.GetImageFromArray((tissue * field + rng.normal(0, 2, x.shape) * body).astype(np.float32))
    image.SetSpacing((2.0, 2.0, 3.0))
    return image, body


def _cov(values: np.ndarray) -> float:
    return float(values.std() / values.mean())


def test_n4_removes_most_of_a_smooth_bias_field(rng: np.random.Generator) -> None:
    image, body = _mr_like(rng)
    corrected = N4BiasFieldCorrection(shrink_factor=2, iterations=(30, 30))(image)
    outer = body & ~(np.abs(np.mgrid[0:24, 0:48, 0:48][2] - 23.5) < 9)  # mostly the 100-tissue
    before = sitk.GetArrayFromImage(image)[outer]
    after = sitk.GetArrayFromImage(corrected)[outer]
    assert corrected.GetPixelID() == sitk.sitkFloat32 and corrected.GetSpacing() == image.GetSpacing()
    assert _cov(after) < 0.6 * _cov(before)


def test_n4_dict_form_uses_the_mask_key_and_leaves_other_keys(rng: np.random.Generator) -> None:
    image, body = _mr_like(rng)
    mask = sitk.GetImageFromArray(body.astype(np.uint8))
    mask.CopyInformation(image)
    out = N4BiasFieldCorrectiond(("image",), mask_key="body", shrink_factor=2, iterations=(10,))(
        {"image": image, "body": mask, "lesion_id": "SABR-RCC-001-L1"}
    )
    assert out["lesion_id"] == "SABR-RCC-001-L1" and out["body"] is mask
    assert out["image"].GetPixelID() == sitk.sitkFloat32


def test_zscore_over_a_mask_gives_mean_zero_sd_one_there(rng: np.random.Generator) -> None:
    image, body = _mr_like(rng, bias=False)
    mask = sitk.GetImageFromArray(body.astype(np.uint8))
    mask.CopyInformation(image)
    values = sitk.GetArrayFromImage(ZScoreNormalize()(image, mask))[body]
    assert values.mean() == pytest.approx(0.0, abs=1e-5) and values.std() == pytest.approx(1.0, abs=1e-4)
    whole = sitk.GetArrayFromImage(ZScoreNormalize()(image))
    assert whole.mean() == pytest.approx(0.0, abs=1e-5)


def test_percentile_normalisation_maps_the_percentiles_to_0_and_1() -> None:
    image = sitk.GetImageFromArray(np.arange(1000, dtype=np.float32).reshape(10, 10, 10))
    out = sitk.GetArrayFromImage(PercentileNormalize(10, 90)(image)).ravel()
    lo, hi = np.percentile(np.arange(1000), [10, 90])
    assert out[int(lo)] == pytest.approx(0.0, abs=1e-6) and out[500] == pytest.approx(
        (500 - lo) / (hi - lo), rel=1e-6
    )
    assert out.min() == 0.0 and out.max() == 1.0
    unclipped = sitk.GetArrayFromImage(PercentileNormalize(10, 90, clip=False)(image))
    assert unclipped.min() < 0 and unclipped.max() > 1


def test_dict_forms_compose_with_monai_and_touch_only_their_keys(rng: np.random.Generator) -> None:
    image, body = _mr_like(rng, bias=False)
    mask = sitk.GetImageFromArray(body.astype(np.uint8))
    mask.CopyInformation(image)
    pipeline = Compose(
        [ZScoreNormalized(("image",), mask_key="mask"), PercentileNormalized(("image",), lower=0, upper=100)]
    )
    out = pipeline({"image": image, "mask": mask, "lesion_id": "x"})
    assert out["mask"] is mask and out["lesion_id"] == "x"
    values = sitk.GetArrayFromImage(out["image"])
    assert values.min() == 0.0 and values.max() == 1.0


def test_bad_settings_and_empty_masks_are_refused(rng: np.random.Generator) -> None:
    with pytest.raises(ConfigError):
        PercentileNormalize(90, 10)
    with pytest.raises(ConfigError):
        N4BiasFieldCorrection(shrink_factor=0)
    with pytest.raises(ConfigError):
        ZScoreNormalize(eps=0)
    image, _ = _mr_like(rng)
    empty = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(image)
    with pytest.raises(EmptyMaskError):
        ZScoreNormalize()(image, empty)
