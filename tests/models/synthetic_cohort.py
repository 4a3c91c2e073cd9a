"""Build the synthetic cohort's model inputs with the package functions (no DVC, no database).

synthesize -> preprocess -> extract -> aggregate, plus the registry endpoints and clinical
covariates computed from the cohort's CSVs; used by the slow planted-signal tests (cached per
session in ``conftest.py``) and runnable as a script for development::

    .venv/bin/python tests/models/synthetic_cohort.py /tmp/cohort
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class SyntheticModelInputs:
    folder: Path
    lesion_features: pd.DataFrame
    endpoints: pd.DataFrame
    clinical: pd.DataFrame
    truth: dict
    truth_patients: pd.DataFrame
    lesion_features_path: Path


def build(folder: Path, n_jobs: int = 2, seed: int = 20240501) -> SyntheticModelInputs:
    from sabrkit.features import extract_lesion_features, load_params, read_feature_table, write_feature_table
    from sabrkit.imaging import PreprocessConfig, preprocess_manifest
    from sabrkit.registry import compute_clinical_covariates, compute_endpoints
    from sabrkit.synthetic import SynthConfig, synthesize

    folder = Path(folder)
    cohort, preprocessed = folder / "synthetic", folder / "preprocessed"
    features_path = folder / "features" / "lesion_features.parquet"
    if not features_path.is_file():
        synthesize(cohort, SynthConfig(n_patients=60, seed=seed))
        preprocess_manifest(
            pd.read_csv(cohort / "images.csv"),
            preprocessed,
            PreprocessConfig(),
            n_jobs=n_jobs,
            base_dir=cohort,
        )
        result = extract_lesion_features(
            pd.read_csv(preprocessed / "images.csv"),
            load_params("ct_v1"),
            n_jobs=n_jobs,
            progress=False,
            base_dir=preprocessed,
        )
        features_path.parent.mkdir(parents=True, exist_ok=True)
        write_feature_table(result.features, features_path)
    registry = cohort / "registry"
    patients = pd.read_csv(registry / "patients.csv")
    courses = pd.read_csv(registry / "sabr_courses.csv")
    endpoints = compute_endpoints(
        patients,
        courses,
        pd.read_csv(registry / "progression_events.csv"),
        pd.read_csv(registry / "deaths.csv"),
    )
    clinical = compute_clinical_covariates(patients, pd.read_csv(registry / "lesions.csv"), courses)
    return SyntheticModelInputs(
        folder=folder,
        lesion_features=read_feature_table(features_path),
        endpoints=endpoints,
        clinical=clinical,
        truth=json.loads((cohort / "ground_truth.json").read_text()),
        truth_patients=pd.read_csv(cohort / "ground_truth_patients.csv"),
        lesion_features_path=features_path,
    )


if __name__ == "__main__":
    import time

    start = time.perf_counter()
    inputs = build(Path(sys.argv[1]))
    print(
        f"{len(inputs.lesion_features)} lesions, {inputs.endpoints['pfs_event'].sum()} PFS events, "
        f"{time.perf_counter() - start:.0f} s"
    )
