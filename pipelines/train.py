"""DVC stage `train`: repeated stratified CV of the PFS pipeline, final model, MLflow run.

Writes ``models/pfs/``: ``cv_folds.csv`` (one row per fold), ``oof.parquet`` (out-of-fold
risk and risk group per patient and repeat), ``cv.json`` (summary and settings),
``model/`` (the final pipeline fitted on every patient, MLflow model format) and
``mlflow_run.json`` (where the run was logged).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from stage_params import ROOT, load_all

DATASET = ROOT / "data" / "features" / "patient_dataset.parquet"
OUT = ROOT / "models" / "pfs"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def main() -> None:
    import shutil

    from sklearn.base import clone

    from sabrkit.models import build_pipeline, log_cv_to_mlflow, repeated_stratified_cv
    from sabrkit.models.io import read_dataset
    from sabrkit.models.tracking import save_final_model
    from sabrkit.settings import Settings

    params = load_all()
    p, execution = params["train"], params["execution"]
    dataset = read_dataset(DATASET)
    pipeline = build_pipeline(p.estimator, **p.estimator_params)
    result = repeated_stratified_cv(
        pipeline,
        dataset,
        n_splits=p.n_splits,
        n_repeats=p.n_repeats,
        random_state=p.random_state,
        tau_months=p.tau_months,
        n_jobs=execution.n_jobs,
    )
    final_model = clone(pipeline).fit(dataset.X, dataset.y)

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    result.folds.to_csv(OUT / "cv_folds.csv", index=False)
    result.oof.to_parquet(OUT / "oof.parquet", index=False)
    (OUT / "cv.json").write_text(
        json.dumps({"summary": result.summary, "settings": result.settings}, indent=2, default=str) + "\n"
    )
    save_final_model(final_model, OUT / "model", dataset.X)

    settings = Settings()
    tracking_uri = settings.resolved_mlflow_uri()
    artifact_location = (ROOT / "mlartifacts").as_uri() if tracking_uri.startswith("sqlite") else None
    run_id = log_cv_to_mlflow(
        result,
        pipeline,
        dataset,
        experiment_name=p.experiment_name,
        tracking_uri=tracking_uri,
        run_name=f"{p.estimator}-{dataset.feature_set}",
        tags={"estimator": p.estimator, "dvc_stage": "train", "dataset_md5": _md5(DATASET)},
        final_model=final_model,
        artifact_location=artifact_location,
    )
    (OUT / "mlflow_run.json").write_text(
        json.dumps({"run_id": run_id, "experiment_name": p.experiment_name, "tracking_uri": tracking_uri}, indent=2)
        + "\n"
    )
    s = result.summary
    print(
        f"train: {dataset.n_patients} patients, {dataset.n_events} events; "
        f"Harrell C {s['harrell_c_mean']:.3f} ± {s['harrell_c_sd']:.3f}, "
        f"Uno C {s['uno_c_mean']:.3f} ± {s['uno_c_sd']:.3f}; MLflow run {run_id}"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
