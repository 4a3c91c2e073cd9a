"""Lesion-level feature blocks from the dose and follow-up tables: ``dose``, ``dvh``, ``dosiomic``, ``delta``.

Each block comes from one table with one row per treated lesion (``lesion_id``, ``study_id``):

=========  =======================================  =============================================
block      table (pipeline output)                  columns
=========  =======================================  =============================================
dose       ``data/dose/lesion_dose.csv``            ``bed10_rx_gy``: BED10 of the prescription
                                                    (the registry's dose; the dose-only comparator)
dvh        ``data/dose/lesion_dose.csv``            ``dvh_*``: the lesion's D98/D95/D50/D2, Dmean,
                                                    Dmax, Dmin (Gy), V100 %, volume (cc), BED10 D98
                                                    and mean, EQD2 mean, and coverage D98 /
                                                    prescription (``dvh_d98_rx_ratio``)
dosiomic   ``data/dose/dosiomics.parquet``          ``dose_*``, ``bed_*``: pyradiomics features of
                                                    the dose and BED maps (profile ``dose_v1``)
delta      ``data/followup/delta_features.parquet`` ``delta_*``: change of the lesion's CT features
                                                    between planning and follow-up CT
=========  =======================================  =============================================

:func:`lesion_block` turns a table into the block (indexed by ``lesion_id``, numeric columns,
``study_id`` kept for the join); :func:`aggregate_block` collapses a block to one row per patient
with the rule of the radiomic block (:func:`sabrkit.features.aggregate_lesions`): the values of
the patient's largest lesion (by CT volume, so the same index lesion as the radiomic block), or
the volume-weighted mean, mean, max or min over its lesions.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from sabrkit.errors import ModelInputError, format_problem

__all__ = ["LESION_BLOCKS", "BLOCK_INPUTS", "DVH_COLUMNS", "aggregate_block", "lesion_block", "volume_of"]

logger = logging.getLogger(__name__)

#: the lesion-level blocks of this module, in canonical order.
LESION_BLOCKS: tuple[str, ...] = ("dose", "dvh", "dosiomic", "delta")
#: block -> the ``inputs`` field of an experiment that names its table.
BLOCK_INPUTS: dict[str, str] = {
    "dose": "lesion_dose",
    "dvh": "lesion_dose",
    "dosiomic": "dosiomics",
    "delta": "delta_features",
}
#: lesion_dose.csv column -> dvh block column.
DVH_COLUMNS: dict[str, str] = {
    "D98%": "dvh_d98_gy",
    "D95%": "dvh_d95_gy",
    "D50%": "dvh_d50_gy",
    "D2%": "dvh_d2_gy",
    "Dmean": "dvh_dmean_gy",
    "Dmax": "dvh_dmax_gy",
    "Dmax_point": "dvh_dmax_point_gy",
    "Dmin": "dvh_dmin_gy",
    "V100%": "dvh_v100_pct",
    "volume_cc": "dvh_volume_cc",
    "bed10_d98_gy": "dvh_bed10_d98_gy",
    "bed10_mean_gy": "dvh_bed10_mean_gy",
    "eqd2_mean_gy": "dvh_eqd2_mean_gy",
}
_PREFIXES = {"dosiomic": ("dose_", "bed_"), "delta": ("delta_",)}


def _need(table: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ModelInputError(
            format_problem(
                f"the {name} table lacks {missing}",
                f"the {name} block reads {columns}",
                "use the table the pipeline writes (docs/models.md, feature blocks)",
            )
        )


def lesion_block(table: pd.DataFrame, block: str) -> pd.DataFrame:
    """The ``block`` columns of ``table``: ``study_id`` plus numeric features, indexed by ``lesion_id``.

    Raises
    ------
    ModelInputError
        Unknown block, missing ID or block columns, a repeated lesion, non-numeric features.
    """
    if block not in LESION_BLOCKS:
        raise ModelInputError(
            format_problem(f"block {block!r}", f"lesion blocks are {list(LESION_BLOCKS)}", "pick one")
        )
    _need(table, ["lesion_id", "study_id"], block)
    repeated = table.loc[table["lesion_id"].duplicated(), "lesion_id"].unique().tolist()
    if repeated:
        raise ModelInputError(
            format_problem(
                f"the {block} table repeats lesions {repeated[:10]}", "one row per lesion", "deduplicate it"
            )
        )
    if block == "dose":
        _need(table, ["bed10_rx_gy"], block)
        features = table[["bed10_rx_gy"]].astype(float)
    elif block == "dvh":
        _need(table, [*DVH_COLUMNS, "prescription_gy"], block)
        features = table[list(DVH_COLUMNS)].rename(columns=DVH_COLUMNS).astype(float)
        features["dvh_d98_rx_ratio"] = table["D98%"].astype(float) / table["prescription_gy"].astype(float)
    else:
        columns = [c for c in table.columns if c.startswith(_PREFIXES[block])]
        if not columns:
            raise ModelInputError(
                format_problem(
                    f"the {block} table has no column starting with {list(_PREFIXES[block])}",
                    f"{block} features are named {' / '.join(p + '*' for p in _PREFIXES[block])}",
                    "use the table the pipeline writes",
                )
            )
        non_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(table[c])]
        if non_numeric:
            raise ModelInputError(
                format_problem(
                    f"{block} column(s) {non_numeric[:10]} are not numeric",
                    "feature columns are numbers",
                    "drop or encode them",
                )
            )
        features = table[columns].astype(float)
    out = pd.concat([table[["study_id"]].astype(str), features], axis=1)
    out.index = pd.Index(table["lesion_id"].astype(str), name="lesion_id")
    return out


def aggregate_block(block: pd.DataFrame, volume: pd.Series | None, method: str = "largest") -> pd.DataFrame:
    """One row per patient (``study_id`` column) from a lesion block of :func:`lesion_block`.

    ``volume`` (mm3, indexed by ``lesion_id``; the radiomic table's lesion volume) picks the
    largest lesion and weights the volume-weighted mean; lesions without a volume are dropped
    for those two rules.
    """
    features = [c for c in block.columns if c != "study_id"]
    frame = block.sort_index()
    if method in ("largest", "volume_weighted_mean"):
        if volume is None:
            raise ModelInputError(
                format_problem(
                    f"aggregation {method!r} of a lesion block without lesion volumes",
                    "the largest lesion and volume weights come from the radiomic table",
                    "set inputs.lesion_features, or use aggregation mean/max/min",
                )
            )
        frame = frame.assign(_volume=volume.reindex(frame.index).to_numpy(dtype=float)).dropna(
            subset=["_volume"]
        )
        groups = frame.groupby("study_id", sort=True)
        if method == "largest":
            rows = frame.loc[groups["_volume"].idxmax().to_numpy(), ["study_id", *features]]
            patient = rows.set_index("study_id")
        else:
            weights = frame["_volume"].to_numpy()
            weighted = pd.DataFrame(frame[features].to_numpy() * weights[:, None], columns=features)
            sums = weighted.groupby(frame["study_id"].to_numpy(), sort=True).sum()
            patient = sums.div(groups["_volume"].sum().to_numpy(), axis=0)
    elif method in ("mean", "max", "min"):
        patient = frame.groupby("study_id", sort=True)[features].agg(method)
    else:
        raise ModelInputError(
            format_problem(
                f"aggregation {method!r}",
                "one of largest, volume_weighted_mean, mean, max, min",
                "pick one (inputs.aggregation)",
            )
        )
    patient.index.name = "study_id"
    return patient.reset_index().astype({c: float for c in features}).astype({"study_id": str})


def volume_of(lesion_features: pd.DataFrame | None) -> pd.Series | None:
    """Each lesion's CT volume (mm3) from the radiomic lesion table, indexed by ``lesion_id`` (or None)."""
    from sabrkit.features.aggregate import VOLUME_COLUMNS

    if lesion_features is None:
        return None
    column = next((c for c in VOLUME_COLUMNS if c in lesion_features.columns), None)
    if column is None:
        return None
    return pd.Series(
        np.asarray(lesion_features[column], dtype=float), index=lesion_features["lesion_id"].astype(str)
    )
