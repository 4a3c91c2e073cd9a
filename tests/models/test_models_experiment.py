"""One experiment end to end on a small cohort: outputs, MLflow parent/child runs, lineage, registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sabrkit.models.experiment import run_experiment
from sabrkit.models.experiment_io import ExperimentInputs
from sabrkit.models.experiment_table import experiment_table, experiment_table_from_mlflow
from sabrkit.models.lineage import feature_table_md5, file_md5
from sabrkit.models.spec import parse_experiment

SPEC = {
    "name": "toy_coxnet",
    "description": "test experiment",
    "data": {"feature_set": "clinical+radiomic+biomarker"},
    "model": {"estimator": "coxnet", "params": {"alpha": 0.05, "k": 5}},
    "validation": {"n_splits": 3, "n_repeats": 2, "random_state": 1, "strata": "disease_state"},
    "analysis": {"importance_repeats": 2, "permutations": 19, "interval_bootstrap": 20},
    "tracking": {"experiment_name": "toy"},
}


@pytest.fixture(scope="module")
def experiment(toy_cohort, mlflow_store, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("experiment")
    table_path = tmp / "data" / "features" / "patient_features.parquet"
    table_path.parent.mkdir(parents=True)
    toy_cohort["patient_features"].to_parquet(table_path)
    lock = {
        "schema": "2.0",
        "stages": {
            "assemble": {
                "cmd": "x",
                "outs": [
                    {"path": "data/features/patient_features.parquet", "md5": file_md5(table_path), "size": 1}
                ],
            }
        },
    }
    (tmp / "dvc.lock").write_text(yaml.safe_dump(lock))
    inputs = ExperimentInputs(
        endpoints=toy_cohort["endpoints"],
        clinical=toy_cohort["clinical"],
        patient_features=toy_cohort["patient_features"],
        biomarkers=toy_cohort["biomarkers"],
        consented=toy_cohort["clinical"]["study_id"].iloc[:55].tolist(),
        feature_table_path=table_path,
    )
    uri = mlflow_store["uri"]
    result = run_experiment(
        parse_experiment(SPEC),
        inputs,
        tracking_uri=uri,
        out_dir=tmp / "out",
        artifact_location=mlflow_store["artifacts"],
    )
    return {"result": result, "uri": uri, "tmp": tmp, "table_path": table_path}


def test_outputs_are_written(experiment) -> None:
    out = experiment["tmp"] / "out"
    for name in (
        "metrics.json",
        "folds.csv",
        "reference_folds.csv",
        "comparison.csv",
        "oof.csv",
        "profile.csv",
        "therapy.csv",
        "importance.csv",
        "screening.csv",
        "calibration_24.csv",
        "report.html",
    ):
        assert (out / name).is_file(), name
    for plot in ("km_risk_groups", "calibration_24", "therapy_forest", "volcano", "importance"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 1000, plot
    assert (out / "model" / "MLmodel").is_file()
    html = (out / "report.html").read_text()
    assert "prognostic" in html and "not predictive" in html and "data:image/png;base64," in html
    assert "95 % confidence intervals" in html
    assert (
        "(a coxph model of ecog, imdc_risk=intermediate, imdc_risk=poor, disease_state=oligoprogressive)"
        in html
    )


def test_report_says_when_every_bootstrap_replicate_failed(experiment) -> None:
    """An interval whose bootstrap cohorts all failed is reported as failed, not as 'not computed'."""
    import dataclasses

    from sabrkit.models.report import render_experiment_report

    result = experiment["result"]
    summary = {**result.metrics["summary"], "uno_c_ci_low": float("nan"), "uno_c_ci_high": float("nan")}
    failed = dataclasses.replace(
        result,
        metrics={**result.metrics, "summary": {**summary, "ci_n_bootstrap": 20.0, "ci_n_failed": 20.0}},
    )
    html = render_experiment_report(failed, figure_files={})
    assert "20 of 20 bootstrap replicates failed" in html and "95 % confidence intervals" not in html


def test_metrics_document(experiment) -> None:
    metrics = json.loads((experiment["tmp"] / "out" / "metrics.json").read_text())
    assert metrics["n_patients"] == 55 and metrics["feature_set"] == "clinical+radiomic+biomarker"
    assert metrics["lineage"]["consent"] == "applied: 5 patient(s) without consent excluded"
    assert metrics["validation"]["strata"] == "disease_state" and metrics["validation"]["n_repeats"] == 2
    for key in (
        "harrell_c_mean",
        "uno_c_mean",
        "uno_c_sd",
        "uno_c_p025",
        "uno_c_p975",
        "auc_12_mean",
        "ibs_mean",
        "ibs_km_mean",
        "calibration_error_24_mean",
    ):
        assert key in metrics["summary"], key
    assert metrics["summary"]["uno_c_mean"] > 0.65  # planted signal: SumEntropy, ctDNA, disease state
    assert metrics["clinical_reference"]["estimator"] == "coxph"
    assert set(metrics["clinical_reference"]["covariates"]) == {  # the established factors, by default
        "imdc_risk=intermediate",
        "imdc_risk=poor",
        "ecog",
        "disease_state=oligoprogressive",
    }
    assert metrics["comparison"]["delta_uno_c_mean"] > 0  # radiomics + biomarker add to the clinical model
    assert metrics["risk_groups"]["permutation_p"] <= 0.05  # 19 permutations: the smallest possible p
    assert metrics["risk_groups"]["n_permutations"] == 19
    summary, comparison = metrics["summary"], metrics["comparison"]
    assert summary["uno_c_ci_low"] < summary["uno_c_mean"] < summary["uno_c_ci_high"]
    assert (
        comparison["delta_uno_c_ci_low"] < comparison["delta_uno_c_mean"] < comparison["delta_uno_c_ci_high"]
    )
    for horizon in ("12", "24"):
        assert (
            0
            <= metrics["calibration_pooled"][f"e50_{horizon}"]
            <= metrics["calibration_pooled"][f"e90_{horizon}"]
        )
    cutoff = json.loads((experiment["tmp"] / "out" / "model" / "risk_cutoff.json").read_text())
    assert cutoff["risk_cutoff"] == metrics["risk_groups"]["final_model_risk_cutoff"]
    assert metrics["importance"]["shap"].startswith("skipped")
    assert metrics["importance"]["top"][0] in {
        "original_glcm_SumEntropy",
        "original_glcm_JointEntropy",
        "ctdna_baseline",
    }
    assert metrics["lineage"]["feature_table_md5_source"] == "dvc.lock"
    assert "not predictive" in metrics["note"]


def test_reference_was_validated_on_the_same_folds(experiment) -> None:
    result = experiment["result"]
    assert (result.cv.folds["test_ids_sha1"] == result.reference_cv.folds["test_ids_sha1"]).all()
    assert result.reference_cv.folds["n_test"].sum() == 2 * 55


def test_mlflow_parent_run_children_lineage_artifacts_and_registered_model(experiment) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=experiment["uri"])
    run = client.get_run(experiment["result"].run_id)
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags["sabrkit.kind"] == "experiment" and tags["experiment"] == "toy_coxnet"
    assert tags["feature_set"] == "clinical+radiomic+biomarker" and tags["n_patients"] == "55"
    assert tags["dvc_md5_feature_table"] == file_md5(experiment["table_path"])
    assert tags["dvc_md5_source"] == "dvc.lock" and tags["consent"].startswith("applied")
    assert len(tags.get("git_commit", "x" * 40)) == 40
    assert (
        params["coxnet__l1_ratio"] == "0.5" and params["select__k"] == "5" and params["cv_n_repeats"] == "2"
    )
    for key in (
        "uno_c_mean",
        "delta_uno_c_mean",
        "clinical_uno_c_mean",
        "permutation_p",
        "uno_c_ci_low",
        "delta_uno_c_ci_high",
        "pooled_ici_24",
        "ibs_mean",
    ):
        assert key in metrics, key
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert len(children) == 6 and all("auc_12" in c.data.metrics for c in children)
    listed = {
        a.path
        for folder in ("plots", "tables", "features", "extra/experiment")
        for a in client.list_artifacts(run.info.run_id, folder)
    }
    assert {
        "plots/km_risk_groups.png",
        "plots/calibration_24.png",
        "tables/profile.csv",
        "tables/importance.csv",
        "features/features.json",
    } <= listed
    versions = client.search_model_versions("name = 'sabr-toy_coxnet'")
    assert len(versions) == 1 and versions[0].run_id == run.info.run_id
    assert tags["sabrkit.model_version"] == str(versions[0].version)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", experiment["uri"])
        model = mlflow.sklearn.load_model(f"models:/sabr-toy_coxnet/{versions[0].version}")
        info = mlflow.models.get_model_info(tags["sabrkit.model_uri"])
    data = experiment["result"].dataset
    assert model.predict(data.X).shape == (55,)
    assert info.signature.inputs.input_names() == list(data.feature_names)


def test_comparison_table_from_json_and_from_mlflow(experiment, tmp_path: Path) -> None:
    metrics_file = experiment["tmp"] / "out" / "metrics.json"
    other = json.loads(metrics_file.read_text())
    other.update(experiment="other", summary={**other["summary"], "uno_c_mean": 0.5})
    (tmp_path / "other.json").write_text(json.dumps(other))
    table = experiment_table([metrics_file, tmp_path / "other.json"])
    assert table["experiment"].tolist() == ["toy_coxnet", "other"]  # sorted by Uno C
    assert table.loc[0, "comparator"] == "clinical (ecog, imdc_risk, disease_state)"
    assert table.loc[0, "delta_uno_c_vs_clinical"] == pytest.approx(
        experiment["result"].metrics["comparison"]["delta_uno_c_mean"]
    )
    from_mlflow = experiment_table_from_mlflow(experiment["uri"], "toy")
    assert from_mlflow["experiment"].tolist() == ["toy_coxnet"]
    assert from_mlflow.loc[0, "uno_c_mean"] == pytest.approx(table.loc[0, "uno_c_mean"])
    assert isinstance(from_mlflow, pd.DataFrame)


def test_lineage_hash_sources(tmp_path: Path) -> None:
    table = tmp_path / "features.parquet"
    table.write_bytes(b"abc")
    assert feature_table_md5(table).source == "file md5"
    (tmp_path / "features.parquet.dvc").write_text(
        yaml.safe_dump({"outs": [{"md5": file_md5(table), "path": "features.parquet"}]})
    )
    assert feature_table_md5(table).source == "dvc file"
    table.write_bytes(b"changed")
    stale = feature_table_md5(table)
    assert stale.source == "file md5 (dvc file out of date)" and stale.md5 == file_md5(table)


def test_final_model_scores_new_patients_with_its_own_training_cutoff(experiment, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sabrkit.cli.main import app

    model_dir = experiment["tmp"] / "out" / "model"
    data = experiment["result"].dataset
    table = data.X.reset_index()
    table.to_parquet(tmp_path / "new.parquet")
    out = tmp_path / "predictions.csv"
    result = CliRunner().invoke(
        app, ["models", "predict", str(model_dir), str(tmp_path / "new.parquet"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out)
    cutoff = experiment["result"].metrics["risk_groups"]["final_model_risk_cutoff"]
    assert np.allclose(scored["risk_cutoff"], cutoff)
    clear = (scored["risk"] - cutoff).abs() > 1e-9  # the CSV parser may move the median patient by 1 ulp
    assert ((scored["risk"] > cutoff) == (scored["risk_group"] == "high"))[clear].all()
    assert abs((scored["risk_group"] == "high").mean() - 0.5) < 0.05  # the median of these training rows
    table.drop(columns=[data.feature_names[0]]).to_csv(tmp_path / "short.csv", index=False)
    missing = CliRunner().invoke(app, ["models", "predict", str(model_dir), str(tmp_path / "short.csv")])
    assert missing.exit_code != 0 and "missing" in missing.output


def test_experiment_with_unpenalized_clinical_covariates(toy_cohort, mlflow_store, tmp_path: Path) -> None:
    """coxnet ``unpenalized: clinical`` through the whole runner: importance on the input names,
    the MLflow run, the saved final model (clinical penalty factor 0) scoring new patients."""
    from sabrkit.models.clinical_encoding import CLINICAL_COLUMN_PATTERN
    from sabrkit.models.io import score_patients

    spec = {
        **SPEC,
        "name": "toy_coxnet_unpenalized",
        "data": {"feature_set": "clinical+radiomic"},
        "model": {"estimator": "coxnet", "params": {"alpha": 0.1, "k": 5, "unpenalized": "clinical"}},
        "analysis": {"importance_repeats": 1, "permutations": 0, "interval_bootstrap": 0, "screening": False},
    }
    inputs = ExperimentInputs(
        endpoints=toy_cohort["endpoints"],
        clinical=toy_cohort["clinical"],
        patient_features=toy_cohort["patient_features"],
        consented=toy_cohort["clinical"]["study_id"].tolist(),
    )
    result = run_experiment(
        parse_experiment(spec),
        inputs,
        tracking_uri=mlflow_store["uri"],
        out_dir=tmp_path / "out",
        artifact_location=mlflow_store["artifacts"],
    )
    clinical = list(result.dataset.blocks["clinical"])
    model = result.final_model
    names = list(model[:-1].get_feature_names_out())
    factor = dict(zip(names, model[-1].penalty_factor_, strict=True))
    assert all(factor[c] == 0 for c in clinical if c in factor) and sum(v == 0 for v in factor.values()) >= 10
    assert all(v > 0 for n, v in factor.items() if n not in clinical)
    assert model[-1].unpenalized == CLINICAL_COLUMN_PATTERN
    assert set(result.tables["importance"]["feature"]) == set(result.dataset.feature_names)
    assert 0.0 <= result.metrics["summary"]["uno_c_mean"] <= 1.0 and result.run_id
    scored = score_patients(tmp_path / "out" / "model", result.dataset.X.reset_index())
    np.testing.assert_allclose(scored["risk"], model.predict(result.dataset.X), rtol=1e-9)
