"""Ingest of the synthetic DICOM export: exact round trip, manifest contract, no work twice, NIfTI input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sabrkit.errors import ConfigError, ValidationError
from sabrkit.imaging import IngestConfig, PreprocessConfig, ingest_folder, preprocess_manifest

CONTRACT_IMAGES_COLUMNS = ["lesion_id", "study_id", "image_path", "mask_path", "modality", "scanner"]


@pytest.fixture(scope="module")
def ingested(tiny_dicom: Path, key_table: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("ingest") / "imaging"
    return out, ingest_folder(tiny_dicom, out, IngestConfig(patient_key=key_table))


def test_dicom_round_trip_gives_back_the_cohort_images_and_masks_exactly(ingested, tiny_cohort: Path) -> None:
    out, result = ingested
    assert result.failures == []
    cohort = pd.read_csv(tiny_cohort / "images.csv")
    manifest = result.lesions.set_index("lesion_id")
    assert sorted(manifest.index) == sorted(cohort["lesion_id"])
    for row in cohort.itertuples():
        mine = manifest.loc[row.lesion_id]
        original = sitk.ReadImage(str(tiny_cohort / row.image_path))
        image = sitk.ReadImage(str(out / mine.image_path))
        assert image.GetPixelID() == sitk.sitkInt16
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(original))
        np.testing.assert_allclose(image.GetOrigin(), original.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(image.GetSpacing(), original.GetSpacing(), atol=1e-6)
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(out / mine.mask_path)))
        np.testing.assert_array_equal(
            mask, sitk.GetArrayFromImage(sitk.ReadImage(str(tiny_cohort / row.mask_path)))
        )
        assert mine.scanner == row.scanner and mine.modality == "CT"


def test_manifest_has_the_cohort_columns_and_links_rois_to_registry_lesions(
    ingested, tiny_cohort: Path
) -> None:
    out, _result = ingested
    table = pd.read_csv(out / "images.csv")
    assert list(table.columns[:6]) == CONTRACT_IMAGES_COLUMNS
    assert {"study_date", "series_uid", "roi_name"} <= set(table.columns)
    lesions = pd.read_csv(tiny_cohort / "registry" / "lesions.csv").set_index("lesion_id")
    for row in table.itertuples():
        assert row.roi_name == lesions.loc[row.lesion_id, "roi_name"]
        assert row.series_uid == lesions.loc[row.lesion_id, "series_uid"]  # not de-identified: original UIDs
        assert str(row.study_date)[:4].isdigit()
    series = pd.read_csv(out / "series.csv")
    assert len(series) == 2 * len(table)  # planning + follow-up per lesion region
    assert (series["study_date"] > "2024").all()


def test_rerun_on_the_same_folder_does_no_work_twice(
    ingested, tiny_dicom: Path, key_table: dict[str, str]
) -> None:
    out, first = ingested
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")}
    again = ingest_folder(tiny_dicom, out, IngestConfig(patient_key=key_table))
    assert again.n_units_done == 0 and again.n_units_reused == first.n_units_done
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")} == before
    pd.testing.assert_frame_equal(again.lesions, first.lesions)


def test_changed_roi_pattern_redoes_only_the_structure_sets(
    tiny_dicom: Path, key_table: dict[str, str], tmp_path: Path
) -> None:
    ingest_folder(tiny_dicom, tmp_path, IngestConfig(patient_key=key_table))
    narrower = ingest_folder(tiny_dicom, tmp_path, IngestConfig(patient_key=key_table, roi_pattern="GTV_L1"))
    assert set(narrower.lesions["lesion_id"].str[-2:]) == {"L1"}
    assert not any(
        p.name.endswith("-L2_mask.nii.gz") for p in (tmp_path / "masks").iterdir()
    )  # stale masks removed


def test_preprocess_runs_on_the_ingest_manifest(ingested, tmp_path: Path) -> None:
    out, result = ingested
    table = preprocess_manifest(
        pd.read_csv(out / "images.csv"), tmp_path / "pre", PreprocessConfig(), base_dir=out
    )
    assert len(table) == len(result.lesions)
    assert sitk.ReadImage(table["image_path"][0]).GetSpacing() == (1.0, 1.0, 1.0)


def test_unknown_patient_id_is_refused_without_echoing_it(
    tiny_dicom: Path, key_table: dict[str, str], tmp_path: Path
) -> None:
    result = ingest_folder(tiny_dicom, tmp_path)
    assert result.lesions.empty and result.failures
    assert all("not a pseudonymous study ID" in f.reason for f in result.failures if f.stage == "series")
    for failure in result.failures:
        assert not any(hospital_number in failure.reason for hospital_number in key_table)


def test_nifti_pairs_named_by_lesion_id_are_accepted(tiny_cohort: Path, tmp_path: Path) -> None:
    source = tmp_path / "nifti"
    shutil.copytree(tiny_cohort / "images", source)
    result = ingest_folder(source, tmp_path / "out")
    assert result.failures == []
    assert sorted(result.lesions["lesion_id"]) == sorted(pd.read_csv(tiny_cohort / "images.csv")["lesion_id"])


def test_ingest_config_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="group 'n'"):
        IngestConfig(lesion_pattern=r"GTV\d+")
    with pytest.raises(ConfigError, match="not a folder"):
        ingest_folder(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ValidationError, match="lesion_pattern"):
        IngestConfig().lesion_id_of("SABR-RCC-001", "GTV_old")
    assert IngestConfig().lesion_id_of("SABR-RCC-001", "BODY") is None
    mapped = IngestConfig(roi_lesion_map={("SABR-RCC-001", "GTV_primary"): "SABR-RCC-001-L3"})
    assert mapped.lesion_id_of("SABR-RCC-001", "GTV_primary") == "SABR-RCC-001-L3"


def test_rewritten_identical_export_does_no_work(
    tiny_dicom: Path, key_table: dict[str, str], tmp_path: Path
) -> None:
    config = IngestConfig(patient_key=key_table)
    first = ingest_folder(tiny_dicom, tmp_path / "out", config)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dicom, copy)  # new paths and modification times, same content
    again = ingest_folder(copy, tmp_path / "out", config)
    assert again.n_units_done == 0 and again.n_units_reused == first.n_units_done
    changed = next((copy / "PA000001" / "ST000001" / "SE000001").glob("*.dcm"))
    changed.write_bytes(changed.read_bytes()[:-2] + b"\x00\x01")  # one pixel differs
    third = ingest_folder(copy, tmp_path / "out", config)
    assert third.n_units_done == 2  # that series and the patient's structure set
