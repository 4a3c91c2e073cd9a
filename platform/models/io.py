"""Read and write a :class:`~sabrkit.models.dataset.SurvivalDataset` as one Parquet file.

Layout: one row per patient; ``study_id``; the feature columns in model order; the outcome as
``outcome_time`` (months) and ``outcome_event``; the descriptive characteristics (raw clinical
levels) as ``characteristic:<name>`` columns; the feature set, endpoint, feature blocks and
consent note in the file's key-value metadata. The write is atomic (temporary file, then rename), so a failed stage never
leaves a half-written table for the next stage to read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.errors import ModelInputError, format_problem
from sabrkit.io import atomic_write
from sabrkit.models.dataset import SurvivalDataset, make_dataset

__all__ = [
    "write_dataset",
    "read_dataset",
    "save_risk_cutoff",
    "load_risk_cutoff",
    "score_patients",
    "RISK_CUTOFF_FILE",
]

RISK_CUTOFF_FILE = "risk_cutoff.json"

_META_KEY = b"sabrkit.dataset"
_TIME, _EVENT = "outcome_time", "outcome_event"
_CHARACTERISTIC = "characteristic:"


def write_dataset(dataset: SurvivalDataset, path: str | os.PathLike[str]) -> Path:
    """Write ``dataset`` to ``path`` (Parquet), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = dataset.X.reset_index(names="study_id")
    frame[_TIME] = dataset.y["time"].astype(float)
    frame[_EVENT] = dataset.y["event"].astype(bool)
    characteristics = [] if dataset.characteristics is None else list(dataset.characteristics.columns)
    if dataset.characteristics is not None:
        for name in characteristics:
            frame[f"{_CHARACTERISTIC}{name}"] = dataset.characteristics[name].to_numpy()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {
        "feature_set": dataset.feature_set,
        "endpoint": dataset.endpoint,
        "feature_names": list(dataset.feature_names),
        "blocks": {k: list(v) for k, v in dataset.blocks.items()},
        "characteristics": characteristics,
        "consent": dataset.consent,
    }
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()}
    )
    with atomic_write(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_dataset(path: str | os.PathLike[str]) -> SurvivalDataset:
    """Read a data set written by :func:`write_dataset`."""
    import pyarrow.parquet as pq

    path = Path(path)
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise ModelInputError(
            format_problem(
                f"{path} has no sabrkit data-set metadata",
                "model inputs are written by sabrkit.models.io.write_dataset (the `assemble` stage)",
                "rebuild it with `dvc repro assemble`",
            )
        )
    meta = json.loads(raw)
    frame = table.to_pandas().set_index("study_id")
    X = frame[meta["feature_names"]]
    names = meta.get("characteristics", [])
    characteristics = None
    if names:
        characteristics = frame[[f"{_CHARACTERISTIC}{n}" for n in names]].set_axis(names, axis=1)
    return make_dataset(
        X,
        frame[_EVENT].to_numpy(),
        frame[_TIME].to_numpy(),
        meta["feature_set"],
        meta["endpoint"],
        blocks={k: tuple(v) for k, v in meta.get("blocks", {}).items()},
        characteristics=characteristics,
        consent=meta.get("consent", "not checked"),
    )


def save_risk_cutoff(model_dir: str | os.PathLike[str], cutoff: float, dataset: SurvivalDataset) -> Path:
    """Write the final model's risk-group cut-off beside it (``<model_dir>/risk_cutoff.json``).

    The cut-off is the median predicted risk of the patients the final model was fitted on (the
    same rule as in every CV fold); scoring new patients uses it, never a cut-off picked later.
    """
    path = Path(model_dir) / RISK_CUTOFF_FILE
    document = {
        "risk_cutoff": float(cutoff),
        "rule": "median predicted risk of the training patients; risk > cut-off = high",
        "n_training_rows": int(len(dataset.y)),
        "feature_set": dataset.feature_set,
        "endpoint": dataset.endpoint,
        "feature_names": list(dataset.feature_names),
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def load_risk_cutoff(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The document :func:`save_risk_cutoff` wrote; :class:`ModelInputError` if the model has none."""
    path = Path(model_dir) / RISK_CUTOFF_FILE
    if not path.is_file():
        raise ModelInputError(
            format_problem(
                f"{path} is missing",
                "a final model carries the risk-group cut-off of its training data",
                "re-run the experiment (`dvc repro` or `sabrkit train`) to write it",
            )
        )
    return json.loads(path.read_text(encoding="utf-8"))


def score_patients(model_dir: str | os.PathLike[str], table: pd.DataFrame) -> pd.DataFrame:
    """Risk, risk group (with the model's own cut-off) and, where the model has one, S(12), S(24).

    ``table`` holds one row per patient: ``study_id`` (column or index) and every feature column
    the model was trained on (extra columns are ignored; missing ones are an error).
    """
    import mlflow.sklearn

    from sabrkit.models.metrics import predict_survival_at

    cutoff = load_risk_cutoff(model_dir)
    frame = table.set_index("study_id") if "study_id" in table.columns else table
    missing = [c for c in cutoff["feature_names"] if c not in frame.columns]
    if missing:
        raise ModelInputError(
            format_problem(
                f"{len(missing)} model feature column(s) missing, e.g. {missing[:5]}",
                "new patients need every feature the model was trained on",
                "build the table with the same feature set (sabrkit features / assemble)",
            )
        )
    X = frame[cutoff["feature_names"]]
    model = mlflow.sklearn.load_model(str(model_dir))
    risk = np.asarray(model.predict(X), dtype=float)
    out = pd.DataFrame(
        {
            "study_id": X.index.to_numpy(),
            "risk": risk,
            "risk_group": np.where(risk > cutoff["risk_cutoff"], "high", "low"),
        }
    )
    survival = predict_survival_at(model, X, (12.0, 24.0))
    if survival is not None:
        out["surv_12"], out["surv_24"] = survival[:, 0], survival[:, 1]
    out["risk_cutoff"] = cutoff["risk_cutoff"]
    return out
