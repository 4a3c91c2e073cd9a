"""``sabrkit models ...``: run an experiment file in a project, check files, compare experiments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sabrkit.cli.main import app

EXPERIMENT = {
    "description": "cli test",
    "inputs": {"lesion_features": "data/features/lesions.csv"},
    "data": {"feature_set": "clinical+radiomic"},
    "model": {"estimator": "coxnet", "params": {"alpha": 0.05, "k": 5}},
    "validation": {"n_splits": 3, "n_repeats": 1},
    "analysis": {"importance_repeats": 0, "permutations": 19, "interval_bootstrap": 20, "screening": False},
}


@pytest.fixture(scope="module")
def project(toy_cohort, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    (root / "data" / "features").mkdir(parents=True)
    (root / "data" / "registry").mkdir(parents=True)
    (root / "experiments").mkdir()
    lesions = toy_cohort["patient_features"].drop(columns=["n_lesions", "prov_params_hash"])
    lesions = lesions.rename(columns={"total_volume_mm3": "original_shape_MeshVolume"})
    lesions.insert(0, "lesion_id", lesions["study_id"] + "-L1")
    lesions.to_csv(root / "data" / "features" / "lesions.csv", index=False)
    toy_cohort["clinical"].to_parquet(root / "data" / "registry" / "clinical.parquet")
    toy_cohort["endpoints"].to_parquet(root / "data" / "registry" / "endpoints.parquet")
    consent = toy_cohort["clinical"][["study_id"]].assign(consented=True)  # the snapshot `ingest` writes
    consent.to_parquet(root / "data" / "registry" / "consent.parquet")
    (root / "experiments" / "toy.yaml").write_text(yaml.safe_dump(EXPERIMENT))
    return root


@pytest.fixture(scope="module")
def experiment_run(project: Path):
    """`sabrkit models run-experiment` on the toy project, run once for the tests that read its outputs."""
    return CliRunner().invoke(
        app,
        [
            "models",
            "run-experiment",
            str(project / "experiments" / "toy.yaml"),
            "--project",
            str(project),
            "--no-mlflow",
        ],
    )


def test_run_experiment_writes_outputs_and_metrics(project: Path, experiment_run) -> None:
    result = experiment_run
    assert result.exit_code == 0, result.output
    assert "toy: coxnet on clinical+radiomic (60 patients" in result.output and "vs clinical" in result.output
    metrics = json.loads((project / "metrics" / "experiments" / "toy.json").read_text())
    assert metrics["experiment"] == "toy" and "mlflow" not in metrics
    assert (project / "models" / "experiments" / "toy" / "report.html").is_file()


def test_compare_reads_the_metrics_files(project: Path, experiment_run, tmp_path: Path) -> None:
    assert experiment_run.exit_code == 0, experiment_run.output
    out = tmp_path / "table.csv"
    result = CliRunner().invoke(
        app,
        ["models", "compare", "--metrics-dir", str(project / "metrics" / "experiments"), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "toy" in result.output and out.read_text().startswith("experiment,estimator,feature_set")


def test_check_reports_bad_experiment_files(project: Path, tmp_path: Path) -> None:
    ok = CliRunner().invoke(app, ["models", "check", str(project / "experiments" / "toy.yaml")])
    assert ok.exit_code == 0 and "ok" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**EXPERIMENT, "model": {"estimator": "coxnet", "columns": ["x"]}}))
    failed = CliRunner().invoke(app, ["models", "check", str(bad)])
    assert failed.exit_code == 1 and "model.columns" in failed.output


def test_missing_inputs_fail_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "toy.yaml").write_text(yaml.safe_dump(EXPERIMENT))
    result = CliRunner().invoke(
        app,
        [
            "models",
            "run-experiment",
            str(tmp_path / "experiments" / "toy.yaml"),
            "--project",
            str(tmp_path),
            "--no-mlflow",
        ],
    )
    assert result.exit_code == 1 and "does not exist" in result.output and "dvc repro" in result.output


def test_estimators_lists_models_and_steps() -> None:
    result = CliRunner().invoke(app, ["models", "estimators"])
    assert result.exit_code == 0 and "spca_cox" in result.output and "combat" in result.output


@pytest.fixture(scope="module")
def assembled(toy_cohort, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data set as the `assemble` stage writes it (consent applied there)."""
    from sabrkit.models.assembly import assemble_dataset
    from sabrkit.models.io import write_dataset

    features = toy_cohort["patient_features"].drop(columns=["n_lesions", "prov_params_hash"])
    data = assemble_dataset(
        features,
        toy_cohort["endpoints"],
        toy_cohort["clinical"],
        "clinical+radiomic",
        consented=toy_cohort["clinical"]["study_id"],
    )
    return write_dataset(data, tmp_path_factory.mktemp("assembled") / "dataset.parquet")


def _validate_args(path: Path) -> list[str]:
    return ["models", "validate", str(path), "--estimator", "coxph", "--n-splits", "3", "--n-repeats", "2"]


def test_validate_goes_through_the_experiment_runner(assembled: Path, mlflow_store, monkeypatch) -> None:
    """`sabrkit models validate`: the numbers of the validation core on the same folds, one MLflow
    run logged by the experiment runner (tagged as an experiment), and no second code path."""
    import mlflow

    from sabrkit.models import build_pipeline, repeated_stratified_cv
    from sabrkit.models.io import read_dataset

    expected = repeated_stratified_cv(
        build_pipeline("coxph"), read_dataset(assembled), n_splits=3, n_repeats=2, random_state=42
    ).summary
    monkeypatch.setenv("SABRKIT_MLFLOW_TRACKING_URI", mlflow_store["uri"])
    result = CliRunner().invoke(app, [*_validate_args(assembled), "--experiment", "validate-cli"])
    assert result.exit_code == 0, result.output
    assert f"Uno C {expected['uno_c_mean']:.3f} ± {expected['uno_c_sd']:.3f}" in result.output
    assert f"Harrell C {expected['harrell_c_mean']:.3f}" in result.output
    run_id = result.output.split("MLflow run ")[1].split()[0]
    run = mlflow.MlflowClient(mlflow_store["uri"]).get_run(run_id)
    assert run.data.tags["sabrkit.kind"] == "experiment"
    assert run.data.metrics["uno_c_mean"] == pytest.approx(expected["uno_c_mean"], abs=1e-9)


def test_validate_reports_interval_and_permutation_p_when_asked(assembled: Path) -> None:
    result = CliRunner().invoke(
        app, [*_validate_args(assembled), "--no-log", "--permutations", "19", "--bootstrap", "20"]
    )
    assert result.exit_code == 0, result.output
    assert (
        "95 % CI" in result.output and "permutation p" in result.output and "MLflow run" not in result.output
    )
    low, high = (float(x) for x in result.output.split("95 % CI ")[1].split(";")[0].split("-"))
    assert 0.0 <= low < high <= 1.0
