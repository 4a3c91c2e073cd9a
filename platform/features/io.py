"""Feature tables on disk (Parquet) and the rule that says which columns are features.

Feature columns are the ones pyradiomics names ``<imageType>_<family>_<feature>``, whose
image-type part is one of pyradiomics' image types (``original``, ``log-sigma-...``,
``wavelet-...``, ``square``, ``squareroot``, ``logarithm``, ``exponential``, ``gradient``,
``lbp-2D``, ``lbp-3D-...``), plus ``deep`` for learnt embeddings (``deep_autoencoder_f000``,
:mod:`sabrkit.features.deep`). IDs (``lesion_id``, ``study_id``), provenance (``prov_*``) and
aggregation columns (``n_lesions``, ``total_volume_mm3``) are not features.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pandas as pd

from sabrkit.errors import NotFoundError, ValidationError, format_problem
from sabrkit.io import atomic_write

__all__ = ["write_feature_table", "read_feature_table", "feature_columns", "is_feature_column"]

logger = logging.getLogger(__name__)

_IMAGE_TYPE = (
    r"(?:original|original-(?:2d|25d|3d)(?:-comb)?|deep|log-sigma-[A-Za-z0-9-]+|wavelet-[A-Za-z0-9]+|square"
    r"|squareroot|logarithm|exponential|gradient|lbp-2D|lbp-3D-[A-Za-z0-9-]+"
    r"|dose|bed)"  # dosiomics: features of the dose and BED maps (sabrkit.dose.dosiomics)
)
_FEATURE_NAME = re.compile(rf"^{_IMAGE_TYPE}_[A-Za-z0-9]+_[A-Za-z0-9]+$")


def is_feature_column(name: object) -> bool:
    """True when ``name`` is a pyradiomics feature name (``<imageType>_<family>_<feature>``)."""
    return isinstance(name, str) and _FEATURE_NAME.match(name) is not None


def feature_columns(table: pd.DataFrame) -> list[str]:
    """Return the feature column names of a lesion or patient feature table, in table order.

    Parameters
    ----------
    table : DataFrame

    Returns
    -------
    list of str
        Columns named like pyradiomics features; never ID, ``prov_*``, ``n_lesions`` or
        ``total_volume_mm3`` columns.
    """
    return [c for c in table.columns if is_feature_column(c)]


def _id_column(table: pd.DataFrame) -> str:
    if "lesion_id" in table.columns:
        return "lesion_id"
    if "study_id" in table.columns:
        return "study_id"
    raise ValidationError(
        format_problem(
            f"feature table with columns {list(table.columns)[:8]}... has no lesion_id or study_id",
            "every feature row carries the ID it came from",
            "keep lesion_id (lesion table) or study_id (patient table) as a column, not the index",
        )
    )


def write_feature_table(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a feature table to Parquet atomically (:func:`sabrkit.io.atomic_write`).

    Parameters
    ----------
    table : DataFrame
        Lesion table (unique ``lesion_id``) or patient table (unique ``study_id``).
    path : path-like
        Target ``.parquet`` file; the parent folder is created.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValidationError
        No ID column, repeated IDs, or a feature column holding NaN.
    """
    id_column = _id_column(table)
    repeated = sorted(table.loc[table[id_column].duplicated(), id_column].astype(str).unique())
    if repeated:
        raise ValidationError(
            format_problem(
                f"feature table repeats {id_column} {repeated[:10]}",
                f"one row per {id_column.removesuffix('_id')}",
                "drop the duplicated rows (or aggregate lesions per patient first)",
            )
        )
    features = feature_columns(table)
    with_nan = [c for c in features if table[c].isna().any()]
    if with_nan:
        raise ValidationError(
            format_problem(
                f"feature column(s) {with_nan[:10]} hold NaN",
                "feature tables never hold NaN (failures are recorded, not written as NaN)",
                "drop the failed rows and report them as failures",
            )
        )
    target = Path(path)
    with atomic_write(target) as tmp:
        table.to_parquet(tmp, index=False)
    logger.debug("wrote feature table %s (%d rows, %d features)", target, len(table), len(features))
    return target


def read_feature_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a feature table written by :func:`write_feature_table`.

    Raises
    ------
    NotFoundError
        The file does not exist.
    """
    source = Path(path)
    if not source.is_file():
        raise NotFoundError(
            format_problem(
                f"feature table {str(source)!r} does not exist",
                "read_feature_table reads a Parquet file written by write_feature_table",
                "run the feature extraction stage first (dvc repro) or check the path",
            )
        )
    return pd.read_parquet(source)
