"""``sabrkit models ...`` and ``sabrkit train``: estimators, experiments, comparison, quick CV.

``train_command`` is the top-level ``sabrkit train experiments/<name>.yaml`` (registered in
``main.py``); ``sabrkit models run-experiment`` is the same command inside the group.
"""

from __future__ import annotations

import math
from pathlib import Path

import typer

from sabrkit.cli.output import console, handle_errors
from sabrkit.settings import Settings

app = typer.Typer(
    help="PFS models: experiments (model x feature set x validation), comparison table, estimators, quick CV.",
    no_args_is_help=True,
)


def _tracking(project: Path, tracking_uri: str | None) -> tuple[str, str | None]:
    """The tracking URI in force and, for a local SQLite store, the artifact root beside it."""
    uri = tracking_uri or Settings().resolved_mlflow_uri()
    artifact_location = (project / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite") else None
    return uri, artifact_location


@handle_errors
def train_command(
    experiment: Path = typer.Argument(
        ..., help="Experiment file, e.g. experiments/clinical_radiomic_spca.yaml."
    ),
    project: Path = typer.Option(
        Path("."),
        "--project",
        help="Project root; the experiment's input paths are "
        "relative to it, outputs go to models/experiments/<name>/ and metrics/experiments/.",
    ),
    tracking_uri: str = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow tracking URI (default: "
        "SABRKIT_MLFLOW_TRACKING_URI, MLFLOW_TRACKING_URI, then sqlite:///mlflow.db).",
    ),
    no_mlflow: bool = typer.Option(
        False, "--no-mlflow", help="Do not log to MLflow (outputs are still written)."
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Cross-validation folds run in parallel."),
    register: bool = typer.Option(
        False,
        "--register",
        help="Also register the final model as a new version in "
        "the MLflow model registry (default: log the run only).",
    ),
) -> None:
    """Validate one experiment: repeated stratified CV beside the clinical (or comparator) model, risk groups, MLflow run.

    The experiment names the registry tables (``data:``) or one table of your own (``table:``:
    id, time, event, time unit, covariates, blocks, comparator); see docs/models.md.
    """
    from sabrkit.models.experiment import run_experiment_file

    project = project.resolve()
    if not experiment.is_absolute() and not experiment.exists() and (project / experiment).exists():
        experiment = project / experiment  # a path inside --project
    uri, artifact_location = _tracking(project, tracking_uri)
    with console.status(
        f"running experiment {experiment.stem} (cross-validation, reference model, analyses)..."
    ):
        result = run_experiment_file(
            experiment,
            project,
            tracking_uri=None if no_mlflow else uri,
            artifact_location=artifact_location,
            n_jobs=jobs,
            register=register,
        )
    m, s = result.metrics, result.metrics["summary"]
    delta = (m.get("comparison") or {}).get("delta_uno_c_mean")
    reference = "comparator" if result.spec.table is not None else "clinical"
    console.print(
        f"{m['experiment']}: {m['estimator']} on {m['feature_set']} ({m['n_patients']} patients, {m['n_events']} "
        f"events): Uno C {_pm(s, 'uno_c')}, Harrell C {_pm(s, 'harrell_c')}"
        + ("" if delta is None else f"; vs {reference} ΔUno C {delta:+.3f}")
        + (
            "" if m.get("final_model_oob_c") is None else f"; final forest OOB C {m['final_model_oob_c']:.3f}"
        ),
        highlight=False,
    )
    registered = (m.get("mlflow") or {}).get("registered_model")
    if result.run_id and not registered:
        console.print("no model version registered (use --register to register one)", highlight=False)
    if result.run_id:
        console.print(f"MLflow run {result.run_id} at {uri}", highlight=False)
    console.print(f"outputs: {project / 'models' / 'experiments' / m['experiment']}", highlight=False)


def _pm(summary: dict[str, float], metric: str) -> str:
    """``mean ± sd``, or why the metric is undefined (never a bare ``nan``)."""
    mean, sd = summary.get(f"{metric}_mean"), summary.get(f"{metric}_sd")
    if mean is None or math.isnan(mean):
        return "undefined in every fold (see folds.csv, column 'undefined')"
    return f"{mean:.3f}" + ("" if sd is None or math.isnan(sd) else f" ± {sd:.3f}")


app.command("run-experiment")(train_command)


@app.command()
@handle_errors
def check(
    experiments: list[Path] = typer.Argument(..., help="Experiment files to validate (nothing is run)."),
) -> None:
    """Validate experiment files: unknown keys, estimators, steps and feature sets are reported."""
    from sabrkit.models.spec import load_experiment

    for path in experiments:
        spec = load_experiment(path)
        spec.model.build(
            random_state=spec.validation.random_state, side_data={"batches": 0, "perturbed_features": 0}
        )
        console.print(f"ok  {path}: {spec.model.estimator} on {spec.feature_set}", highlight=False)


@app.command("export-table")
@handle_errors
def export_table(
    experiment: Path = typer.Argument(
        ..., help="A registry experiment (data: section), e.g. experiments/clinical_coxph.yaml."
    ),
    project: Path = typer.Option(
        Path("."), "--project", help="Project root of the experiment's input paths."
    ),
    out: Path = typer.Option(
        Path("data/registry_table.parquet"),
        "--out",
        help="The one table to write (.parquet or .csv), relative to --project.",
    ),
) -> None:
    """Write the registry's tables of an experiment as one table, and print the table: section that reads it."""
    import yaml

    from sabrkit.models.experiment_io import read_experiment_inputs
    from sabrkit.models.registry_table import registry_table
    from sabrkit.models.spec import load_experiment

    project = project.resolve()
    if not experiment.is_absolute() and not experiment.exists() and (project / experiment).exists():
        experiment = project / experiment
    spec = load_experiment(experiment)
    table, section = registry_table(spec, read_experiment_inputs(spec, project), path=out.as_posix())
    target = out if out.is_absolute() else project / out
    target.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(target, index=False) if target.suffix == ".csv" else table.to_parquet(target, index=False)
    console.print(
        f"wrote {target} ({len(table)} rows, {table.shape[1]} columns); experiment section:", highlight=False
    )
    console.print(yaml.safe_dump({"table": section}, sort_keys=False), highlight=False, markup=False)


@app.command()
@handle_errors
def compare(
    metrics_dir: Path = typer.Option(
        Path("metrics/experiments"),
        "--metrics-dir",
        help="Folder of per-experiment metrics JSON files (written by `sabrkit train` and the DVC stage).",
    ),
    from_mlflow: bool = typer.Option(
        False,
        "--mlflow",
        help="Read the latest run of each experiment from MLflow instead of the JSON files.",
    ),
    experiment_name: str = typer.Option(
        "sabr-experiments", "--experiment-name", help="MLflow experiment (--mlflow)."
    ),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (--mlflow)."),
    out: Path = typer.Option(None, "--out", help="Also write the table (.csv)."),
) -> None:
    """Comparison table of all experiments: CV metrics, difference from the clinical model, run IDs."""
    from rich.table import Table

    from sabrkit.models.experiment_table import experiment_table, experiment_table_from_mlflow

    if from_mlflow:
        table = experiment_table_from_mlflow(
            tracking_uri or Settings().resolved_mlflow_uri(), experiment_name
        )
    else:
        table = experiment_table(sorted(metrics_dir.glob("*.json")))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
    shown = Table(title="Experiments (mean ± SD over repeats; Δ = model − clinical on the same folds)")
    for column in (
        "experiment",
        "model",
        "features",
        "n",
        "events",
        "Harrell C",
        "Uno C",
        "AUC 12",
        "AUC 24",
        "IBS",
        "IBS KM",
        "ΔUno C",
    ):
        shown.add_column(column, justify="left" if column in ("experiment", "model", "features") else "right")

    def pm(row, metric: str) -> str:
        mean, sd = row.get(f"{metric}_mean"), row.get(f"{metric}_sd")
        if mean is None or mean != mean:
            return "-"
        return f"{mean:.3f}" + ("" if sd is None or sd != sd else f" ± {sd:.3f}")

    for row in table.to_dict("records"):
        delta = row.get("delta_uno_c_vs_clinical")
        shown.add_row(
            str(row["experiment"]),
            str(row["estimator"]),
            str(row["feature_set"]),
            str(row["n_patients"]),
            str(row["n_events"]),
            pm(row, "harrell_c"),
            pm(row, "uno_c"),
            pm(row, "auc_12"),
            pm(row, "auc_24"),
            pm(row, "ibs"),
            pm(row, "ibs_km"),
            "-" if delta is None or delta != delta else f"{delta:+.3f}",
        )
    console.print(shown)


@app.command()
def estimators() -> None:
    """List the registered estimators and preprocessing steps."""
    from sabrkit.models import available_estimators, available_steps

    console.print("estimators: " + ", ".join(available_estimators()), highlight=False)
    console.print("preprocessing steps: " + ", ".join(available_steps()), highlight=False)


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
    permutations: int = typer.Option(
        0, help="Whole-procedure permutation test of the risk groups (CV re-runs); 0 = off."
    ),
    bootstrap: int = typer.Option(
        0, help="Bootstrap cohorts of the 95 % interval for C (whole CV re-run); 0 = off, else >= 20."
    ),
) -> None:
    """Quick repeated stratified K-fold CV of one estimator on an assembled data set (no experiment file).

    Runs through the one experiment runner (:func:`sabrkit.models.experiment.run_experiment`) with
    an experiment built from these options and no comparator; by default without the permutation
    test, the intervals, importance, screening and decision curve (``sabrkit train`` runs them all).
    """
    from sabrkit.models.experiment import run_experiment
    from sabrkit.models.experiment_io import ExperimentInputs
    from sabrkit.models.io import read_dataset
    from sabrkit.models.spec import parse_experiment

    data = read_dataset(dataset)
    name = f"{estimator}-{data.feature_set}".replace("+", "_")
    spec = parse_experiment(
        {
            "name": name,
            "description": f"sabrkit models validate {dataset}",
            "inputs": {
                "clinical": None,  # no clinical table read: no comparator in the quick CV
                "consent": "not_required",
                "consent_reason": f"applied when the data set was assembled (recorded there: {data.consent})",
            },
            "data": {"feature_set": data.feature_set, "endpoint": data.endpoint, "unit": data.unit},
            "model": {"estimator": estimator},
            "validation": {
                "n_splits": n_splits,
                "n_repeats": n_repeats,
                "random_state": seed,
                "tau_months": tau,
            },
            "analysis": {
                "importance_repeats": 0,
                "permutations": permutations,
                "interval_bootstrap": bootstrap,
                "therapy_column": None,
                "screening": False,
                "decision_curve": False,
            },
            "tracking": {"experiment_name": experiment, "register_model": False},
        },
        "sabrkit models validate options",
    )
    uri = Settings().resolved_mlflow_uri() if log else None
    with console.status(f"{n_repeats} x {n_splits}-fold cross-validation of {estimator}..."):
        result = run_experiment(
            spec,
            ExperimentInputs(dataset=data, input_paths={"dataset": dataset}),
            tracking_uri=uri,
            register=False,
        )
    s = result.metrics["summary"]
    line = (
        f"{data.n_patients} patients, {data.n_events} events: Harrell C {s['harrell_c_mean']:.3f} ± "
        f"{s['harrell_c_sd']:.3f}; Uno C {s['uno_c_mean']:.3f} ± {s['uno_c_sd']:.3f} (SD over repeats)"
    )
    if "uno_c_ci_low" in s:
        line += f"; Uno C 95 % CI {s['uno_c_ci_low']:.3f}-{s['uno_c_ci_high']:.3f}"
    permutation_p = result.metrics["risk_groups"].get("permutation_p")
    if permutation_p is not None:
        line += f"; risk groups permutation p {permutation_p:.3g}"
    console.print(line, highlight=False)
    if result.run_id is not None:
        console.print(f"MLflow run {result.run_id} at {uri}")


@app.command()
@handle_errors
def predict(
    model_dir: Path = typer.Argument(
        ...,
        help="A final model folder, e.g. models/pfs/model or "
        "models/experiments/<name>/model (holds risk_cutoff.json).",
    ),
    features: Path = typer.Argument(
        ..., help="New patients: .parquet or .csv with study_id and the model's features."
    ),
    out: Path = typer.Option(
        Path("predictions.csv"), "--out", "-o", help="Where to write the predictions (CSV)."
    ),
) -> None:
    """Score new patients: risk, risk group with the model's own training cut-off, S(12)/S(24)."""
    import pandas as pd

    from sabrkit.models.io import score_patients

    table = pd.read_parquet(features) if features.suffix == ".parquet" else pd.read_csv(features)
    scored = score_patients(model_dir, table)
    out.parent.mkdir(parents=True, exist_ok=True)
    scored.to_csv(out, index=False)
    counts = scored["risk_group"].value_counts().to_dict()
    console.print(
        f"{len(scored)} patient(s) scored with cut-off {scored['risk_cutoff'].iloc[0]:.4g}: "
        f"{counts.get('high', 0)} high, {counts.get('low', 0)} low risk -> {out}",
        highlight=False,
    )
