from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import SimpleITK as sitk

from sabrkit.errors import ConfigError, ExtractionError, ValidationError
from sabrkit.imaging import PreprocessConfig, preprocess_manifest, read_image


def _manifest(rows: list[tuple[str, Path, Path]], base: Path) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lesion_id": [r[0] for r in rows],
            "study_id": [r[0].rsplit("-L", 1)[0] for r in rows],
            "image_path": [str(r[1].relative_to(base)) for r in rows],
            "mask_path": [str(r[2].relative_to(base)) for r in rows],
            "modality": "CT",
        }
    )


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"spacing_mm": (1.0, 0.0, 1.0)}, "spacing_mm"),
        ({"spacing_mm": (1.0, 1.0)}, "spacing_mm"),
        ({"interpolator": "nearest"}, "interpolator"),
        ({"hu_window": (300.0, -100.0)}, "hu_window"),
        ({"crop_margin_mm": -1.0}, "crop_margin_mm"),
        ({"label": 0}, "label"),
    ],
)
def test_config_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        PreprocessConfig(**kwargs)  # type: ignore[arg-type]


def test_config_is_frozen_and_rejects_unknown_keys() -> None:
    config = PreprocessConfig(spacing_mm=2.0)  # type: ignore[arg-type]
    assert config.spacing_mm == (2.0, 2.0, 2.0)
    with pytest.raises(AttributeError):
        config.spacing_mm = (1.0, 1.0, 1.0)  # type: ignore[misc]
    with pytest.raises(ConfigError, match="spacing"):
        PreprocessConfig.from_mapping({"spacing": 1.0})


def test_preprocess_writes_resampled_clipped_cases(tmp_path: Path, write_case: Callable) -> None:
    rows = [
        ("SABR-RCC-002-L1", *write_case("a")),
        ("SABR-RCC-001-L1", *write_case("b", spacing=(0.7, 0.7, 1.5))),
    ]
    config = PreprocessConfig(spacing_mm=(1.0, 1.0, 1.0), hu_window=(-500.0, 200.0), crop_margin_mm=5.0)
    out = preprocess_manifest(_manifest(rows, tmp_path), tmp_path / "pre", config, base_dir=tmp_path)
    assert list(out["lesion_id"]) == ["SABR-RCC-001-L1", "SABR-RCC-002-L1"]
    assert list(out.columns) == ["lesion_id", "study_id", "image_path", "mask_path", "modality"]
    assert out.attrs["failures"] == []
    for row in out.itertuples():
        image = read_image(row.image_path, row.lesion_id)
        mask = read_image(row.mask_path, row.lesion_id)
        assert image.GetSpacing() == (1.0, 1.0, 1.0) and image.GetSize() == mask.GetSize()
        hu = sitk.GetArrayViewFromImage(image)
        assert hu.min() >= -500 and hu.max() <= 200
        assert sitk.GetArrayViewFromImage(mask).sum() > 0
    written = pd.read_csv(tmp_path / "pre" / "images.csv")
    assert list(written["image_path"]) == ["SABR-RCC-001-L1_ct.nii.gz", "SABR-RCC-002-L1_ct.nii.gz"]
    # a rerun replaces the previous output folder
    again = preprocess_manifest(_manifest(rows[:1], tmp_path), tmp_path / "pre", config, base_dir=tmp_path)
    assert len(again) == 1 and not (tmp_path / "pre" / "SABR-RCC-001-L1_ct.nii.gz").exists()


def _bad_cases(tmp_path: Path, write_case: Callable) -> pd.DataFrame:
    good = ("SABR-RCC-001-L1", *write_case("good"))
    image, mask = write_case("geometry")
    shifted = sitk.ReadImage(str(mask))
    shifted.SetOrigin((5.0, 0.0, 0.0))
    sitk.WriteImage(shifted, str(mask))
    empty_image, empty_mask = write_case("empty")
    sitk.WriteImage(sitk.ReadImage(str(empty_mask)) * 0, str(empty_mask))
    missing = (tmp_path / "missing_ct.nii.gz", tmp_path / "missing_mask.nii.gz")
    rows = [
        good,
        ("SABR-RCC-002-L1", image, mask),
        ("SABR-RCC-003-L1", empty_image, empty_mask),
        ("SABR-RCC-004-L1", *missing),
    ]
    return _manifest(rows, tmp_path)


def test_failures_above_threshold_list_all_and_write_nothing(tmp_path: Path, write_case: Callable) -> None:
    manifest = _bad_cases(tmp_path, write_case)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ExtractionError) as info:
        preprocess_manifest(manifest, tmp_path / "pre", base_dir=tmp_path)
    stages = {f.case_id: f.stage for f in info.value.failures}
    assert stages == {"SABR-RCC-002-L1": "geometry", "SABR-RCC-003-L1": "mask", "SABR-RCC-004-L1": "read"}
    for lesion_id in stages:
        assert lesion_id in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no out_dir, no staging folder


def test_failures_within_threshold_are_recorded(tmp_path: Path, write_case: Callable) -> None:
    manifest = _bad_cases(tmp_path, write_case)
    out = preprocess_manifest(manifest, tmp_path / "pre", base_dir=tmp_path, max_failure_fraction=0.75)
    assert list(out["lesion_id"]) == ["SABR-RCC-001-L1"]
    assert [f.case_id for f in out.attrs["failures"]] == [
        "SABR-RCC-002-L1",
        "SABR-RCC-003-L1",
        "SABR-RCC-004-L1",
    ]
    recorded = pd.read_csv(tmp_path / "pre" / "failures.csv")
    assert list(recorded["stage"]) == ["geometry", "mask", "read"]


def test_refuses_foreign_out_dir_and_bad_manifest(tmp_path: Path, write_case: Callable) -> None:
    manifest = _manifest([("SABR-RCC-001-L1", *write_case("a"))], tmp_path)
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "thesis.docx").write_text("keep me")
    with pytest.raises(ConfigError, match="notes"):
        preprocess_manifest(manifest, foreign, base_dir=tmp_path)
    assert (foreign / "thesis.docx").read_text() == "keep me"
    with pytest.raises(ValidationError, match="mask_path"):
        preprocess_manifest(manifest.drop(columns="mask_path"), tmp_path / "pre", base_dir=tmp_path)
    with pytest.raises(ConfigError, match="n_jobs"):
        preprocess_manifest(manifest, tmp_path / "pre", n_jobs=0, base_dir=tmp_path)
