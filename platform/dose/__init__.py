"""Radiotherapy dose: DVH metrics, BED/EQD2 maps and OAR constraint checks (``sabrkit.dose``).

The dose grid enters through :mod:`sabrkit.imaging.rtdose` (RTDOSE/RTPLAN ingest); this room
works on arrays already on the mask's grid.
"""

from __future__ import annotations

from sabrkit.dose.bed import LATE_ALPHA_BETA_GY, TUMOUR_ALPHA_BETA_GY, alpha_beta_map, bed_map, eqd2_map
from sabrkit.dose.constraints import (
    CHECK_COLUMNS,
    ConstraintTable,
    check_constraints,
    load_constraint_table,
)
from sabrkit.dose.dvh import (
    DEFAULT_METRICS,
    StructureDose,
    conformity_indices,
    cumulative_dvh,
    dvh_metrics,
    evaluate_metric,
)

__all__ = [
    "CHECK_COLUMNS",
    "DEFAULT_METRICS",
    "LATE_ALPHA_BETA_GY",
    "TUMOUR_ALPHA_BETA_GY",
    "ConstraintTable",
    "StructureDose",
    "alpha_beta_map",
    "bed_map",
    "check_constraints",
    "conformity_indices",
    "cumulative_dvh",
    "dvh_metrics",
    "eqd2_map",
    "evaluate_metric",
    "load_constraint_table",
]
