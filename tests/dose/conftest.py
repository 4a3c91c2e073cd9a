"""Dose fixtures: a synthetic cohort with plans (RTPLAN, RTDOSE, PTV/OAR contours) and dicompyler-core."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def planned_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    """A 12-patient cohort (96 x 96 x 32 voxel regions) written as DICOM with plans; (cohort, export, dose truth)."""
    from sabrkit.synthetic import SynthConfig, synthesize
    from sabrkit.synthetic.dicom import write_cohort_dicom

    root = tmp_path_factory.mktemp("planned")
    cohort = synthesize(root / "cohort", SynthConfig(n_patients=12, seed=20240507, image_shape=(96, 96, 32)))
    write_cohort_dicom(cohort, root / "export", follow_up=False, dose_truth_path=root / "dose_truth.csv")
    return cohort, root / "export", pd.read_csv(root / "dose_truth.csv")


@pytest.fixture(scope="session")
def dicompyler_dvhcalc():
    """dicompyler-core's ``dvhcalc`` (the independent DVH reference).

    dicompyler-core 0.5.6 (its latest release) imports ``read_file`` from ``pydicom.dicomio``, an
    alias pydicom 3 removed; the alias is restored to ``pydicom.dcmread`` (the same function)
    before the import.
    """
    import pydicom
    import pydicom.dicomio

    if not hasattr(pydicom.dicomio, "read_file"):
        pydicom.dicomio.read_file = pydicom.dcmread
    from dicompylercore import dvhcalc

    return dvhcalc
