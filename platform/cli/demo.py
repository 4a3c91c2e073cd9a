"""``sabrkit demo``: rebuild the synthetic-cohort pipeline with DVC and summarise it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sabrkit.cli.output import console
from sabrkit.errors import ConfigError, SabrkitError, format_problem
from sabrkit.settings import Settings

__all__ = ["run_demo", "summary_lines", "DICOM_PIPELINE"]

#: The DICOM path (export -> de-identification -> ingest, U-Net -> segmentation), a pipeline file
#: of its own: `dvc repro` runs the root dvc.yaml only; the demo adds this with ``with_dicom``
#: (about 15 more minutes on 2 cores, mostly U-Net training).
DICOM_PIPELINE = "pipelines/dicom/dvc.yaml"


def _dvc_command() -> list[str]:
    """DVC from the same environment as this interpreter (a plain `dvc` may be another one)."""
    return [sys.executable, "-m", "dvc"]


def run_demo(project: Path, *, force: bool, settings: Settings, with_dicom: bool = False) -> None:
    """Run ``dvc repro`` in ``project`` (and the DICOM path's pipeline with ``with_dicom``); print a summary."""
    if not (project / "dvc.yaml").is_file():
        raise ConfigError(
            format_problem(
                f"no dvc.yaml in {project}",
                "sabrkit demo runs the project's DVC pipeline",
                "run it from the sabrkit checkout or pass --project",
            )
        )
    env = dict(os.environ)
    # Stage commands call `python`: make it this environment's interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if not (project / ".dvc").is_dir():
        scm = ["--no-scm"] if not (project / ".git").exists() else []
        subprocess.run([*_dvc_command(), "init", "-q", *scm], cwd=project, env=env, check=True)
    # with the DICOM path, compare_experiments and report run again (forced: the DICOM path's
    # outputs are not their DVC deps, it is optional): the comparison table then lists its
    # lesion-level experiment (params.yaml experiments.dicom_names) and the study report gains its
    # dose and OAR constraints section
    again = [["--force", "--single-item", stage] for stage in ("compare_experiments", "report")]
    runs: list[list[str]] = [[]] + ([[DICOM_PIPELINE], *again] if with_dicom else [])
    for targets in runs:
        forced = ["--force"] if force and "--force" not in targets else []
        command = [*_dvc_command(), "repro", *forced, *targets]
        console.print(f"[bold]$ {' '.join(['dvc', *command[3:]])}[/]")
        completed = subprocess.run(command, cwd=project, env=env)
        if completed.returncode != 0:
            raise SabrkitError(
                f"`{' '.join(['dvc', *command[3:]])}` failed with exit status {completed.returncode}; the stage that "
                "failed and its reason are printed above; fix it and run `make demo` again"
            )
    for line in summary_lines(project, settings):
        console.print(line, highlight=False)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise SabrkitError(f"{path} is missing after `dvc repro`; run `dvc repro --force`")
    return json.loads(path.read_text())


def summary_lines(project: Path, settings: Settings) -> list[str]:
    """The demo's closing summary, built only from the pipeline's metrics files."""
    cohort = _read_json(project / "metrics" / "cohort.json")
    validation = _read_json(project / "metrics" / "validation.json")
    mlflow_uri = settings.resolved_mlflow_uri()
    report = project / "reports" / "validation.html"
    ui = f"mlflow ui --backend-store-uri {mlflow_uri}" if mlflow_uri.startswith("sqlite") else mlflow_uri
    width = shutil.get_terminal_size((80, 20)).columns
    return [
        "─" * min(width, 78),
        "[bold]sabrkit demo: synthetic SABR oligometastatic RCC cohort[/]",
        f"cohort            {cohort['n_patients']} patients, {cohort['n_lesions']} lesions, "
        f"{cohort['n_pfs_events']} PFS events, {cohort['n_deaths']} deaths",
        f"2-year PFS (KM)   {cohort['pfs_2y']:.1%} (95% CI {cohort['pfs_2y_ci_low']:.1%}-{cohort['pfs_2y_ci_high']:.1%})",
        f"2-year OS (KM)    {cohort['os_2y']:.1%} (95% CI {cohort['os_2y_ci_low']:.1%}-{cohort['os_2y_ci_high']:.1%})",
        f"PFS model         {validation['estimator']} on {validation['feature_set']} features, "
        f"{validation['n_repeats']}x{validation['n_splits']}-fold CV stratified on the event",
        f"  Harrell C       {validation['harrell_c_mean']:.3f} ± {validation['harrell_c_sd']:.3f} (mean ± SD across CV repeats)",
        f"  Uno C (τ={validation['tau_months']:g} m)  {validation['uno_c_mean']:.3f} ± {validation['uno_c_sd']:.3f}"
        + (
            f"; 95% CI {validation['uno_c_ci_low']:.3f}-{validation['uno_c_ci_high']:.3f} (whole CV bootstrapped)"
            if validation.get("uno_c_ci_low") is not None
            else ""
        ),
        f"  clinical model  Uno C {validation.get('clinical_uno_c_mean') or float('nan'):.3f}; oracle C "
        f"{validation.get('oracle_uno_c') or float('nan'):.3f} (true linear predictor)",
        f"  permutation test of the whole CV: p = {validation.get('permutation_p') or float('nan'):.3g}; "
        f"null mean Uno C {validation['permuted_uno_c_mean']:.3f} (should be near 0.5)",
        f"MLflow            {ui}  (experiment '{validation['experiment_name']}', run {validation['mlflow_run_id']})",
        f"report            {report}",
        f"metrics           {project / 'metrics'}/cohort.json, validation.json",
    ]
