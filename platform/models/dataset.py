"""Model-ready survival data sets: one row per patient, features plus a scikit-survival outcome.

:func:`assemble_dataset` joins the patient feature table (radiomics, aggregated over lesions),
the endpoints table and the clinical covariate table on ``study_id`` and returns a
:class:`SurvivalDataset`. Everything data-dependent (imputation, scaling, selection) happens
later, inside the model pipeline, so that it is refitted in every cross-validation fold.

Clinical covariates are one-hot encoded against fixed reference levels (the first level of each
list in :data:`CLINICAL_CATEGORIES`), with column names in scikit-survival's
``OneHotEncoder`` style (``imdc_risk=poor``):

============================  ==================  ==========================================
covariate                     reference level     indicator columns
============================  ==================  ==========================================
sex                           F                   ``sex=M``
histology                     clear_cell          ``histology=non_clear_cell``
imdc_risk                     favourable          ``imdc_risk=intermediate``, ``imdc_risk=poor``
prior_nephrectomy             false               ``prior_nephrectomy=true``
disease_state                 oligometastatic     ``disease_state=oligoprogressive``
systemic_therapy              none                ``systemic_therapy=tki``, ``=ici``, ``=tki_ici``
============================  ==================  ==========================================

``age_years``, ``ecog`` (ordinal 0-2, kept numeric to spend one parameter, not two),
``n_lesions`` and ``max_bed10_gy`` stay numeric. Levels absent from a cohort give all-zero
columns, which the pipelines' variance filter removes inside each fold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from sabrkit.errors import ModelInputError, format_problem

__all__ = [
    "SurvivalDataset",
    "assemble_dataset",
    "make_dataset",
    "validate_survival_data",
    "encode_clinical",
    "CLINICAL_CATEGORIES",
    "CLINICAL_NUMERIC",
    "FEATURE_SETS",
    "DIRECT_IDENTIFIER_COLUMNS",
]

logger = logging.getLogger(__name__)

FEATURE_SETS: tuple[str, ...] = ("clinical", "radiomic", "clinical+radiomic")
CLINICAL_CATEGORIES: dict[str, tuple[str, ...]] = {
    "sex": ("F", "M"),
    "histology": ("clear_cell", "non_clear_cell"),
    "imdc_risk": ("favourable", "intermediate", "poor"),
    "prior_nephrectomy": ("false", "true"),
    "disease_state": ("oligometastatic", "oligoprogressive"),
    "systemic_therapy": ("none", "tki", "ici", "tki_ici"),
}
CLINICAL_NUMERIC: tuple[str, ...] = ("age_years", "ecog", "n_lesions", "max_bed10_gy")
DIRECT_IDENTIFIER_COLUMNS: frozenset[str] = frozenset(
    {"hospital_number", "family_name", "given_name", "date_of_birth", "name", "nhs_number"}
)
_NON_FEATURE_COLUMNS = frozenset({"study_id", "lesion_id", "index_date"})


@dataclass(frozen=True)
class SurvivalDataset:
    """Features and outcome of one cohort, aligned row by row.

    Attributes
    ----------
    X : pandas.DataFrame
        One row per patient, indexed by ``study_id``; numeric feature columns only.
    y : numpy.ndarray
        scikit-survival structured array with fields ``event`` (bool) and ``time``
        (float, months), in the row order of ``X``.
    feature_set : str
        ``"clinical"``, ``"radiomic"`` or ``"clinical+radiomic"`` (or a free label).
    feature_names : tuple of str
        The columns of ``X``.
    endpoint : str
        The endpoint the outcome encodes (``"pfs"`` or ``"os"``).
    """

    X: pd.DataFrame
    y: np.ndarray
    feature_set: str
    feature_names: tuple[str, ...]
    endpoint: str = "pfs"

    def __post_init__(self) -> None:
        validate_survival_data(self.X, self.y)
        if tuple(self.X.columns) != tuple(self.feature_names):
            raise ModelInputError(
                format_problem(
                    f"feature_names ({len(self.feature_names)}) differ from X.columns ({self.X.shape[1]})",
                    "feature_names must list the columns of X in order",
                    "build the data set with feature_names=tuple(X.columns)",
                )
            )

    @property
    def study_ids(self) -> np.ndarray:
        """The pseudonymous study IDs, in row order."""
        return self.X.index.to_numpy()

    @property
    def n_patients(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_events(self) -> int:
        return int(self.y["event"].sum())

    def outcome_table(self) -> pd.DataFrame:
        """The outcome as an endpoints-style table: ``study_id, <endpoint>_months, <endpoint>_event``."""
        return pd.DataFrame(
            {
                "study_id": self.X.index.to_numpy(),
                f"{self.endpoint}_months": self.y["time"].astype(float),
                f"{self.endpoint}_event": self.y["event"].astype(bool),
            }
        )

    def with_outcome(self, y: np.ndarray) -> SurvivalDataset:
        """The same features with another outcome array (used by permutation controls)."""
        return SurvivalDataset(self.X, y, self.feature_set, self.feature_names, self.endpoint)


def validate_survival_data(X: pd.DataFrame, y: np.ndarray) -> None:
    """Check the rules every model input obeys; raise :class:`ModelInputError` otherwise.

    Rules: ``X`` is indexed by unique ``study_id``; ``y`` has fields ``event`` (bool) and
    ``time`` (float) and one entry per row; every time is finite and > 0; at least 2 events.
    """
    if X.index.name != "study_id":
        raise ModelInputError(
            format_problem(
                f"X index is named {X.index.name!r}",
                "X must be indexed by study_id",
                "call X.set_index('study_id')",
            )
        )
    duplicated = X.index[X.index.duplicated()].unique().tolist()
    if duplicated:
        raise ModelInputError(
            format_problem(
                f"duplicate study_id(s) {duplicated[:10]}",
                "one row per patient",
                "aggregate lesion rows per patient before modelling",
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
            format_problem(f"{y.shape[0]} outcomes for {X.shape[0]} rows", "one outcome per row", "align y with X")
        )
    time = np.asarray(y["time"], dtype=float)
    bad = ~np.isfinite(time) | (time <= 0)
    if bad.any():
        ids = X.index[bad].tolist()
        raise ModelInputError(
            format_problem(
                f"study_id(s) {ids[:10]} have time {time[bad][:10].tolist()}",
                "survival times must be finite and > 0 months",
                "check index_date and event/last-contact dates of these patients",
            )
        )
    n_events = int(np.asarray(y["event"], dtype=bool).sum())
    if n_events < 2:
        raise ModelInputError(
            format_problem(
                f"{n_events} event(s) among {X.shape[0]} patients",
                "a survival model needs at least 2 events",
                "use a longer follow-up or another endpoint",
            )
        )


def encode_clinical(clinical: pd.DataFrame) -> pd.DataFrame:
    """One-hot encode the clinical covariate table against the documented reference levels.

    Parameters
    ----------
    clinical : pandas.DataFrame
        Columns ``study_id`` and any of :data:`CLINICAL_NUMERIC` and :data:`CLINICAL_CATEGORIES`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``study_id``; numeric columns as float, one ``<covariate>=<level>`` indicator
        per non-reference level (NaN where the covariate is missing, for in-fold imputation).

    Raises
    ------
    ModelInputError
        An unknown level, a non-numeric value in a numeric column or an unknown column.
    """
    table = clinical.set_index("study_id")
    unknown = [c for c in table.columns if c not in CLINICAL_CATEGORIES and c not in CLINICAL_NUMERIC]
    if unknown:
        raise ModelInputError(
            format_problem(
                f"clinical column(s) {unknown}",
                f"clinical covariates are {list(CLINICAL_NUMERIC) + list(CLINICAL_CATEGORIES)}",
                "drop the column or add it to sabrkit.models.dataset with a reference level",
            )
        )
    encoded: dict[str, pd.Series] = {}
    for column in table.columns:
        values = table[column]
        if column in CLINICAL_NUMERIC:
            numeric = pd.to_numeric(values, errors="coerce")
            bad = numeric.isna() & values.notna()
            if bad.any():
                raise ModelInputError(
                    format_problem(
                        f"clinical {column} = {values[bad].tolist()[:5]} for {bad[bad].index.tolist()[:5]}",
                        f"{column} must be numeric",
                        "correct the registry values",
                    )
                )
            encoded[column] = numeric.astype(float)
            continue
        levels = CLINICAL_CATEGORIES[column]
        as_text = values.map(_level_text)
        bad = as_text.notna() & ~as_text.isin(levels)
        if bad.any():
            raise ModelInputError(
                format_problem(
                    f"clinical {column} = {sorted(set(as_text[bad]))} for {bad[bad].index.tolist()[:5]}",
                    f"{column} must be one of {list(levels)}",
                    "correct the registry values",
                )
            )
        missing = as_text.isna()
        for level in levels[1:]:
            indicator = (as_text == level).astype(float)
            indicator[missing] = np.nan
            encoded[f"{column}={level}"] = indicator
    return pd.DataFrame(encoded, index=table.index)


def _check_one_per_patient(table: pd.DataFrame, name: str) -> None:
    if "study_id" not in table.columns:
        raise ModelInputError(
            format_problem(f"{name} has no study_id column", "join key is study_id", f"add study_id to {name}")
        )
    dup = table["study_id"][table["study_id"].duplicated()].unique().tolist()
    if dup:
        raise ModelInputError(
            format_problem(f"{name} repeats study_id(s) {dup[:10]}", "one row per patient", f"deduplicate {name}")
        )
    leaked = sorted(DIRECT_IDENTIFIER_COLUMNS & set(table.columns))
    if leaked:
        raise ModelInputError(
            format_problem(
                f"{name} holds direct identifier column(s) {leaked}",
                "models see pseudonymous study IDs only",
                "drop these columns; they live in the key table only",
            )
        )


def _radiomic_features(patient_features: pd.DataFrame) -> pd.DataFrame:
    """Feature columns of the patient table: no IDs, no ``prov_*``, no clinical duplicates."""
    keep = [
        c
        for c in patient_features.columns
        if c not in _NON_FEATURE_COLUMNS and not c.startswith("prov_") and c not in CLINICAL_NUMERIC
    ]
    table = patient_features.set_index("study_id")[keep]
    non_numeric = [c for c in keep if not pd.api.types.is_numeric_dtype(table[c])]
    if non_numeric:
        raise ModelInputError(
            format_problem(
                f"patient feature column(s) {non_numeric[:10]} are not numeric",
                "feature columns must be numbers",
                "drop or encode them before assembling the data set",
            )
        )
    return table.astype(float)


def assemble_dataset(
    patient_features: pd.DataFrame | None,
    endpoints: pd.DataFrame,
    clinical: pd.DataFrame | None,
    feature_set: Literal["clinical", "radiomic", "clinical+radiomic"] = "clinical+radiomic",
    endpoint: Literal["pfs", "os"] = "pfs",
    require_complete: bool = False,
) -> SurvivalDataset:
    """Join features, clinical covariates and outcomes on ``study_id``.

    Parameters
    ----------
    patient_features : pandas.DataFrame or None
        Patient-level radiomic table (``study_id``, pyradiomics-named features, ``n_lesions``,
        ``total_volume_mm3``, optional ``prov_*`` columns, which are dropped). ``n_lesions`` is
        taken from the clinical table. May be None for ``feature_set="clinical"``.
    endpoints : pandas.DataFrame
        Endpoints table (``study_id``, ``<endpoint>_months``, ``<endpoint>_event``).
    clinical : pandas.DataFrame or None
        Clinical covariate table; may be None for ``feature_set="radiomic"``.
    feature_set : {"clinical", "radiomic", "clinical+radiomic"}
        Which features make up ``X``.
    endpoint : {"pfs", "os"}
        Which endpoint becomes ``y``.
    require_complete : bool
        If True, raise when a study_id is missing from one of the joined tables; if False
        (default), keep the inner join and log the dropped IDs at WARNING level.

    Returns
    -------
    SurvivalDataset
        Rows sorted by ``study_id``.

    Raises
    ------
    ModelInputError
        Unknown feature set or endpoint, a table missing, duplicate study_id, direct
        identifier columns, missing patients (with ``require_complete``), times <= 0, < 2 events.
    """
    if feature_set not in FEATURE_SETS:
        raise ModelInputError(
            format_problem(f"feature_set {feature_set!r}", f"one of {list(FEATURE_SETS)}", "pick a known feature set")
        )
    if endpoint not in ("pfs", "os"):
        raise ModelInputError(format_problem(f"endpoint {endpoint!r}", "one of ['pfs', 'os']", "pick pfs or os"))
    tables: dict[str, pd.DataFrame] = {}
    if "radiomic" in feature_set:
        if patient_features is None:
            raise ModelInputError(
                format_problem(
                    f"feature_set {feature_set!r} without patient_features",
                    "radiomic sets need the patient feature table",
                    "pass patient_features",
                )
            )
        _check_one_per_patient(patient_features, "patient_features")
        tables["patient_features"] = _radiomic_features(patient_features)
    if "clinical" in feature_set:
        if clinical is None:
            raise ModelInputError(
                format_problem(
                    f"feature_set {feature_set!r} without clinical",
                    "clinical sets need the clinical table",
                    "pass clinical",
                )
            )
        _check_one_per_patient(clinical, "clinical")
        tables["clinical"] = encode_clinical(clinical)
    _check_one_per_patient(endpoints, "endpoints")
    time_col, event_col = f"{endpoint}_months", f"{endpoint}_event"
    missing_cols = [c for c in (time_col, event_col) if c not in endpoints.columns]
    if missing_cols:
        raise ModelInputError(
            format_problem(
                f"endpoints lacks {missing_cols}",
                "endpoint columns are <endpoint>_months and <endpoint>_event",
                "build the endpoints table with sabrkit.registry",
            )
        )
    outcome = endpoints.set_index("study_id")[[time_col, event_col]]
    tables["endpoints"] = outcome

    all_ids = set().union(*(set(t.index) for t in tables.values()))
    common = set.intersection(*(set(t.index) for t in tables.values()))
    gaps = {name: sorted(all_ids - set(t.index)) for name, t in tables.items() if all_ids - set(t.index)}
    if gaps:
        message = "; ".join(f"{name} lacks {ids[:20]}" for name, ids in gaps.items())
        if require_complete:
            raise ModelInputError(
                format_problem(
                    message,
                    "every patient must appear in every joined table",
                    "complete the tables or pass require_complete=False",
                )
            )
        logger.warning("assemble_dataset: inner join drops %d patient(s): %s", len(all_ids - common), message)

    ids = sorted(common)
    parts = [tables[name].loc[ids] for name in ("clinical", "patient_features") if name in tables]
    X = pd.concat(parts, axis=1)
    X.index.name = "study_id"
    outcome = outcome.loc[ids]
    event = outcome[event_col].map(_as_bool)
    if event.isna().any():
        raise ModelInputError(
            format_problem(
                f"{event_col} missing or not boolean for {event[event.isna()].index.tolist()[:10]}",
                "events are true/false",
                "fix the endpoints table",
            )
        )
    y = _make_outcome(event.to_numpy(dtype=bool), outcome[time_col].to_numpy(dtype=float))
    logger.info(
        "assembled %s data set: %d patients, %d events, %d features",
        feature_set, len(ids), int(y["event"].sum()), X.shape[1],
    )
    return SurvivalDataset(X=X, y=y, feature_set=feature_set, feature_names=tuple(X.columns), endpoint=endpoint)


def _level_text(value: object) -> object:
    """A category value as its level text; booleans become ``"true"``/``"false"``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    text = str(value).strip()
    return text.lower() if text.lower() in ("true", "false") else text


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None


def _make_outcome(event: np.ndarray, time: np.ndarray) -> np.ndarray:
    from sksurv.util import Surv

    return Surv.from_arrays(event=event, time=time, name_event="event", name_time="time")


def make_dataset(
    X: pd.DataFrame,
    event: Sequence[bool] | np.ndarray,
    time: Sequence[float] | np.ndarray,
    feature_set: str,
    endpoint: str = "pfs",
) -> SurvivalDataset:
    """Build a :class:`SurvivalDataset` from a feature frame and event/time arrays (row-aligned)."""
    y = _make_outcome(np.asarray(event, dtype=bool), np.asarray(time, dtype=float))
    return SurvivalDataset(X=X, y=y, feature_set=feature_set, feature_names=tuple(X.columns), endpoint=endpoint)
