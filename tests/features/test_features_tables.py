from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sabrkit.errors import ConfigError, NotFoundError, ValidationError
from sabrkit.features import (
    AGGREGATION_METHODS,
    aggregate_lesions,
    feature_columns,
    read_feature_table,
    write_feature_table,
)


@pytest.fixture
def lesions() -> pd.DataFrame:
    """Two patients: 001 has three lesions (volumes 1000, 3000, 2000 mm3), 002 has one."""
    return pd.DataFrame(
        {
            "lesion_id": ["SABR-RCC-001-L1", "SABR-RCC-001-L2", "SABR-RCC-001-L3", "SABR-RCC-002-L1"],
            "study_id": ["SABR-RCC-001", "SABR-RCC-001", "SABR-RCC-001", "SABR-RCC-002"],
            "original_shape_MeshVolume": [1000.0, 3000.0, 2000.0, 500.0],
            "original_firstorder_Mean": [10.0, 40.0, 20.0, -5.0],
            "log-sigma-1-0-mm-3D_glcm_Contrast": [1.0, 2.0, 6.0, 3.0],
            "wavelet-LLH_firstorder_Entropy": [0.5, 0.25, 1.0, 2.0],
            "prov_params_version": "ct-v1",
            "prov_params_hash": "abc",
            "prov_image_sha256": ["h1", "h2", "h3", "h4"],
        }
    )


FEATURES = [
    "original_shape_MeshVolume",
    "original_firstorder_Mean",
    "log-sigma-1-0-mm-3D_glcm_Contrast",
    "wavelet-LLH_firstorder_Entropy",
]


def test_feature_columns_skip_ids_provenance_and_counts(lesions: pd.DataFrame) -> None:
    table = lesions.assign(n_lesions=1, total_volume_mm3=1.0, diagnostics_Versions_PyRadiomics="v3.0.1")
    assert feature_columns(table) == FEATURES


def test_parquet_round_trip_is_atomic(tmp_path: Path, lesions: pd.DataFrame) -> None:
    path = write_feature_table(lesions, tmp_path / "features" / "lesion_features.parquet")
    pd.testing.assert_frame_equal(read_feature_table(path), lesions)
    write_feature_table(lesions.iloc[:2], path)
    assert len(read_feature_table(path)) == 2
    assert [p.name for p in path.parent.iterdir()] == ["lesion_features.parquet"]


def test_write_rejects_bad_tables_and_read_missing(tmp_path: Path, lesions: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match="SABR-RCC-002-L1"):
        write_feature_table(pd.concat([lesions, lesions.iloc[[3]]]), tmp_path / "a.parquet")
    with_nan = lesions.copy()
    with_nan.loc[0, "original_firstorder_Mean"] = np.nan
    with pytest.raises(ValidationError, match="original_firstorder_Mean"):
        write_feature_table(with_nan, tmp_path / "a.parquet")
    with pytest.raises(ValidationError, match="lesion_id or study_id"):
        write_feature_table(lesions.drop(columns=["lesion_id", "study_id"]), tmp_path / "a.parquet")
    assert not (tmp_path / "a.parquet").exists()
    with pytest.raises(NotFoundError, match=r"absent.parquet"):
        read_feature_table(tmp_path / "absent.parquet")


# Hand-computed for patient 001 (volumes v = 1000, 3000, 2000; total 6000):
#   largest = L2; volume-weighted Mean = (10*1000 + 40*3000 + 20*2000) / 6000 = 170000/6000
EXPECTED_001 = {
    "largest": [3000.0, 40.0, 2.0, 0.25],
    "volume_weighted_mean": [
        (1000.0**2 + 3000.0**2 + 2000.0**2) / 6000.0,
        170000.0 / 6000.0,
        (1.0 * 1000 + 2.0 * 3000 + 6.0 * 2000) / 6000.0,
        (0.5 * 1000 + 0.25 * 3000 + 1.0 * 2000) / 6000.0,
    ],
    "mean": [2000.0, 70.0 / 3.0, 3.0, 1.75 / 3.0],
    "max": [3000.0, 40.0, 6.0, 1.0],
    "min": [1000.0, 10.0, 1.0, 0.25],
}


@pytest.mark.parametrize("method", AGGREGATION_METHODS)
def test_aggregation_methods_on_a_hand_made_table(lesions: pd.DataFrame, method: str) -> None:
    patients = aggregate_lesions(lesions.sample(frac=1.0, random_state=3), method)
    assert list(patients["study_id"]) == ["SABR-RCC-001", "SABR-RCC-002"]
    assert feature_columns(patients) == FEATURES
    first = patients.iloc[0]
    np.testing.assert_allclose(first[FEATURES].to_numpy(dtype=float), EXPECTED_001[method], rtol=1e-12)
    single = patients.iloc[1][FEATURES].to_numpy(dtype=float)
    np.testing.assert_allclose(single, [500.0, -5.0, 3.0, 2.0])  # one lesion: every method gives it back
    assert list(patients["n_lesions"]) == [3, 1]
    assert list(patients["total_volume_mm3"]) == [6000.0, 500.0]
    assert set(patients["prov_params_version"]) == {"ct-v1"} and "prov_image_sha256" not in patients


def test_largest_falls_back_to_voxel_volume(lesions: pd.DataFrame) -> None:
    table = lesions.rename(columns={"original_shape_MeshVolume": "original_shape_VoxelVolume"})
    table.loc[0, "original_shape_VoxelVolume"] = 9000.0
    patients = aggregate_lesions(table, "largest")
    assert patients.iloc[0]["original_firstorder_Mean"] == 10.0
    assert patients.iloc[0]["total_volume_mm3"] == 9000.0 + 3000.0 + 2000.0


def test_aggregation_rejects_bad_input(lesions: pd.DataFrame) -> None:
    with pytest.raises(ConfigError) as info:
        aggregate_lesions(lesions, "median")
    for method in AGGREGATION_METHODS:
        assert method in str(info.value)
    with pytest.raises(ValidationError, match="MeshVolume"):
        aggregate_lesions(lesions.drop(columns="original_shape_MeshVolume"), "mean")
    mixed = lesions.assign(prov_params_hash=["abc", "abc", "def", "abc"])
    with pytest.raises(ValidationError, match="prov_params_hash"):
        aggregate_lesions(mixed, "mean")
    with pytest.raises(ValidationError, match="lesion_id"):
        aggregate_lesions(pd.concat([lesions, lesions.iloc[[0]]]), "mean")
