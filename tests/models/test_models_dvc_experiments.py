"""DVC and MLflow compare experiments: a tiny project in its own git repository (slow).

After a demo-like ``dvc repro`` of one experiment stage on a clean commit, then ``dvc exp run
-S 'experiments/radiomic_spca.yaml:validation.n_repeats=2'``:

* ``dvc exp show --json`` has numeric metric values for the baseline and the experiment row;
* ``dvc metrics diff`` works between two commits (the baseline and the experiment's branch);
* ``dvc metrics show`` loads every metrics file but those of the root stages this small project
  skips (a full ``dvc repro`` writes them); the DICOM pipeline, never run here, declares none;
* the MLflow registry gained a version from the clean-commit pipeline run and none from the
  experiment, whose run is tagged with the DVC experiment name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow]

TINY = {
    "synthesize": {"n_patients": 24, "image_shape": [48, 48, 24], "spacing_mm": [1.0, 1.0, 2.0]},
    "execution": {"n_jobs": 1},
    # the tiny project has no DICOM path: no lesion-level experiment to list
    "experiments": {"names": ["radiomic_spca"], "dicom_names": []},
}
STAGE = "experiment@radiomic_spca"
METRICS = "metrics/experiments/radiomic_spca.json"


def _run(
    project: Path, env: dict[str, str], *args: str, timeout: int = 1200
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=project, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _dvc(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return _run(project, env, sys.executable, "-m", "dvc", *args)


def _git(project: Path, env: dict[str, str], *args: str) -> str:
    return _ok(_run(project, env, "git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    project = tmp_path_factory.mktemp("dvc_exp") / "sabrkit"
    project.mkdir()
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(REPO_ROOT / name, project / name)
    for folder in ("pipelines", "platform"):
        shutil.copytree(REPO_ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    experiment = yaml.safe_load((REPO_ROOT / "experiments" / "radiomic_spca.yaml").read_text())
    experiment["validation"].update(n_splits=3, n_repeats=1, bootstrap_optimism=0)
    experiment["analysis"] = {
        "importance_repeats": 0,
        "permutations": 19,
        "interval_bootstrap": 0,
        "screening": False,
    }
    (project / "experiments").mkdir()
    (project / "experiments" / "radiomic_spca.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    env.pop("SABRKIT_MLFLOW_TRACKING_URI", None)
    _git(project, env, "init", "-q")
    _ok(_dvc(project, env, "init", "-q"))
    _git(project, env, "add", "-A")
    _git(project, env, "commit", "-qm", "tiny project")
    _ok(_dvc(project, env, "repro", STAGE))  # the main pipeline on a clean commit
    _git(project, env, "add", "-A")
    _git(project, env, "commit", "-qm", "pipeline outputs: dvc.lock and metrics")
    _ok(
        _dvc(
            project,
            env,
            "exp",
            "run",
            STAGE,
            "-n",
            "two-repeats",
            "-S",
            "experiments/radiomic_spca.yaml:validation.n_repeats=2",
        )
    )
    return project, env


def _numeric(row: dict) -> dict[str, float]:
    """The experiment's headline metrics from one `dvc exp show --json` row."""
    data = row["data"]
    found = data["metrics"][METRICS]["data"]
    return {"uno_c_mean": found["summary"]["uno_c_mean"], "n_repeats": found["validation"]["n_repeats"]}


def test_metrics_are_in_git_and_exp_show_has_numbers_for_baseline_and_experiment(project) -> None:
    root, env = project
    assert METRICS in _git(root, env, "ls-files", "metrics")
    rows = json.loads(_ok(_dvc(root, env, "exp", "show", "--json")))
    baseline = next(r for r in rows if r["rev"] != "workspace")
    runs = [
        run
        for e in baseline.get("experiments") or []
        for run in e.get("revs", [])
        if run.get("name") == "two-repeats"
    ]
    assert runs, rows
    base, run = _numeric(baseline), _numeric(runs[0])
    assert isinstance(base["uno_c_mean"], float) and isinstance(run["uno_c_mean"], float)
    assert base["n_repeats"] == 1 and run["n_repeats"] == 2
    short = _ok(
        _dvc(
            root,
            env,
            "exp",
            "show",
            "--no-pager",
            "--only-changed",
            "--drop",
            ".*",
            "--keep",
            r"^(Experiment|Created)$|(summary\.(uno_c|harrell_c|ibs|auc_24)_mean|validation\.n_repeats)$",
        )
    )
    assert "two-repeats" in short and "harrell_c_mean" in short
    diff = json.loads(_ok(_dvc(root, env, "exp", "diff", "HEAD", "two-repeats", "--json")))
    assert diff["metrics"][METRICS]["validation.n_repeats"]["new"] == 2


def test_metrics_diff_between_two_commits_and_show_without_dicom_warnings(project) -> None:
    root, env = project
    _ok(_dvc(root, env, "exp", "branch", "two-repeats", "adopt-two-repeats"))  # the experiment as a commit
    diff = json.loads(_ok(_dvc(root, env, "metrics", "diff", "HEAD", "adopt-two-repeats", "--json")))
    assert diff[METRICS]["validation.n_repeats"] == {"old": 1, "new": 2, "diff": 1}
    assert "summary.uno_c_mean" in diff[METRICS]
    shown = json.loads(_ok(_dvc(root, env, "metrics", "show", "--json")))[""]["data"]
    assert isinstance(shown[METRICS]["data"]["summary"]["uno_c_mean"], float)
    # the DICOM pipeline (never run here) declares no metrics; the only files DVC cannot load are
    # those of root stages this small project skipped (a full `dvc repro` writes them)
    failed = {path for path, entry in shown.items() if "error" in entry}
    declared = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    skipped = {
        next(iter(m)) if isinstance(m, dict) else m
        for name, stage in declared.items()
        if name not in ("ingest", "experiment")
        for m in stage.get("metrics", [])
    }
    assert failed <= skipped, failed - skipped
    assert not {"metrics/deid.json", "metrics/unet.json", "metrics/segment.json"} & set(shown)


def test_registry_gained_no_version_from_the_experiment(project) -> None:
    from mlflow import MlflowClient

    _, env = project
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    versions = client.search_model_versions("name = 'sabr-radiomic_spca'")
    assert len(versions) == 1  # the clean-commit pipeline run only
    runs = client.search_runs(
        [client.get_experiment_by_name("sabr-experiments").experiment_id],
        "tags.`sabrkit.kind` = 'experiment'",
    )
    tagged = {r.data.tags.get("dvc_experiment") for r in runs}
    assert "two-repeats" in tagged and len(runs) == 2
    assert versions[0].tags["input_md5.endpoints"] and "experiment_yaml" in versions[0].tags
