"""DVC stage `experiment@<name>`: run experiments/<name>.yaml (model x feature set x validation).

Usage: ``python pipelines/experiment.py <name> [--metrics-dir DIR]``. Writes ``models/experiments/<name>/``
(folds, out-of-fold predictions, comparison with the clinical model, profile, plots, report,
final model) and ``metrics/experiments/<name>.json`` (``DIR/<name>.json`` with ``--metrics-dir``: the
DICOM path's experiments write ``metrics/dicom_experiments/``, outside the folder the root
pipeline's ``compare_experiments`` depends on, so a plain `dvc repro` never pulls the DICOM path in), and logs the run to MLflow (tracking URI
from SABRKIT_MLFLOW_TRACKING_URI / MLFLOW_TRACKING_URI, default sqlite:///mlflow.db). The
experiment file is a DVC params file of the stage, so `dvc exp run -S
'experiments/<name>.yaml:validation.n_repeats=20'` re-runs it with a changed value.

A model version is registered in the MLflow registry only on a clean commit of the project
outside `dvc exp run` (and when the experiment's tracking.register_model allows it); experiments
log their runs, tagged with the DVC experiment name, and register nothing.
"""

from __future__ import annotations

import sys

from stage_params import ROOT, load_all

EXPERIMENTS = ROOT / "experiments"


def main() -> None:
    from sabrkit.errors import ConfigError, format_problem
    from sabrkit.models.experiment import run_experiment_file
    from sabrkit.models.run_lineage import experiment_lineage, pipeline_registration
    from sabrkit.settings import Settings

    args = sys.argv[1:]
    metrics_dir = None
    if len(args) == 3 and args[1] == "--metrics-dir":
        metrics_dir = ROOT / args[2]
    elif len(args) != 1:
        raise ConfigError(
            format_problem(
                f"arguments {sys.argv[1:]}",
                "one experiment name, optionally followed by --metrics-dir DIR",
                "run python pipelines/experiment.py <name> [--metrics-dir metrics/dicom_experiments]",
            )
        )
    name = args[0]
    execution = load_all()["execution"]
    tracking_uri = Settings().resolved_mlflow_uri()
    artifact_location = (ROOT / "mlartifacts").as_uri() if tracking_uri.startswith("sqlite") else None
    lineage = experiment_lineage(ROOT, {})
    register, reason = pipeline_registration(lineage)
    print(f"experiment {name}: {reason}")
    result = run_experiment_file(
        EXPERIMENTS / f"{name}.yaml",
        ROOT,
        tracking_uri=tracking_uri,
        artifact_location=artifact_location,
        n_jobs=execution.n_jobs,
        register=None if register else False,
        metrics_path=None if metrics_dir is None else metrics_dir / f"{name}.json",
    )
    s = result.metrics["summary"]
    print(
        f"experiment {name}: Uno C {s['uno_c_mean']:.3f} ± {s['uno_c_sd']:.3f}, Harrell C {s['harrell_c_mean']:.3f}; "
        f"MLflow run {result.run_id}"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
