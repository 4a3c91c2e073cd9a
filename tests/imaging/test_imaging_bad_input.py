"""Bad DICOM input is reported with the file and the reason while the other cases complete."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from sabrkit.imaging import IngestConfig, ingest_folder


@pytest.fixture(scope="module")
def broken_export(tiny_dicom: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("broken") / "export"
    shutil.copytree(tiny_dicom, root)
    # 1. a truncated file (cut inside the pixel data) in patient 1's follow-up series
    truncated = root / "PA000001" / "ST000002" / "SE000001" / "IM000010.dcm"
    truncated.write_bytes(truncated.read_bytes()[:-2000])
    # 2. a missing slice in patient 1's planning series of lesion 2
    missing = root / "PA000001" / "ST000001" / "SE000002" / "IM000012.dcm"
    missing.unlink()
    # 3. uneven spacing in patient 2's follow-up series of lesion 1 (slices 10.. moved by 0.7 mm)
    uneven = root / "PA000002" / "ST000002" / "SE000001"
    for path in sorted(uneven.glob("IM*.dcm"))[10:]:
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 0.7
        ds.save_as(path, enforce_file_format=True)
    # 4. patient 3's planning series removed: its RTSTRUCT references a series that is not there
    shutil.rmtree(root / "PA000003" / "ST000001" / "SE000001")
    # 5. an ROI with no contour points in patient 2's RTSTRUCT
    rtstruct = root / "PA000002" / "ST000001" / "SE000900" / "RS000001.dcm"
    ds = pydicom.dcmread(rtstruct)
    roi = Dataset()
    roi.ROINumber, roi.ROIName = 9, "GTV_L9"
    roi.ReferencedFrameOfReferenceUID = ds.StructureSetROISequence[0].ReferencedFrameOfReferenceUID
    ds.StructureSetROISequence.append(roi)
    contour = Dataset()
    contour.ReferencedROINumber, contour.ContourSequence = 9, Sequence([])
    ds.ROIContourSequence.append(contour)
    ds.save_as(rtstruct, enforce_file_format=True)
    return {
        "root": root,
        "truncated": truncated,
        "missing": missing,
        "uneven": uneven,
        "rtstruct": rtstruct,
        "rtstruct_p3": root / "PA000003" / "ST000001" / "SE000900" / "RS000001.dcm",
    }


@pytest.fixture(scope="module")
def result(
    broken_export: dict[str, Path], key_table: dict[str, str], tmp_path_factory: pytest.TempPathFactory
):
    return ingest_folder(
        broken_export["root"], tmp_path_factory.mktemp("out"), IngestConfig(patient_key=key_table)
    )


def _failure(result, needle: str):
    hits = [f for f in result.failures if needle in f.case_id or needle in f.reason]
    assert hits, f"no failure mentions {needle!r}: {[str(f) for f in result.failures]}"
    return hits[0]


def test_the_other_lesions_still_complete(result) -> None:
    assert sorted(result.lesions["lesion_id"]) == ["SABR-RCC-001-L1", "SABR-RCC-002-L1", "SABR-RCC-002-L2"]


def test_truncated_file_is_named_with_the_reason(result, broken_export) -> None:
    failure = _failure(result, str(broken_export["truncated"]))
    assert failure.stage == "read" and "truncated" in failure.reason and "pixel data needs" in failure.reason


def test_missing_slice_is_reported_for_the_series_and_its_roi(result, broken_export) -> None:
    folder = broken_export["missing"].parent
    series = _failure(result, f"between '{folder / 'IM000011.dcm'}' and '{folder / 'IM000013.dcm'}'")
    assert (
        series.stage == "series"
        and "uneven slice spacing" in series.reason
        and "1 slice(s) missing" in series.reason
    )
    roi = _failure(result, "[ROI GTV_L2]")
    assert roi.case_id.startswith(str(folder.parent)) and "could not be ingested" in roi.reason


def test_truncated_file_also_leaves_its_series_incomplete(result, broken_export) -> None:
    folder = broken_export["truncated"].parent
    failure = _failure(result, f"between '{folder / 'IM000009.dcm'}' and '{folder / 'IM000011.dcm'}'")
    assert "1 slice(s) missing" in failure.reason


def test_uneven_spacing_is_reported_with_the_files_around_the_gap(result, broken_export) -> None:
    failure = _failure(result, str(broken_export["uneven"] / "IM000010.dcm"))
    assert "uneven slice spacing" in failure.reason and "2.7 mm" in failure.reason


def test_rtstruct_referencing_an_absent_series_is_reported(result, broken_export) -> None:
    failure = _failure(result, str(broken_export["rtstruct_p3"]))
    assert failure.stage == "rtstruct" and "not in the ingested folder" in failure.reason


def test_roi_without_contour_points_is_reported(result, broken_export) -> None:
    failure = _failure(result, "GTV_L9")
    assert str(broken_export["rtstruct"]) in failure.case_id and "no contour points" in failure.reason


def test_failures_are_written_to_failures_csv(result, broken_export, key_table, tmp_path: Path) -> None:
    import pandas as pd

    again = ingest_folder(broken_export["root"], tmp_path, IngestConfig(patient_key=key_table))
    table = pd.read_csv(tmp_path / "failures.csv")
    assert len(table) == len(again.failures) == len(result.failures) >= 6
    assert set(table.columns) == {"case_id", "stage", "reason"}
