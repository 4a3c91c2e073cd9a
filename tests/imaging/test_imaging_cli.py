"""`sabrkit imaging ...`: ingest, deidentify + phi-check, segment-seed and qc from the command line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import SimpleITK as sitk
from typer.testing import CliRunner

from sabrkit.cli import app

runner = CliRunner()


def _text(result) -> str:
    """Command output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_deidentify_then_phi_check_then_ingest(tiny_dicom: Path, tiny_cohort: Path, tmp_path: Path) -> None:
    key_table = tiny_cohort / "registry" / "identifiers.csv"
    failed = runner.invoke(app, ["imaging", "phi-check", str(tiny_dicom), "--key-table", str(key_table)])
    assert failed.exit_code == 1 and "PHI attribute" in _text(failed)
    done = runner.invoke(
        app,
        [
            "imaging",
            "deidentify",
            str(tiny_dicom),
            "--out",
            str(tmp_path / "deid"),
            "--key-table",
            str(key_table),
        ],
        env={"SABRKIT_DEID_SECRET": "cli-test-secret-0123456789"},
    )
    assert done.exit_code == 0, done.output
    clean = runner.invoke(
        app, ["imaging", "phi-check", str(tmp_path / "deid"), "--key-table", str(key_table)]
    )
    assert clean.exit_code == 0 and "no PHI attribute found" in _text(clean)
    ingested = runner.invoke(
        app, ["imaging", "ingest", str(tmp_path / "deid"), "--out", str(tmp_path / "imaging")]
    )
    assert ingested.exit_code == 0, ingested.output
    assert len(pd.read_csv(tmp_path / "imaging" / "images.csv")) == len(
        pd.read_csv(tiny_cohort / "images.csv")
    )
    again = runner.invoke(
        app, ["imaging", "ingest", str(tmp_path / "deid"), "--out", str(tmp_path / "imaging")]
    )
    assert "0 unit(s) converted" in _text(again)


def test_ingest_without_key_table_fails_and_names_the_reason(tiny_dicom: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["imaging", "ingest", str(tiny_dicom), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "not a pseudonymous study ID" in _text(result)


def test_segment_seed_and_qc(write_case, tmp_path: Path) -> None:
    image_path, mask_path = write_case("SABR-RCC-001-L1", size_xyz=(40, 40, 20))
    out = tmp_path / "seeded.nii.gz"
    result = runner.invoke(
        app, ["imaging", "segment-seed", str(image_path), "--seed", "20,20,10", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sitk.ReadImage(str(out)).GetSize() == (40, 40, 20)
    bad = runner.invoke(
        app, ["imaging", "segment-seed", str(image_path), "--seed", "20,20", "--out", str(out)]
    )
    assert bad.exit_code == 1 and "3 comma-separated" in _text(bad)
    pd.DataFrame(
        [
            {
                "lesion_id": "SABR-RCC-001-L1",
                "image_path": image_path.name,
                "mask_path": out.name,
                "reference": mask_path.name,
            }
        ]
    ).to_csv(tmp_path / "manifest.csv", index=False)
    qc = runner.invoke(
        app,
        [
            "imaging",
            "qc",
            str(tmp_path / "manifest.csv"),
            "--out",
            str(tmp_path / "qc"),
            "--reference-column",
            "reference",
        ],
    )
    assert qc.exit_code == 0, qc.output
    table = pd.read_csv(tmp_path / "qc" / "qc.csv")
    assert table["dice"][0] > 0.6 and (tmp_path / "qc" / table["png_path"][0]).is_file()
