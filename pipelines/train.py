"""DVC stage `train`: the default PFS model, validated by the one experiment runner.

A thin call of :func:`sabrkit.models.experiment.run_experiment`: the spec is built from
``params.yaml`` (``assemble`` for the data and consent, ``train`` for the model, its nested
tuning and the CV, ``evaluate`` for the permutation test and the intervals), so the default model
gets exactly what every experiment gets - the clinical comparator on the same folds, the
whole-procedure permutation test, bootstrap intervals of C and delta-C, ICI/E50/E90 calibration,
the MLflow run - and its final model carries its training risk-group cut-off.

Writes ``models/pfs/`` (the experiment's output folder: ``metrics.json``, ``folds.csv``,
``oof.csv``, ``permutation_null.csv``, ``bootstrap.csv``, ``plots/``, ``report.html``,
``model/`` with ``risk_cutoff.json``).
"""

from __future__ import annotations

from typing import Any

from stage_params import ROOT, load_all

OUT = ROOT / "models" / "pfs"


def default_spec_document(params: dict[str, Any]) -> dict[str, Any]:
    """The experiment document of the default model, from the validated params sections."""
    assemble, train, evaluate = params["assemble"], params["train"], params["evaluate"]
    model: dict[str, Any] = {"estimator": train.estimator, "params": dict(train.estimator_params)}
    if train.tuning is not None:
        model["tuning"] = {
            "grid": dict(train.tuning["grid"]),
            "inner_splits": int(train.tuning.get("inner_splits", 3)),
        }
    inputs: dict[str, Any] = {"aggregation": assemble.aggregation, "consent": assemble.consent}
    if assemble.consent_reason:
        inputs["consent_reason"] = assemble.consent_reason
    return {
        "name": "pfs",
        "description": f"Default PFS model ({train.estimator} on {assemble.feature_set}), params.yaml train section.",
        "inputs": inputs,
        "data": {"feature_set": assemble.feature_set, "endpoint": assemble.endpoint},
        "model": model,
        "validation": {
            "n_splits": train.n_splits,
            "n_repeats": train.n_repeats,
            "random_state": train.random_state,
            "tau_months": train.tau_months,
        },
        "analysis": {
            "permutations": evaluate.permutations,
            "permutation_cv_repeats": evaluate.permutation_cv_repeats,
            "interval_bootstrap": evaluate.interval_bootstrap,
            "interval_cv_repeats": evaluate.interval_cv_repeats,
            "importance_repeats": evaluate.importance_repeats,
        },
        "tracking": {"experiment_name": train.experiment_name},
    }


def main() -> None:
    from sabrkit.models.experiment import run_experiment
    from sabrkit.models.experiment_io import read_experiment_inputs, write_json
    from sabrkit.models.spec import parse_experiment
    from sabrkit.settings import Settings

    params = load_all()
    spec = parse_experiment(default_spec_document(params), "params.yaml (train/evaluate/assemble)")
    tracking_uri = Settings().resolved_mlflow_uri()
    artifact_location = (ROOT / "mlartifacts").as_uri() if tracking_uri.startswith("sqlite") else None
    result = run_experiment(
        spec,
        read_experiment_inputs(spec, ROOT),
        tracking_uri=tracking_uri,
        out_dir=OUT,
        artifact_location=artifact_location,
        n_jobs=params["execution"].n_jobs,
    )
    write_json(result.metrics, OUT / "metrics.json")
    s = result.metrics["summary"]
    print(
        f"train: {result.metrics['n_patients']} patients, {result.metrics['n_events']} events; "
        f"Uno C {s['uno_c_mean']:.3f} (95 % CI {s.get('uno_c_ci_low', float('nan')):.3f}-"
        f"{s.get('uno_c_ci_high', float('nan')):.3f}; SD over re-splits {s['uno_c_sd']:.3f}); MLflow run {result.run_id}"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
