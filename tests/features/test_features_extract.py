from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sabrkit.errors import ConfigError, ExtractionError, ValidationError
from sabrkit.features import PROVENANCE_COLUMNS, extract_lesion_features, feature_columns, load_params
from sabrkit.imaging import sha256_file
from sabrkit.version import __version__


def _manifest(rows: list[tuple[str, Path, Path]], base: Path) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lesion_id": [r[0] for r in rows],
            "study_id": [r[0].rsplit("-L", 1)[0] for r in rows],
            "image_path": [str(r[1].relative_to(base)) for r in rows],
            "mask_path": [str(r[2].relative_to(base)) for r in rows],
        }
    )


@pytest.fixture
def good_manifest(tmp_path: Path, write_case: Callable) -> pd.DataFrame:
    rows = [
        ("SABR-RCC-002-L1", *write_case("c1", radius_mm=6.0)),
        ("SABR-RCC-001-L2", *write_case("c2", radius_mm=8.0, spacing=(0.7, 0.7, 1.5))),
        ("SABR-RCC-001-L1", *write_case("c3", radius_mm=5.0)),
    ]
    return _manifest(rows, tmp_path)


def test_one_row_per_lesion_with_features_and_provenance(tmp_path: Path, good_manifest: pd.DataFrame) -> None:
    params = load_params("ct_v1")
    result = extract_lesion_features(good_manifest, params, progress=False, base_dir=tmp_path)
    table = result.features
    assert result.failures == []
    assert list(table["lesion_id"]) == ["SABR-RCC-001-L1", "SABR-RCC-001-L2", "SABR-RCC-002-L1"]
    assert list(table.columns[:2]) == ["lesion_id", "study_id"]
    assert list(table.columns[-len(PROVENANCE_COLUMNS) :]) == list(PROVENANCE_COLUMNS)
    features = feature_columns(table)
    assert len(features) == table.shape[1] - 2 - len(PROVENANCE_COLUMNS) > 90
    assert {"original_firstorder_Mean", "original_glcm_Contrast", "original_shape_MeshVolume"} <= set(
        features
    )
    assert not any(c.startswith("diagnostics_") for c in table.columns)
    assert np.isfinite(table[features].to_numpy()).all()
    # lesion of radius 8 mm: mesh volume close to 4/3 pi r^3 (voxelised sphere)
    row = table.set_index("lesion_id").loc["SABR-RCC-001-L2"]
    assert row["original_shape_MeshVolume"] == pytest.approx(4 / 3 * np.pi * 8.0**3, rel=0.1)
    assert row["original_firstorder_Median"] == pytest.approx(40.0, abs=15.0)  # lesion HU, not lung
    assert row["prov_params_version"] == "ct-v1" and row["prov_params_hash"] == params.params_hash
    assert row["prov_pyradiomics_version"] == "v3.0.1" and row["prov_sabrkit_version"] == __version__
    assert row["prov_image_sha256"] == sha256_file(tmp_path / "c2_ct.nii.gz")
    assert row["prov_mask_sha256"] == sha256_file(tmp_path / "c2_mask.nii.gz")
    assert row["prov_image_spacing_mm"] == "0.7,0.7,1.5"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_serial_and_two_workers_give_identical_tables(
    tmp_path: Path, good_manifest: pd.DataFrame, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = load_params("ct_v1")
    serial = extract_lesion_features(good_manifest, params, n_jobs=1, progress=False, base_dir=tmp_path)
    monkeypatch.setenv("SABRKIT_START_METHOD", method)  # forked and spawned workers alike
    parallel = extract_lesion_features(
        good_manifest, params, n_jobs=2, progress=True, base_dir=tmp_path, min_lesions_per_worker=1
    )
    pd.testing.assert_frame_equal(serial.features, parallel.features, check_exact=True)


def _failing_manifest(tmp_path: Path, write_case: Callable) -> pd.DataFrame:
    good = ("SABR-RCC-001-L1", *write_case("good"))
    geometry_image, geometry_mask = write_case("geometry")
    mask = sitk.ReadImage(str(geometry_mask))
    mask.SetSpacing((1.0, 1.0, 2.0))
    sitk.WriteImage(mask, str(geometry_mask))
    empty_image, empty_mask = write_case("empty")
    sitk.WriteImage(sitk.ReadImage(str(empty_mask)) * 0, str(empty_mask))
    voxel_image, voxel_mask = write_case("voxel")
    one_voxel = sitk.ReadImage(str(voxel_mask)) * 0
    one_voxel[20, 20, 10] = 1
    sitk.WriteImage(one_voxel, str(voxel_mask))
    rows = [
        good,
        ("SABR-RCC-002-L1", geometry_image, geometry_mask),
        ("SABR-RCC-003-L1", empty_image, empty_mask),
        ("SABR-RCC-004-L1", tmp_path / "absent_ct.nii.gz", tmp_path / "absent_mask.nii.gz"),
        ("SABR-RCC-005-L1", voxel_image, voxel_mask),
    ]
    return _manifest(rows, tmp_path)


EXPECTED_STAGES = {
    "SABR-RCC-002-L1": ("geometry", "spacing"),
    "SABR-RCC-003-L1": ("mask", "no voxel with label 1"),
    "SABR-RCC-004-L1": ("read", "absent_ct.nii.gz"),
    "SABR-RCC-005-L1": ("pyradiomics", "ValueError"),
}


def test_any_failure_above_zero_threshold_raises_listing_all(tmp_path: Path, write_case: Callable) -> None:
    manifest = _failing_manifest(tmp_path, write_case)
    with pytest.raises(ExtractionError) as info:
        extract_lesion_features(manifest, load_params("ct_v1"), progress=False, base_dir=tmp_path)
    error = info.value
    assert error.n_total == 5 and [f.case_id for f in error.failures] == sorted(EXPECTED_STAGES)
    for failure in error.failures:
        stage, detail = EXPECTED_STAGES[failure.case_id]
        assert failure.stage == stage and detail in failure.reason and failure.case_id in str(error)
    assert "SABR-RCC-001-L1" not in str(error)


def test_failures_within_threshold_return_good_rows_and_failures(
    tmp_path: Path, write_case: Callable
) -> None:
    manifest = _failing_manifest(tmp_path, write_case)
    result = extract_lesion_features(
        manifest, load_params("ct_v1"), max_failure_fraction=0.8, progress=False, base_dir=tmp_path
    )
    assert list(result.features["lesion_id"]) == ["SABR-RCC-001-L1"]
    assert {f.case_id: f.stage for f in result.failures} == {k: v[0] for k, v in EXPECTED_STAGES.items()}
    assert not result.features[feature_columns(result.features)].isna().any().any()


def test_bad_arguments_are_rejected(tmp_path: Path, good_manifest: pd.DataFrame) -> None:
    params = load_params("ct_v1")
    with pytest.raises(ConfigError, match="n_jobs"):
        extract_lesion_features(good_manifest, params, n_jobs=0, progress=False, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="max_failure_fraction"):
        extract_lesion_features(
            good_manifest, params, max_failure_fraction=1.5, progress=False, base_dir=tmp_path
        )
    with pytest.raises(ValidationError, match="image_path"):
        extract_lesion_features(good_manifest.drop(columns="image_path"), params, progress=False)
    with pytest.raises(ValidationError, match="SABR-RCC-001-L1"):
        extract_lesion_features(pd.concat([good_manifest, good_manifest.iloc[[2]]]), params, progress=False)
    with pytest.raises(ValidationError, match="no rows"):
        extract_lesion_features(good_manifest.iloc[0:0], params, progress=False)


def test_pyradiomics_logger_untouched_after_run(tmp_path: Path, good_manifest: pd.DataFrame) -> None:
    radiomics_logger = logging.getLogger("radiomics")
    handlers, level = list(radiomics_logger.handlers), radiomics_logger.level
    extract_lesion_features(good_manifest.iloc[:1], load_params("ct_v1"), progress=False, base_dir=tmp_path)
    assert radiomics_logger.handlers == handlers and radiomics_logger.level == level
    assert logging.getLogger("sabrkit.features.extract").handlers == []


def test_ct_v2_stays_in_the_ct_range_where_ct_v1_overshoots(tmp_path: Path) -> None:
    """ct-v1's B-spline resampling overshoots below -1024 HU at an air/bone edge; ct-v2 re-segments."""
    hu = np.full((12, 24, 24), -1000, np.int16)
    hu[:, :, 12:] = 3000
    lesion = np.zeros(hu.shape, np.uint8)
    lesion[3:9, 6:18, 6:18] = 1  # straddles the edge
    for array, name in ((hu, "ct"), (lesion, "mask")):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing((0.8, 0.8, 2.0))
        sitk.WriteImage(image, str(tmp_path / f"{name}.nii.gz"))
    manifest = pd.DataFrame({"lesion_id": ["SABR-RCC-001-L1"], "study_id": ["SABR-RCC-001"],
                             "image_path": ["ct.nii.gz"], "mask_path": ["mask.nii.gz"]})  # fmt: skip
    old = extract_lesion_features(
        manifest, load_params("ct_v1"), progress=False, base_dir=tmp_path
    ).features.iloc[0]
    new = extract_lesion_features(
        manifest, load_params("ct_v2"), progress=False, base_dir=tmp_path
    ).features.iloc[0]
    assert old["original_firstorder_Minimum"] < -1024  # the problem ct-v2 fixes
    assert new["original_firstorder_Minimum"] >= -1000 and new["original_firstorder_Maximum"] <= 3000
    assert float(new["original_firstorder_Minimum"]).is_integer()  # whole HU
    # same column names as ct-v1 (3-D direction-averaged textures keep pyradiomics' names)
    assert set(feature_columns(old.to_frame().T)) == set(feature_columns(new.to_frame().T))
    assert new["prov_params_version"] == "ct-v2"
