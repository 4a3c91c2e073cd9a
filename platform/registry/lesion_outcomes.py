"""Local control per treated lesion as the model input table (``lesion_outcomes``).

The analysis export derives local control per lesion (``adtte`` rows ``PARAMCD == "LC"``;
rules in :mod:`sabrkit.registry.exports`); this module turns those rows into the lesion outcome
table of :data:`sabrkit.models.assembly.LESION_OUTCOME_COLUMNS` plus the competing event:

``lesion_id, study_id, local_control_months, local_failure, competing_death``

``local_failure`` is the event of the cause-specific model (death without a prior local failure
is *censored* there); ``competing_death`` marks those deaths, so that the cumulative incidence of
local failure can be estimated with death as a competing risk (Aalen-Johansen).
"""

from __future__ import annotations

import logging

import pandas as pd

from sabrkit.db.database import Database

__all__ = ["LESION_OUTCOME_TABLE_COLUMNS", "lesion_outcomes", "lesion_outcomes_from_db"]

logger = logging.getLogger(__name__)

LESION_OUTCOME_TABLE_COLUMNS: tuple[str, ...] = (
    "lesion_id",
    "study_id",
    "local_control_months",
    "local_failure",
    "competing_death",
)


def lesion_outcomes(adtte: pd.DataFrame) -> pd.DataFrame:
    """The lesion outcome table from the ``adtte`` export (its ``LC`` rows), sorted by ``lesion_id``."""
    lc = adtte[adtte["PARAMCD"] == "LC"]
    table = pd.DataFrame(
        {
            "lesion_id": lc["LESIONID"].astype(str).to_numpy(),
            "study_id": lc["USUBJID"].astype(str).to_numpy(),
            "local_control_months": lc["AVAL"].astype(float).to_numpy(),
            "local_failure": (lc["EVNTCD"] == 1).to_numpy(),
            "competing_death": (lc["EVNTCD"] == 2).to_numpy(),
        }
    )
    return table.sort_values("lesion_id", kind="stable").reset_index(drop=True)


def lesion_outcomes_from_db(db: Database) -> pd.DataFrame:
    """:func:`lesion_outcomes` of the registry database (every treated lesion)."""
    from sabrkit.registry.exports import build_analysis_tables
    from sabrkit.registry.frames import registry_frames

    table = lesion_outcomes(build_analysis_tables(registry_frames(db)).adtte)
    logger.info(
        "lesion outcomes: %d lesions, %d local failures, %d competing deaths",
        len(table),
        int(table["local_failure"].sum()),
        int(table["competing_death"].sum()),
    )
    return table
