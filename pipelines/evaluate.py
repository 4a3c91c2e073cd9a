"""DVC stage `evaluate`: publish the default model's validation (no second CV, no MLflow loop).

Reads what `train` (:func:`sabrkit.models.experiment.run_experiment`) wrote to ``models/pfs/``
and writes ``metrics/validation.json`` (C with its 95 % interval and SD, the clinical comparator
and delta-C with its interval, the whole-procedure permutation p of the risk groups, ICI/E50/E90,
the final model's cut-off, the consent snapshot hash and the patients excluded for consent, and -
for the synthetic cohort - the oracle C of the generator's true linear predictor on the same
patients), ``plots/km_oof_risk_groups.png`` and ``reports/validation.html``.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pandas as pd
from stage_params import ROOT, load_all

MODEL_DIR = ROOT / "models" / "pfs"
TRUTH = ROOT / "data" / "synthetic" / "ground_truth_patients.csv"
ENDPOINTS = ROOT / "data" / "registry" / "endpoints.parquet"


def oracle(study_ids: list[str], endpoint: str, tau_months: float) -> dict[str, Any]:
    """Oracle C: the generator's true progression linear predictor scored on these patients' outcomes."""
    if not TRUTH.is_file():
        return {
            "oracle_uno_c": None,
            "oracle_harrell_c": None,
            "oracle_note": "no ground truth (not a synthetic cohort)",
        }
    from sabrkit.synthetic.hazard import oracle_concordance

    truth = pd.read_csv(TRUTH).set_index("study_id")
    outcome = pd.read_parquet(ENDPOINTS).set_index("study_id").loc[study_ids]
    values = oracle_concordance(
        truth.loc[study_ids, "lp_progression"].to_numpy(float),
        outcome[f"{endpoint}_months"].to_numpy(float),
        outcome[f"{endpoint}_event"].to_numpy(bool),
        tau_months,
    )
    return {
        **values,
        "oracle_note": "C of the generator's true linear predictor of progression (ground truth) "
        "on the same patients' observed outcomes: the ceiling no model of these data can beat systematically",
    }


def main() -> None:
    params = load_all()
    train = params["train"]
    m = json.loads((MODEL_DIR / "metrics.json").read_text())
    s, c, g = m["summary"], m.get("comparison") or {}, m["risk_groups"]
    calibration = m.get("calibration_pooled") or {}
    reference = (m.get("clinical_reference") or {}).get("summary") or {}
    study_ids = sorted(pd.read_csv(MODEL_DIR / "oof.csv", usecols=["study_id"])["study_id"].unique())
    validation = {
        "n_patients": m["n_patients"],
        "n_events": m["n_events"],
        "n_features": m["n_features"],
        "endpoint": m["endpoint"],
        "feature_set": m["feature_set"],
        "estimator": m["estimator"],
        "tuned": m["tuned"],
        "final_model_best_params": m.get("final_model_best_params"),
        "n_splits": train.n_splits,
        "n_repeats": train.n_repeats,
        "tau_months": train.tau_months,
        "harrell_c_mean": s["harrell_c_mean"],
        "harrell_c_sd": s["harrell_c_sd"],
        "harrell_c_ci_low": s.get("harrell_c_ci_low"),
        "harrell_c_ci_high": s.get("harrell_c_ci_high"),
        "uno_c_mean": s["uno_c_mean"],
        "uno_c_sd": s["uno_c_sd"],
        "uno_c_ci_low": s.get("uno_c_ci_low"),
        "uno_c_ci_high": s.get("uno_c_ci_high"),
        "uno_c_p025": s["uno_c_p025"],
        "uno_c_p975": s["uno_c_p975"],
        "ci_n_bootstrap": s.get("ci_n_bootstrap"),
        "interval_note": m.get("interval_note"),
        "n_uno_undefined": s.get("n_uno_undefined", 0),
        "clinical_uno_c_mean": reference.get("uno_c_mean"),
        "clinical_harrell_c_mean": reference.get("harrell_c_mean"),
        "clinical_comparator_covariates": (m.get("clinical_reference") or {}).get("covariates"),
        "delta_uno_c_mean": c.get("delta_uno_c_mean"),
        "delta_uno_c_ci_low": c.get("delta_uno_c_ci_low"),
        "delta_uno_c_ci_high": c.get("delta_uno_c_ci_high"),
        "permutation_p": g.get("permutation_p"),
        "permutation_p_uno_c": g.get("permutation_p_uno_c"),
        "n_permutations": g.get("n_permutations"),
        "permuted_uno_c_mean": g.get("permutation_null_uno_c_mean"),
        "permutation_test": g.get("permutation_test"),
        "km_logrank_p": g["logrank_p"],
        "final_model_risk_cutoff": g["final_model_risk_cutoff"],
        **{k: calibration.get(k) for k in ("ici_12", "e50_12", "e90_12", "ici_24", "e50_24", "e90_24")},
        "n_excluded_no_consent": m["lineage"].get("n_excluded_no_consent"),
        "consent_snapshot_sha256": m["lineage"].get("consent_snapshot_sha256"),
        "consent": m["lineage"].get("consent"),
        **oracle(study_ids, m["endpoint"], train.tau_months),
        "experiment_name": (m.get("mlflow") or {}).get("experiment_name"),
        "mlflow_run_id": (m.get("mlflow") or {}).get("run_id"),
    }
    metrics_dir, plots_dir, reports_dir = ROOT / "metrics", ROOT / "plots", ROOT / "reports"
    for folder in (metrics_dir, plots_dir, reports_dir):
        folder.mkdir(exist_ok=True)
    from sabrkit.models.experiment_io import write_json

    write_json(validation, metrics_dir / "validation.json")
    shutil.copyfile(MODEL_DIR / "plots" / "km_risk_groups.png", plots_dir / "km_oof_risk_groups.png")
    shutil.copyfile(MODEL_DIR / "report.html", reports_dir / "validation.html")
    print(
        f"evaluate: Uno C {validation['uno_c_mean']:.3f} (95 % CI {validation['uno_c_ci_low']}-"
        f"{validation['uno_c_ci_high']}), clinical {validation['clinical_uno_c_mean']}, oracle "
        f"{validation['oracle_uno_c']}; permutation p {validation['permutation_p']}"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
