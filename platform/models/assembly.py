"""Assemble model inputs: join feature blocks and outcomes on IDs, consented participants only.

:func:`assemble_dataset` builds the patient-level data set (PFS, OS) from the patient feature
table (radiomics aggregated over lesions), the clinical covariate table, an optional deep
feature table and an optional biomarker table; :func:`assemble_lesion_dataset` builds the
lesion-level data set for local control, one row per treated lesion with its patient in
``groups``. Nothing here learns from the data beyond fixed encodings, so assembling before
cross-validation leaks nothing.

Consent
-------
The biobank's consent model is written elsewhere; until it exists, callers pass
``consented``: the study IDs whose consent covers this analysis (any iterable of
``study_id``), or a table with a ``study_id`` column and an optional boolean ``consented``
column. Rows of other patients are dropped *before* anything else and the number dropped is
recorded. ``consented=None`` means the caller vouches that every patient in the tables
consented; the data set then records ``consent="not checked"`` (logged as a warning and
tagged on the MLflow run).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Literal, overload

import numpy as np
import pandas as pd

from sabrkit.errors import ModelInputError, format_problem
from sabrkit.models.clinical_encoding import CLINICAL_NUMERIC, clinical_characteristics, encode_clinical
from sabrkit.models.dataset import DIRECT_IDENTIFIER_COLUMNS, SurvivalDataset, make_outcome, parse_feature_set
from sabrkit.models.lesion_blocks import LESION_BLOCKS

__all__ = ["assemble_dataset", "assemble_lesion_dataset", "consented_ids", "LESION_OUTCOME_COLUMNS"]

logger = logging.getLogger(__name__)

_NON_FEATURE_COLUMNS = frozenset({"study_id", "lesion_id", "index_date"})
#: columns of the lesion outcome table (local control per treated lesion).
LESION_OUTCOME_COLUMNS: tuple[str, ...] = ("lesion_id", "study_id", "local_control_months", "local_failure")


def consented_ids(consented: Iterable[str] | pd.DataFrame) -> frozenset[str]:
    """The consented study IDs from an iterable of IDs or a table (``study_id`` [, ``consented``])."""
    if isinstance(consented, pd.DataFrame):
        if "study_id" not in consented.columns:
            raise ModelInputError(
                format_problem(
                    "consent table without study_id", "consent tables have a study_id column", "add it"
                )
            )
        rows = consented
        if "consented" in consented.columns:
            rows = consented[
                consented["consented"].map(lambda v: v is True or str(v).lower() in ("true", "1"))
            ]
        return frozenset(rows["study_id"].astype(str))
    if isinstance(consented, str):
        raise ModelInputError(
            format_problem(
                f"consented={consented!r}", "consented is a collection of study IDs", "wrap it in a list"
            )
        )
    return frozenset(str(s) for s in consented)


def _check_one_per(table: pd.DataFrame, name: str, key: str = "study_id") -> None:
    if key not in table.columns:
        raise ModelInputError(
            format_problem(f"{name} has no {key} column", f"join key is {key}", f"add {key} to {name}")
        )
    dup = table[key][table[key].duplicated()].unique().tolist()
    if dup:
        raise ModelInputError(
            format_problem(f"{name} repeats {key}(s) {dup[:10]}", "one row per ID", f"deduplicate {name}")
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


def _numeric_block(table: pd.DataFrame, name: str, key: str, drop: Iterable[str] = ()) -> pd.DataFrame:
    """Feature columns of a table: no IDs, no ``prov_*``/``diagnostics_*``, no ``drop``; numeric only."""
    drop = set(drop)
    keep = [
        c
        for c in table.columns
        if c not in _NON_FEATURE_COLUMNS
        and c != key
        and c not in drop
        and not c.startswith(("prov_", "diagnostics_"))
    ]
    block = table.set_index(key)[keep]
    non_numeric = [c for c in keep if not pd.api.types.is_numeric_dtype(block[c])]
    if non_numeric:
        raise ModelInputError(
            format_problem(
                f"{name} column(s) {non_numeric[:10]} are not numeric",
                "feature columns must be numbers",
                "drop or encode them before assembling the data set",
            )
        )
    return block.astype(float)


@overload
def _filter_consent(table: None, allowed: frozenset[str] | None) -> None: ...
@overload
def _filter_consent(table: pd.DataFrame, allowed: frozenset[str] | None) -> pd.DataFrame: ...
def _filter_consent(table: pd.DataFrame | None, allowed: frozenset[str] | None) -> pd.DataFrame | None:
    if table is None or allowed is None:
        return table
    return table[table["study_id"].astype(str).isin(allowed)]


def _join(tables: dict[str, pd.DataFrame], require_complete: bool) -> list:
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
        logger.warning("assemble: inner join drops %d row(s): %s", len(all_ids - common), message)
    if not common:
        raise ModelInputError(
            format_problem("no row is in every table", "the tables must share IDs", "check the IDs")
        )
    return sorted(common)


def _as_event(values: pd.Series, name: str) -> np.ndarray:
    def one(value: object) -> bool | None:
        if isinstance(value, bool | np.bool_):
            return bool(value)
        if isinstance(value, int | np.integer) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        return None

    event = values.map(one)
    if event.isna().any():
        raise ModelInputError(
            format_problem(
                f"{name} missing or not boolean for {event[event.isna()].index.tolist()[:10]}",
                "events are true/false",
                "fix the outcome table",
            )
        )
    return event.to_numpy(dtype=bool)


def _consent_note(allowed: frozenset[str] | None, before: set[str], after: set[str]) -> str:
    if allowed is None:
        logger.warning("assemble: consent not checked (consented=None); every patient in the tables is used")
        return "not checked"
    excluded = len(before - after)
    if excluded:
        logger.info("assemble: %d patient(s) without consent excluded", excluded)
    return f"applied: {excluded} patient(s) without consent excluded"


def assemble_dataset(
    patient_features: pd.DataFrame | None,
    endpoints: pd.DataFrame,
    clinical: pd.DataFrame | None,
    feature_set: str = "clinical+radiomic",
    endpoint: Literal["pfs", "os"] = "pfs",
    require_complete: bool = False,
    *,
    deep_features: pd.DataFrame | None = None,
    biomarkers: pd.DataFrame | None = None,
    patient_blocks: Mapping[str, pd.DataFrame] | None = None,
    consented: Iterable[str] | pd.DataFrame | None = None,
) -> SurvivalDataset:
    """Join feature blocks, clinical characteristics and outcomes on ``study_id``.

    Parameters
    ----------
    patient_features : pandas.DataFrame or None
        Patient-level radiomic table (``study_id``, pyradiomics-named features, ``n_lesions``,
        ``total_volume_mm3``, optional ``prov_*`` columns, which are dropped). ``n_lesions``
        comes from the clinical table. Needed when the feature set holds ``radiomic``.
    endpoints : pandas.DataFrame
        Endpoints table (``study_id``, ``<endpoint>_months``, ``<endpoint>_event``).
    clinical : pandas.DataFrame or None
        Clinical covariate table. Needed for the ``clinical`` block; when given it also becomes
        the data set's ``characteristics`` (therapy class for strata and forest plots, levels
        for the low-risk profile) whatever the feature set.
    feature_set : str
        Blocks joined by ``+`` (:func:`~sabrkit.models.dataset.parse_feature_set`).
    endpoint : {"pfs", "os"}
    require_complete : bool
        If True, raise when a (consented) study_id is missing from a joined table; if False
        (default), keep the inner join and log the dropped IDs at WARNING level.
    deep_features : pandas.DataFrame, optional
        ``study_id`` plus numeric deep-feature columns (block ``deep``).
    biomarkers : pandas.DataFrame, optional
        ``study_id`` plus one numeric column per biomarker (block ``biomarker``); NaN values
        stay NaN for in-fold imputation.
    patient_blocks : mapping block -> DataFrame, optional
        The lesion-level blocks ``dose``, ``dvh``, ``dosiomic``, ``delta`` aggregated per patient
        (``study_id`` plus numeric columns; :func:`sabrkit.models.lesion_blocks.aggregate_block`).
    consented : iterable of str, or DataFrame, optional
        Study IDs whose consent covers this analysis (see the module docstring). None: not
        checked, recorded as ``consent="not checked"``.

    Returns
    -------
    SurvivalDataset
        Rows sorted by ``study_id``; ``blocks`` maps each block to its columns.

    Raises
    ------
    ModelInputError
        Unknown feature set or endpoint, a table missing, duplicate study_id, direct identifier
        columns, a column name in two blocks, missing patients (with ``require_complete``),
        times <= 0, < 2 events.
    """
    wanted = parse_feature_set(feature_set)
    if endpoint not in ("pfs", "os"):
        raise ModelInputError(
            format_problem(f"endpoint {endpoint!r}", "one of ['pfs', 'os']", "pick pfs or os")
        )
    allowed = None if consented is None else consented_ids(consented)
    if allowed is not None and not allowed:
        raise ModelInputError(
            format_problem("an empty consent list", "at least one consented patient", "check consent")
        )
    sources = {
        "radiomic": patient_features,
        "clinical": clinical,
        "deep": deep_features,
        "biomarker": biomarkers,
        **{b: (patient_blocks or {}).get(b) for b in LESION_BLOCKS},
    }
    arguments = {
        "radiomic": "patient_features",
        "clinical": "clinical",
        "deep": "deep_features",
        "biomarker": "biomarkers",
        **{b: f"patient_blocks[{b!r}]" for b in LESION_BLOCKS},
    }
    tables: dict[str, pd.DataFrame] = {}
    for block in wanted:
        table = sources[block]
        if table is None:
            raise ModelInputError(
                format_problem(
                    f"feature_set {feature_set!r} without {arguments[block]}",
                    f"the {block} block needs the {arguments[block]} table",
                    f"pass {arguments[block]}",
                )
            )
        _check_one_per(table, arguments[block])
        table = _filter_consent(table, allowed)
        if block == "clinical":
            tables[block] = encode_clinical(table)
        elif block == "radiomic":
            tables[block] = _numeric_block(table, arguments[block], "study_id", drop=CLINICAL_NUMERIC)
        else:
            tables[block] = _numeric_block(table, arguments[block], "study_id")
    seen: dict[str, str] = {}
    for block, table in tables.items():
        for column in table.columns:
            if column in seen:
                raise ModelInputError(
                    format_problem(
                        f"column {column!r} is in blocks {seen[column]!r} and {block!r}",
                        "column names are unique across blocks",
                        f"rename it in the {block} table (e.g. prefix '{block}_')",
                    )
                )
            seen[column] = block
    _check_one_per(endpoints, "endpoints")
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
    before = set(endpoints["study_id"].astype(str))
    outcome = _filter_consent(endpoints, allowed).set_index("study_id")[[time_col, event_col]]
    consent = _consent_note(allowed, before, set(outcome.index.astype(str)))
    ids = _join({**{arguments[b]: t for b, t in tables.items()}, "endpoints": outcome}, require_complete)
    X = pd.concat([tables[b].loc[ids] for b in wanted], axis=1)
    X.index.name = "study_id"
    outcome = outcome.loc[ids]
    y = make_outcome(_as_event(outcome[event_col], event_col), outcome[time_col].to_numpy(dtype=float))
    characteristics = None
    if clinical is not None:
        characteristics = clinical_characteristics(_filter_consent(clinical, allowed)).reindex(X.index)
    logger.info(
        "assembled %s data set: %d patients, %d events, %d features",
        "+".join(wanted),
        len(ids),
        int(y["event"].sum()),
        X.shape[1],
    )
    return SurvivalDataset(
        X=X,
        y=y,
        feature_set="+".join(wanted),
        feature_names=tuple(X.columns),
        endpoint=endpoint,
        blocks={b: tuple(tables[b].columns) for b in wanted},
        characteristics=characteristics,
        consent=consent,
    )


def assemble_lesion_dataset(
    lesion_features: pd.DataFrame | None,
    lesion_outcomes: pd.DataFrame,
    clinical: pd.DataFrame | None = None,
    feature_set: str = "radiomic",
    require_complete: bool = False,
    *,
    lesion_blocks: Mapping[str, pd.DataFrame] | None = None,
    consented: Iterable[str] | pd.DataFrame | None = None,
) -> SurvivalDataset:
    """One row per treated lesion for local-control models; ``groups`` holds each lesion's patient.

    Parameters
    ----------
    lesion_features : pandas.DataFrame or None
        Lesion feature table (``lesion_id``, ``study_id``, pyradiomics features, ``prov_*``);
        needed for the ``radiomic`` block.
    lesion_outcomes : pandas.DataFrame
        :data:`LESION_OUTCOME_COLUMNS`: ``lesion_id, study_id, local_control_months,
        local_failure`` (time from the lesion's first fraction to local failure or censoring;
        a death before local failure is censored: the cause-specific hazard). The registry
        writes it (:func:`sabrkit.registry.lesion_outcomes_from_db`, ``data/registry/lesion_outcomes.parquet``).
    clinical : pandas.DataFrame, optional
        Clinical covariates of the lesion's patient (block ``clinical``; also the
        ``characteristics``).
    feature_set : str
        Blocks ``clinical``, ``radiomic``, ``dose``, ``dvh``, ``dosiomic``, ``delta`` joined by ``+``.
    lesion_blocks : mapping block -> DataFrame, optional
        The ``dose``, ``dvh``, ``dosiomic`` and ``delta`` blocks
        (:func:`sabrkit.models.lesion_blocks.lesion_block`), indexed by ``lesion_id``.
    require_complete : bool
    consented : iterable of str, or DataFrame, optional
        As for :func:`assemble_dataset` (filtered on the lesion's ``study_id``).

    Returns
    -------
    SurvivalDataset
        ``unit="lesion"``, indexed by ``lesion_id``, endpoint ``"local_control"``; validation
        then splits with ``StratifiedGroupKFold`` so a patient's lesions stay in one fold.
    """
    wanted = parse_feature_set(feature_set)
    if set(wanted) - {"clinical", "radiomic", *LESION_BLOCKS}:
        raise ModelInputError(
            format_problem(
                f"lesion feature_set {feature_set!r}",
                f"lesion-level sets use the blocks {['clinical', 'radiomic', *LESION_BLOCKS]}",
                "drop the patient-level blocks (deep, biomarker)",
            )
        )
    allowed = None if consented is None else consented_ids(consented)
    if lesion_features is not None:
        _check_one_per(lesion_features, "lesion_features", key="lesion_id")
    elif "radiomic" in wanted:
        raise ModelInputError(
            format_problem(
                f"feature_set {feature_set!r} without lesion_features",
                "the radiomic block needs the lesion feature table",
                "pass lesion_features",
            )
        )
    _check_one_per(lesion_outcomes, "lesion_outcomes", key="lesion_id")
    missing_cols = [c for c in LESION_OUTCOME_COLUMNS if c not in lesion_outcomes.columns]
    if missing_cols:
        raise ModelInputError(
            format_problem(
                f"lesion_outcomes lacks {missing_cols}",
                f"columns are {list(LESION_OUTCOME_COLUMNS)}",
                "add them",
            )
        )
    before = set(lesion_outcomes["study_id"].astype(str))
    outcomes = _filter_consent(lesion_outcomes, allowed).set_index("lesion_id")
    consent = _consent_note(allowed, before, set(outcomes["study_id"].astype(str)))
    patient_of = outcomes["study_id"].astype(str)
    tables: dict[str, pd.DataFrame] = {}
    if "radiomic" in wanted and lesion_features is not None:  # (None was refused above)
        features = _filter_consent(lesion_features, allowed)
        tables["radiomic"] = _numeric_block(features.drop(columns="study_id"), "lesion_features", "lesion_id")
    for block in [b for b in wanted if b in LESION_BLOCKS]:
        table = (lesion_blocks or {}).get(block)
        if table is None:
            raise ModelInputError(
                format_problem(
                    f"feature_set {feature_set!r} without the {block} block",
                    f"the {block} block needs its lesion table",
                    f"pass lesion_blocks[{block!r}] (sabrkit.models.lesion_blocks.lesion_block)",
                )
            )
        table = _filter_consent(table, allowed)
        tables[block] = table.drop(columns="study_id").astype(float)
    clinical_rows = None
    if clinical is not None:
        _check_one_per(clinical, "clinical")
        clinical_rows = _filter_consent(clinical, allowed)
    if "clinical" in wanted:
        if clinical_rows is None:
            raise ModelInputError(
                format_problem(
                    f"feature_set {feature_set!r} without clinical",
                    "clinical needs the table",
                    "pass clinical",
                )
            )
        encoded = encode_clinical(clinical_rows)
        tables["clinical"] = encoded.reindex(patient_of.to_numpy()).set_axis(patient_of.index)
        tables["clinical"] = tables["clinical"][patient_of.isin(encoded.index).to_numpy()]
    named = {{"radiomic": "lesion_features", "clinical": "clinical"}.get(b, b): t for b, t in tables.items()}
    ids = _join({**named, "lesion_outcomes": outcomes}, require_complete)
    X = pd.concat([tables[b].loc[ids] for b in wanted], axis=1)
    X.index.name = "lesion_id"
    rows = outcomes.loc[ids]
    y = make_outcome(
        _as_event(rows["local_failure"], "local_failure"), rows["local_control_months"].to_numpy(dtype=float)
    )
    characteristics = None
    if clinical_rows is not None:
        per_patient = clinical_characteristics(clinical_rows)
        characteristics = per_patient.reindex(rows["study_id"].astype(str).to_numpy()).set_axis(X.index)
    return SurvivalDataset(
        X=X,
        y=y,
        feature_set="+".join(wanted),
        feature_names=tuple(X.columns),
        endpoint="local_control",
        blocks={b: tuple(tables[b].columns) for b in wanted},
        characteristics=characteristics,
        groups=rows["study_id"].astype(str).to_numpy(),
        unit="lesion",
        consent=consent,
    )
