"""DICOM SEG (written with highdicom) is linked to its source series and read back as the same mask."""

from __future__ import annotations

import shutil
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.sr.codedict import codes

from sabrkit.imaging import IngestConfig, ingest_folder


def _write_seg(series_dir: Path, mask_zyx: np.ndarray, label: str, out: Path) -> None:
    sources = sorted((pydicom.dcmread(p) for p in series_dir.glob("*.dcm")),
                     key=lambda ds: float(ds.ImagePositionPatient[2]))
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=mask_zyx.astype(bool), segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=hd.UID(), series_number=50, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="sabrkit tests", manufacturer_model_name="none", software_versions="0",
        device_serial_number="0")
    seg.save_as(out)


def test_seg_mask_comes_back_on_the_series_grid(tiny_dicom: Path, tiny_cohort: Path, key_table, tmp_path: Path) -> None:
    source = tmp_path / "export"
    series_dir = tiny_dicom / "PA000001" / "ST000001" / "SE000001"  # patient 1, lesion 1
    shutil.copytree(series_dir, source / "CT")
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(tiny_cohort / "images" / "SABR-RCC-001-L1_mask.nii.gz")))
    _write_seg(series_dir, truth, "GTV_L1", source / "seg.dcm")
    result = ingest_folder(source, tmp_path / "out", IngestConfig(patient_key=key_table))
    assert result.failures == []
    assert list(result.lesions["lesion_id"]) == ["SABR-RCC-001-L1"]
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / result.lesions["mask_path"][0])))
    np.testing.assert_array_equal(mask, truth)


def test_seg_without_its_series_is_reported(tiny_dicom: Path, tiny_cohort: Path, key_table, tmp_path: Path) -> None:
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(tiny_cohort / "images" / "SABR-RCC-001-L1_mask.nii.gz")))
    (tmp_path / "export").mkdir()
    _write_seg(tiny_dicom / "PA000001" / "ST000001" / "SE000001", truth, "GTV_L1", tmp_path / "export" / "seg.dcm")
    result = ingest_folder(tmp_path / "export", tmp_path / "out", IngestConfig(patient_key=key_table))
    assert result.lesions.empty
    assert len(result.failures) == 1 and "not in the ingested folder" in result.failures[0].reason
