"""Writing and reading the tables CLI commands exchange (Parquet or CSV, by file suffix)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sabrkit.errors import ConfigError, format_problem
from sabrkit.io import atomic_write

__all__ = ["write_table", "read_table"]

_SUFFIXES = (".parquet", ".csv")


def _check_suffix(path: Path) -> None:
    if path.suffix not in _SUFFIXES:
        raise ConfigError(
            format_problem(
                f"table file {path}",
                f"the suffix must be one of {_SUFFIXES}",
                "name the file .parquet or .csv",
            )
        )


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` atomically (temporary file, then rename)."""
    _check_suffix(path)
    with atomic_write(path) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)


def read_table(path: Path) -> pd.DataFrame:
    _check_suffix(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
