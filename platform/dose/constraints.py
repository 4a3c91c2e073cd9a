"""OAR dose-constraint tables (versioned YAML) and the check of a plan's OAR doses against them.

The packaged table is ``constraints_tg101_2010.yaml`` (AAPM TG-101 Table III, serial tissues;
the file cites its source edition). Another table in the same format can be loaded with
:func:`load_constraint_table`. A check row is ``pass``, ``fail`` (value >= limit) or
``not_tabulated`` (the table has no limit for the plan's number of fractions): an untabulated
fractionation is never reported as passing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from sabrkit.dose.dvh import StructureDose, evaluate_metric
from sabrkit.errors import ConfigError, format_problem

__all__ = [
    "CHECK_COLUMNS",
    "DEFAULT_CONSTRAINT_TABLE",
    "ConstraintTable",
    "check_constraints",
    "load_constraint_table",
]

logger = logging.getLogger(__name__)

DEFAULT_CONSTRAINT_TABLE = "constraints_tg101_2010.yaml"
#: Columns of :func:`check_constraints`' result.
CHECK_COLUMNS: tuple[str, ...] = (
    "oar",
    "metric",
    "fractions",
    "value_gy",
    "limit_gy",
    "status",
    "table_version",
)


@dataclass(frozen=True)
class ConstraintTable:
    """A loaded constraint table: ``organs[name] = [(metric, {fractions: limit_gy})]``."""

    name: str
    version: str
    source: str
    point_volume_cc: float
    organs: Mapping[str, tuple[tuple[str, Mapping[int, float]], ...]]

    def limit(self, organ: str, metric: str, fractions: int) -> float | None:
        """The limit (Gy) of one organ's metric for ``fractions``, or None when not tabulated."""
        for name, limits in self.organs.get(organ, ()):
            if name == metric:
                return limits.get(int(fractions))
        return None


def _bad(path: object, what: str) -> ConfigError:
    return ConfigError(
        format_problem(
            f"constraint table {path}: {what}",
            "see sabrkit/dose/constraints_tg101_2010.yaml for the format",
            "fix the file",
        )
    )


def load_constraint_table(path: str | os.PathLike[str] | None = None) -> ConstraintTable:
    """Load a constraint table (the packaged TG-101 table when ``path`` is None).

    Raises
    ------
    ConfigError
        Missing keys, an unknown key, a non-numeric limit or fraction count.
    """
    import yaml

    if path is None:
        text = resources.files("sabrkit.dose").joinpath(DEFAULT_CONSTRAINT_TABLE).read_text(encoding="utf-8")
        where: object = DEFAULT_CONSTRAINT_TABLE
    else:
        where = path
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                format_problem(
                    f"constraint table {str(path)!r} cannot be read ({exc})",
                    "the table is a YAML file",
                    "pass an existing file",
                )
            ) from exc
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or set(data) != {"name", "version", "source", "point_volume_cc", "organs"}:
        raise _bad(where, "top-level keys must be exactly name, version, source, point_volume_cc, organs")
    organs: dict[str, tuple[tuple[str, Mapping[int, float]], ...]] = {}
    for organ, spec in data["organs"].items():
        if not isinstance(spec, dict) or not isinstance(spec.get("constraints"), list):
            raise _bad(where, f"organ {organ!r} needs a constraints list")
        rows = []
        for item in spec["constraints"]:
            if not isinstance(item, dict) or set(item) != {"metric", "limits"}:
                raise _bad(where, f"organ {organ!r}: each constraint has exactly metric and limits")
            try:
                limits = {int(k): float(v) for k, v in item["limits"].items()}
            except (TypeError, ValueError, AttributeError) as exc:
                raise _bad(
                    where, f"organ {organ!r} metric {item['metric']!r}: limits must map fractions to Gy"
                ) from exc
            rows.append((str(item["metric"]), limits))
        organs[str(organ)] = tuple(rows)
    return ConstraintTable(
        str(data["name"]), str(data["version"]), str(data["source"]), float(data["point_volume_cc"]), organs
    )


def check_constraints(
    oars: Mapping[str, StructureDose], fractions: int, table: ConstraintTable | None = None
) -> pd.DataFrame:
    """Check each OAR's DVH against the table for a plan of ``fractions`` fractions.

    Parameters
    ----------
    oars : mapping
        OAR name (TG-263) -> its doses. OARs the table does not know are skipped (logged).
    fractions : int
        Planned number of fractions.
    table : ConstraintTable, optional
        Default: the packaged TG-101 table.

    Returns
    -------
    pandas.DataFrame
        :data:`CHECK_COLUMNS`, one row per (OAR, metric).
    """
    table = table or load_constraint_table()
    rows = []
    for organ, structure in oars.items():
        if organ not in table.organs:
            logger.info("OAR %r is not in constraint table %s; not checked", organ, table.version)
            continue
        for metric, limits in table.organs[organ]:
            name = f"D{table.point_volume_cc:g}cc" if metric == "Dmax" else metric
            value = evaluate_metric(structure, name)
            limit = limits.get(int(fractions))
            status = "not_tabulated" if limit is None else ("fail" if value >= limit else "pass")
            rows.append((organ, metric, int(fractions), round(value, 4), limit, status, table.version))
    return pd.DataFrame(rows, columns=list(CHECK_COLUMNS))
