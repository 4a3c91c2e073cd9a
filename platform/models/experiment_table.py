"""One comparison table of all experiments, from their ``metrics.json`` files or from MLflow.

Each row is an experiment: model, feature set, patients and events, the cross-validated
metrics (mean and SD over repeats), the paired difference from the clinical-only model on the
same folds, and the run ID. Rows are sorted by Uno's C.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from sabrkit.errors import ConfigError, format_problem

__all__ = ["experiment_table", "experiment_table_from_mlflow", "TABLE_METRICS"]

logger = logging.getLogger(__name__)

TABLE_METRICS: tuple[str, ...] = (
    "harrell_c",
    "uno_c",
    "auc_12",
    "auc_24",
    "ibs",
    "ibs_km",
    "calibration_error_24",
)
_DELTAS: tuple[str, ...] = ("uno_c", "harrell_c", "ibs")


def _row(metrics: dict[str, Any]) -> dict[str, Any]:
    summary = metrics.get("summary") or {}
    comparison = metrics.get("comparison") or {}
    row: dict[str, Any] = {
        "experiment": metrics.get("experiment"),
        "estimator": metrics.get("estimator"),
        "feature_set": metrics.get("feature_set"),
        "endpoint": metrics.get("endpoint"),
        "n_patients": metrics.get("n_patients"),
        "n_events": metrics.get("n_events"),
        "n_features": metrics.get("n_features"),
        "repeats_x_folds": "{}x{}".format(
            *(metrics.get("validation", {}).get(k) for k in ("n_repeats", "n_splits"))
        ),
    }
    for metric in TABLE_METRICS:
        row[f"{metric}_mean"] = summary.get(f"{metric}_mean")
        row[f"{metric}_sd"] = summary.get(f"{metric}_sd")
    row["uno_c_ci_low"], row["uno_c_ci_high"] = summary.get("uno_c_ci_low"), summary.get("uno_c_ci_high")
    for metric in _DELTAS:
        row[f"delta_{metric}_vs_clinical"] = comparison.get(f"delta_{metric}_mean")
    row["delta_uno_c_ci_low"] = comparison.get("delta_uno_c_ci_low")
    row["delta_uno_c_ci_high"] = comparison.get("delta_uno_c_ci_high")
    reference = metrics.get("clinical_reference") or {}
    row["comparator"] = _comparator_label(reference) if reference else None
    row["permutation_p"] = (metrics.get("risk_groups") or {}).get("permutation_p")
    row["mlflow_run_id"] = (metrics.get("mlflow") or {}).get("run_id")
    return row


def _comparator_label(reference: dict[str, Any]) -> str:
    """``clinical (imdc_risk, ecog, disease_state)``: the comparator's block and its covariates
    (indicator columns ``imdc_risk=poor`` named once by their covariate); the block alone when
    the document does not list them (written before 2026-12-03)."""
    label = str(reference.get("feature_set", "clinical"))
    columns = reference.get("covariates")
    if not columns:
        return label
    names = list(dict.fromkeys(str(c).split("=", 1)[0] for c in columns))
    return f"{label} ({', '.join(names)})" if len(names) <= 6 else f"{label} ({len(names)} covariates)"


def experiment_table(metrics_files: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """The comparison table from per-experiment ``metrics.json`` files.

    Raises
    ------
    ConfigError
        No file given, or a file that is not an experiment's metrics document.
    """
    rows = []
    for path in map(Path, metrics_files):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(
                format_problem(f"{path}: {exc}", "metrics files are JSON", "re-run the experiment")
            ) from None
        if not isinstance(document, dict) or "experiment" not in document or "summary" not in document:
            raise ConfigError(
                format_problem(
                    f"{path} is not an experiment metrics file",
                    "it is written by `sabrkit train` / pipelines/experiment.py",
                    "point at metrics/experiments/*.json",
                )
            )
        rows.append(_row(document))
    if not rows:
        raise ConfigError(
            format_problem("no metrics files", "at least one experiment result", "run an experiment first")
        )
    return pd.DataFrame(rows).sort_values(
        "uno_c_mean", ascending=False, na_position="last", ignore_index=True
    )


def experiment_table_from_mlflow(tracking_uri: str, experiment_name: str) -> pd.DataFrame:
    """The comparison table from the latest finished parent run of each experiment in MLflow."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise ConfigError(
            format_problem(
                f"MLflow experiment {experiment_name!r} at {tracking_uri}",
                "the experiment must exist",
                "run `sabrkit train experiments/<name>.yaml` first or name another experiment",
            )
        )
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.`sabrkit.kind` = 'experiment' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    rows, seen = [], set()
    for run in runs:
        name = run.data.tags.get("experiment")
        if name in seen:
            continue
        seen.add(name)
        metrics, tags = run.data.metrics, run.data.tags
        document = {
            "experiment": name,
            "estimator": tags.get("estimator"),
            "feature_set": tags.get("feature_set"),
            "endpoint": tags.get("endpoint"),
            "n_patients": tags.get("n_patients"),
            "n_events": tags.get("n_events"),
            "n_features": run.data.params.get("n_features_in"),
            "validation": {
                "n_repeats": run.data.params.get("cv_n_repeats"),
                "n_splits": run.data.params.get("cv_n_splits"),
            },
            "summary": metrics,
            "comparison": {k: v for k, v in metrics.items() if k.startswith("delta_")},
            "risk_groups": {"permutation_p": metrics.get("permutation_p")},
            "mlflow": {"run_id": run.info.run_id},
        }
        rows.append(_row(document))
    if not rows:
        raise ConfigError(
            format_problem(
                f"no finished experiment runs in {experiment_name!r}",
                "run experiments first",
                "sabrkit train ...",
            )
        )
    return pd.DataFrame(rows).sort_values(
        "uno_c_mean", ascending=False, na_position="last", ignore_index=True
    )
