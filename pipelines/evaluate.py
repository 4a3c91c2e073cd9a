"""DVC stage `evaluate`: validation metrics, a permuted-outcome negative control, KM of the
out-of-fold risk groups and the HTML report; the control metric and the plot are added to the
training stage's MLflow run."""

from __future__ import annotations

import json

from stage_params import ROOT, load_all

DATASET = ROOT / "data" / "features" / "patient_dataset.parquet"
MODEL_DIR = ROOT / "models" / "pfs"


def main() -> None:
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient

    from sabrkit.models import build_pipeline, km_by_risk_group, permuted_control, plot_km_risk_groups
    from sabrkit.models.io import read_dataset
    from sabrkit.models.report import render_validation_report
    from sabrkit.models.tracking import final_model_coefficients

    params = load_all()
    train, p, execution = params["train"], params["evaluate"], params["execution"]
    dataset = read_dataset(DATASET)
    cv = json.loads((MODEL_DIR / "cv.json").read_text())
    run = json.loads((MODEL_DIR / "mlflow_run.json").read_text())
    folds = pd.read_csv(MODEL_DIR / "cv_folds.csv")
    oof = pd.read_parquet(MODEL_DIR / "oof.parquet")

    # Negative control: the same validation after permuting the outcomes. One permutation's CV
    # mean is noisy with 60 patients, so average several independent permutations.
    rng = np.random.default_rng(p.permutation_seed)
    controls = [
        permuted_control(
            build_pipeline(train.estimator, **train.estimator_params),
            dataset,
            rng,
            n_splits=train.n_splits,
            n_repeats=p.permutation_cv_repeats,
            random_state=train.random_state + i,
            tau_months=train.tau_months,
            n_jobs=execution.n_jobs,
        )
        for i in range(p.n_permutations)
    ]
    permuted_uno = [c.summary["uno_c_mean"] for c in controls]
    permuted_harrell = [c.summary["harrell_c_mean"] for c in controls]
    km = km_by_risk_group(oof, dataset.outcome_table(), repeat=p.km_repeat, endpoint=dataset.endpoint,
                          tau_months=train.tau_months)
    figure = plot_km_risk_groups(km, title=f"Out-of-fold risk groups ({dataset.endpoint.upper()}, repeat {p.km_repeat})")

    s = cv["summary"]
    validation = {
        "n_patients": dataset.n_patients,
        "n_events": dataset.n_events,
        "n_features": len(dataset.feature_names),
        "endpoint": dataset.endpoint,
        "feature_set": dataset.feature_set,
        "estimator": train.estimator,
        "n_splits": train.n_splits,
        "n_repeats": train.n_repeats,
        "tau_months": train.tau_months,
        "harrell_c_mean": s["harrell_c_mean"],
        "harrell_c_sd": s["harrell_c_sd"],
        "uno_c_mean": s["uno_c_mean"],
        "uno_c_sd": s["uno_c_sd"],
        "uno_c_p025": s["uno_c_p025"],
        "uno_c_p975": s["uno_c_p975"],
        "n_uno_undefined": s.get("n_uno_undefined", 0),
        "permuted_uno_c_mean": float(np.mean(permuted_uno)),
        "permuted_uno_c_sd": float(np.std(permuted_uno, ddof=1)) if len(permuted_uno) > 1 else 0.0,
        "permuted_harrell_c_mean": float(np.mean(permuted_harrell)),
        "n_permutations": p.n_permutations,
        "km_repeat": p.km_repeat,
        "km_logrank_p": km.logrank_p_value,
        "experiment_name": run["experiment_name"],
        "mlflow_run_id": run["run_id"],
    }
    metrics_dir, plots_dir, reports_dir = ROOT / "metrics", ROOT / "plots", ROOT / "reports"
    for folder in (metrics_dir, plots_dir, reports_dir):
        folder.mkdir(exist_ok=True)
    (metrics_dir / "validation.json").write_text(json.dumps(validation, indent=2) + "\n")
    km_path = plots_dir / "km_oof_risk_groups.png"
    figure.savefig(km_path, dpi=110, bbox_inches="tight")

    import mlflow.sklearn

    coefficients = final_model_coefficients(mlflow.sklearn.load_model(str(MODEL_DIR / "model")))
    html = render_validation_report(
        validation, folds, coefficients[coefficients["selected"]], figure, km.groups
    )
    report_path = reports_dir / "validation.html"
    report_path.write_text(html)

    client = MlflowClient(tracking_uri=run["tracking_uri"])
    for key in ("permuted_uno_c_mean", "permuted_harrell_c_mean", "km_logrank_p"):
        client.log_metric(run["run_id"], key, float(validation[key]))
    client.log_artifact(run["run_id"], str(km_path), artifact_path="plots")
    client.log_artifact(run["run_id"], str(report_path), artifact_path="reports")
    print(
        f"evaluate: Uno C {validation['uno_c_mean']:.3f} ± {validation['uno_c_sd']:.3f}; "
        f"permuted control {validation['permuted_uno_c_mean']:.3f}; report {report_path}"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
