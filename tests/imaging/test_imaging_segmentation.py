"""Semi-automatic segmentation from a seed or a box, and mask QC (volume, components, Dice, PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from sabrkit.errors import ConfigError
from sabrkit.imaging import (
    SeedSegmentationConfig,
    dice_coefficient,
    mask_qc,
    qc_manifest,
    segment_from_box,
    segment_from_seed,
)


def _deepest_voxel(mask: np.ndarray, spacing_zyx: tuple[float, float, float]) -> tuple[int, int, int]:
    z, y, x = np.unravel_index(np.argmax(ndi.distance_transform_edt(mask, sampling=spacing_zyx)), mask.shape)
    return int(x), int(y), int(z)


def test_seed_segmentation_of_a_sphere_in_lung(make_ct_case) -> None:
    image, mask = make_ct_case(size_xyz=(48, 48, 24), radius_mm=8.0)
    truth = sitk.GetArrayFromImage(mask) > 0
    config = SeedSegmentationConfig(inner_margin_voxels=0)
    found = sitk.GetArrayFromImage(segment_from_seed(image, (24, 24, 12), config)) > 0
    assert dice_coefficient(found, truth) >= 0.9
    boxed = sitk.GetArrayFromImage(segment_from_box(image, (12, 12, 6), (36, 36, 18), config)) > 0
    assert dice_coefficient(boxed, truth) >= 0.9


def test_seed_segmentation_on_synthetic_lesions(tiny_cohort: Path) -> None:
    # mean Dice over the tiny cohort's lesions (the full-cohort figure is in benchmarks/imaging.py)
    cohort = pd.read_csv(tiny_cohort / "images.csv")
    dices = []
    for row in cohort.itertuples():
        image = sitk.ReadImage(str(tiny_cohort / row.image_path))
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(tiny_cohort / row.mask_path))) > 0
        seed = _deepest_voxel(truth, image.GetSpacing()[::-1])
        found = sitk.GetArrayFromImage(segment_from_seed(image, seed)) > 0
        assert found[seed[::-1]] or found.any()
        dices.append(dice_coefficient(found, truth))
    assert np.mean(dices) >= 0.75


def test_seed_and_box_are_validated(make_ct_case) -> None:
    image, _ = make_ct_case()
    with pytest.raises(ConfigError, match="inside the image"):
        segment_from_seed(image, (400, 0, 0))
    with pytest.raises(ConfigError, match="box_min <= box_max"):
        segment_from_box(image, (10, 10, 10), (5, 12, 12))
    with pytest.raises(ConfigError):
        SeedSegmentationConfig(method="watershed")
    with pytest.raises(ConfigError, match="edge_ratio"):
        SeedSegmentationConfig(edge_ratio=0)
    with pytest.raises(ConfigError, match="edge_search_mm"):
        SeedSegmentationConfig(edge_search_mm=-1.0)


def test_confidence_connected_method_runs(make_ct_case) -> None:
    image, mask = make_ct_case(size_xyz=(48, 48, 24), radius_mm=8.0)
    found = segment_from_seed(
        image, (24, 24, 12), SeedSegmentationConfig(method="confidence", inner_margin_voxels=0)
    )
    # plain ConfidenceConnected under-segments a noisy lesion (the adaptive "threshold" method is the default)
    assert dice_coefficient(sitk.GetArrayFromImage(found) > 0, sitk.GetArrayFromImage(mask) > 0) >= 0.45


def test_mask_qc_counts_volume_components_and_dice(make_ct_case) -> None:
    _image, mask = make_ct_case(size_xyz=(40, 40, 20))
    voxels = sitk.GetArrayFromImage(mask)
    voxels[0, 0, 0] = 1  # a stray voxel: a second component
    noisy = sitk.GetImageFromArray(voxels)
    noisy.CopyInformation(mask)
    qc = mask_qc(noisy, reference=mask)
    n = int(voxels.sum())
    assert qc["n_voxels"] == n and qc["volume_mm3"] == pytest.approx(n * 0.8 * 0.8 * 2.0)
    assert qc["n_components"] == 2 and qc["largest_component_fraction"] == pytest.approx(
        (n - 1) / n, abs=1e-4
    )
    assert qc["dice"] == pytest.approx(2 * (n - 1) / (2 * n - 1))


def test_qc_manifest_writes_one_png_per_lesion(write_case, tmp_path: Path) -> None:
    rows = []
    for lesion_id in ("SABR-RCC-001-L1", "SABR-RCC-001-L2"):
        image_path, mask_path = write_case(lesion_id)
        rows.append(
            {
                "lesion_id": lesion_id,
                "image_path": str(image_path),
                "mask_path": str(mask_path),
                "reference_path": str(mask_path),
            }
        )
    rows.append(
        {
            "lesion_id": "SABR-RCC-009-L1",
            "image_path": str(tmp_path / "missing.nii.gz"),
            "mask_path": str(tmp_path / "missing.nii.gz"),
            "reference_path": None,
        }
    )
    table = qc_manifest(pd.DataFrame(rows), tmp_path / "qc", reference_column="reference_path")
    assert list(table["lesion_id"]) == ["SABR-RCC-001-L1", "SABR-RCC-001-L2"]
    assert (table["dice"] == 1.0).all() and (table["n_components"] == 1).all()
    for name in table["png_path"]:
        png = (tmp_path / "qc" / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    assert [f.case_id for f in table.attrs["failures"]] == ["SABR-RCC-009-L1"]
