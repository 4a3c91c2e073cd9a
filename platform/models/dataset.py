"""Model-ready survival data sets: features plus a scikit-survival outcome, one row per unit.

A :class:`SurvivalDataset` holds one row per patient (``unit="patient"``, indexed by
``study_id``) or per treated lesion (``unit="lesion"``, indexed by ``lesion_id``, with the
patient's ``study_id`` in ``groups`` so that validation keeps a patient's lesions together).
Its columns are grouped in named *feature blocks*:

=============  ==========================================================================
block          columns
=============  ==========================================================================
clinical       one-hot clinical covariates (:mod:`sabrkit.models.clinical_encoding`)
radiomic       pyradiomics features (``original_glcm_Contrast`` ...), ``total_volume_mm3``
dose           BED10 of the lesion's prescription (``bed10_rx_gy``; :mod:`sabrkit.models.lesion_blocks`)
dvh            the lesion's DVH metrics and BED/EQD2 summaries (``dvh_*``)
dosiomic       pyradiomics features of the lesion's dose and BED maps (``dose_*``, ``bed_*``)
delta          change of the lesion's CT features from planning to follow-up CT (``delta_*``)
deep           deep-learning (MONAI encoder) features, as named in the deep feature table
biomarker      biobank assay values (one column per biomarker and time point)
=============  ==========================================================================

The lesion-level blocks (radiomic, dose, dvh, dosiomic, delta) join at lesion level in
lesion-level data sets and are aggregated per patient (as the radiomic block) in patient-level
ones. A *feature set* names blocks joined by ``+``: ``clinical``, ``radiomic``,
``clinical+radiomic+biomarker`` ... (:func:`parse_feature_set`). Feature sets name whole
blocks, never column lists, so a column choice learnt from the outcome cannot enter before
validation: everything data-dependent (imputation, scaling, filters, selection) happens inside
the model pipeline, refitted in every fold. Data sets are built by
:func:`sabrkit.models.assembly.assemble_dataset` and
:func:`~sabrkit.models.assembly.assemble_lesion_dataset`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.errors import ModelInputError, format_problem

__all__ = [
    "SurvivalDataset",
    "make_dataset",
    "validate_survival_data",
    "parse_feature_set",
    "FEATURE_BLOCKS",
    "FEATURE_SETS",
    "DIRECT_IDENTIFIER_COLUMNS",
]

logger = logging.getLogger(__name__)

FEATURE_BLOCKS: tuple[str, ...] = (
    "clinical",
    "radiomic",
    "dose",
    "dvh",
    "dosiomic",
    "delta",
    "deep",
    "biomarker",
)
#: every valid feature set: each non-empty combination of blocks, in canonical block order.
FEATURE_SETS: tuple[str, ...] = tuple(
    "+".join(combo)
    for r in range(1, len(FEATURE_BLOCKS) + 1)
    for combo in itertools.combinations(FEATURE_BLOCKS, r)
)
DIRECT_IDENTIFIER_COLUMNS: frozenset[str] = frozenset(
    {"hospital_number", "family_name", "given_name", "date_of_birth", "name", "nhs_number"}
)
_UNIT_INDEX = {"patient": "study_id", "lesion": "lesion_id"}


def parse_feature_set(feature_set: str) -> tuple[str, ...]:
    """The blocks of a feature set, in canonical order (``"radiomic+clinical"`` -> clinical, radiomic).

    Raises
    ------
    ModelInputError
        An unknown or repeated block.
    """
    parts = [p.strip() for p in str(feature_set).split("+")]
    unknown = [p for p in parts if p not in FEATURE_BLOCKS]
    if unknown or len(set(parts)) != len(parts) or not parts:
        raise ModelInputError(
            format_problem(
                f"feature_set {feature_set!r}",
                f"a feature set joins distinct blocks {list(FEATURE_BLOCKS)} with '+', e.g. 'clinical+radiomic'",
                "pick known blocks, each once",
            )
        )
    return tuple(b for b in FEATURE_BLOCKS if b in parts)


@dataclass(frozen=True, eq=False)
class SurvivalDataset:
    """Features and outcome of one cohort, aligned row by row.

    Attributes
    ----------
    X : pandas.DataFrame
        Numeric feature columns only; indexed by ``study_id`` (patients) or ``lesion_id`` (lesions).
    y : numpy.ndarray
        scikit-survival structured array with fields ``event`` (bool) and ``time`` (float,
        months), in the row order of ``X``.
    feature_set : str
        ``"clinical"``, ``"clinical+radiomic"`` ... (or a free label for simulated data).
    feature_names : tuple of str
        The columns of ``X``.
    endpoint : str
        The endpoint the outcome encodes (``"pfs"``, ``"os"``, ``"local_control"``).
    blocks : mapping block -> tuple of str, optional
        Which columns belong to which feature block (for :meth:`select` and profiles).
    characteristics : pandas.DataFrame, optional
        Descriptive columns per row that are *not* model features (raw clinical levels such as
        ``systemic_therapy``), used for strata, subgroup profiles and forest plots.
    groups : numpy.ndarray, optional
        The patient (``study_id``) of each row; required for lesion rows.
    unit : {"patient", "lesion"}
    consent : str
        How consent was checked when the data set was assembled (recorded in MLflow).
    """

    X: pd.DataFrame
    y: np.ndarray
    feature_set: str
    feature_names: tuple[str, ...]
    endpoint: str = "pfs"
    blocks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    characteristics: pd.DataFrame | None = None
    groups: np.ndarray | None = None
    unit: str = "patient"
    consent: str = "not checked"

    def __post_init__(self) -> None:
        validate_survival_data(self.X, self.y, unit=self.unit)
        if tuple(self.X.columns) != tuple(self.feature_names):
            raise ModelInputError(
                format_problem(
                    f"feature_names ({len(self.feature_names)}) differ from X.columns ({self.X.shape[1]})",
                    "feature_names must list the columns of X in order",
                    "build the data set with feature_names=tuple(X.columns)",
                )
            )
        stray = sorted(set(itertools.chain.from_iterable(self.blocks.values())) - set(self.feature_names))
        if stray:
            raise ModelInputError(
                format_problem(
                    f"block columns {stray[:5]} are not in X",
                    "blocks list columns of X",
                    "rebuild the data set",
                )
            )
        if self.unit == "lesion" and (self.groups is None or len(self.groups) != self.X.shape[0]):
            raise ModelInputError(
                format_problem(
                    "lesion rows without one study_id per row in groups",
                    "lesion-level data sets carry each lesion's patient",
                    "build it with assemble_lesion_dataset",
                )
            )
        if self.characteristics is not None and not self.characteristics.index.equals(self.X.index):
            raise ModelInputError(
                format_problem(
                    "characteristics rows differ from X rows", "same index, same order", "reindex them like X"
                )
            )

    @property
    def study_ids(self) -> np.ndarray:
        """The patient of each row (the index for patient rows, ``groups`` for lesion rows)."""
        return np.asarray(self.groups) if self.unit == "lesion" else self.X.index.to_numpy()

    @property
    def row_ids(self) -> np.ndarray:
        """The row identifiers (``study_id`` or ``lesion_id``)."""
        return self.X.index.to_numpy()

    @property
    def n_patients(self) -> int:
        return int(len(np.unique(self.study_ids)))

    @property
    def n_events(self) -> int:
        return int(self.y["event"].sum())

    def outcome_table(self) -> pd.DataFrame:
        """The outcome as an endpoints-style table: ``<id>, <endpoint>_months, <endpoint>_event``."""
        return pd.DataFrame(
            {
                self.X.index.name: self.X.index.to_numpy(),
                f"{self.endpoint}_months": self.y["time"].astype(float),
                f"{self.endpoint}_event": self.y["event"].astype(bool),
            }
        )

    def with_outcome(self, y: np.ndarray) -> SurvivalDataset:
        """The same features with another outcome array (used by permutation controls)."""
        return dataclasses.replace(self, y=y)

    def select(self, feature_set: str) -> SurvivalDataset:
        """The same rows restricted to the blocks of ``feature_set`` (same patients, same order).

        Raises
        ------
        ModelInputError
            A block the data set does not hold.
        """
        wanted = parse_feature_set(feature_set)
        missing = [b for b in wanted if b not in self.blocks]
        if missing:
            raise ModelInputError(
                format_problem(
                    f"feature set {feature_set!r} needs block(s) {missing}; this data set holds {sorted(self.blocks)}",
                    "a feature set can only use blocks that were assembled",
                    "pass the missing tables to assemble_dataset",
                )
            )
        columns = [c for b in wanted for c in self.blocks[b]]
        return dataclasses.replace(
            self,
            X=self.X[columns],
            feature_set="+".join(wanted),
            feature_names=tuple(columns),
            blocks={b: tuple(self.blocks[b]) for b in wanted},
        )

    def restrict(self, columns: Sequence[str]) -> SurvivalDataset:
        """The same rows with only ``columns`` (kept in data-set order; blocks shrink with them).

        Raises
        ------
        ModelInputError
            A column the data set does not hold.
        """
        missing = [c for c in columns if c not in self.feature_names]
        if missing:
            raise ModelInputError(
                format_problem(
                    f"column(s) {missing}",
                    f"restrict keeps columns of the data set ({list(self.feature_names)[:20]})",
                    "name columns the data set holds",
                )
            )
        keep = [c for c in self.feature_names if c in set(columns)]
        blocks = {b: tuple(c for c in cols if c in set(keep)) for b, cols in self.blocks.items()}
        return dataclasses.replace(
            self,
            X=self.X[keep],
            feature_names=tuple(keep),
            blocks={b: cols for b, cols in blocks.items() if cols},
        )

    def subset(self, row_ids: Sequence[str] | np.ndarray) -> SurvivalDataset:
        """The rows ``row_ids`` (in that order), all blocks kept."""
        position = self.X.index.get_indexer(pd.Index(row_ids))
        if (position < 0).any():
            missing = list(np.asarray(row_ids)[position < 0][:10])
            raise ModelInputError(
                format_problem(f"rows {missing}", "subset rows must exist", "check the IDs")
            )
        return dataclasses.replace(
            self,
            X=self.X.iloc[position],
            y=self.y[position],
            characteristics=None if self.characteristics is None else self.characteristics.iloc[position],
            groups=None if self.groups is None else np.asarray(self.groups)[position],
        )

    def characteristic(self, column: str) -> pd.Series:
        """One descriptive column (from ``characteristics``, else from ``X``), indexed like X."""
        if self.characteristics is not None and column in self.characteristics.columns:
            return self.characteristics[column]
        if column in self.X.columns:
            return self.X[column]
        raise ModelInputError(
            format_problem(
                f"column {column!r}",
                f"a characteristic is one of {list(self.characteristics.columns) if self.characteristics is not None else []} "
                "or a feature column",
                "assemble the data set with the clinical table, or name another column",
            )
        )


def validate_survival_data(X: pd.DataFrame, y: np.ndarray, unit: str = "patient") -> None:
    """Check the rules every model input obeys; raise :class:`ModelInputError` otherwise.

    Rules: ``X`` is indexed by unique ``study_id`` (``lesion_id`` for lesion rows); ``y`` has
    fields ``event`` (bool) and ``time`` (float) and one entry per row; every time is finite
    and > 0; at least 2 events.
    """
    if unit not in _UNIT_INDEX:
        raise ModelInputError(format_problem(f"unit {unit!r}", "unit is 'patient' or 'lesion'", "pick one"))
    index_name = _UNIT_INDEX[unit]
    if X.index.name != index_name:
        raise ModelInputError(
            format_problem(
                f"X index is named {X.index.name!r}",
                f"X must be indexed by {index_name}",
                f"call X.set_index('{index_name}')",
            )
        )
    duplicated = X.index[X.index.duplicated()].unique().tolist()
    if duplicated:
        raise ModelInputError(
            format_problem(
                f"duplicate {index_name}(s) {duplicated[:10]}",
                f"one row per {unit}",
                "aggregate lesion rows per patient before modelling"
                if unit == "patient"
                else "deduplicate lesions",
            )
        )
    if y.dtype.names is None or set(y.dtype.names) != {"event", "time"}:
        raise ModelInputError(
            format_problem(
                f"outcome dtype {y.dtype}",
                "y must be a structured array with fields 'event' and 'time'",
                "build it with Surv.from_arrays(event, time, name_event='event', name_time='time')",
            )
        )
    if y.shape[0] != X.shape[0]:
        raise ModelInputError(
            format_problem(
                f"{y.shape[0]} outcomes for {X.shape[0]} rows", "one outcome per row", "align y with X"
            )
        )
    time = np.asarray(y["time"], dtype=float)
    bad = ~np.isfinite(time) | (time <= 0)
    if bad.any():
        ids = X.index[bad].tolist()
        raise ModelInputError(
            format_problem(
                f"{index_name}(s) {ids[:10]} have time {time[bad][:10].tolist()}",
                "survival times must be finite and > 0 months",
                "check index_date and event/last-contact dates of these rows",
            )
        )
    n_events = int(np.asarray(y["event"], dtype=bool).sum())
    if n_events < 2:
        raise ModelInputError(
            format_problem(
                f"{n_events} event(s) among {X.shape[0]} rows",
                "a survival model needs at least 2 events",
                "use a longer follow-up or another endpoint",
            )
        )


def make_outcome(event: np.ndarray | Sequence[bool], time: np.ndarray | Sequence[float]) -> np.ndarray:
    """scikit-survival outcome with fields ``event`` and ``time``."""
    from sksurv.util import Surv

    return Surv.from_arrays(
        event=np.asarray(event, dtype=bool),
        time=np.asarray(time, dtype=float),
        name_event="event",
        name_time="time",
    )


def make_dataset(
    X: pd.DataFrame,
    event: Sequence[bool] | np.ndarray,
    time: Sequence[float] | np.ndarray,
    feature_set: str,
    endpoint: str = "pfs",
    **extra: Any,
) -> SurvivalDataset:
    """Build a :class:`SurvivalDataset` from a feature frame and event/time arrays (row-aligned).

    ``extra`` holds the optional fields (``blocks``, ``characteristics``, ``groups``, ``unit``,
    ``consent``).
    """
    return SurvivalDataset(
        X=X,
        y=make_outcome(event, time),
        feature_set=feature_set,
        feature_names=tuple(X.columns),
        endpoint=endpoint,
        **extra,
    )
