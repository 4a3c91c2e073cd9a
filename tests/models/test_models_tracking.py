"""MLflow logging: parent run, nested fold runs, artifacts, and a model that loads and predicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sabrkit.models.estimators import build_pipeline
from sabrkit.models.risk_groups import km_by_risk_group, plot_km_risk_groups
from sabrkit.models.simulation import simulate_feature_cohort
from sabrkit.models.tracking import MAX_PARAM_VALUE_LENGTH, mlflow_params
from sabrkit.models.validation import repeated_stratified_cv


@pytest.fixture(scope="module")
def logged_run(mlflow_store, tmp_path_factory: pytest.TempPathFactory):
    import mlflow

    from sabrkit.models.tracking import log_cv_to_mlflow

    tmp_path = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        dataset = simulate_feature_cohort(
            np.random.default_rng(3), 60, 40, n_informative=3, log_hazard_ratio=2.0
        )
        pipeline = build_pipeline("coxnet", k=8)
        result = repeated_stratified_cv(pipeline, dataset, n_splits=3, n_repeats=2, random_state=0)
        figure = plot_km_risk_groups(km_by_risk_group(result.oof, dataset.outcome_table(), repeat=0))
        uri = mlflow_store["uri"]
        uri_before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
        run_id = log_cv_to_mlflow(
            result,
            pipeline,
            dataset,
            experiment_name="sabr-pfs",
            tracking_uri=uri,
            run_name="coxnet-test",
            tags={"estimator": "coxnet"},
            km_figure=figure,
            artifact_location=str(tmp_path / "artifacts"),
        )
        uri_after = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
        yield {
            "client": mlflow.MlflowClient(tracking_uri=uri),
            "run_id": run_id,
            "uri": uri,
            "dataset": dataset,
            "result": result,
            "tmp_path": tmp_path,
            "uri_before": uri_before,
            "uri_after": uri_after,
        }


def test_parent_run_has_params_tags_and_summary_metrics(logged_run) -> None:
    run = logged_run["client"].get_run(logged_run["run_id"])
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["coxnet__l1_ratio"] == "0.5" and params["select__k"] == "8"
    assert params["cv_n_splits"] == "3" and params["cv_n_repeats"] == "2"
    assert "steps" not in params and "coxnet" not in params  # estimator objects are skipped
    tags = run.data.tags
    assert tags["feature_set"] == "simulated" and tags["endpoint"] == "pfs" and tags["estimator"] == "coxnet"
    assert tags["n_patients"] == "60" and tags["n_events"] == str(logged_run["dataset"].n_events)
    metrics = run.data.metrics
    assert metrics["uno_c_mean"] == pytest.approx(logged_run["result"].summary["uno_c_mean"])
    assert {"harrell_c_mean", "harrell_c_sd", "uno_c_sd", "uno_c_p025", "uno_c_p975", "n_events"} <= set(
        metrics
    )


def test_one_nested_run_per_fold(logged_run) -> None:
    client, run_id = logged_run["client"], logged_run["run_id"]
    parent = client.get_run(run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
    )
    assert len(children) == 6
    folds = {(c.data.params["repeat"], c.data.params["fold"]) for c in children}
    assert folds == {(str(r), str(f)) for r in range(2) for f in range(3)}
    for child in children:
        assert {"harrell_c", "uno_c", "n_train", "n_test", "n_test_events"} <= set(child.data.metrics)
        assert child.data.metrics["n_train"] + child.data.metrics["n_test"] == 60


def test_artifacts_feature_list_coefficients_and_plot(logged_run) -> None:
    client, run_id = logged_run["client"], logged_run["run_id"]
    listed = {
        a.path
        for folder in ("features", "model_summary", "plots", "validation")
        for a in client.list_artifacts(run_id, folder)
    }
    assert {
        "features/features.json",
        "model_summary/final_model_coefficients.csv",
        "plots/km_risk_groups.png",
    } <= listed
    local = Path(client.download_artifacts(run_id, "features/features.json", str(logged_run["tmp_path"])))
    features = json.loads(local.read_text())
    assert features["features"] == list(logged_run["dataset"].feature_names)
    # artifacts live under the given artifact location, not in the working directory
    assert (logged_run["tmp_path"] / "artifacts").is_dir() and any(
        (logged_run["tmp_path"] / "artifacts").iterdir()
    )


def test_logged_model_loads_and_predicts(logged_run) -> None:
    import mlflow

    run = logged_run["client"].get_run(logged_run["run_id"])
    model_uri = run.data.tags["sabrkit.model_uri"]
    dataset = logged_run["dataset"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", logged_run["uri"])
        model = mlflow.sklearn.load_model(model_uri)
        info = mlflow.models.get_model_info(model_uri)
    risk = model.predict(dataset.X)
    assert risk.shape == (60,) and np.isfinite(risk).all()
    assert info.signature.inputs.input_names() == list(dataset.feature_names)
    # the final model was fitted on all patients and ranks them better than chance
    from sksurv.metrics import concordance_index_censored

    assert concordance_index_censored(dataset.y["event"], dataset.y["time"], risk)[0] > 0.6


def test_global_tracking_uri_is_restored(logged_run) -> None:
    assert logged_run["uri_after"] == logged_run["uri_before"]


def test_param_values_respect_the_length_limit() -> None:
    pipeline = build_pipeline("coxnet", alpha=None)  # the whole path: a long list parameter
    pipeline.set_params(coxnet__alphas=list(np.linspace(0.01, 1.0, 400)))
    params = mlflow_params(pipeline)
    assert len(params["coxnet__alphas"]) == MAX_PARAM_VALUE_LENGTH
    assert all(len(v) <= MAX_PARAM_VALUE_LENGTH for v in params.values())
