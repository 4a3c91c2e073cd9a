"""`sabrkit features extract` stops on bad input, names the lesion and the problem, and writes
no feature table (the spine's bad-input rule)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from sabrkit.cli import app

runner = CliRunner()


def _write_case(
    folder: Path,
    lesion_id: str,
    rng: np.random.Generator,
    *,
    empty_mask: bool = False,
    mask_spacing: tuple[float, float, float] | None = None,
) -> tuple[str, str]:
    z, y, x = np.mgrid[0:20, 0:32, 0:32]
    lesion = (x - 16) ** 2 + (y - 16) ** 2 + ((z - 10) * 2) ** 2 <= 36
    hu = rng.normal(-800, 30, lesion.shape)
    hu[lesion] = rng.normal(40, 25, int(lesion.sum()))
    image = sitk.GetImageFromArray(hu.astype(np.int16))
    image.SetSpacing((1.0, 1.0, 2.0))
    mask = sitk.GetImageFromArray((np.zeros_like(lesion) if empty_mask else lesion).astype(np.uint8))
    mask.CopyInformation(image)
    if mask_spacing:
        mask.SetSpacing(mask_spacing)
    image_name, mask_name = f"{lesion_id}_ct.nii.gz", f"{lesion_id}_mask.nii.gz"
    sitk.WriteImage(image, str(folder / image_name))
    sitk.WriteImage(mask, str(folder / mask_name))
    return image_name, mask_name


@pytest.fixture
def cohort(tmp_path: Path, rng: np.random.Generator) -> Path:
    rows = []
    for lesion_id in ("SABR-RCC-001-L1", "SABR-RCC-002-L1"):
        rows.append((lesion_id, *_write_case(tmp_path, lesion_id, rng)))
    return tmp_path, rows


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("geometry", "spacing"),
        ("empty_mask", "empty"),
        ("missing_image", "does not exist"),
    ],
)
def test_extract_stops_naming_lesion_and_problem(cohort, rng, problem: str, expected: str):
    folder, rows = cohort
    bad_id = "SABR-RCC-003-L2"
    if problem == "geometry":
        rows = [*rows, (bad_id, *_write_case(folder, bad_id, rng, mask_spacing=(1.2, 1.2, 2.0)))]
    elif problem == "empty_mask":
        rows = [*rows, (bad_id, *_write_case(folder, bad_id, rng, empty_mask=True))]
    else:
        image_name, mask_name = _write_case(folder, bad_id, rng)
        (folder / image_name).unlink()
        rows = [*rows, (bad_id, image_name, mask_name)]
    manifest = folder / "images.csv"
    pd.DataFrame(
        [
            {"lesion_id": r[0], "study_id": r[0].rsplit("-L", 1)[0], "image_path": r[1], "mask_path": r[2]}
            for r in rows
        ]
    ).to_csv(manifest, index=False)
    out = folder / "features" / "lesion_features.parquet"

    result = runner.invoke(app, ["features", "extract", str(manifest), "--out", str(out)], terminal_width=400)

    assert result.exit_code == 1, result.output
    message = " ".join(result.output.lower().split())
    assert bad_id.lower() in message
    assert expected in message, result.output
    assert "SABR-RCC-001-L1" not in result.output  # the good lesions are not reported as failed
    assert not out.exists(), "a partial feature table was left behind"
    assert not list(folder.rglob("*.parquet"))
