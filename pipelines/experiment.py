"""DVC stage `experiment@<name>`: run experiments/<name>.yaml (model x feature set x validation).

Usage: ``python pipelines/experiment.py <name>``. Writes ``models/experiments/<name>/``
(folds, out-of-fold predictions, comparison with the clinical model, profile, plots, report,
final model) and ``metrics/experiments/<name>.json``, and logs the run to MLflow (tracking URI
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

    if len(sys.argv) != 2:
        raise ConfigError(
            format_problem(
                f"arguments {sys.argv[1:]}",
                "one experiment name",
                "run python pipelines/experiment.py <name>",
            )
        )
    name = sys.argv[1]
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
    )
    s = result.metrics["summary"]
    print(
        f"experiment {name}: Uno C {s['uno_c_mean']:.3f} ± {s['uno_c_sd']:.3f}, Harrell C {s['harrell_c_mean']:.3f}; "
        f"MLflow run {result.run_id}"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
