"""Entry point of the ``sabrkit`` command line.

One sub-command group per room (``registry``, ``biobank``, ``imaging``, ``features``,
``models``) plus ``info``, ``synth`` and ``demo``. Every failure prints what failed, where and
what to do, and exits non-zero (see :mod:`sabrkit.cli.output`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from sabrkit.cli import audit as audit_cli
from sabrkit.cli import biobank as biobank_cli
from sabrkit.cli import features as features_cli
from sabrkit.cli import imaging as imaging_cli
from sabrkit.cli import models as models_cli
from sabrkit.cli import registry as registry_cli
from sabrkit.cli import web as web_cli
from sabrkit.cli.demo import run_demo
from sabrkit.cli.info import collect_info
from sabrkit.cli.output import configure_logging, console, handle_errors
from sabrkit.settings import Settings

app = typer.Typer(
    name="sabrkit",
    help="Biobank and radiomics research platform for the SABR oligometastatic RCC registry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(registry_cli.app, name="registry")
app.add_typer(biobank_cli.app, name="biobank")
app.add_typer(imaging_cli.app, name="imaging")
app.add_typer(features_cli.app, name="features")
app.add_typer(models_cli.app, name="models")
app.add_typer(web_cli.users_app, name="users")
app.add_typer(audit_cli.app, name="audit")
app.command("serve")(web_cli.serve)
app.command("train")(models_cli.train_command)
app.command("report")(registry_cli.report_command)
db_app = typer.Typer(
    help="The registry + biobank database (same as `sabrkit registry migrate`).", no_args_is_help=True
)
db_app.command("migrate")(registry_cli.migrate)
app.add_typer(db_app, name="db")


@app.callback()
def _main(
    log_level: str = typer.Option(
        None, "--log-level", help="DEBUG, INFO or WARNING (default: SABRKIT_LOG_LEVEL or INFO)."
    ),
) -> None:
    """sabrkit: registry, biobank, imaging, radiomic features and PFS models for the SABR RCC study."""
    configure_logging(log_level or Settings().log_level)


@app.command()
@handle_errors
def info() -> None:
    """Print the versions of the key libraries, the database URL and the MLflow tracking URI."""
    rows = collect_info(Settings())
    width = max(map(len, rows))
    for key, value in rows.items():  # plain lines: easy to paste into a bug report
        console.print(f"{key:<{width}}  {value}", highlight=False, soft_wrap=True)


@app.command()
@handle_errors
def synth(
    out: Path = typer.Option(
        Path("data/synthetic"), "--out", help="Folder to write the cohort into (replaced atomically)."
    ),
    seed: int = typer.Option(
        20240502, help="Seed of the generator; the same seed gives byte-identical files."
    ),
    n_patients: int = typer.Option(60, "--n-patients", help="Number of patients."),
    cutoff_date: str = typer.Option("2026-11-01", "--cutoff", help="Data cut-off date (YYYY-MM-DD)."),
    images: bool = typer.Option(
        True, "--images/--no-images", help="Also write the CT regions and lesion masks."
    ),
) -> None:
    """Write a synthetic SABR cohort (registry CSVs, biobank samples, CT regions, ground truth)."""
    from sabrkit.synthetic import SynthConfig, synthesize

    config = SynthConfig(
        n_patients=n_patients,
        seed=seed,
        cutoff_date=dt.date.fromisoformat(cutoff_date),
        write_images=images,
    )
    folder = synthesize(out, config)
    console.print(f"synthetic cohort of {n_patients} patients written to {folder}")


@app.command()
@handle_errors
def demo(
    project: Path = typer.Option(Path("."), "--project", help="Project folder holding dvc.yaml."),
    force: bool = typer.Option(False, "--force", help="Re-run every stage (dvc repro --force)."),
    with_dicom: bool = typer.Option(
        False,
        "--with-dicom",
        help="Also run the DICOM path (export, "
        "de-identification, ingest, U-Net training, segmentation; ~15 more minutes).",
    ),
) -> None:
    """Run `dvc repro` on the built-in synthetic cohort, then print a short summary."""
    run_demo(project.resolve(), force=force, settings=Settings(), with_dicom=with_dicom)


def run() -> None:  # pragma: no cover - console script shim
    app()


if __name__ == "__main__":  # python -m sabrkit.cli.main
    app()
