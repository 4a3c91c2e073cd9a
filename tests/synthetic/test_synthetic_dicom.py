"""The synthetic cohort as a DICOM export: CT geometry and rescale tags, RTSTRUCT, follow-up CT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk

from sabrkit.errors import ConfigError
from sabrkit.imaging import rasterize_contours
from sabrkit.synthetic import SynthConfig, synthesize
from sabrkit.synthetic.dicom import derived_uid, follow_up_region, mask_contours, write_cohort_dicom


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("synthetic_dicom")
    cohort = synthesize(root / "cohort", SynthConfig(n_patients=2, seed=20240511, image_shape=(56, 56, 24)))
    out = root / "export"
    summary = write_cohort_dicom(cohort, out, follow_up_truth_dir=root / "truth")
    assert summary.n_rtstruct == 2 and summary.n_files == len(list(out.rglob("*.dcm")))
    return cohort, out, root / "truth"


def test_ct_slices_carry_geometry_rescale_and_identifiers(export) -> None:
    cohort, out, _ = export
    images = pd.read_csv(cohort / "images.csv")
    lesions = pd.read_csv(cohort / "registry" / "lesions.csv").set_index("lesion_id")
    keys = pd.read_csv(cohort / "registry" / "identifiers.csv", dtype=str).set_index("study_id")
    first = images.iloc[0]
    reference = sitk.ReadImage(str(cohort / first.image_path))
    files = sorted((out / "PA000001" / "ST000001" / "SE000001").glob("*.dcm"))
    assert len(files) == reference.GetSize()[2]
    ds = pydicom.dcmread(files[3])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2" and ds.Modality == "CT"
    assert ds.SeriesInstanceUID == lesions.loc[first.lesion_id, "series_uid"]
    assert ds.PatientID == keys.loc[first.study_id, "hospital_number"]
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx(reference.GetSpacing()[1::-1])
    assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx(
        [
            reference.GetOrigin()[0],
            reference.GetOrigin()[1],
            reference.GetOrigin()[2] + 3 * reference.GetSpacing()[2],
        ]
    )
    assert float(ds.RescaleIntercept) == -1024 and float(ds.RescaleSlope) == 1 and ds.PixelRepresentation == 0
    hu = ds.pixel_array.astype(int) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
    np.testing.assert_array_equal(hu, sitk.GetArrayFromImage(reference)[3])
    assert f"{ds.Manufacturer} {ds.ManufacturerModelName}" == first.scanner


def test_rtstruct_holds_every_lesion_of_the_patient_with_its_references(export) -> None:
    cohort, out, _ = export
    lesions = pd.read_csv(cohort / "registry" / "lesions.csv")
    for index, (_study_id, mine) in enumerate(lesions.groupby("study_id"), start=1):
        ds = pydicom.dcmread(out / f"PA{index:06d}" / "ST000001" / "SE000900" / "RS000001.dcm")
        assert ds.Modality == "RTSTRUCT"
        names = [r.ROIName for r in ds.StructureSetROISequence]
        assert sorted(n for n in names if n.startswith("GTV")) == sorted(mine["roi_name"])
        assert sorted(n for n in names if n.startswith("PTV")) == sorted(
            f"PTV_L{k}" for k in mine["lesion_number"]
        )
        referenced = {
            s.SeriesInstanceUID
            for f in ds.ReferencedFrameOfReferenceSequence
            for st in f.RTReferencedStudySequence
            for s in st.RTReferencedSeriesSequence
        }
        assert referenced == set(mine["series_uid"])
        for roi in ds.ROIContourSequence:
            for contour in roi.ContourSequence:
                assert contour.ContourGeometricType == "CLOSED_PLANAR"
                assert len(contour.ContourData) == 3 * contour.NumberOfContourPoints
                assert len(contour.ContourImageSequence) == 1


def test_follow_up_study_has_no_contours_and_a_later_date(export) -> None:
    cohort, out, truth = export
    planning = pydicom.dcmread(
        next((out / "PA000001" / "ST000001" / "SE000001").glob("*.dcm")), stop_before_pixels=True
    )
    follow = pydicom.dcmread(
        next((out / "PA000001" / "ST000002" / "SE000001").glob("*.dcm")), stop_before_pixels=True
    )
    assert follow.StudyDate > planning.StudyDate and follow.StudyInstanceUID != planning.StudyInstanceUID
    assert not list((out / "PA000001" / "ST000002").glob("SE000900"))
    table = pd.read_csv(truth / "follow_up_truth.csv")
    assert (table["response"].between(0.55, 0.95)).all()
    first = table.iloc[0]
    shrunk = sitk.GetArrayFromImage(
        sitk.ReadImage(str(truth / f"{first.lesion_id}_followup_mask.nii.gz"))
    ).sum()
    baseline = sitk.GetArrayFromImage(
        sitk.ReadImage(str(cohort / "images" / f"{first.lesion_id}_mask.nii.gz"))
    ).sum()
    assert shrunk < baseline


def test_mask_contours_fill_back_exactly() -> None:
    rng = np.random.default_rng(3)
    mask = np.zeros((3, 30, 30), np.uint8)
    mask[1, 5:20, 4:25] = 1
    mask[1, 9:13, 9:13] = 0  # a hole
    mask[1, 24:28, 24:28] = 1  # a second island
    mask[1] |= (rng.random((30, 30)) > 0.97).astype(np.uint8)  # speckles, diagonal contacts
    grid = sitk.Image((30, 30, 3), sitk.sitkUInt8)
    contours = [np.column_stack([xy, np.full(len(xy), 1.0)]) for xy in mask_contours(mask[1])]
    filled = sitk.GetArrayFromImage(rasterize_contours(contours, grid))
    np.testing.assert_array_equal(filled, mask)


def test_follow_up_region_shrinks_the_lesion() -> None:
    z, y, x = np.mgrid[0:20, 0:40, 0:40]
    mask = (((x - 20) * 0.8) ** 2 + ((y - 20) * 0.8) ** 2 + ((z - 10) * 2.0) ** 2 < 64).astype(np.uint8)
    hu = np.where(mask, 60, -800).astype(np.int16)
    image, new_mask = follow_up_region(hu, mask, (0.8, 0.8, 2.0), 0.6, 10.0, np.random.default_rng(0))
    ratio = new_mask.sum() / mask.sum()
    assert 0.6**3 * 0.7 < ratio < 0.6**3 * 1.4
    assert image.dtype == np.int16 and abs(int(image[10, 20, 20]) - 60) < 30 and new_mask[10, 20, 20] == 1
    with pytest.raises(ConfigError):
        follow_up_region(hu, mask, (0.8, 0.8, 2.0), 0.3, 10.0, np.random.default_rng(0))


def test_uids_are_deterministic_and_valid() -> None:
    uid = derived_uid("a", 1)
    assert uid == derived_uid("a", 1) != derived_uid("a", 2)
    assert uid.startswith("2.25.") and len(uid) <= 64


def test_existing_output_folder_is_refused(export, tmp_path: Path) -> None:
    cohort, _, _ = export
    (tmp_path / "x").write_text("")
    with pytest.raises(ConfigError, match="not empty"):
        write_cohort_dicom(cohort, tmp_path)
