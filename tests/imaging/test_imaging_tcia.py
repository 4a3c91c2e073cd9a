"""A TCIA-style export (ROIs GTV-1, Spinal-Cord, Lung-Left, Lung-Right, Esophagus; PatientID and folders
named LUNG1-001) ingested with the defaults: lesion and OAR masks against an independent rasterisation
(matplotlib's Path, not sabrkit's even-odd code), key tables that cannot leak, granular re-runs."""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from tcia_export import independent_mask, tcia_rois, write_tcia_export
from typer.testing import CliRunner

from sabrkit.cli import app
from sabrkit.imaging import IngestConfig, ingest_folder
from sabrkit.imaging.ingest import DEFAULT_LESION_PATTERN
from sabrkit.imaging.key_table import KeyTableError, read_key_table
from sabrkit.imaging.oars import OAR_SYNONYMS, oar_name
from sabrkit.imaging.roi_map import RoiMapError, read_roi_map

runner = CliRunner()
HOSPITAL_NUMBER = "LUNG1-001"
KEY_ROW = f"{HOSPITAL_NUMBER},SABR-RCC-001,Lung1,Patient,1950-01-01\n"
KEY_HEADER = "hospital_number,study_id,family_name,given_name,date_of_birth\n"


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.logical_and(a, b).sum()) / float(a.sum() + b.sum())


def _all_output_text(out: Path) -> str:
    """Every output file's bytes (NIfTI inflated) and every path, as text."""
    parts = []
    for path in sorted(out.rglob("*")):
        parts.append(str(path.relative_to(out)))
        if path.is_file():
            data = path.read_bytes()
            parts.append((gzip.decompress(data) if path.name.endswith(".gz") else data).decode("latin-1"))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tcia") / "NSCLC-Radiomics"
    write_tcia_export(root)
    return root


@pytest.fixture
def key_csv(tmp_path: Path) -> Path:
    path = tmp_path / "key.csv"
    path.write_text(KEY_HEADER + KEY_ROW)
    return path


def test_default_ingest_writes_lesion_and_oar_masks_equal_to_an_independent_rasterisation(
    export: Path, key_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "imaging"
    result = runner.invoke(
        app, ["imaging", "ingest", str(export), "--out", str(out), "--key-table", str(key_csv)]
    )
    assert result.exit_code == 0, result.output
    assert "1 lesion mask(s), 4 OAR mask(s)" in " ".join(result.output.split())
    images = pd.read_csv(out / "images.csv")
    assert list(images["lesion_id"]) == ["SABR-RCC-001-L1"] and list(images["roi_name"]) == ["GTV-1"]
    masks = pd.read_csv(out / "masks.csv").set_index("roi_name")
    assert sorted(masks.index) == ["Esophagus", "GTV-1", "Lung-Left", "Lung-Right", "Spinal-Cord"]
    assert masks.loc["Spinal-Cord", "oar"] == "SpinalCord" and masks.loc["Lung-Left", "oar"] == "Lung_L"
    assert masks.loc["Lung-Right", "structure_id"] == "SABR-RCC-001-Lung_R"
    assert (masks.loc["Esophagus", "kind"], masks.loc["GTV-1", "kind"]) == ("oar", "lesion")
    image = sitk.ReadImage(str(out / images["image_path"][0]))
    assert image.GetSize() == (96, 96, 24)
    np.testing.assert_allclose(image.GetSpacing(), (0.9765625, 0.9765625, 3.0))
    rois = tcia_rois()
    for roi_name, row in masks.iterrows():
        mask = sitk.ReadImage(str(out / row["mask_path"]))
        assert mask.GetSize() == image.GetSize() and mask.GetOrigin() == image.GetOrigin()
        reference = independent_mask(rois[roi_name])
        dice = _dice(sitk.GetArrayFromImage(mask).astype(bool), reference)
        assert dice >= 0.99, (roi_name, dice)
    assert pd.read_csv(out / "failures.csv").empty


def test_no_hospital_number_in_any_output_file_path_or_log_line(
    export: Path, key_csv: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = read_key_table(key_csv)
    caplog.set_level(logging.DEBUG)
    result = ingest_folder(export, tmp_path / "out", IngestConfig(patient_key=key.study_id_of))
    assert result.failures == []
    broken = export.parent / "broken" / HOSPITAL_NUMBER / "CT"  # a failure row naming a source path
    broken.mkdir(parents=True, exist_ok=True)
    (broken / "1-99.dcm").write_bytes(b"not dicom")
    again = ingest_folder(export.parent, tmp_path / "out", IngestConfig(patient_key=key.study_id_of))
    assert len(again.failures) == 1 and "SABR-RCC-001/CT/1-99.dcm" in again.failures[0].case_id
    text = _all_output_text(tmp_path / "out")
    assert HOSPITAL_NUMBER.lower() not in text.lower()
    assert "Lung1^Patient" not in text and "19500101" not in text
    assert HOSPITAL_NUMBER not in caplog.text
    assert again.n_units_done == 0  # the state keeps working with redacted paths


def test_key_table_mapping_an_id_to_itself_is_refused(export: Path, tmp_path: Path) -> None:
    (tmp_path / "key.csv").write_text(f"hospital_number,study_id\n{HOSPITAL_NUMBER},{HOSPITAL_NUMBER}\n")
    result = runner.invoke(
        app,
        [
            "imaging",
            "ingest",
            str(export),
            "--out",
            str(tmp_path / "out"),
            "--key-table",
            str(tmp_path / "key.csv"),
        ],
    )
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "KeyTableError" in text and "line(s) 2: maps a hospital number to itself" in text
    assert HOSPITAL_NUMBER not in result.output
    assert not (tmp_path / "out").exists()


def test_key_table_study_ids_must_satisfy_the_pseudonym_rule(tmp_path: Path) -> None:
    path = tmp_path / "key.csv"
    path.write_text(
        f"hospital_number,study_id\n{HOSPITAL_NUMBER},SABR-RCC-001\nLUNG1-002,LUNG1-002x\n"
        "LUNG1-003,SABR-RCC-001x\nSABR-RCC-004,SABR-RCC-005\nLUNG1-006,\n"
    )
    with pytest.raises(KeyTableError) as info:
        read_key_table(path)
    message = str(info.value)
    assert "line(s) 3, 4: study_id does not satisfy the pseudonym rule" in message
    assert "line(s) 5: hospital_number satisfies the pseudonym rule" in message
    assert "line(s) 6: empty" in message
    assert "LUNG1-00" not in message


def test_key_table_with_a_wrong_header_gives_a_one_screen_named_error(export: Path, tmp_path: Path) -> None:
    (tmp_path / "key.csv").write_text(f"patient_id,study_id\n{HOSPITAL_NUMBER},SABR-RCC-001\n")
    result = runner.invoke(
        app,
        [
            "imaging",
            "ingest",
            str(export),
            "--out",
            str(tmp_path / "out"),
            "--key-table",
            str(tmp_path / "key.csv"),
        ],
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 12
    text = " ".join(result.output.split())
    assert "KeyTableError" in text and "missing ['hospital_number']" in text and "patient_id" in text
    (tmp_path / "headerless.csv").write_text(f"{HOSPITAL_NUMBER},SABR-RCC-001\n")
    headerless = runner.invoke(
        app,
        [
            "imaging",
            "ingest",
            str(export),
            "--out",
            str(tmp_path / "out"),
            "--key-table",
            str(tmp_path / "headerless.csv"),
        ],
    )
    assert headerless.exit_code == 1 and HOSPITAL_NUMBER not in headerless.output
    assert "lack its header line" in " ".join(headerless.output.split())


def test_a_hospital_number_in_a_lesion_label_never_reaches_the_outputs(tmp_path: Path, key_csv: Path) -> None:
    rois = tcia_rois()
    rois[f"GTV_{HOSPITAL_NUMBER}"] = rois.pop("GTV-1")  # the lesion label holds the hospital number
    write_tcia_export(tmp_path / "export", rois=rois)
    roi_map = tmp_path / "roi_map.csv"
    roi_map.write_text(f"roi_name,maps_to\nGTV_{HOSPITAL_NUMBER},L1\n")
    result = runner.invoke(
        app,
        [
            "imaging",
            "ingest",
            str(tmp_path / "export"),
            "--out",
            str(tmp_path / "out"),
            "--key-table",
            str(key_csv),
            "--roi-map",
            str(roi_map),
        ],
    )
    assert result.exit_code == 1
    assert "holds a hospital number" in " ".join(result.output.split())
    assert HOSPITAL_NUMBER not in result.output
    assert pd.read_csv(tmp_path / "out" / "images.csv").empty
    assert len(pd.read_csv(tmp_path / "out" / "masks.csv")) == 4  # the OARs still complete
    assert HOSPITAL_NUMBER.lower() not in _all_output_text(tmp_path / "out").lower()
    (tmp_path / "bad_map.csv").write_text(f"roi_name,maps_to,study_id\nGTV-1,L1,{HOSPITAL_NUMBER}\n")
    with pytest.raises(RoiMapError, match="not a pseudonymous study ID") as info:
        read_roi_map(tmp_path / "bad_map.csv")
    assert HOSPITAL_NUMBER not in str(info.value)


def test_changing_the_lesion_pattern_reruns_no_ct_conversion(
    export: Path, key_csv: Path, tmp_path: Path
) -> None:
    key = dict(read_key_table(key_csv).study_id_of)
    first = ingest_folder(export, tmp_path, IngestConfig(patient_key=key))
    assert first.units_done == {"rtstruct": 1, "series": 1}
    image = tmp_path / first.lesions["image_path"][0]
    written = image.stat().st_mtime_ns
    second = ingest_folder(export, tmp_path, IngestConfig(patient_key=key, lesion_pattern=r"GTV-(?P<n>\d+)"))
    assert second.units_done == {"rtstruct": 1} and second.n_units_reused == 1
    assert image.stat().st_mtime_ns == written
    third = ingest_folder(
        export, tmp_path, IngestConfig(patient_key=key, lesion_pattern=r"GTV-(?P<n>\d+)", oars=False)
    )
    assert third.units_done == {"rtstruct": 1} and list(third.masks["kind"]) == ["lesion"]
    assert not list(tmp_path.glob("masks/*Lung_L*"))  # OAR masks of the earlier run removed
    fourth = ingest_folder(
        export,
        tmp_path,
        IngestConfig(patient_key=key, slice_tolerance=0.02, oars=False, lesion_pattern=r"GTV-(?P<n>\d+)"),
    )
    assert fourth.units_done == {"rtstruct": 1, "series": 1}  # the series depends on its own settings


def test_roi_map_on_the_command_line(export: Path, key_csv: Path, tmp_path: Path) -> None:
    roi_map = tmp_path / "roi_map.csv"
    roi_map.write_text("roi_name,maps_to,study_id\ngtv-1,L2,SABR-RCC-001\nBODY,Skin,\nEsophagus,ignore,\n")
    result = runner.invoke(
        app,
        [
            "imaging",
            "ingest",
            str(export),
            "--out",
            str(tmp_path / "out"),
            "--key-table",
            str(key_csv),
            "--roi-map",
            str(roi_map),
        ],
    )
    assert result.exit_code == 0, result.output
    masks = pd.read_csv(tmp_path / "out" / "masks.csv")
    assert list(masks.loc[masks["kind"] == "lesion", "structure_id"]) == ["SABR-RCC-001-L2"]
    assert sorted(masks.loc[masks["kind"] == "oar", "oar"]) == ["Lung_L", "Lung_R", "Skin", "SpinalCord"]
    (tmp_path / "bad.csv").write_text("roi_name,maps_to\nGTV-1,lesion one\nCord,\n")
    bad = runner.invoke(
        app,
        [
            "imaging",
            "ingest",
            str(export),
            "--out",
            str(tmp_path / "out"),
            "--roi-map",
            str(tmp_path / "bad.csv"),
        ],
    )
    text = " ".join(bad.output.split())
    assert bad.exit_code == 1 and "RoiMapError" in text and "line 2: maps_to is neither" in text
    assert "line 3: empty roi_name or maps_to" in text


@pytest.mark.parametrize(
    ("roi", "lesion"),
    [
        ("GTV-1", "L1"),
        ("GTV_1", "L1"),
        ("GTV1", "L1"),
        ("GTV L1", "L1"),
        ("GTVp", "L1"),
        ("GTV_L1", "L1"),
        ("gtv-2", "L2"),
        ("Gtv_l3", "L3"),
        ("GTV-L12", "L12"),
        ("GTV", "L1"),
        ("GTV_primary", "L1"),
        ("GTV 4", "L4"),
    ],
)
def test_default_lesion_pattern_takes_the_clinical_and_tcia_spellings(roi: str, lesion: str) -> None:
    assert IngestConfig().lesion_id_of("SABR-RCC-001", roi) == f"SABR-RCC-001-{lesion}"
    assert re.fullmatch(DEFAULT_LESION_PATTERN, roi, flags=re.IGNORECASE)


@pytest.mark.parametrize("roi", ["GTV-1_old", "GTVp+5mm", "GTV_L1_PET"])
def test_other_gtv_names_are_reported_not_guessed(roi: str) -> None:
    with pytest.raises(Exception, match="--roi-map"):
        IngestConfig().roi_role("SABR-RCC-001", roi)


def test_oar_synonym_table_is_unambiguous_and_documented() -> None:
    assert oar_name("Spinal-Cord") == "SpinalCord" and oar_name("spinal cord") == "SpinalCord"
    assert (
        oar_name("Lung-Left") == "Lung_L"
        and oar_name("Lt Lung") == "Lung_L"
        and oar_name("Lung-Right") == "Lung_R"
    )
    assert oar_name("Oesophagus") == "Esophagus" and oar_name("Cord") == "SpinalCord"
    for derived in ("Lungs-GTV", "Cord_PRV5", "Esophagus_avoid", "PTV", "BODY", "GTV-1"):
        assert oar_name(derived) is None, derived
    docs = (Path(__file__).parents[2] / "docs" / "imaging.md").read_text()
    for name in OAR_SYNONYMS:
        assert f"`{name}`" in docs, name
