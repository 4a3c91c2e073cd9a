"""A DVC-project-shaped folder holding one real experiment run (for the researchers' pages).

The experiment is run with the models room's :func:`sabrkit.models.experiment.run_experiment` on
its toy cohort (``tests/models/conftest.py:make_toy_cohort``, planted signal) and logged to a
SQLite MLflow store with a registered model, then written where the pipeline writes
(``metrics/experiments/<name>.json``, ``models/experiments/<name>/``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SPEC = {
    "name": "toy_coxnet",
    "description": "web test experiment",
    "data": {"feature_set": "clinical+radiomic+biomarker"},
    "model": {"estimator": "coxnet", "params": {"alpha": 0.05, "k": 5}},
    "validation": {"n_splits": 3, "n_repeats": 2, "random_state": 1, "strata": "disease_state"},
    "analysis": {"importance_repeats": 1, "permutations": 19, "interval_bootstrap": 0},
    "tracking": {"experiment_name": "web-toy", "registered_model_name": "web_toy_model"},
}


def build_experiment_project(folder: Path) -> dict[str, str]:
    """Run the toy experiment into ``folder``; returns the tracking URI, run ID and project path."""
    from sabrkit.models.experiment import experiment_paths, run_experiment
    from sabrkit.models.experiment_io import ExperimentInputs, write_json
    from sabrkit.models.spec import parse_experiment

    source = Path(__file__).resolve().parents[1] / "models" / "conftest.py"
    spec = importlib.util.spec_from_file_location("sabrkit_models_test_cohort", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cohort = module.make_toy_cohort(np.random.default_rng(20240501))
    table_path = folder / "data" / "features" / "patient_features.parquet"
    table_path.parent.mkdir(parents=True)
    cohort["patient_features"].to_parquet(table_path)
    inputs = ExperimentInputs(
        endpoints=cohort["endpoints"],
        clinical=cohort["clinical"],
        patient_features=cohort["patient_features"],
        biomarkers=cohort["biomarkers"],
        consented=cohort["clinical"]["study_id"].tolist(),
        feature_table_path=table_path,
    )
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    paths = experiment_paths(folder, SPEC["name"])
    spec_object = parse_experiment(SPEC)
    result = run_experiment(
        spec_object,
        inputs,
        tracking_uri=uri,
        out_dir=paths["out_dir"],
        artifact_location=(folder / "mlartifacts").as_uri(),
    )
    write_json(result.metrics, paths["metrics"])  # what run_experiment_file writes for DVC
    return {"project": str(folder), "uri": uri, "run_id": str(result.run_id), "name": SPEC["name"]}
