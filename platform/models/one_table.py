r"""A researcher's own survival table as model data: checks, time units, in-fold encoding.

:func:`table_datasets` turns one table and its :class:`~sabrkit.models.table_spec.TableSpec`
into the model's :class:`~sabrkit.models.dataset.SurvivalDataset`, the comparator's (or None)
and the descriptive one (every block), on the same rows. Times are converted once to months,
the unit every horizon of the runner is in (``tau_months``, ``auc_times``, 12/24-month
survival): :math:`t_{months} = t \cdot m`, with :math:`m` = 12/365.25 (days), 84/365.25
(weeks), 1 (months), 12 (years).

Text covariates (and those listed as ``categorical``) stay text in ``X``; the model and the
comparator pipelines get a first step (:func:`with_encoder`) that imputes the most frequent
level and one-hot encodes them with the first level (sorted) as reference, learnt on the
training rows of each fold; a level unseen in training is encoded as the reference.

Errors name the column, the rule and the fix: :class:`TableColumnError` (a missing, duplicate
or unusable column), :class:`TimeUnitError` (times implausible in the declared unit) and
:class:`FollowUpHorizonError` (a horizon outside the follow-up, :func:`check_horizons`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.errors import ModelInputError, format_problem
from sabrkit.models.dataset import (
    DIRECT_IDENTIFIER_COLUMNS,
    SurvivalDataset,
    make_outcome,
)
from sabrkit.models.table_spec import COVARIATES_BLOCK, TableSpec

__all__ = [
    "MAX_PLAUSIBLE_MONTHS",
    "FollowUpHorizonError",
    "TableColumnError",
    "TableData",
    "TimeUnitError",
    "categorical_columns",
    "check_horizons",
    "table_datasets",
    "with_encoder",
]

logger = logging.getLogger(__name__)

#: longest plausible follow-up (100 years): beyond it the declared time unit is wrong
MAX_PLAUSIBLE_MONTHS = 1200.0
_EVENT_TEXT = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


class TableColumnError(ModelInputError):
    """A column of the survival table is missing, repeated, or not usable in its role."""


class TimeUnitError(ModelInputError):
    """The follow-up times are implausible in the declared ``time_unit``."""


class FollowUpHorizonError(ModelInputError):
    """A horizon (``tau_months``, an AUC or decision-curve time) lies outside the follow-up."""


@dataclasses.dataclass(frozen=True)
class TableData:
    """The data sets an experiment runs on, built from one table.

    Attributes
    ----------
    model, comparator, descriptive : SurvivalDataset
        ``comparator`` is None without a comparator block.
    categorical : tuple of str
        Text/categorical columns (encoded in-fold).
    time_unit : str
        The table's unit; times in the data sets are months.
    follow_up : dict
        ``min``, ``max`` (table unit) and ``min_months``, ``max_months``.
    """

    model: SurvivalDataset
    comparator: SurvivalDataset | None
    descriptive: SurvivalDataset
    categorical: tuple[str, ...]
    time_unit: str
    follow_up: dict[str, float]


def _fix_hint(spec: TableSpec) -> str:
    return f"correct table: in the experiment file (columns of {spec.path})"


def _require_columns(table: pd.DataFrame, names: Sequence[str], role: str, spec: TableSpec) -> None:
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise TableColumnError(
            format_problem(
                f"{role} column(s) {missing} are not in {spec.path}",
                f"every column the experiment names must exist; the table has {list(table.columns)[:30]}",
                _fix_hint(spec),
            )
        )


def _block_columns(table: pd.DataFrame, spec: TableSpec) -> dict[str, list[str]]:
    taken = {spec.id, spec.time, spec.event}
    blocks: dict[str, list[str]] = {}
    if spec.covariates:
        blocks[COVARIATES_BLOCK] = list(spec.covariates)
    for name, block in spec.blocks.items():
        if block.columns is not None:
            _require_columns(table, block.columns, f"block {name!r}", spec)
            columns = list(block.columns)
        else:
            pattern = re.compile(block.pattern or "")
            columns = [c for c in table.columns if pattern.search(str(c)) and c not in taken]
            if not columns:
                raise TableColumnError(
                    format_problem(
                        f"block {name!r}: pattern {block.pattern!r} matches no column of {spec.path}",
                        "a block holds at least one column",
                        "correct the pattern (a regular expression searched in each column name)",
                    )
                )
        inside = sorted(set(columns) & taken)
        if inside:
            raise TableColumnError(
                format_problem(
                    f"block {name!r} holds {inside}",
                    "the id, time and event columns are no features",
                    "remove them from the block",
                )
            )
        blocks[name] = columns
    seen: dict[str, str] = {}
    for name, columns in blocks.items():
        for column in columns:
            if column in seen:
                raise TableColumnError(
                    format_problem(
                        f"column {column!r} is in blocks {seen[column]!r} and {name!r}",
                        "each column belongs to one block",
                        "narrow the pattern or the column lists",
                    )
                )
            seen[column] = name
    return blocks


def categorical_columns(table: pd.DataFrame, spec: TableSpec) -> list[str]:
    """Covariates encoded as categories: the non-numeric ones and those listed as ``categorical``."""
    return [c for c in spec.covariates if c in spec.categorical or not _is_number(table[c])]


def _is_number(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values))  # booleans count as 0/1 numbers


def _as_text(values: pd.Series) -> pd.Series:
    """Category levels as text (missing stays missing), so encoders and MLflow see one type."""
    out = values.astype(object).where(values.notna(), None)
    return out.map(lambda v: None if v is None else str(v)).astype(object)


def _event(values: pd.Series, spec: TableSpec) -> np.ndarray:
    def one(value: object) -> bool | None:
        if isinstance(value, bool | np.bool_):
            return bool(value)
        if isinstance(value, int | np.integer | float | np.floating) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            return _EVENT_TEXT.get(value.strip().lower())
        return None

    event = values.map(one)
    bad = event.isna()
    if bad.any():
        raise TableColumnError(
            format_problem(
                f"event column {spec.event!r} holds {sorted(map(str, set(values[bad])))[:5]} "
                f"in {int(bad.sum())} row(s)",
                "events are 1/0, true/false or yes/no (1 = the event happened, 0 = censored)",
                f"recode {spec.event!r} in the table",
            )
        )
    return event.to_numpy(dtype=bool)


def _times(values: pd.Series, spec: TableSpec) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = ~np.isfinite(numeric.to_numpy(dtype=float)) | (numeric.to_numpy(dtype=float) <= 0)
    if bad.any():
        raise TableColumnError(
            format_problem(
                f"time column {spec.time!r} holds {values[bad].head(5).tolist()} in {int(bad.sum())} row(s)",
                f"follow-up times are numbers > 0 (in {spec.time_unit})",
                "fix or drop these rows, or name the right time column in the experiment file",
            )
        )
    time = numeric.to_numpy(dtype=float)
    months = time * spec.months_per_unit
    if months.max() > MAX_PLAUSIBLE_MONTHS:
        guesses = [
            u
            for u, m in (("days", 12 / 365.25), ("weeks", 84 / 365.25), ("months", 1.0))
            if time.max() * m <= MAX_PLAUSIBLE_MONTHS and u != spec.time_unit
        ]
        raise TimeUnitError(
            format_problem(
                f"time column {spec.time!r} runs from {time.min():g} to {time.max():g} {spec.time_unit} "
                f"(up to {months.max() / 12:.0f} years of follow-up)",
                f"follow-up must be at most {MAX_PLAUSIBLE_MONTHS / 12:.0f} years in the declared time_unit",
                f"set table.time_unit to the unit the times are in (e.g. {guesses[0] if guesses else 'days'})",
            )
        )
    return months


def _numeric_columns(
    table: pd.DataFrame, columns: Sequence[str], block: str, spec: TableSpec
) -> pd.DataFrame:
    out = {}
    for column in columns:
        values = table[column]
        if pd.api.types.is_bool_dtype(values):
            out[column] = values.astype(float)
            continue
        numeric = pd.to_numeric(values, errors="coerce")
        bad = numeric.isna() & values.notna()
        if bad.any():
            raise TableColumnError(
                format_problem(
                    f"column {column!r} of block {block!r} holds text {sorted(map(str, set(values[bad])))[:5]}",
                    "feature-block columns are numbers; text columns are covariates (encoded in each fold)",
                    f"list {column!r} under table.covariates, convert it to numbers, or drop it from the block",
                )
            )
        out[column] = numeric.astype(float)
    return pd.DataFrame(out, index=table.index)


def _categorical(table: pd.DataFrame, column: str, spec: TableSpec) -> pd.Series:
    text = _as_text(table[column])
    levels = text.dropna().unique()
    if len(levels) > spec.max_levels:
        raise TableColumnError(
            format_problem(
                f"covariate {column!r} has {len(levels)} distinct values (e.g. {sorted(map(str, levels))[:3]})",
                f"a categorical covariate has at most table.max_levels = {spec.max_levels} levels "
                "(free text, dates and IDs are not covariates)",
                f"convert {column!r} to a number (a date to days since a reference date), group its levels, "
                "or drop it from covariates",
            )
        )
    if len(levels) < 2:
        logger.warning("covariate %r has a single level; the encoder gives it no column", column)
    return text


def table_datasets(table: pd.DataFrame, spec: TableSpec, consent: str = "not checked") -> TableData:
    """The model, comparator and descriptive data sets of one table (see the module docstring).

    Raises
    ------
    TableColumnError, TimeUnitError
        See the module docstring; also duplicate or missing IDs and direct identifier columns.
    """
    _require_columns(table, [spec.id, spec.time, spec.event], "id/time/event", spec)
    _require_columns(table, spec.covariates, "covariate", spec)
    blocks = _block_columns(table, spec)
    used = [c for columns in blocks.values() for c in columns]
    leaked = sorted(DIRECT_IDENTIFIER_COLUMNS & {str(c).lower() for c in used})
    if leaked:
        raise TableColumnError(
            format_problem(
                f"columns {leaked} are direct identifiers",
                "models see pseudonymous IDs only",
                "drop them from covariates and blocks",
            )
        )
    ids = table[spec.id]
    if ids.isna().any() or ids.duplicated().any():
        raise TableColumnError(
            format_problem(
                f"id column {spec.id!r}: {int(ids.isna().sum())} missing, "
                f"repeated {ids[ids.duplicated()].astype(str).unique().tolist()[:5]}",
                "one row per patient, each with an ID",
                "deduplicate the table or name another id column",
            )
        )
    index = pd.Index(ids.astype(str).to_numpy(), name="study_id")
    frame = table.set_axis(index)
    months = _times(frame[spec.time], spec)
    event = _event(frame[spec.event], spec)
    categorical = categorical_columns(frame, spec)
    columns: dict[str, pd.Series] = {}
    for block, names in blocks.items():
        numeric = [c for c in names if c not in categorical]
        columns.update(_numeric_columns(frame, numeric, block, spec).items())
        for column in [c for c in names if c in categorical]:
            columns[column] = _categorical(frame, column, spec)
    X_all = pd.DataFrame({c: columns[c] for c in used}, index=index)
    characteristics = X_all[list(spec.covariates)].copy() if spec.covariates else None
    endpoint = spec.endpoint or spec.event
    descriptive = SurvivalDataset(
        X=X_all,
        y=make_outcome(event, months),
        feature_set="+".join(blocks),
        feature_names=tuple(X_all.columns),
        endpoint=endpoint,
        blocks={b: tuple(c) for b, c in blocks.items()},
        characteristics=characteristics,
        consent=consent,
    )
    model = _select(descriptive, spec.used_blocks)
    comparator = None
    if spec.comparator is not None:
        comparator = dataclasses.replace(
            _select(descriptive, [COVARIATES_BLOCK]),
            X=X_all[list(spec.comparator)],
            feature_names=tuple(spec.comparator),
            feature_set="comparator",
            blocks={"comparator": tuple(spec.comparator)},
        )
    time = pd.to_numeric(frame[spec.time]).to_numpy(dtype=float)
    follow_up = {
        "min": float(time.min()),
        "max": float(time.max()),
        "min_months": float(months.min()),
        "max_months": float(months.max()),
    }
    logger.info(
        "table %s: %d rows, %d events, %d model columns (%d categorical), times %g-%g %s",
        spec.path,
        len(index),
        int(event.sum()),
        model.X.shape[1],
        sum(c in categorical for c in model.feature_names),
        follow_up["min"],
        follow_up["max"],
        spec.time_unit,
    )
    return TableData(model, comparator, descriptive, tuple(categorical), spec.time_unit, follow_up)


def _select(dataset: SurvivalDataset, blocks: Sequence[str]) -> SurvivalDataset:
    columns = [c for b in blocks for c in dataset.blocks[b]]
    return dataclasses.replace(
        dataset,
        X=dataset.X[columns],
        feature_names=tuple(columns),
        feature_set="+".join(blocks),
        blocks={b: tuple(dataset.blocks[b]) for b in blocks},
    )


def _encoder(categorical: Sequence[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    levels = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent", missing_values=None)),
            ("onehot", OneHotEncoder(drop="first", handle_unknown="ignore", sparse_output=False)),
        ]
    )
    return ColumnTransformer(
        [("categorical", levels, list(categorical))],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")


def with_encoder(model: Any, categorical: Sequence[str]) -> Any:
    """``model`` with a first step ``encode`` that one-hot encodes ``categorical`` in each fit.

    ``model`` is a :class:`~sklearn.pipeline.Pipeline` or a grid search around one (the step
    goes inside, so grid keys such as ``coxnet__alpha`` keep their meaning). Without
    categorical columns the model is returned unchanged.
    """
    from sklearn.pipeline import Pipeline

    if not categorical:
        return model
    if hasattr(model, "param_grid"):
        return model.set_params(estimator=with_encoder(model.estimator, categorical))
    if not isinstance(model, Pipeline):
        return Pipeline([("encode", _encoder(categorical)), ("model", model)])
    return Pipeline([("encode", _encoder(categorical)), *model.steps])


def check_horizons(
    y: np.ndarray, horizons: dict[str, float], time_unit: str = "months", months_per_unit: float = 1.0
) -> None:
    """Refuse a horizon outside the data's follow-up (it would make a metric NaN in every fold).

    A horizon :math:`h` (months) is usable when the follow-up reaches beyond it (:math:`h <
    \\max t`) and an event happened by then (:math:`\\exists i: \\delta_i = 1, t_i \\le h`).

    Parameters
    ----------
    y : structured array (``event``, ``time`` in months)
    horizons : mapping name -> months
        e.g. ``{"validation.tau_months": 24, "validation.auc_times": 12}``.
    time_unit, months_per_unit : str, float
        The table's unit, to show the range as the user wrote it.

    Raises
    ------
    FollowUpHorizonError
        Naming the setting, its value in months and in the table's unit, and the observed range.
    """
    time, event = np.asarray(y["time"], dtype=float), np.asarray(y["event"], dtype=bool)
    first_event = float(time[event].min()) if event.any() else float("inf")
    for name, months in horizons.items():
        if months < time.max() and first_event <= months:
            continue
        in_unit = months / months_per_unit
        observed = (
            f"follow-up {time.min() / months_per_unit:g} to {time.max() / months_per_unit:g} {time_unit}"
            f" ({time.min():.3g} to {time.max():.3g} months), first event at "
            f"{first_event / months_per_unit:g} {time_unit}"
        )
        raise FollowUpHorizonError(
            format_problem(
                f"{name} = {months:g} months ({in_unit:.4g} {time_unit}) is outside the data: {observed}",
                "a horizon lies after the first event and before the end of follow-up (horizons are in months)",
                f"set {name} inside that range, or check table.time_unit",
            )
        )
