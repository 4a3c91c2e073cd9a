"""Imaging fixtures: a tiny synthetic cohort and its DICOM export (CT-like cases come from
tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-patient synthetic cohort with small CT regions (56 x 56 x 24 voxels)."""
    from sabrkit.synthetic import SynthConfig, synthesize

    return synthesize(
        tmp_path_factory.mktemp("cohort") / "cohort",
        SynthConfig(n_patients=3, seed=20240507, image_shape=(56, 56, 24)),
    )


@pytest.fixture(scope="session")
def tiny_dicom(tiny_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny cohort written as a DICOM export (CT series, RTSTRUCT, follow-up CTs)."""
    from sabrkit.synthetic.dicom import write_cohort_dicom

    out = tmp_path_factory.mktemp("dicom") / "export"
    write_cohort_dicom(tiny_cohort, out, follow_up_truth_dir=out.parent / "truth")
    return out


@pytest.fixture(scope="session")
def key_table(tiny_cohort: Path) -> dict[str, str]:
    """hospital_number -> study_id of the tiny cohort."""
    import pandas as pd

    keys = pd.read_csv(tiny_cohort / "registry" / "identifiers.csv", dtype=str)
    return dict(zip(keys["hospital_number"], keys["study_id"]))
