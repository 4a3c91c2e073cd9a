"""A researcher's own table through ``sabrkit train``: GBSG2 (scikit-survival) as one CSV in days.

Every cross-validated number checked here is recomputed with plain scikit-learn/scikit-survival
on folds the test builds itself (``RepeatedStratifiedKFold`` on the event indicator, as
docs/models.md documents), never read back from sabrkit.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from sabrkit.cli.main import app
from sabrkit.models.experiment import run_experiment_file
from sabrkit.models.one_table import (
    FollowUpHorizonError,
    TableColumnError,
    TimeUnitError,
)

DAYS_TO_MONTHS = 12 / 365.25
COVARIATES = ["age", "tsize", "pnodes", "tgrade", "horTh", "menostat", "estrec", "progrec"]
CATEGORICAL = ["tgrade", "horTh", "menostat"]
COMPARATOR = ["tsize", "tgrade", "pnodes"]
VALIDATION = {"n_splits": 5, "n_repeats": 1, "random_state": 7, "tau_months": 60, "auc_times": [12, 36]}
ANALYSIS = {"importance_repeats": 0, "permutations": 0, "interval_bootstrap": 0, "screening": False}


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def gbsg2() -> pd.DataFrame:
    from sksurv.datasets import load_gbsg2

    X, y = load_gbsg2()  # recurrence-free survival time in days (German Breast Cancer Study Group 2)
    table = X.astype({c: str for c in CATEGORICAL}).copy()
    table.insert(0, "pid", [f"GBSG-{i:03d}" for i in range(len(table))])
    table["rfs_days"] = y["time"]
    table["recurrence"] = y["cens"].astype(int)
    return table


@pytest.fixture(scope="module")
def project(gbsg2: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A researcher's git project: the table and experiment files, committed."""
    root = tmp_path_factory.mktemp("own_table")
    (root / "data").mkdir()
    gbsg2.to_csv(root / "data" / "gbsg2.csv", index=False)
    (root / "experiments").mkdir()
    table = {
        "path": "data/gbsg2.csv",
        "id": "pid",
        "time": "rfs_days",
        "event": "recurrence",
        "time_unit": "days",
        "covariates": COVARIATES,
    }
    experiments = {
        "gbsg2_comparator": {"table": {**table, "comparator": COMPARATOR}, "model": {"estimator": "coxph"}},
        "gbsg2_alone": {"table": table, "model": {"estimator": "coxph"}},
        "gbsg2_rsf": {
            "table": {**table, "covariates": ["age", "tsize", "pnodes", "estrec", "progrec"]},
            "model": {"estimator": "rsf", "params": {"n_estimators": 40, "min_samples_leaf": 15}},
        },
    }
    for name, document in experiments.items():
        document.update(validation=VALIDATION, analysis=ANALYSIS)
        (root / "experiments" / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "my study")
    return root


def _train(project: Path, name: str, *extra: str) -> dict:
    result = CliRunner().invoke(app, ["train", f"experiments/{name}.yaml", "--project", str(project), *extra])
    assert result.exit_code == 0, result.output
    return json.loads((project / "metrics" / "experiments" / f"{name}.json").read_text())


def _folds(table: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import RepeatedStratifiedKFold

    splitter = RepeatedStratifiedKFold(n_splits=5, n_repeats=1, random_state=VALIDATION["random_state"])
    return list(splitter.split(np.zeros((len(table), 1)), table["recurrence"].to_numpy()))


def _plain_cox_folds(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Harrell's C, Uno's C (tau 60 months) and Brier(12 months) of plain sksurv Cox on our own folds."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.metrics import (
        brier_score,
        concordance_index_censored,
        concordance_index_ipcw,
    )
    from sksurv.preprocessing import OneHotEncoder
    from sksurv.util import Surv

    X = table[columns].astype({c: "category" for c in columns if c in CATEGORICAL})
    y = Surv.from_arrays(table["recurrence"].astype(bool), table["rfs_days"] * DAYS_TO_MONTHS)
    rows = []
    for train, test in _folds(table):
        model = make_pipeline(OneHotEncoder(), StandardScaler(), CoxPHSurvivalAnalysis(alpha=0.01))
        model.fit(X.iloc[train], y[train])
        risk = model.predict(X.iloc[test])
        y_train, y_test = y[train], y[test]
        harrell = concordance_index_censored(y_test["event"], y_test["time"], risk)[0]
        tau = min(60.0, y_train["time"].max())
        uno = concordance_index_ipcw(y_train, y_test, risk, tau=tau)[0]
        survival_12 = np.array([fn(12.0) for fn in model.predict_survival_function(X.iloc[test])])
        y_12 = y_test.copy()  # after 12 months a row only counts as event-free at 12 months
        later = y_12["time"] > 12.0
        y_12["event"] &= ~later
        y_12["time"] = np.where(later, (12.0 + y_train["time"].max()) / 2, y_12["time"])
        brier = brier_score(y_train, y_12, survival_12, [12.0])[1][0]
        rows.append({"harrell_c": harrell, "uno_c": uno, "brier_12": brier})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def comparator_run(project: Path, mlflow_store: dict) -> dict:
    metrics = _train(project, "gbsg2_comparator", "--tracking-uri", mlflow_store["uri"])
    return metrics


def test_gbsg2_in_days_runs_in_one_step_and_matches_plain_sksurv_per_fold(
    project, gbsg2, comparator_run
) -> None:
    metrics = comparator_run
    assert metrics["n_patients"] == 686 and metrics["n_events"] == 299 and metrics["time_unit"] == "days"
    ours = pd.read_csv(project / "models" / "experiments" / "gbsg2_comparator" / "folds.csv")
    plain = _plain_cox_folds(gbsg2, COVARIATES)
    assert len(ours) == 5
    np.testing.assert_allclose(ours["harrell_c"], plain["harrell_c"], atol=1e-6)
    np.testing.assert_allclose(ours["uno_c"], plain["uno_c"], atol=1e-6)
    np.testing.assert_allclose(ours["brier_12"], plain["brier_12"], atol=1e-6)
    summary = metrics["summary"]
    for key in ("uno_c_mean", "harrell_c_mean", "auc_12_mean", "auc_36_mean", "ibs_mean", "brier_12_mean"):
        assert summary[key] is not None and np.isfinite(summary[key]), key  # days no longer give NaN


def test_comparator_of_real_covariates_is_plain_cox_on_the_same_folds(project, gbsg2, comparator_run) -> None:
    reference = pd.read_csv(project / "models" / "experiments" / "gbsg2_comparator" / "reference_folds.csv")
    plain = _plain_cox_folds(gbsg2, COMPARATOR)
    np.testing.assert_allclose(reference["harrell_c"], plain["harrell_c"], atol=1e-6)
    comparison = comparator_run["comparison"]
    assert comparison["delta_harrell_c_mean"] == pytest.approx(
        (_plain_cox_folds(gbsg2, COVARIATES)["harrell_c"] - plain["harrell_c"]).mean(), abs=1e-6
    )
    assert comparator_run["clinical_reference"]["estimator"] == "coxph"


def test_decision_curve_and_lineage_of_the_researchers_repo(project, comparator_run, mlflow_store) -> None:
    from mlflow import MlflowClient

    from sabrkit.models.lineage import file_md5

    out = project / "models" / "experiments" / "gbsg2_comparator"
    curve = pd.read_csv(out / "decision_curve.csv")
    assert {"model", "comparator", "all", "none"} <= set(curve["model"]) and (
        out / "plots" / "decision_curve.png"
    ).is_file()
    report = (out / "report.html").read_text()
    assert "Decision curve at 24 months" in report and "brier_36" in report and "auc_36" in report
    assert "input times in days" in report
    lineage = comparator_run["lineage"]
    head = _git(project, "rev-parse", "HEAD")
    assert lineage["git_commit"] == head and lineage["git_dirty"] is False
    assert lineage["input_md5"] == {"table": file_md5(project / "data" / "gbsg2.csv")}
    client = MlflowClient(mlflow_store["uri"])
    run = client.get_run(comparator_run["mlflow"]["run_id"])
    tags = run.data.tags
    assert tags["git_commit"] == head and tags["time_unit"] == "days"
    assert tags["input_md5.table"] == lineage["input_md5"]["table"]
    assert tags["sabrkit_version"] and tags.get("sabrkit_git_commit") != head
    assert "dvc_experiment" not in tags
    assert (
        comparator_run["mlflow"]["registered_model"] is None
    )  # sabrkit train registers only with --register
    assert client.search_model_versions("name = 'sabr-gbsg2_comparator'") == []


def test_no_comparator_and_explicit_register(project, gbsg2, mlflow_store) -> None:
    from mlflow import MlflowClient

    metrics = _train(project, "gbsg2_alone", "--tracking-uri", mlflow_store["uri"], "--register")
    assert metrics["comparison"] is None and metrics["clinical_reference"] is None
    assert not (project / "models" / "experiments" / "gbsg2_alone" / "reference_folds.csv").exists()
    ours = pd.read_csv(project / "models" / "experiments" / "gbsg2_alone" / "folds.csv")
    np.testing.assert_allclose(ours["harrell_c"], _plain_cox_folds(gbsg2, COVARIATES)["harrell_c"], atol=1e-6)
    versions = MlflowClient(mlflow_store["uri"]).search_model_versions("name = 'sabr-gbsg2_alone'")
    assert len(versions) == 1
    tags = versions[0].tags
    assert tags["input_md5.table"] == metrics["lineage"]["input_md5"]["table"] and tags["time_unit"] == "days"
    assert yaml.safe_load(tags["experiment_yaml"])["table"]["path"] == "data/gbsg2.csv"


def test_forest_out_of_bag_c_equals_sksurv(project, gbsg2) -> None:
    from sksurv.ensemble import RandomSurvivalForest
    from sksurv.util import Surv

    metrics = _train(project, "gbsg2_rsf", "--no-mlflow")
    columns = ["age", "tsize", "pnodes", "estrec", "progrec"]
    forest = RandomSurvivalForest(
        n_estimators=40,
        min_samples_split=10,
        min_samples_leaf=15,
        max_features="sqrt",
        random_state=0,
        oob_score=True,
    )
    forest.fit(
        gbsg2[columns].to_numpy(dtype=float),
        Surv.from_arrays(gbsg2["recurrence"].astype(bool), gbsg2["rfs_days"] * DAYS_TO_MONTHS),
    )
    assert metrics["final_model_oob_c"] == pytest.approx(forest.oob_score_, abs=1e-9)


def _run(project: Path, name: str, document: dict) -> None:
    path = project / "experiments" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    run_experiment_file(path, project, tracking_uri=None)


def _broken(**table_changes) -> dict:
    table = {
        "path": "data/gbsg2.csv",
        "id": "pid",
        "time": "rfs_days",
        "event": "recurrence",
        "time_unit": "days",
        "covariates": COVARIATES,
        **table_changes,
    }
    return {"table": table, "model": {"estimator": "coxph"}, "validation": VALIDATION, "analysis": ANALYSIS}


def test_missing_column_is_named(project) -> None:
    with pytest.raises(TableColumnError, match=r"covariate column\(s\) \['grade'\].*correct table:"):
        _run(project, "bad_missing", _broken(covariates=["age", "grade"]))


def test_odd_columns_are_refused_with_the_rule_and_the_fix(project, gbsg2) -> None:
    odd = gbsg2.assign(note=[f"seen by clinic {i}" for i in range(len(gbsg2))])
    odd.to_csv(project / "data" / "odd.csv", index=False)
    with pytest.raises(TableColumnError, match=r"'note' has 686 distinct values.*at most table.max_levels"):
        _run(project, "bad_text", _broken(path="data/odd.csv", covariates=[*COVARIATES, "note"]))
    with pytest.raises(
        TableColumnError, match=r"'horTh' of block 'receptors' holds text.*list 'horTh' under"
    ):
        _run(
            project,
            "bad_block",
            _broken(covariates=["age", "tsize"], blocks={"receptors": {"columns": ["estrec", "horTh"]}}),
        )
    odd.assign(recurrence=odd["recurrence"].map({1: "relapse", 0: "no"})).to_csv(
        project / "data" / "odd.csv", index=False
    )
    with pytest.raises(TableColumnError, match=r"event column 'recurrence' holds \['relapse'\]"):
        _run(project, "bad_event", _broken(path="data/odd.csv"))


def test_unit_mismatch_is_named(project) -> None:
    with pytest.raises(TimeUnitError, match=r"from 8 to 2659 months \(up to 222 years.*time_unit.*days"):
        _run(project, "bad_unit", _broken(time_unit="months"))


def test_horizon_past_follow_up_is_an_error_not_nan(project) -> None:
    document = {**_broken(), "validation": {**VALIDATION, "tau_months": 120}}
    with pytest.raises(FollowUpHorizonError, match=r"tau_months = 120 months \(3652 days\).*8 to 2659 days"):
        _run(project, "bad_tau", document)
    result = CliRunner().invoke(
        app, ["train", "experiments/bad_tau.yaml", "--project", str(project), "--no-mlflow"]
    )
    assert result.exit_code == 1 and "FollowUpHorizonError" in result.output


def test_spec_rules_of_the_table_section() -> None:
    from sabrkit.errors import ConfigError
    from sabrkit.models.spec import parse_experiment

    base = _broken()
    assert parse_experiment({**base, "name": "x"}).compares_with_reference is False
    with_all = parse_experiment({**base, "name": "x", "table": {**base["table"], "comparator": "covariates"}})
    assert with_all.table.comparator == COVARIATES
    for change, message in (
        ({"comparator": ["nodes"]}, "comparator \\['nodes'\\] are not covariates"),
        ({"comparator": []}, "write comparator: null"),
        ({"time_unit": "hours"}, "time_unit"),
        ({"covariates": ["age", "rfs_days"]}, "are the id, time or event column"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_experiment({**base, "name": "x", "table": {**base["table"], **change}})
    with pytest.raises(ConfigError, match=r"either data: .* or table:"):
        parse_experiment({**base, "name": "x", "data": {"feature_set": "clinical"}})


def test_decision_curve_matches_a_hand_computed_net_benefit() -> None:
    """Net benefit at t (Vickers 2008) from lifelines' Kaplan-Meier, against dcurves through sabrkit."""
    from lifelines import KaplanMeierFitter

    from sabrkit.models.horizon_metrics import decision_curve

    rng = np.random.default_rng(3)
    n = 300
    risk = rng.uniform(0.05, 0.9, n)
    time = rng.exponential(20 / (0.2 + 2 * risk))
    censor = rng.uniform(5, 60, n)
    event, time = time <= censor, np.minimum(time, censor)
    table = decision_curve(risk, time, event, 12.0, thresholds=[0.2, 0.4, 0.6])
    for threshold in (0.2, 0.4, 0.6):
        treated = risk >= threshold
        km = KaplanMeierFitter().fit(time[treated], event[treated])
        s = float(km.survival_function_at_times(12.0).iloc[0])
        p = treated.mean()
        expected = (1 - s) * p - s * p * threshold / (1 - threshold)
        got = table[(table["model"] == "model") & np.isclose(table["threshold"], threshold)]["net_benefit"]
        assert float(got.iloc[0]) == pytest.approx(expected, abs=1e-9)


def test_the_registry_is_one_producer_of_the_table(toy_cohort, tmp_path: Path) -> None:
    """The registry's tables written as one table give the same folds, C and comparator as the registry path."""
    from sabrkit.models.experiment import run_experiment
    from sabrkit.models.experiment_io import ExperimentInputs, read_experiment_inputs
    from sabrkit.models.registry_table import registry_table
    from sabrkit.models.spec import parse_experiment

    common = {
        "model": {"estimator": "coxnet", "params": {"alpha": 0.05, "k": 5}},
        "validation": {"n_splits": 3, "n_repeats": 2, "random_state": 1},
        "analysis": ANALYSIS,
    }
    registry_spec = parse_experiment({"name": "reg", "data": {"feature_set": "clinical+radiomic"}, **common})
    inputs = ExperimentInputs(
        endpoints=toy_cohort["endpoints"],
        clinical=toy_cohort["clinical"],
        patient_features=toy_cohort["patient_features"],
    )
    table, section = registry_table(registry_spec, inputs, path="registry_table.csv")
    table.to_csv(tmp_path / "registry_table.csv", index=False)
    table_spec = parse_experiment({"name": "tab", "table": section, **common})
    via_registry = run_experiment(registry_spec, inputs)
    via_table = run_experiment(table_spec, read_experiment_inputs(table_spec, tmp_path))
    assert via_table.cv.folds["test_ids_sha1"].tolist() == via_registry.cv.folds["test_ids_sha1"].tolist()
    for column in ("harrell_c", "uno_c"):
        np.testing.assert_allclose(via_table.cv.folds[column], via_registry.cv.folds[column], atol=1e-9)
    np.testing.assert_allclose(
        via_table.reference_cv.folds["harrell_c"], via_registry.reference_cv.folds["harrell_c"], atol=1e-9
    )


def test_registry_experiment_without_clinical_table_or_with_an_empty_one(toy_cohort) -> None:
    """`inputs.clinical: null` runs without a reference model; an empty clinical table is a named error."""
    from sabrkit.errors import ModelInputError
    from sabrkit.models.experiment import run_experiment
    from sabrkit.models.experiment_io import ExperimentInputs
    from sabrkit.models.spec import parse_experiment

    common = {
        "model": {"estimator": "coxnet", "params": {"alpha": 0.05, "k": 5}},
        "validation": {"n_splits": 3, "n_repeats": 1, "random_state": 1},
        "analysis": ANALYSIS,
    }
    spec = parse_experiment(
        {"name": "no_clinical", "inputs": {"clinical": None}, "data": {"feature_set": "radiomic"}, **common}
    )
    assert not spec.compares_with_reference
    result = run_experiment(
        spec,
        ExperimentInputs(endpoints=toy_cohort["endpoints"], patient_features=toy_cohort["patient_features"]),
    )
    assert result.reference_cv is None and result.metrics["comparison"] is None
    assert np.isfinite(result.metrics["summary"]["uno_c_mean"])
    empty = toy_cohort["clinical"][["study_id"]]
    spec = parse_experiment({"name": "empty_clinical", "data": {"feature_set": "radiomic"}, **common})
    with pytest.raises(ModelInputError, match="clinical reference model of 'empty_clinical' has no columns"):
        run_experiment(
            spec,
            ExperimentInputs(
                endpoints=toy_cohort["endpoints"],
                clinical=empty,
                patient_features=toy_cohort["patient_features"],
            ),
        )
