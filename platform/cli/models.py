"""``sabrkit models ...``: list estimators, cross-validate a PFS model and log it to MLflow."""

from __future__ import annotations

from pathlib import Path

import typer

from sabrkit.cli.output import console, handle_errors
from sabrkit.settings import Settings

app = typer.Typer(help="PFS models: estimators, repeated stratified cross-validation, MLflow.", no_args_is_help=True)


@app.command()
def estimators() -> None:
    """List the registered estimators."""
    from sabrkit.models import available_estimators

    for name in available_estimators():
        console.print(name)


@app.command()
@handle_errors
def validate(
    dataset: Path = typer.Argument(..., help="Data set written by the `assemble` stage (.parquet)."),
    estimator: str = typer.Option("coxnet", help="Registered estimator name."),
    n_splits: int = typer.Option(5, help="Folds per repeat."),
    n_repeats: int = typer.Option(10, help="Repeats."),
    seed: int = typer.Option(42, help="Random state of the splits."),
    tau: float = typer.Option(24.0, help="Truncation time of Uno's C, months."),
    experiment: str = typer.Option("sabr-pfs", help="MLflow experiment."),
    log: bool = typer.Option(True, "--log/--no-log", help="Log the run to MLflow."),
) -> None:
    """Repeated stratified K-fold CV (stratified on the event) with Harrell and Uno C."""
    from sabrkit.models import build_pipeline, log_cv_to_mlflow, repeated_stratified_cv
    from sabrkit.models.io import read_dataset

    data = read_dataset(dataset)
    pipeline = build_pipeline(estimator)
    result = repeated_stratified_cv(pipeline, data, n_splits=n_splits, n_repeats=n_repeats,
                                    random_state=seed, tau_months=tau)
    s = result.summary
    console.print(
        f"{data.n_patients} patients, {data.n_events} events: Harrell C {s['harrell_c_mean']:.3f} ± "
        f"{s['harrell_c_sd']:.3f}; Uno C {s['uno_c_mean']:.3f} ± {s['uno_c_sd']:.3f}"
    )
    if log:
        uri = Settings().resolved_mlflow_uri()
        run_id = log_cv_to_mlflow(result, pipeline, data, experiment_name=experiment, tracking_uri=uri,
                                  run_name=f"{estimator}-{data.feature_set}")
        console.print(f"MLflow run {run_id} at {uri}")
