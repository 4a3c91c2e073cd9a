"""The ``table:`` section of an experiment: one survival table of the researcher's own.

An experiment names a single CSV or Parquet table (one row per patient) and says which of its
columns are the ID, the follow-up time, the event indicator, the covariates and the feature
blocks::

    table:
      path: data/gbsg2.csv          # relative to the project root
      id: pid
      time: time
      event: cens                   # 1/0, true/false
      time_unit: days               # days | weeks | months | years: converted to months once
      covariates: [age, tsize, pnodes, tgrade, horTh, menostat, estrec, progrec]
      categorical: []               # numeric codes to treat as categories (text columns always are)
      blocks:                       # optional feature blocks: a column list or a regex pattern
        receptors: {columns: [estrec, progrec]}
      comparator: [tsize, tgrade, pnodes]   # comparator model's covariates; `covariates`: all; null: none
      model_blocks: [covariates]    # blocks the model uses (default: every block)

Text (and ``categorical``) covariates are one-hot encoded *inside* every training fold
(:func:`sabrkit.models.one_table.with_encoder`). The registry's tables are one producer of
such a table (:func:`sabrkit.models.one_table.registry_table`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = ["COVARIATES_BLOCK", "MONTHS_PER", "TIME_UNITS", "BlockSpec", "TableSpec"]

TIME_UNITS: tuple[str, ...] = ("days", "weeks", "months", "years")
#: months in one unit (a year is 365.25 days, a month 365.25 / 12 days)
MONTHS_PER: dict[str, float] = {"days": 12 / 365.25, "weeks": 7 * 12 / 365.25, "months": 1.0, "years": 12.0}
#: name of the block holding the table's covariates
COVARIATES_BLOCK = "covariates"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BlockSpec(_Strict):
    """A feature block: an explicit column list, or every column whose name matches ``pattern``."""

    columns: list[str] | None = None
    pattern: str | None = Field(None, description="regular expression searched in each column name")

    @model_validator(mode="after")
    def _one_way(self) -> BlockSpec:
        if (self.columns is None) == (self.pattern is None):
            raise ValueError("a block has either columns: [...] or pattern: '<regex>', not both or neither")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a regular expression ({exc})") from None
        if self.columns is not None and not self.columns:
            raise ValueError("a block's columns list is empty")
        return self


class TableSpec(_Strict):
    """One survival table and the roles of its columns (see the module docstring)."""

    path: str
    id: str
    time: str
    event: str
    time_unit: Literal["days", "weeks", "months", "years"]
    endpoint: str | None = Field(None, description="label of the outcome (default: the event column's name)")
    covariates: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    blocks: dict[str, BlockSpec] = Field(default_factory=dict)
    comparator: list[str] | None = Field(
        None, description="covariates of the comparator model; null: no comparator"
    )
    model_blocks: list[str] | None = Field(None, description="blocks the model uses; default: every block")
    max_levels: int = Field(20, ge=2, description="most levels a categorical covariate may have")

    @field_validator("comparator", mode="before")
    @classmethod
    def _all_covariates(cls, value: object, info: ValidationInfo) -> object:
        """``comparator: covariates`` means every covariate."""
        if value == COVARIATES_BLOCK:
            return list(info.data.get("covariates") or [])
        return value

    @model_validator(mode="after")
    def _roles(self) -> TableSpec:
        outcome = {self.id, self.time, self.event}
        if len(outcome) != 3:
            raise ValueError(
                f"id, time and event must be three different columns (got {self.id!r}, {self.time!r}, "
                f"{self.event!r})"
            )
        clash = sorted(outcome & set(self.covariates))
        if clash:
            raise ValueError(
                f"covariates {clash} are the id, time or event column; remove them from covariates"
            )
        repeated = sorted({c for c in self.covariates if self.covariates.count(c) > 1})
        if repeated:
            raise ValueError(f"covariates {repeated} are listed twice")
        stray = sorted(set(self.categorical) - set(self.covariates))
        if stray:
            raise ValueError(f"categorical {stray} are not covariates; list them under covariates too")
        if COVARIATES_BLOCK in self.blocks:
            raise ValueError(
                f"block name {COVARIATES_BLOCK!r} is reserved for the covariates; rename the block"
            )
        if self.comparator is not None:
            outside = sorted(set(self.comparator) - set(self.covariates))
            if outside:
                raise ValueError(
                    f"comparator {outside} are not covariates; the comparator uses a subset of covariates"
                )
            if not self.comparator:
                raise ValueError(
                    "comparator is an empty list; write comparator: null for no comparator model"
                )
        if self.model_blocks is not None:
            unknown = sorted(set(self.model_blocks) - set(self.block_names))
            if unknown or not self.model_blocks:
                raise ValueError(
                    f"model_blocks {unknown or '[]'} are not blocks; blocks are {self.block_names}"
                )
        if not self.block_names:
            raise ValueError("the table has no covariates and no blocks: name the model's columns")
        return self

    @property
    def block_names(self) -> list[str]:
        """``covariates`` (when there are covariates) then the named blocks, in file order."""
        return ([COVARIATES_BLOCK] if self.covariates else []) + list(self.blocks)

    @property
    def used_blocks(self) -> list[str]:
        """The blocks of the model (``model_blocks``, default every block)."""
        return list(self.model_blocks) if self.model_blocks is not None else self.block_names

    @property
    def feature_set(self) -> str:
        """The model's blocks joined by ``+`` (a label, e.g. ``covariates+receptors``)."""
        return "+".join(self.used_blocks)

    @property
    def months_per_unit(self) -> float:
        return MONTHS_PER[self.time_unit]
