"""Per-lesion feature cache keyed by content.

A lesion's features depend only on its image bytes, its mask bytes, the pyradiomics settings
and the code that computes them, so the cache key is

.. math::

    \\text{key} = \\operatorname{SHA256}(\\text{image sha256},\\ \\text{mask sha256},\\
    \\text{params hash},\\ \\text{pyradiomics version},\\ \\text{sabrkit version},\\
    \\text{extraction code version})

and each entry is one small JSON file ``<cache_dir>/<key[:2]>/<key>.json`` holding the lesion's
feature and provenance values (not its IDs, which the caller supplies). JSON, not Parquet: a run
that finds most lesions cached reads one entry per lesion, and a JSON object of ~1,500 numbers
parses in about a millisecond where a one-row Parquet file costs seven (Python's JSON writes the
shortest text that reads back to the same float64, so values come back bit for bit). Entries are
written atomically (:func:`sabrkit.io.atomic_write`), so an interrupted run leaves
either a complete entry or none, and concurrent runs sharing one cache never see half a file.
Failed lesions are never cached: they are retried on the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from sabrkit.io import atomic_write_text

__all__ = ["LesionCache", "lesion_cache_key"]

logger = logging.getLogger(__name__)


def lesion_cache_key(
    image_sha256: str, mask_sha256: str, params_hash: str, code_versions: dict[str, str]
) -> str:
    """Content key of one lesion's features (hex SHA-256, see the module docstring)."""
    payload = json.dumps(
        {"image": image_sha256, "mask": mask_sha256, "params": params_hash, "code": code_versions},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


def _plain(value: Any) -> Any:
    """NumPy scalars as Python numbers, for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot cache a value of type {type(value).__name__}: {value!r}")


class LesionCache:
    """A folder of per-lesion feature rows, one JSON file per content key.

    Parameters
    ----------
    folder : path-like
        Created on first write. Safe to share between runs and between parameter versions
        (the parameters are part of the key); delete it to drop every entry.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        """File that holds (or will hold) the entry ``key``."""
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached row (feature and ``prov_*`` values) for ``key``, or None.

        An unreadable entry (e.g. truncated by a full disk) is logged, removed and treated
        as a miss.
        """
        file = self.path(key)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            row = json.loads(text)
            if not isinstance(row, dict):
                raise ValueError(f"a {type(row).__name__}, not an object")
        except Exception as exc:  # a broken entry must not stop the run: recompute it
            logger.warning("cache entry %s unreadable (%s); recomputing", file, exc)
            file.unlink(missing_ok=True)
            return None
        return row

    def put(self, key: str, row: dict[str, Any]) -> Path:
        """Store ``row`` (feature and ``prov_*`` values; no IDs) under ``key`` atomically."""
        return atomic_write_text(self.path(key), json.dumps(row, allow_nan=False, default=_plain))

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*/*.json")) if self.folder.is_dir() else 0
