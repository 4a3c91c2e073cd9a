"""End to end: `dvc repro` of the whole pipeline on a tiny synthetic cohort in a temp folder.

Proves that the DVC pipeline (not only its units) works on this machine: every stage runs,
metrics and the MLflow run exist, a second `dvc repro` does nothing, and changing only the
`features` parameters re-runs `extract` and what follows, never `synthesize`.
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

from sabrkit.settings import shared_data_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
# `make test` distributes whole files (--dist loadfile), so these tests share one worker and one
# project; xdist_group/loadgroup is not honoured with pytest 9 (the group suffix never reaches
# the node IDs), which had built the project twice on two workers
# the whole DVC pipeline (and the DICOM one) runs in the fixture: more than pytest's default limit
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]

#: the study's cohort size: the negative control below compares the model with permuted outcomes,
#: which needs the planted signal of a full-size synthetic cohort (at 24 patients the CV C-index
#: of the signal run, 0.45, fell below the permuted one, 0.63, with 2 permutations)
N_PATIENTS = 60
TINY = {
    "synthesize": {"n_patients": N_PATIENTS, "image_shape": [48, 48, 24], "spacing_mm": [1.0, 1.0, 2.0]},
    "train": {"n_splits": 3, "n_repeats": 2},
    "evaluate": {"permutations": 9, "permutation_cv_repeats": 1, "interval_bootstrap": 20},
    "deep_features": {"epochs": 2, "crop_size_voxels": 16, "channels": [4, 8]},
    "robustness": {"n_perturbations": 2},
    "execution": {"n_jobs": 1},
    "experiments": {"names": ["clinical_coxph"]},
    # the DICOM path: a U-Net small enough to train for a few seconds
    "unet": {
        "channels": [4, 8, 16, 32],
        "patch_size": [16, 16, 16],
        "max_epochs": 2,
        "max_minutes": 0.5,
        "validate_every": 1,
        "samples_per_lesion": 2,
    },
    # 48 mm regions leave little anatomy around a lesion to register on: failures are recorded, not fatal
    "followup": {"max_failure_fraction": 1.0},
}
#: the one experiment the tiny pipeline runs, with a tiny validation
TINY_EXPERIMENT = {"n_splits": 3, "n_repeats": 1}
LESION_EXPERIMENT = "lesion_local_control_dose"


def _dvc(project: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


# session scope: one `dvc repro` of the tiny project per test process, whatever the test order
@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    project = tmp_path_factory.mktemp("e2e") / "sabrkit"
    project.mkdir()
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO_ROOT / name, project / name)
    for folder in ("pipelines", "platform", "tests/data/ibsi_digital_phantom", "tests/data/ibsi_reference"):
        shutil.copytree(REPO_ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    experiment = yaml.safe_load((REPO_ROOT / "experiments" / "clinical_coxph.yaml").read_text())
    experiment["validation"].update(TINY_EXPERIMENT)
    (project / "experiments").mkdir()
    (project / "experiments" / "clinical_coxph.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
    # the DICOM path's lesion-level local-control experiment (params.yaml experiments.dicom_names)
    lesion = yaml.safe_load((REPO_ROOT / "experiments" / f"{LESION_EXPERIMENT}.yaml").read_text())
    lesion["validation"].update(TINY_EXPERIMENT)
    lesion["analysis"].update(permutations=9, interval_bootstrap=20)
    (project / "experiments" / f"{LESION_EXPERIMENT}.yaml").write_text(
        yaml.safe_dump(lesion, sort_keys=False)
    )
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
    }
    env.pop("SABRKIT_MLFLOW_TRACKING_URI", None)
    # ibsi_check reads the CT phantom (outside the repo) where the checkout has it
    if (shared_data_dir() / "ibsi_ct_phantom").is_dir():
        env["SABRKIT_IBSI_DATA"] = str(shared_data_dir())
    init = _dvc(project, "init", "--no-scm", "-q", env=env)
    assert init.returncode == 0, init.stderr
    repro = _dvc(project, "repro", env=env)
    assert repro.returncode == 0, repro.stdout[-4000:] + repro.stderr[-4000:]
    dicom = _dvc(project, "repro", "pipelines/dicom/dvc.yaml", env=env)  # the DICOM path's own pipeline
    assert dicom.returncode == 0, dicom.stdout[-4000:] + dicom.stderr[-4000:]
    # as `sabrkit demo --with-dicom`: the comparison table and the study report take in the DICOM path
    for args in (("--force", "--single-item", "compare_experiments"), ("--force", "--single-item", "report")):
        again = _dvc(project, "repro", *args, env=env)
        assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    return project, env


def test_every_stage_ran_and_wrote_its_outputs(project):
    root, _ = project
    validation = json.loads((root / "metrics" / "validation.json").read_text())
    for key in (
        "n_patients",
        "n_events",
        "harrell_c_mean",
        "uno_c_mean",
        "uno_c_sd",
        "permuted_uno_c_mean",
        "uno_c_ci_low",
        "uno_c_ci_high",
        "oracle_uno_c",
        "permutation_p",
        "n_excluded_no_consent",
    ):
        assert key in validation, key
    assert validation["n_patients"] == N_PATIENTS and validation["n_excluded_no_consent"] == 0
    assert len(validation["consent_snapshot_sha256"]) == 64
    # negative control: outcomes permuted across patients carry no signal, so their C-index lies
    # near 0.5; the synthetic cohort's outcomes do depend on its covariates, so the real run beats it
    assert 0.3 <= validation["permuted_uno_c_mean"] <= 0.7, validation
    assert validation["uno_c_mean"] > validation["permuted_uno_c_mean"], validation
    cohort = json.loads((root / "metrics" / "cohort.json").read_text())
    assert cohort["n_patients"] == N_PATIENTS
    assert 0 < cohort["pfs_2y_ci_low"] <= cohort["pfs_2y"] <= cohort["pfs_2y_ci_high"] <= 1
    assert (root / "plots" / "km_oof_risk_groups.png").stat().st_size > 1000
    assert "Out-of-fold risk groups" in (root / "reports" / "validation.html").read_text()
    features = __import__("pandas").read_parquet(root / "data" / "features" / "lesion_features.parquet")
    assert features["lesion_id"].str.match(r"^SABR-RCC-\d{3}-L\d+$").all()
    assert {"prov_params_hash", "prov_image_sha256", "prov_mask_sha256"} <= set(features.columns)
    experiment = json.loads((root / "metrics" / "experiments" / "clinical_coxph.json").read_text())
    assert experiment["experiment"] == "clinical_coxph" and experiment["n_patients"] == N_PATIENTS
    table = (root / "reports" / "experiments.md").read_text()
    assert f"| clinical_coxph | coxph | clinical | {N_PATIENTS} |" in table, table
    # the DICOM path: export -> de-identified (no PHI left) -> ingested -> U-Net -> follow-up masks
    deid = json.loads((root / "metrics" / "deid.json").read_text())
    assert deid["n_files"] > 0 and deid["phi_findings"] == 0, deid
    ingested = __import__("pandas").read_csv(root / "data" / "imaging" / "images.csv")
    assert ingested["lesion_id"].nunique() == features["lesion_id"].nunique()
    assert json.loads((root / "metrics" / "unet.json").read_text())["epochs"] >= 1
    segments = json.loads((root / "metrics" / "segment.json").read_text())
    assert segments["n_series"] > 0, segments
    # follow-up: every follow-up series paired with its lesion, each pair registered or named in failures.csv
    follow = json.loads((root / "metrics" / "followup.json").read_text())
    assert follow["n_pairs"] == segments["n_series"], follow
    assert follow["n_registered"] + follow["n_failures"] >= follow["n_pairs"], follow
    assert (root / "data" / "followup" / "delta_features.parquet").is_file()
    # the dose stage: plans linked and checked, one BED map per lesion
    lesion = json.loads((root / "metrics" / "dicom_experiments" / f"{LESION_EXPERIMENT}.json").read_text())
    assert lesion["unit"] == "lesion" and lesion["clinical_reference"]["feature_set"] == "dose", lesion
    assert (
        f"| {LESION_EXPERIMENT} | spca_cox | dose+dvh+dosiomic |"
        in (root / "reports" / "experiments.md").read_text()
    )
    assert "Dose and OAR constraints</h2>" in (root / "reports" / "study.html").read_text()
    constraints = json.loads((root / "metrics" / "constraints.json").read_text())
    assert constraints["n_patients"] == N_PATIENTS and constraints["n_failures"] == 0, constraints
    assert {"n_checks", "n_violations", "table_version"} <= set(constraints)
    assert constraints["n_lesions"] == features["lesion_id"].nunique()


def test_mlflow_run_has_params_children_metrics_features_and_model(project):
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    root, env = project
    validation = json.loads((root / "metrics" / "validation.json").read_text())
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    run = client.get_run(validation["mlflow_run_id"])
    assert run.data.params, "no params logged"
    assert any(k.startswith("coxnet") or "l1_ratio" in k for k in run.data.params)
    for metric in ("uno_c_mean", "harrell_c_mean", "permutation_p", "uno_c_ci_low", "n_excluded_no_consent"):
        assert metric in run.data.metrics
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert len(children) == 3 * 2  # n_splits x n_repeats
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert any("feature" in a for a in artifacts), artifacts
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    try:
        model = mlflow.sklearn.load_model(run.data.tags["sabrkit.model_uri"])
    finally:
        mlflow.set_tracking_uri(None)
    dataset = __import__("sabrkit.models.io", fromlist=["read_dataset"]).read_dataset(
        root / "data" / "features" / "patient_dataset.parquet"
    )
    assert model.predict(dataset.X).shape == (N_PATIENTS,)
    for value in run.data.params.values():  # pseudonymous IDs only, never direct identifiers
        assert "hospital" not in value.lower()


def test_second_repro_does_nothing(project):
    root, env = project
    for targets in ((), ("pipelines/dicom/dvc.yaml",)):
        again = _dvc(root, "repro", *targets, env=env)
        assert again.returncode == 0, again.stderr
        # ibsi_data (always_changed) fingerprints the CT phantom folder outside the repo; nothing else runs
        ran = {line.split("'")[1] for line in again.stdout.splitlines() if line.startswith("Running stage")}
        assert ran <= {"ibsi_data"}, again.stdout
    status = _dvc(root, "status", env=env)
    blocks: dict[str, list[str]] = {}
    current = None
    for line in status.stdout.splitlines():
        if line and not line[0].isspace():
            current = line.strip()
            blocks[current] = []
        elif current is not None and line.strip():
            blocks[current].append(line.strip())
    # the deep-feature stages are a pipeline of their own (pipelines/deep/dvc.yaml), not run here
    changed = {stage: lines for stage, lines in blocks.items() if not stage.startswith("pipelines/deep/")}
    assert "up to date" in status.stdout or changed == {"ibsi_data:": ["always changed"]}, status.stdout


def test_changing_features_params_reruns_extract_and_downstream_only(project):
    root, env = project
    custom = root / "ct_custom.yaml"
    base = yaml.safe_load((REPO_ROOT / "platform" / "features" / "params" / "ct_v1.yaml").read_text())
    base["version"] = "ct-custom"
    base["setting"]["binWidth"] = 10
    custom.write_text(yaml.safe_dump(base))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["features"]["radiomics_params"] = str(custom)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    rerun = _dvc(root, "repro", env=env)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    ran = {line.split("'")[1] for line in rerun.stdout.splitlines() if line.startswith("Running stage")}
    assert {"extract", "assemble", "train", "evaluate", "experiment@clinical_coxph"} <= ran, rerun.stdout
    assert not ran & {"synthesize", "ingest", "preprocess"}, ran
