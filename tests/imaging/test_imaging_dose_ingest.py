"""Ingest of RTDOSE/RTPLAN: linking, DoseGridScaling, resampling onto the CT, unit and coverage checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk

from sabrkit.imaging import IngestConfig, ingest_folder
from sabrkit.imaging.ingest_dose import DOSE_COLUMNS


@pytest.fixture(scope="module")
def ingested(tiny_cohort: Path, tiny_dicom: Path, key_table: dict[str, str], tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dose_ingest") / "imaging"
    ingest_folder(tiny_dicom, out, IngestConfig(patient_key=key_table))
    return out


def test_each_lesion_gets_its_plan_and_the_dose_on_its_ct(tiny_cohort: Path, ingested: Path) -> None:
    from sabrkit.synthetic.rtplan import DoseModel, plan_dose, ptv_mask

    dose = pd.read_csv(ingested / "dose.csv")
    images = pd.read_csv(ingested / "images.csv")
    assert list(dose.columns) == list(DOSE_COLUMNS)
    assert sorted(dose["lesion_id"]) == sorted(images["lesion_id"])
    courses = pd.read_csv(tiny_cohort / "registry" / "sabr_courses.csv").set_index("lesion_id")
    for row in dose.itertuples(index=False):
        assert row.prescription_gy == courses.loc[row.lesion_id, "total_dose_gy"]
        assert row.fractions == courses.loc[row.lesion_id, "fractions"]
        assert row.dose_type == "PHYSICAL" and row.coverage == 1.0
    # the resampled dose against the analytic model evaluated on the CT grid (no DICOM in between)
    row = dose.iloc[0]
    image_row = images.set_index("lesion_id").loc[row.lesion_id]
    ct = sitk.ReadImage(str(ingested / image_row.image_path))
    on_ct = sitk.ReadImage(str(ingested / row.dose_path))
    assert on_ct.GetSize() == ct.GetSize() and on_ct.GetOrigin() == pytest.approx(ct.GetOrigin())
    gtv = sitk.GetArrayFromImage(sitk.ReadImage(str(tiny_cohort / "images" / f"{row.lesion_id}_mask.nii.gz")))
    model = DoseModel()
    expected = plan_dose(
        ptv_mask(gtv, ct.GetSpacing(), model.ptv_margin_mm), ct.GetSpacing(), row.prescription_gy, model
    )
    got = sitk.GetArrayFromImage(on_ct)
    inside = ptv_mask(gtv, ct.GetSpacing(), model.ptv_margin_mm) != 0
    # 2 mm dose grid, trilinear both ways: within 2 % of the prescription on average in the PTV
    assert np.abs(got[inside] - expected[inside]).mean() < 0.02 * row.prescription_gy


def test_rerun_reuses_the_dose_files(tiny_dicom: Path, key_table: dict[str, str], ingested: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in (ingested / "dose").rglob("*.nii.gz")}
    ingest_folder(tiny_dicom, ingested, IngestConfig(patient_key=key_table))
    assert {p: p.stat().st_mtime_ns for p in (ingested / "dose").rglob("*.nii.gz")} == before


def test_bad_and_unlinked_dose_objects_are_named_and_the_rest_completes(
    tiny_dicom: Path, key_table: dict[str, str], tmp_path: Path
) -> None:
    src = tmp_path / "export"
    shutil.copytree(tiny_dicom, src)
    doses = sorted(src.rglob("RD*.dcm"))
    plans = sorted(src.rglob("RP*.dcm"))
    relative = doses[0]
    ds = pydicom.dcmread(relative)
    ds.DoseUnits = "RELATIVE"
    ds.save_as(relative)
    orphan_plan = pydicom.dcmread(doses[1]).ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID
    for plan in plans:
        if pydicom.dcmread(plan, stop_before_pixels=True).SOPInstanceUID == orphan_plan:
            plan.unlink()
    out = tmp_path / "imaging"
    result = ingest_folder(src, out, IngestConfig(patient_key=key_table))
    failures = pd.read_csv(out / "failures.csv")
    dose_failures = failures[failures["stage"] == "dose"]
    assert len(dose_failures) == 2
    assert dose_failures["case_id"].str.contains(str(relative)).any()
    assert dose_failures["reason"].str.contains("DoseUnits 'RELATIVE'").any()
    assert dose_failures["reason"].str.contains(f"references RTPLAN {orphan_plan}").any()
    assert len(pd.read_csv(out / "dose.csv")) == len(result.lesions) - 2
