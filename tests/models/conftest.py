"""Fixtures of the models tests: a small registry-shaped cohort and the (slow) synthetic cohort."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SIGNAL = "original_glcm_SumEntropy"


def make_toy_cohort(rng: np.random.Generator, n: int = 60, n_noise: int = 30) -> dict[str, pd.DataFrame]:
    """Registry-shaped tables (clinical, endpoints, patient radiomics, biomarkers) with planted signal.

    PFS hazard rises with ``original_glcm_SumEntropy`` (log HR 1.2 per SD), with oligoprogressive
    disease (0.7) and with biomarker ``ctdna_baseline`` (0.8); other features are noise.
    """
    ids = [f"SABR-RCC-{i:03d}" for i in range(1, n + 1)]
    disease = rng.choice(["oligometastatic", "oligoprogressive"], size=n, p=[0.6, 0.4])
    clinical = pd.DataFrame(
        {
            "study_id": ids,
            "age_years": rng.normal(63, 9, n).round(1),
            "sex": rng.choice(["F", "M"], n),
            "ecog": rng.choice([0, 1, 2], n, p=[0.6, 0.3, 0.1]),
            "histology": rng.choice(["clear_cell", "non_clear_cell"], n, p=[0.85, 0.15]),
            "imdc_risk": rng.choice(["favourable", "intermediate", "poor"], n, p=[0.4, 0.5, 0.1]),
            "prior_nephrectomy": rng.random(n) < 0.8,
            "disease_state": disease,
            "systemic_therapy": rng.choice(["none", "tki", "ici", "tki_ici"], n, p=[0.3, 0.3, 0.1, 0.3]),
            "n_lesions": rng.integers(1, 5, n),
            "max_bed10_gy": rng.normal(120, 20, n).round(1),
        }
    )
    signal = rng.standard_normal(n)
    ctdna = rng.standard_normal(n)
    eta = 1.2 * signal + 0.7 * (disease == "oligoprogressive") + 0.8 * ctdna
    event_time = rng.exponential(14.0 / np.exp(eta))
    censor_time = rng.uniform(6, 30, n)
    time = np.maximum(np.minimum(event_time, censor_time), 0.2)
    endpoints = pd.DataFrame(
        {
            "study_id": ids,
            "index_date": "2025-01-01",
            "pfs_months": time,
            "pfs_event": event_time <= censor_time,
            "os_months": time + 3.0,
            "os_event": False,
        }
    )
    radiomic = {f"original_firstorder_Noise{j:02d}": rng.standard_normal(n) for j in range(n_noise)}
    radiomic[SIGNAL] = signal
    radiomic["original_glcm_JointEntropy"] = signal + 0.3 * rng.standard_normal(n)
    patient_features = pd.DataFrame(
        {
            "study_id": ids,
            **radiomic,
            "n_lesions": clinical["n_lesions"],
            "total_volume_mm3": rng.uniform(500, 5000, n),
            "prov_params_hash": "abc",
        }
    )
    biomarkers = pd.DataFrame(
        {"study_id": ids, "ctdna_baseline": ctdna, "il6_baseline": rng.standard_normal(n)}
    )
    return {
        "clinical": clinical,
        "endpoints": endpoints,
        "patient_features": patient_features,
        "biomarkers": biomarkers,
    }


@pytest.fixture(scope="module")
def toy_cohort() -> dict[str, pd.DataFrame]:
    return make_toy_cohort(np.random.default_rng(20240501))


@pytest.fixture(scope="session")
def synthetic_model_inputs(tmp_path_factory: pytest.TempPathFactory):
    """The default synthetic cohort (60 patients, seed 20240501) through synthesize -> preprocess ->
    extract, with endpoints and clinical covariates; built once per session (about 1-2 minutes)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from synthetic_cohort import build

    return build(tmp_path_factory.mktemp("synthetic_cohort"))


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One SQLite MLflow store for the session (creating its tables takes several seconds)."""
    folder = tmp_path_factory.mktemp("mlflow_store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        yield {
            "uri": f"sqlite:///{folder / 'mlflow.db'}",
            "artifacts": (folder / "artifacts").as_uri(),
            "folder": str(folder),
        }
