from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import SimpleITK as sitk
from monai.transforms import Compose, Lambdad, MapTransform, Transform

from sabrkit.errors import ConfigError, EmptyMaskError, ImageGeometryError
from sabrkit.imaging import (
    CheckGeometryd,
    ClipIntensity,
    ClipIntensityd,
    CropToMask,
    CropToMaskd,
    ResampleToSpacing,
    ResampleToSpacingd,
    mask_bounding_box,
    sabrkit_cause,
)


def _lesion(make_ct_case: Callable, **kwargs: object) -> dict[str, object]:
    image, mask = make_ct_case(**kwargs)
    return {
        "lesion_id": "SABR-RCC-001-L1",
        "study_id": "SABR-RCC-001",
        "image_path": "x.nii.gz",
        "image": image,
        "mask": mask,
    }


def test_pairs_subclass_monai() -> None:
    pairs = [
        (ResampleToSpacing, ResampleToSpacingd),
        (ClipIntensity, ClipIntensityd),
        (CropToMask, CropToMaskd),
    ]
    for array_form, dict_form in pairs:
        assert issubclass(array_form, Transform) and issubclass(dict_form, MapTransform)
    assert issubclass(CheckGeometryd, MapTransform)


def test_resample_to_spacing_keeps_extent_and_mask_volume(make_ct_case: Callable) -> None:
    image, mask = make_ct_case(spacing=(0.8, 0.8, 2.0))
    out = ResampleToSpacing(1.0, "bspline")(image)
    assert out.GetSpacing() == (1.0, 1.0, 1.0)
    assert out.GetSize() == (32, 32, 40)  # round(40*0.8), round(40*0.8), round(20*2)
    assert out.GetOrigin() == image.GetOrigin() and out.GetPixelID() == sitk.sitkFloat32
    out_mask = ResampleToSpacing((1.0, 1.0, 1.0), "nearest")(mask)
    assert out_mask.GetPixelID() == mask.GetPixelID()
    assert set(np.unique(sitk.GetArrayViewFromImage(out_mask))) == {0, 1}
    volume_before = sitk.GetArrayViewFromImage(mask).sum() * 0.8 * 0.8 * 2.0
    volume_after = sitk.GetArrayViewFromImage(out_mask).sum() * 1.0
    assert volume_after == pytest.approx(volume_before, rel=0.15)


@pytest.mark.parametrize("bad", [0.0, -1.0, (1.0, float("nan"), 1.0), ()])
def test_resample_rejects_bad_spacing(bad: object) -> None:
    with pytest.raises(ConfigError, match="spacing"):
        ResampleToSpacing(bad)  # type: ignore[arg-type]


def test_resample_rejects_unknown_interpolator_and_wrong_axes(make_ct_case: Callable) -> None:
    with pytest.raises(ConfigError, match="cubic"):
        ResampleToSpacing(1.0, "cubic")
    with pytest.raises(ConfigError, match="interpolator"):
        ResampleToSpacingd(("image", "mask"), 1.0, ("linear", "nearest", "nearest"))
    image, _ = make_ct_case()
    with pytest.raises(ConfigError, match="3 values"):
        ResampleToSpacing((1.0, 1.0))(image)


def test_clip_intensity_window(make_ct_case: Callable) -> None:
    image, _ = make_ct_case()
    out = sitk.GetArrayFromImage(ClipIntensity(-500, 20)(image))
    assert out.min() == -500 and out.max() == 20 and out.dtype == np.int16
    with pytest.raises(ConfigError, match="lower < upper"):
        ClipIntensity(100, -100)


def test_crop_to_mask_margin_and_clamp(make_ct_case: Callable) -> None:
    image, mask = make_ct_case(spacing=(1.0, 1.0, 2.0), radius_mm=6.0)
    index, size = mask_bounding_box(mask, margin_mm=0.0)
    foreground = np.argwhere(sitk.GetArrayViewFromImage(mask) == 1)  # (z, y, x)
    assert index == tuple(int(v) for v in foreground.min(axis=0)[::-1])
    index4, size4 = mask_bounding_box(mask, margin_mm=4.0)
    assert index4 == (index[0] - 4, index[1] - 4, index[2] - 2)
    assert size4 == (size[0] + 8, size[1] + 8, size[2] + 4)
    huge_index, huge_size = mask_bounding_box(mask, margin_mm=500.0)
    assert huge_index == (0, 0, 0) and huge_size == image.GetSize()
    cropped = CropToMask(margin_mm=4.0)(image, mask)
    assert cropped.GetSize() == size4
    assert cropped.TransformIndexToPhysicalPoint((0, 0, 0)) == image.TransformIndexToPhysicalPoint(index4)
    cropped_mask = CropToMask(margin_mm=4.0)(mask, mask)
    assert sitk.GetArrayViewFromImage(cropped_mask).sum() == sitk.GetArrayViewFromImage(mask).sum()
    with pytest.raises(EmptyMaskError, match="L9"):
        CropToMask()(image, mask * 0, case_id="L9")


def test_dict_forms_touch_only_their_keys(make_ct_case: Callable) -> None:
    lesion = _lesion(make_ct_case)
    out = ClipIntensityd(("image",), -100, 100)(lesion)
    assert out is not lesion and out["mask"] is lesion["mask"]
    assert {k: out[k] for k in ("lesion_id", "study_id", "image_path")} == {
        "lesion_id": "SABR-RCC-001-L1",
        "study_id": "SABR-RCC-001",
        "image_path": "x.nii.gz",
    }
    assert sitk.GetArrayViewFromImage(lesion["image"]).min() < -100  # input dict unchanged


def test_compose_with_monai_transforms(make_ct_case: Callable) -> None:
    pipeline = Compose(
        [
            CheckGeometryd(("image", "mask")),
            CropToMaskd(("image", "mask"), margin_mm=5.0),
            ResampleToSpacingd(("image", "mask"), 1.0, ("bspline", "nearest")),
            ClipIntensityd(("image",), -1000, 400),
            Lambdad(("image",), lambda im: sitk.Cast(im, sitk.sitkInt16)),  # a MONAI transform in the chain
        ]
    )
    out = pipeline(_lesion(make_ct_case))
    assert out["lesion_id"] == "SABR-RCC-001-L1" and out["study_id"] == "SABR-RCC-001"
    assert out["image"].GetSpacing() == (1.0, 1.0, 1.0) and out["image"].GetPixelID() == sitk.sitkInt16
    assert out["image"].GetSize() == out["mask"].GetSize()
    assert sitk.GetArrayViewFromImage(out["mask"]).sum() > 0
    assert sitk.GetArrayViewFromImage(out["image"]).max() <= 400


def test_check_geometryd_stops_with_geometry_error(make_ct_case: Callable) -> None:
    lesion = _lesion(make_ct_case)
    lesion["mask"].SetSpacing((1.0, 1.0, 2.0))
    with pytest.raises(ImageGeometryError, match=r"SABR-RCC-001-L1.*spacing"):
        CheckGeometryd()(lesion)
    # MONAI's Compose wraps transform errors in RuntimeError; sabrkit_cause recovers ours.
    with pytest.raises(RuntimeError) as info:
        Compose([CheckGeometryd(), ClipIntensityd()])(lesion)
    cause = sabrkit_cause(info.value)
    assert isinstance(cause, ImageGeometryError) and "SABR-RCC-001-L1" in str(cause)
