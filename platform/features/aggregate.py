r"""Patient-level feature tables from lesion-level ones.

Patients in the registry carry one to five treated lesions; survival models need one row per
patient. :func:`aggregate_lesions` collapses the lesion rows of each ``study_id`` with one of
these rules, for every feature column :math:`x` over the patient's lesions
:math:`i = 1..n` with volumes :math:`v_i` (mm³):

``largest``
    :math:`x_{i^*}` with :math:`i^* = \arg\max_i v_i` (the index lesion; ties go to the lowest
    ``lesion_id``).
``volume_weighted_mean``
    :math:`\sum_i v_i x_i / \sum_i v_i`.
``mean``
    :math:`\frac{1}{n} \sum_i x_i`.
``max`` / ``min``
    :math:`\max_i x_i` / :math:`\min_i x_i`.

The volume is ``original_shape_MeshVolume`` when present, else ``original_shape_VoxelVolume``.
Every method adds ``n_lesions`` (:math:`n`) and ``total_volume_mm3`` (:math:`\sum_i v_i`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from sabrkit.errors import ConfigError, ValidationError, format_problem
from sabrkit.features.io import feature_columns

__all__ = ["AGGREGATION_METHODS", "VOLUME_COLUMNS", "aggregate_lesions"]

logger = logging.getLogger(__name__)

#: Aggregation methods accepted by :func:`aggregate_lesions`.
AGGREGATION_METHODS: tuple[str, ...] = ("largest", "volume_weighted_mean", "mean", "max", "min")
#: Volume columns, in order of preference.
VOLUME_COLUMNS: tuple[str, ...] = ("original_shape_MeshVolume", "original_shape_VoxelVolume")
#: Provenance columns that must be equal for all lesions and are carried to the patient table.
_SHARED_PROVENANCE = (
    "prov_pyradiomics_version",
    "prov_params_version",
    "prov_params_hash",
    "prov_sabrkit_version",
)


def _check(lesion_features: pd.DataFrame, method: str) -> tuple[list[str], str]:
    if method not in AGGREGATION_METHODS:
        raise ConfigError(
            format_problem(
                f"aggregation method {method!r}",
                f"the method must be one of {list(AGGREGATION_METHODS)}",
                "pick one of them (params.yaml: features.aggregation)",
            )
        )
    missing = [c for c in ("lesion_id", "study_id") if c not in lesion_features.columns]
    if missing:
        raise ValidationError(
            format_problem(
                f"lesion feature table lacks {missing}",
                "a lesion feature table has lesion_id and study_id columns",
                "pass the table written by extract_lesion_features",
            )
        )
    repeated = sorted(
        lesion_features.loc[lesion_features["lesion_id"].duplicated(), "lesion_id"].astype(str).unique()
    )
    if repeated:
        raise ValidationError(
            format_problem(
                f"lesion_id repeated: {repeated[:10]}", "one row per lesion", "drop duplicated rows"
            )
        )
    volume = next((c for c in VOLUME_COLUMNS if c in lesion_features.columns), None)
    if volume is None:
        raise ValidationError(
            format_problem(
                f"lesion feature table has none of {list(VOLUME_COLUMNS)}",
                "aggregation needs each lesion's volume (largest, weights, total_volume_mm3)",
                "enable the pyradiomics 'shape' feature class in the params file",
            )
        )
    features = feature_columns(lesion_features)
    with_nan = [c for c in features if lesion_features[c].isna().any()]
    if with_nan:
        raise ValidationError(
            format_problem(
                f"feature column(s) {with_nan[:10]} hold NaN",
                "lesion features are complete (failed lesions are recorded, not NaN)",
                "drop failed lesions before aggregating",
            )
        )
    if (lesion_features[volume] <= 0).any():
        bad = lesion_features.loc[lesion_features[volume] <= 0, "lesion_id"].tolist()
        raise ValidationError(
            format_problem(
                f"lesions {bad[:10]} have {volume} <= 0", "lesion volumes are positive", "check the masks"
            )
        )
    for column in _SHARED_PROVENANCE:
        if column in lesion_features.columns and lesion_features[column].nunique(dropna=False) > 1:
            raise ValidationError(
                format_problem(
                    f"{column} takes several values {sorted(lesion_features[column].astype(str).unique())}",
                    "all lesions of one table are extracted with the same parameters and versions",
                    "re-extract the lesions with one params version",
                )
            )
    return features, volume


def aggregate_lesions(lesion_features: pd.DataFrame, method: str = "largest") -> pd.DataFrame:
    """Collapse a lesion feature table to one row per patient.

    Parameters
    ----------
    lesion_features : DataFrame
        Lesion table (``lesion_id``, ``study_id``, feature columns, optional ``prov_*``).
    method : {"largest", "volume_weighted_mean", "mean", "max", "min"}, default "largest"
        See the module docstring for the formulas.

    Returns
    -------
    DataFrame
        ``study_id``, the same feature columns (aggregated), ``n_lesions``,
        ``total_volume_mm3``, and the shared provenance columns (``prov_params_version`` ...)
        when present; sorted by ``study_id``.

    Raises
    ------
    ConfigError
        Unknown ``method`` (the allowed ones are listed).
    ValidationError
        Missing ID or volume columns, repeated lesions, NaN features, non-positive volumes,
        or lesions extracted with different parameters.
    """
    features, volume = _check(lesion_features, method)
    lesions = lesion_features.sort_values(["study_id", "lesion_id"], kind="stable").reset_index(drop=True)
    groups = lesions.groupby("study_id", sort=True)
    if method == "largest":
        index = groups[volume].idxmax()  # first (lowest lesion_id) row among ties
        patient = lesions.loc[index.to_numpy(), ["study_id", *features]].set_index("study_id")
    elif method == "volume_weighted_mean":
        weights = lesions[volume].to_numpy(dtype=float)
        weighted = lesions[features].to_numpy(dtype=float) * weights[:, None]
        sums = pd.DataFrame(weighted, columns=features).groupby(lesions["study_id"], sort=True).sum()
        patient = sums.div(groups[volume].sum(), axis=0)
    else:
        patient = groups[features].agg(method)
    patient = patient.astype("float64")
    patient["n_lesions"] = groups.size().astype("int64")
    patient["total_volume_mm3"] = groups[volume].sum().astype("float64")
    for column in _SHARED_PROVENANCE:
        if column in lesions.columns:
            patient[column] = lesions[column].iloc[0]
    result = patient.reset_index()
    logger.debug("aggregated %d lesions into %d patients (%s)", len(lesions), len(result), method)
    if not np.isfinite(result[features].to_numpy(dtype=float)).all():  # pragma: no cover - guarded by _check
        raise ValidationError(format_problem("aggregation produced NaN", "no NaN", "report a bug"))
    return result
