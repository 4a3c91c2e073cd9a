"""The researchers' Experiments pages, read from the files the pipeline writes and the MLflow store.

Nothing is computed here: each experiment's numbers come from ``metrics/experiments/<name>.json``
(written by ``dvc repro`` / ``sabrkit train`` through :func:`sabrkit.models.experiment.run_experiment`),
its folds and plots from ``models/experiments/<name>/`` (:func:`~sabrkit.models.experiment.experiment_paths`),
and the comparison table from :func:`sabrkit.models.experiment_table.experiment_table`. The MLflow
run (experiment, status) and the registered model version are looked up in the tracking store the
run was logged to. Intervals are the 2.5-97.5 percentiles over CV repeats that the models room
reports (``*_p025``/``*_p975``).
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from sabrkit.errors import NotFoundError, format_problem

__all__ = ["list_experiments", "experiment_detail", "plot_path", "mlflow_run_info", "SAFE_NAME"]

logger = logging.getLogger(__name__)

#: Experiment and plot names accepted in URLs (no path separators).
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_METRICS = ("harrell_c", "uno_c", "auc_12", "auc_24", "ibs")


def _interval(block: dict[str, Any], key: str) -> dict[str, float | None]:
    def number(name: str) -> float | None:
        value = block.get(name)
        return None if value is None or value != value else float(value)

    return {
        "mean": number(f"{key}_mean"),
        "low": number(f"{key}_p025"),
        "high": number(f"{key}_p975"),
        "sd": number(f"{key}_sd"),
    }


def _metrics_files(project: Path) -> list[Path]:
    return sorted((project / "metrics" / "experiments").glob("*.json"))


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def list_experiments(project: str | Path) -> list[dict[str, Any]]:
    """One row per experiment, ordered like the pipeline's comparison table (by Uno's C)."""
    from sabrkit.models.experiment_table import experiment_table

    project = Path(project)
    files = _metrics_files(project)
    if not files:
        return []
    table = experiment_table(files)
    documents = {doc.get("experiment"): doc for doc in map(_read, files)}
    rows = []
    for record in table.to_dict("records"):
        document = documents.get(record["experiment"], {})
        summary, comparison = document.get("summary") or {}, document.get("comparison") or {}
        rows.append(
            {
                "name": record["experiment"],
                "estimator": record["estimator"],
                "feature_set": record["feature_set"],
                "endpoint": record.get("endpoint"),
                "n_patients": record["n_patients"],
                "n_events": record["n_events"],
                "validation": record["repeats_x_folds"],
                "metrics": {m: _interval(summary, m) for m in _METRICS},
                "delta_uno_c": _interval(comparison, "delta_uno_c"),
                "delta_ibs": _interval(comparison, "delta_ibs"),
                "share_better": comparison.get("delta_uno_c_share_better"),
                "run_id": record.get("mlflow_run_id")
                if record.get("mlflow_run_id") == record.get("mlflow_run_id")
                else None,
            }
        )
    return rows


def _experiment_dir(project: Path, name: str) -> tuple[Path, Path]:
    from sabrkit.models.experiment import experiment_paths

    if not SAFE_NAME.match(name):
        raise NotFoundError(
            format_problem(
                f"experiment {name!r}",
                "names are letters, digits, _ . -",
                "open it from the Experiments page",
            )
        )
    paths = experiment_paths(project, name)
    if not paths["metrics"].is_file():
        raise NotFoundError(
            format_problem(
                f"experiment {name!r}",
                f"its metrics file must exist ({paths['metrics'].relative_to(project)})",
                "run it: `dvc repro` or `sabrkit train`",
            )
        )
    return paths["metrics"], paths["out_dir"]


def experiment_detail(project: str | Path, name: str) -> dict[str, Any]:
    """One experiment: its metrics document, CV folds, paired comparison and plots (file names)."""
    project = Path(project)
    metrics_file, out_dir = _experiment_dir(project, name)
    document = _read(metrics_file)

    def table(file: str) -> pd.DataFrame | None:
        path = out_dir / file
        return pd.read_csv(path) if path.is_file() else None

    plots = sorted(p.name for p in (out_dir / "plots").glob("*.png")) if (out_dir / "plots").is_dir() else []
    summary, comparison = document.get("summary") or {}, document.get("comparison") or {}
    return {
        "name": name,
        "document": document,
        "folds": table("folds.csv"),
        "comparison_folds": table("comparison.csv"),
        "plots": plots,
        "has_report": (out_dir / "report.html").is_file(),
        "metrics": {m: _interval(summary, m) for m in _METRICS},
        "reference": {
            m: _interval((document.get("clinical_reference") or {}).get("summary") or {}, m) for m in _METRICS
        },
        "delta": {m: _interval(comparison, f"delta_{m}") for m in ("uno_c", "harrell_c", "ibs")},
        "mlflow": document.get("mlflow") or {},
    }


def plot_path(project: str | Path, name: str, plot: str) -> Path:
    """The PNG file of one plot of one experiment (only files inside its ``plots/`` folder)."""
    _, out_dir = _experiment_dir(Path(project), name)
    if not SAFE_NAME.match(plot) or not plot.endswith(".png") or not (out_dir / "plots" / plot).is_file():
        raise NotFoundError(
            format_problem(
                f"plot {plot!r} of {name}", "a PNG the experiment wrote", "open it from the experiment page"
            )
        )
    return out_dir / "plots" / plot


@lru_cache(maxsize=256)
def mlflow_run_info(tracking_uri: str, run_id: str) -> dict[str, str | None]:
    """The run's MLflow experiment ID, status and registered model version (None values when unreachable)."""
    info: dict[str, str | None] = {
        "experiment_id": None,
        "status": None,
        "registered_model": None,
        "model_version": None,
        "error": None,
    }
    try:
        from mlflow.tracking import MlflowClient

        run = MlflowClient(tracking_uri=tracking_uri).get_run(run_id)
    except Exception as exc:
        logger.warning("MLflow run %s not read from %s: %s", run_id, tracking_uri, exc)
        info["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return info
    info.update(
        experiment_id=run.info.experiment_id,
        status=run.info.status,
        registered_model=run.data.tags.get("sabrkit.registered_model"),
        model_version=run.data.tags.get("sabrkit.model_version"),
    )
    return info
