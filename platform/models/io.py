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


from sabrkit.errors import ModelInputError, format_problem
from sabrkit.io import atomic_write
from sabrkit.models.dataset import SurvivalDataset, make_dataset

__all__ = ["write_dataset", "read_dataset"]

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
        "feature_set": dataset.feature_set, "endpoint": dataset.endpoint, "feature_names": list(dataset.feature_names),
        "blocks": {k: list(v) for k, v in dataset.blocks.items()}, "characteristics": characteristics,
        "consent": dataset.consent,
    }
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()})
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
        X, frame[_EVENT].to_numpy(), frame[_TIME].to_numpy(), meta["feature_set"], meta["endpoint"],
        blocks={k: tuple(v) for k, v in meta.get("blocks", {}).items()}, characteristics=characteristics,
        consent=meta.get("consent", "not checked"),
    )
