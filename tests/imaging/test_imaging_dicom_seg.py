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
    sources = sorted(
        (pydicom.dcmread(p) for p in series_dir.glob("*.dcm")),
        key=lambda ds: float(ds.ImagePositionPatient[2]),
    )
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=mask_zyx.astype(bool),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=50,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="sabrkit tests",
        manufacturer_model_name="none",
        software_versions="0",
        device_serial_number="0",
    )
    seg.save_as(out)


def test_seg_mask_comes_back_on_the_series_grid(
    tiny_dicom: Path, tiny_cohort: Path, key_table, tmp_path: Path
) -> None:
    source = tmp_path / "export"
    series_dir = tiny_dicom / "PA000001" / "ST000001" / "SE000001"  # patient 1, lesion 1
    shutil.copytree(series_dir, source / "CT")
    truth = sitk.GetArrayFromImage(
        sitk.ReadImage(str(tiny_cohort / "images" / "SABR-RCC-001-L1_mask.nii.gz"))
    )
    _write_seg(series_dir, truth, "GTV_L1", source / "seg.dcm")
    result = ingest_folder(source, tmp_path / "out", IngestConfig(patient_key=key_table))
    assert result.failures == []
    assert list(result.lesions["lesion_id"]) == ["SABR-RCC-001-L1"]
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / result.lesions["mask_path"][0])))
    np.testing.assert_array_equal(mask, truth)


def test_seg_without_its_series_is_reported(
    tiny_dicom: Path, tiny_cohort: Path, key_table, tmp_path: Path
) -> None:
    truth = sitk.GetArrayFromImage(
        sitk.ReadImage(str(tiny_cohort / "images" / "SABR-RCC-001-L1_mask.nii.gz"))
    )
    (tmp_path / "export").mkdir()
    _write_seg(
        tiny_dicom / "PA000001" / "ST000001" / "SE000001", truth, "GTV_L1", tmp_path / "export" / "seg.dcm"
    )
    result = ingest_folder(tmp_path / "export", tmp_path / "out", IngestConfig(patient_key=key_table))
    assert result.lesions.empty
    assert len(result.failures) == 1 and "not in the ingested folder" in result.failures[0].reason


def _tcia_seg(
    export_root: Path, fraction: np.ndarray, out: Path, kind: str, fractional_type: str = "OCCUPANCY"
) -> None:
    sources = sorted(
        (pydicom.dcmread(p) for p in export_root.rglob("*.dcm") if pydicom.dcmread(p).Modality == "CT"),
        key=lambda ds: float(ds.ImagePositionPatient[2]),
    )
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="GTV-1",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    pixels = fraction.astype(np.float32) if kind == "FRACTIONAL" else fraction >= 0.5
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=kind,
        fractional_type=fractional_type,
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=60,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="another vendor",
        manufacturer_model_name="x",
        software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(out)


def _occupancy(contours_by_slice: dict, sub: int = 4) -> np.ndarray:
    """Fraction of each voxel inside the contours, from sub x sub points per voxel (matplotlib Path)."""
    from matplotlib.path import Path as PolygonPath
    from tcia_export import TCIA_ORIGIN, TCIA_SHAPE, TCIA_SPACING

    _nz, ny, nx = TCIA_SHAPE
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    ii, jj = np.meshgrid(np.arange(nx * sub), np.arange(ny * sub))
    x = TCIA_ORIGIN[0] + (ii // sub + offsets[ii % sub]) * TCIA_SPACING[0]
    y = TCIA_ORIGIN[1] + (jj // sub + offsets[jj % sub]) * TCIA_SPACING[1]
    points = np.column_stack([x.ravel(), y.ravel()])
    fraction = np.zeros(TCIA_SHAPE, dtype=float)
    for k, polygons in contours_by_slice.items():
        inside = np.zeros(len(points), dtype=bool)
        for polygon in polygons:
            inside |= PolygonPath(polygon[:, :2]).contains_points(points)
        fraction[k] = inside.reshape(ny * sub, nx * sub).reshape(ny, sub, nx, sub).mean(axis=(1, 3))
    return fraction


def test_other_vendor_binary_and_fractional_seg_give_the_rtstruct_mask_or_a_named_refusal(
    tmp_path: Path,
) -> None:
    from tcia_export import tcia_rois, write_tcia_export

    patient = {"LUNG1-001": "SABR-RCC-001"}
    root, _ = write_tcia_export(tmp_path / "rt")
    from_rtstruct = ingest_folder(root, tmp_path / "out_rt", IngestConfig(patient_key=patient, oars=False))
    reference = sitk.GetArrayFromImage(
        sitk.ReadImage(str(tmp_path / "out_rt" / from_rtstruct.lesions["mask_path"][0]))
    )
    occupancy = _occupancy(tcia_rois()["GTV-1"])
    results = {}
    for name, kind, fractional in [
        ("binary", "BINARY", "OCCUPANCY"),
        ("occupancy", "FRACTIONAL", "OCCUPANCY"),
        ("probability", "FRACTIONAL", "PROBABILITY"),
    ]:
        folder = tmp_path / name
        shutil.copytree(next(root.rglob("0.000000-NA-82046")), folder / "CT")
        _tcia_seg(root, occupancy, folder / "seg.dcm", kind, fractional)
        results[name] = ingest_folder(folder, tmp_path / f"out_{name}", IngestConfig(patient_key=patient))
    for name in ("binary", "occupancy"):
        result = results[name]
        assert result.failures == [] and list(result.lesions["lesion_id"]) == ["SABR-RCC-001-L1"]
        mask = sitk.GetArrayFromImage(
            sitk.ReadImage(str(tmp_path / f"out_{name}" / result.lesions["mask_path"][0]))
        )
        dice = 2 * np.logical_and(mask, reference).sum() / (mask.sum() + reference.sum())
        assert dice >= 0.99, (name, dice)
    refused = results["probability"]
    assert refused.lesions.empty and len(refused.failures) == 1
    assert "FRACTIONAL with SegmentationFractionalType PROBABILITY" in refused.failures[0].reason
