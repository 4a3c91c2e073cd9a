"""IBSI-1 image processing: each step against analytic values and the CT phantom's reference checkpoints.

References: IBSI reference manual (Zwanenburg et al., arXiv:1612.07003) sections 2.4 (grid-centred
interpolation), 2.5 (re-segmentation), 2.7 (discretisation); the checkpoint values of
``tests/data/ibsi_reference/ibsi_1_chest_config_{a..e}.csv`` (``vox_dim_x_interp_img``,
``int_mask_vox_count_interp_roi``, ``int_mask_mean_int_reseg_roi``, ``ih_mean`` ...).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sabrkit.errors import ConfigError, EmptyMaskError, ImageGeometryError
from sabrkit.features.ibsi import compare_checkpoints, read_ibsi_reference
from sabrkit.features.ibsi_processing import (
    IBSIProcessing,
    centred_grid,
    discretise,
    interpolate_mask,
    process_roi,
    resample_image,
    resegment,
)
from sabrkit.features.params import load_params

IBSI_REFERENCE = Path(__file__).parents[1] / "data" / "ibsi_reference"


def _image(array: np.ndarray, spacing: tuple[float, float, float], origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


# ---- each step on synthetic images with analytic answers -------------------------------------


def test_grid_is_centred_and_sized_as_the_manual_says() -> None:
    # manual 2.4: n_new = ceil(n s / s_new); the CT phantom's 204 x 0.977 mm -> 100 voxels of 2 mm
    size, spacing, first = centred_grid((204, 201, 60), (0.977, 0.977, 3.0), (2.0, 2.0, None))
    assert size == (100, 99, 60) and spacing == (2.0, 2.0, 3.0)
    # both grids share their centre: (n - 1)/2 in old index units
    for n, s, n_new, s_new, f in zip((204, 201, 60), (0.977, 0.977, 3.0), size, spacing, first):
        assert f + (n_new - 1) / 2 * s_new / s == pytest.approx((n - 1) / 2)
    image = _image(np.zeros((6, 11, 13), np.float32), (0.7, 0.9, 3.0), origin=(-5.0, 2.0, 10.0))
    out = resample_image(image, (2.0, 2.0, 2.0))
    centre_in = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
    centre_out = out.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in out.GetSize()])
    assert np.allclose(centre_in, centre_out)
    assert out.GetSize() == (math.ceil(13 * 0.7 / 2), math.ceil(11 * 0.9 / 2), math.ceil(6 * 3 / 2))


def test_linear_interpolation_of_a_ramp_is_exact_and_rounding_gives_whole_units() -> None:
    z, y, x = np.mgrid[0:8, 0:9, 0:10].astype(np.float64)
    spacing = (1.0, 1.0, 2.0)
    image = _image(3.0 * x + 0.5 * y - 2.0 * z, spacing)
    out = resample_image(image, (0.75, 0.75, 1.5))
    values = sitk.GetArrayFromImage(out)
    zz, yy, xx = np.mgrid[0 : values.shape[0], 0 : values.shape[1], 0 : values.shape[2]].astype(np.float64)
    points = np.array(
        [out.TransformContinuousIndexToPhysicalPoint((float(i), float(j), float(k)))
         for i, j, k in zip(xx.ravel(), yy.ravel(), zz.ravel())]
    )  # fmt: skip
    expected = (3.0 * points[:, 0] + 0.5 * points[:, 1] - 2.0 * points[:, 2] / 2.0).reshape(values.shape)
    inside = (points[:, 0] >= 0) & (points[:, 0] <= 9) & (points[:, 1] >= 0) & (points[:, 1] <= 8)
    inside &= (points[:, 2] >= 0) & (points[:, 2] <= 14)
    assert np.allclose(values.ravel()[inside], expected.ravel()[inside], atol=1e-9)
    rounded = sitk.GetArrayFromImage(resample_image(image, (0.75, 0.75, 1.5), round_intensities=True))
    assert np.array_equal(rounded, np.rint(values))


def test_mask_is_interpolated_linearly_then_thresholded_at_the_partial_volume_fraction() -> None:
    mask = np.zeros((4, 4, 12), np.uint8)
    mask[..., :6] = 1  # half-space x < 5.5 (voxel centres 0..5 inside)
    image = _image(mask, (1.0, 1.0, 1.0))
    out = sitk.GetArrayFromImage(interpolate_mask(image, (0.5, 1.0, 1.0)))
    # new centres at x = -0.25 + 0.5 k; linear fraction >= 0.5 exactly for x <= 5.5
    centres = -0.25 + 0.5 * np.arange(out.shape[2])
    assert np.array_equal(out[0, 0].astype(bool), centres <= 5.5 + 1e-9)
    strict = sitk.GetArrayFromImage(interpolate_mask(image, (0.5, 1.0, 1.0), threshold=0.9))
    assert strict.sum() < out.sum()


def test_resegmentation_range_sigma_and_their_intersection() -> None:
    values = np.array([-1200.0, -900.0, -100.0, 0.0, 50.0, 100.0, 300.0, 2500.0])
    roi = np.ones(values.shape, bool)
    assert resegment(values, roi, (-1000, 400)).tolist() == [False, True, True, True, True, True, True, False]
    mean, sd = values.mean(), values.std()
    sigma_only = resegment(values, roi, sigma=1.0)
    assert sigma_only.tolist() == (np.abs(values - mean) <= sd).tolist()
    both = resegment(values, roi, (-1000, 400), sigma=1.0)
    # mean and SD come from the interpolated ROI before the range is applied (manual 2.5)
    assert both.tolist() == (sigma_only & resegment(values, roi, (-1000, 400))).tolist()
    assert resegment(values, roi, (-1000, None)).tolist() == (values >= -1000).tolist()


def test_fixed_bin_size_starts_at_the_resegmentation_lower_bound() -> None:
    values = np.array([-440.0, -426.0, -425.0, -1.0, 0.0, 399.0])
    roi = np.ones(values.shape, bool)
    bins, n_bins = discretise(values, roi, bin_width=25, lower_bound=-500)
    # IBSI: floor((x + 500) / 25) + 1, although the ROI does not reach the bound
    assert bins.tolist() == [3, 3, 4, 20, 21, 36] and n_bins == 36
    # pyradiomics' edges start at floor(min / 25) * 25 = -450: floor(x / 25) - floor(-440 / 25) + 1
    pyradiomics_bins = np.floor(values / 25) - np.floor(values.min() / 25) + 1
    assert pyradiomics_bins.tolist() == [1, 1, 2, 18, 19, 34]
    # no range: IBSI starts at the ROI minimum
    unbounded, _ = discretise(values, roi, bin_width=25)
    assert unbounded.tolist() == [1, 1, 1, 18, 18, 34]
    fbn, n = discretise(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), np.ones(5, bool), bin_count=4)
    assert fbn.tolist() == [1, 2, 3, 4, 4] and n == 4
    with pytest.raises(ConfigError, match="exactly one"):
        discretise(values, roi, bin_width=25, bin_count=32)


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_cropped_interpolation_gives_the_whole_grid_values_in_the_roi(  # type: ignore[no-untyped-def]
    make_ct_case, interpolation: str
) -> None:
    image, mask = make_ct_case(
        size_xyz=(60, 56, 24), spacing=(0.7, 0.7, 2.5), radius_mm=6.0, origin=(-3.0, 4.0, 1.0)
    )
    processing = IBSIProcessing(spacing_mm=(1.0, 1.0, 1.0), image_interpolation=interpolation, round_intensities=True,
                                resegment_range=(-1000, 3000))  # fmt: skip
    whole = process_roi(image, mask, processing, bin_width=25)
    cropped = process_roi(image, mask, processing, bin_width=25, crop=True)
    assert cropped.intensities.size < whole.intensities.size / 4
    for roi in (whole, cropped):
        assert (
            roi.morph_mask.sum() == whole.morph_mask.sum()
            and roi.intensity_mask.sum() == whole.intensity_mask.sum()
        )
    # interpolated values agree to ~1e-11 HU (the crop's origin changes float rounding); after rounding
    # to whole HU a value lying exactly on .5 may go either way: at most 1 HU, on a handful of voxels
    full, part = (
        np.sort(whole.intensities[whole.morph_mask]),
        np.sort(cropped.intensities[cropped.morph_mask]),
    )
    assert np.abs(full - part).max() <= 1 and (full != part).mean() <= 0.005
    unrounded = processing.model_copy(update={"round_intensities": False})
    full = np.sort(process_roi(image, mask, unrounded, bin_width=25).intensities[whole.morph_mask])
    part_roi = process_roi(image, mask, unrounded, bin_width=25, crop=True)
    assert np.allclose(full, np.sort(part_roi.intensities[part_roi.morph_mask]), rtol=0, atol=1e-9)
    counts = ("vox_count", "bb_dim")
    same = {k: v for k, v in whole.checkpoints().items() if any(c in k for c in counts) and "_roi" in k}
    assert same and all(cropped.checkpoints()[k] == v for k, v in same.items())
    assert "mean_int_interp_img" not in cropped.checkpoints()


def test_processing_errors_name_the_problem() -> None:
    image = _image(np.zeros((4, 4, 4), np.float32), (1.0, 1.0, 1.0))
    with pytest.raises(EmptyMaskError, match="label 1"):
        process_roi(image, _image(np.zeros((4, 4, 4), np.uint8), (1.0, 1.0, 1.0)), IBSIProcessing())
    with pytest.raises(ImageGeometryError, match="differs"):
        process_roi(image, _image(np.ones((4, 4, 5), np.uint8), (1.0, 1.0, 1.0)), IBSIProcessing())
    with pytest.raises(EmptyMaskError, match="re-segmentation"):
        process_roi(image, _image(np.ones((4, 4, 4), np.uint8), (1.0, 1.0, 1.0)),
                    IBSIProcessing(resegment_range=(100, 200)), bin_width=25)  # fmt: skip
    with pytest.raises(ConfigError, match="resegment_range"):
        IBSIProcessing.from_mapping({"resegment_range": [400, -500]})
    with pytest.raises(ConfigError, match="spacing_mm"):
        IBSIProcessing.from_mapping({"spacing_mm": [0, 1, 1]})
    with pytest.raises(ConfigError, match="spacing"):
        IBSIProcessing.from_mapping({"spacing": [1, 1, 1]})


# ---- each step on the CT phantom vs the reference checkpoints (configurations A-E) -----------

STEPS = {
    "resampling grid": ("img_dim_", "vox_dim_", "_interp_img"),
    "mask interpolation": ("_interp_roi",),
    "re-segmentation": ("_reseg_roi",),
    "bin edges": ("ih_",),
}


@pytest.fixture(scope="module")
def ct_checkpoints(ibsi_ct_data: Path) -> dict[str, pd.DataFrame]:
    image = sitk.ReadImage(str(ibsi_ct_data / "ibsi_ct_phantom" / "nifti" / "image" / "phantom.nii.gz"))
    mask = sitk.ReadImage(str(ibsi_ct_data / "ibsi_ct_phantom" / "nifti" / "mask" / "mask.nii.gz"))
    out = {}
    for config in "abcde":
        params = load_params(f"ibsi_ct_{config}")
        assert params.preprocessing is not None
        bin_count = params.setting.get("binCount")
        roi = process_roi(image, mask, params.preprocessing, bin_count=bin_count,
                          bin_width=None if bin_count else params.setting["binWidth"])  # fmt: skip
        reference = read_ibsi_reference(IBSI_REFERENCE / f"ibsi_1_chest_config_{config}.csv")
        out[config.upper()] = compare_checkpoints(roi.checkpoints(), reference)
    return out


@pytest.mark.parametrize("config", list("ABCDE"))
@pytest.mark.parametrize("step", list(STEPS))
def test_each_step_matches_the_reference_checkpoints(ct_checkpoints: dict[str, pd.DataFrame], config: str,
                                                     step: str) -> None:  # fmt: skip
    table = ct_checkpoints[config]
    rows = table.loc[table["ibsi_tag"].map(lambda tag: any(part in tag for part in STEPS[step]))]
    assert len(rows) >= 4, (step, rows)
    off = rows.loc[~rows["match"]]
    assert off.empty, f"configuration {config}, {step}:\n{off}"


def test_pyradiomics_style_preprocessing_misses_the_checkpoints(ibsi_ct_data: Path) -> None:
    """Negative control: the checkpoints distinguish IBSI processing from pyradiomics' choices."""
    image = sitk.ReadImage(str(ibsi_ct_data / "ibsi_ct_phantom" / "nifti" / "image" / "phantom.nii.gz"))
    mask = sitk.ReadImage(str(ibsi_ct_data / "ibsi_ct_phantom" / "nifti" / "mask" / "mask.nii.gz"))
    reference = read_ibsi_reference(IBSI_REFERENCE / "ibsi_1_chest_config_e.csv")
    ibsi = load_params("ibsi_ct_e").preprocessing
    assert ibsi is not None
    # no HU rounding and nearest-neighbour mask, bins counted from the ROI minimum
    variant = ibsi.model_copy(update={"round_intensities": False, "mask_interpolation": "nearest"})
    roi = process_roi(image, mask, variant, bin_count=32)
    table = compare_checkpoints(roi.checkpoints(), reference)
    assert not table["match"].all(), table


def test_monai_style_transforms_compose_and_keep_other_keys(make_ct_case) -> None:  # type: ignore[no-untyped-def]
    from monai.transforms import Compose

    from sabrkit.features.ibsi_transforms import IBSIProcess, IBSIProcessd

    image, mask = make_ct_case()
    settings = {"spacing_mm": [1.0, 1.0, 1.0], "round_intensities": True, "resegment_range": [-1000, 400]}
    direct = IBSIProcess(settings, bin_width=25)(image, mask)
    pipeline = Compose([IBSIProcessd(settings, bin_width=25)])
    sample = pipeline({"image": image, "mask": mask, "lesion_id": "SABR-RCC-001-L1"})
    assert sample["lesion_id"] == "SABR-RCC-001-L1" and sample["image"] is image
    assert sample["ibsi_roi"].checkpoints() == direct.checkpoints()
    with pytest.raises(ConfigError, match="resegment_range"):
        IBSIProcessd({"resegment_range": [5, 1]})
