"""RTSTRUCT contours -> masks: the IBSI CT phantom, holes, several contours per slice, bad planes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from sabrkit.errors import EmptyMaskError, ImageGeometryError
from sabrkit.imaging import IngestConfig, ingest_folder, rasterize_contours
from sabrkit.imaging.dicom_index import crawl_dicom, group_series, read_series
from sabrkit.imaging.rtstruct import ON_CONTOUR_TOLERANCE_MM, read_rtstruct, roi_series_uids
from sabrkit.settings import shared_data_dir

IBSI_CT = shared_data_dir() / "ibsi_ct_phantom"
needs_ibsi = pytest.mark.skipif(
    not (IBSI_CT / "dicom" / "mask").is_dir(),
    reason="IBSI CT phantom not found at ../shared/data/ibsi_ct_phantom",
)


def _grid(size=(20, 20, 3), spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    image = sitk.Image(size, sitk.sitkUInt8)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def _square(x0: float, y0: float, x1: float, y1: float, z: float) -> np.ndarray:
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=float)


@needs_ibsi
def test_ibsi_ct_phantom_rtstruct_matches_the_distributed_nifti_mask(tmp_path: Path) -> None:
    # IBSI reference manual: the NIfTI mask is the IBSI team's conversion of DCM_RS_00060.dcm (ROI GTV-1).
    config = IngestConfig(patient_key={"1": "SABR-RCC-900"}, lesion_pattern=r"GTV-(?P<n>\d+)")
    result = ingest_folder(IBSI_CT / "dicom", tmp_path, config)
    assert result.failures == []
    assert list(result.lesions["lesion_id"]) == ["SABR-RCC-900-L1"]
    ours = sitk.ReadImage(str(tmp_path / result.lesions["mask_path"][0]))
    reference = sitk.ReadImage(str(IBSI_CT / "nifti" / "mask" / "mask.nii.gz"))
    assert ours.GetSize() == reference.GetSize()
    np.testing.assert_allclose(ours.GetOrigin(), reference.GetOrigin(), atol=1e-3)
    a, b = sitk.GetArrayFromImage(ours) > 0, sitk.GetArrayFromImage(reference) > 0
    dice = 2 * (a & b).sum() / (a.sum() + b.sum())
    volume_ratio = a.sum() / b.sum()
    assert dice >= 0.98
    assert abs(volume_ratio - 1) <= 0.02
    image = sitk.ReadImage(str(tmp_path / result.lesions["image_path"][0]))
    ibsi_image = sitk.ReadImage(str(IBSI_CT / "nifti" / "image" / "phantom.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(ibsi_image))


@needs_ibsi
def test_ibsi_roi_links_to_its_series_through_contour_image_references() -> None:
    files, failures, _ = crawl_dicom(IBSI_CT / "dicom")
    assert failures == []
    series = group_series(files)
    assert len(series) == 1 and len(next(iter(series.values())).files) == 60
    structure_set = read_rtstruct(next(f.path for f in files if f.modality == "RTSTRUCT"))
    sop_to_series = {f.sop_instance_uid: f.series_uid for f in files if f.is_image}
    assert roi_series_uids(structure_set.rois[0], structure_set, sop_to_series) == tuple(series)
    assert read_series(next(iter(series.values()))).GetPixelID() == sitk.sitkInt16


def test_inner_contour_makes_a_hole_and_two_contours_on_one_slice_both_fill() -> None:
    grid = _grid()
    outer, inner = _square(1.5, 1.5, 12.5, 12.5, 2.0), _square(4.5, 4.5, 8.5, 8.5, 2.0)
    separate = _square(14.5, 14.5, 17.5, 17.5, 2.0)
    mask = sitk.GetArrayFromImage(rasterize_contours([outer, inner, separate], grid))
    assert mask[0].sum() == 0 and mask[2].sum() == 0  # contours sit on slice z = 2 mm only
    expected = np.zeros((20, 20), np.uint8)
    expected[2:13, 2:13] = 1  # voxel centres 2..12 inside the outer square
    expected[5:9, 5:9] = 0  # the hole: centres 5..8
    expected[15:18, 15:18] = 1
    np.testing.assert_array_equal(mask[1], expected)


@pytest.mark.parametrize("clockwise", [False, True])
def test_grid_points_on_the_contour_count_inside_with_on_contour_mm(clockwise: bool) -> None:
    # square x 2..10 mm, y 3..9 mm on a 1 mm grid: its edges pass through voxel centres, so the
    # closed square holds (10 - 2 + 1) * (9 - 3 + 1) = 63 centres whatever the drawing direction
    square = _square(2.0, 3.0, 10.0, 9.0, 2.0)
    square = square[::-1] if clockwise else square
    mask = sitk.GetArrayFromImage(
        rasterize_contours([square], _grid(), on_contour_mm=ON_CONTOUR_TOLERANCE_MM)
    )
    expected = np.zeros((3, 20, 20), np.uint8)
    expected[1, 3:10, 2:11] = 1
    np.testing.assert_array_equal(mask, expected)
    # the plain even-odd rule (CT masks) keeps only part of the edge points (half-open rows)
    plain = sitk.GetArrayFromImage(rasterize_contours([square], _grid()))
    assert (plain <= mask).all() and plain.sum() < 63
    # 1e-3 mm inside the grid points is far beyond the tolerance: the edge points are outside
    inset = _square(2.001, 3.001, 9.999, 8.999, 2.0)
    assert (
        sitk.GetArrayFromImage(
            rasterize_contours([inset], _grid(), on_contour_mm=ON_CONTOUR_TOLERANCE_MM)
        ).sum()
        == 7 * 5
    )


def test_on_contour_points_of_a_diamond_and_its_hole_count_inside_on_an_inexact_grid() -> None:
    # 0.4 mm voxels from origin (-3.7, 1.3) mm: contour points in mm are not exact binary
    # fractions, so the diagonal edges reach the centres only within rounding (the tolerance's job).
    # Diamond |i - 10| + |j - 10| <= 6 (index units): 2 * 6^2 + 2 * 6 + 1 = 85 centres; the hole,
    # the square i, j in 9..11, removes its open interior (the single centre (10, 10)) only.
    grid = _grid(spacing=(0.4, 0.4, 2.0), origin=(-3.7, 1.3, 0.0))

    def mm(i: float, j: float) -> list[float]:
        return [-3.7 + 0.4 * i, 1.3 + 0.4 * j, 2.0]

    diamond = np.array([mm(16, 10), mm(10, 16), mm(4, 10), mm(10, 4)])
    hole = np.array([mm(9, 9), mm(11, 9), mm(11, 11), mm(9, 11)])
    mask = sitk.GetArrayFromImage(
        rasterize_contours([diamond, hole], grid, on_contour_mm=ON_CONTOUR_TOLERANCE_MM)
    )[1]
    j, i = np.mgrid[0:20, 0:20]
    expected = (np.abs(i - 10) + np.abs(j - 10) <= 6) & ~((i == 10) & (j == 10))
    np.testing.assert_array_equal(mask.astype(bool), expected)


def test_contours_follow_the_image_direction_and_origin() -> None:
    grid = _grid(origin=(-10.0, -10.0, -2.0))
    grid.SetDirection(
        (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
    )  # patient x, y flipped (LPS from a RAS grid)
    # voxel index i maps to x = -10 - i; indices 2..4 -> x in [-14, -12]
    contour = _square(-14.5, -14.5, -11.5, -11.5, 0.0)
    mask = sitk.GetArrayFromImage(rasterize_contours([contour], grid))
    assert mask.sum() == 9
    assert mask[1, 2:5, 2:5].all()


def test_contour_between_image_planes_is_refused() -> None:
    with pytest.raises(ImageGeometryError, match="one image plane"):
        rasterize_contours([_square(1, 1, 5, 5, 1.0)], _grid())


def test_contour_outside_the_image_is_refused() -> None:
    with pytest.raises(ImageGeometryError, match="outside"):
        rasterize_contours([_square(1, 1, 5, 5, 40.0)], _grid())


def test_roi_without_points_is_an_empty_mask_error() -> None:
    with pytest.raises(EmptyMaskError, match="no contour points"):
        rasterize_contours([], _grid(), roi="GTV_L3")
