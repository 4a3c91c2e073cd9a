"""Spawned worker processes import MONAI (and torch) once each: seconds, hence ``slow``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sabrkit.imaging import preprocess_manifest, read_image


def _manifest(rows: list[tuple[str, Path, Path]], base: Path) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lesion_id": [r[0] for r in rows],
            "study_id": [r[0].rsplit("-L", 1)[0] for r in rows],
            "image_path": [str(r[1].relative_to(base)) for r in rows],
            "mask_path": [str(r[2].relative_to(base)) for r in rows],
        }
    )


@pytest.mark.slow
def test_parallel_preprocess_equals_serial(tmp_path: Path, write_case: Callable) -> None:
    rows = [(f"SABR-RCC-00{i}-L1", *write_case(f"c{i}")) for i in range(1, 4)]
    manifest = _manifest(rows, tmp_path)
    serial = preprocess_manifest(manifest, tmp_path / "serial", base_dir=tmp_path)
    parallel = preprocess_manifest(manifest, tmp_path / "parallel", n_jobs=2, base_dir=tmp_path)
    for a, b in zip(serial.itertuples(), parallel.itertuples()):
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(read_image(a.image_path, a.lesion_id)),
            sitk.GetArrayFromImage(read_image(b.image_path, b.lesion_id)),
        )
