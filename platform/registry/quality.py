"""Data quality and follow-up completeness, for the study report's query list.

Queries (one row each, ``study_id, record, issue, detail``):

* ``missing visit``: a scheduled monthly visit whose protocol window closed before the end of
  follow-up (death, off-study or the data cut-off) without a record;
* ``out-of-window visit``: recorded outside its protocol window (:mod:`sabrkit.registry.schedule`);
* ``visit without VRS`` / ``visit without TESS``: a recorded visit missing a score;
* ``AE without grade``: an adverse event not graded yet;
* ``no eligibility record``: an enrolled patient without the eligibility/MDT record;
* ``visit after off-study``: a visit dated after the patient went off study.

Follow-up completeness is reported two ways: the share of expected visits recorded, and
Clark's completeness index

.. math:: C = \\frac{\\sum_i \\text{observed follow-up}_i}{\\sum_i \\text{potential follow-up}_i}

where observed runs from the first fraction to the last contact (or death) and potential to
the data cut-off (or death, or off-study) (Clark et al., Lancet 2002;359:1309-1310).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sabrkit.registry.endpoints import DAYS_PER_MONTH
from sabrkit.registry.schedule import BASELINE_WINDOW_BEFORE_DAYS, LAST_SCHEDULED_VISIT, VISIT_WINDOW_DAYS

__all__ = ["QUERY_COLUMNS", "data_quality", "followup_completeness"]

QUERY_COLUMNS = ["study_id", "record", "issue", "detail"]


def _follow_up_end(adsl: pd.DataFrame) -> pd.Series:
    ends = pd.concat([adsl["DTHDT"], adsl["EOSDT"], adsl["CUTOFFDT"]], axis=1).min(axis=1)
    return pd.Series(ends.to_numpy(), index=adsl["USUBJID"])


def _expected_grid(adsl: pd.DataFrame) -> pd.DataFrame:
    """Every (patient, visit) whose window closed before the end of follow-up, with its due date."""
    numbers = np.arange(LAST_SCHEDULED_VISIT + 1)
    offsets = np.rint(numbers * DAYS_PER_MONTH).astype(int)
    closes = offsets + VISIT_WINDOW_DAYS
    treated = adsl[adsl["TRTSDT"].notna()]
    index = treated["TRTSDT"].to_numpy("datetime64[D]")
    end = _follow_up_end(treated).to_numpy("datetime64[D]")
    days_available = (end - index).astype(int)
    mask = closes[None, :] <= days_available[:, None]
    patient_idx, visit_idx = np.nonzero(mask)
    return pd.DataFrame(
        {
            "study_id": treated["USUBJID"].to_numpy()[patient_idx],
            "visit_number": numbers[visit_idx],
            "due": index[patient_idx] + offsets[visit_idx].astype("timedelta64[D]"),
        }
    )


def _query(study_id: Any, record: Any, issue: str, detail: Any) -> pd.DataFrame:
    """Data queries in the columns of :data:`QUERY_COLUMNS`."""
    return pd.DataFrame({"study_id": study_id, "record": record, "issue": issue, "detail": detail})


def _visit_queries(adsl: pd.DataFrame, recorded: pd.DataFrame) -> list[pd.DataFrame]:
    """Missing visits, visits outside their window, visits without VRS or TESS."""
    expected = _expected_grid(adsl)
    merged = expected.merge(recorded[["study_id", "visit_number"]], how="left", indicator=True)
    missing = merged[merged["_merge"] == "left_only"]
    queries = [
        _query(
            missing["study_id"],
            "visit " + missing["visit_number"].astype(str),
            "missing visit",
            "due " + pd.to_datetime(missing["due"]).dt.strftime("%Y-%m-%d"),
        )
    ]
    index_date = recorded["study_id"].map(adsl.set_index("USUBJID")["TRTSDT"])
    due = index_date + pd.to_timedelta(np.rint(recorded["visit_number"] * DAYS_PER_MONTH), unit="D")
    offset = (recorded["visit_date"] - due).dt.days
    low = np.where(recorded["visit_number"] == 0, -BASELINE_WINDOW_BEFORE_DAYS, -VISIT_WINDOW_DAYS)
    late = recorded[offset.notna() & ((offset < low) | (offset > VISIT_WINDOW_DAYS))]
    queries.append(
        _query(
            late["study_id"],
            "visit " + late["visit_number"].astype(str),
            "out-of-window visit",
            [
                f"{d:%Y-%m-%d} is {o:+.0f} days from due {u:%Y-%m-%d}"
                for d, o, u in zip(late["visit_date"], offset[late.index], due[late.index])
            ],
        )
    )
    for column, issue in (("vrs_pain", "visit without VRS"), ("tess_score", "visit without TESS")):
        gap = recorded[recorded[column].isna()]
        queries.append(
            _query(
                gap["study_id"],
                "visit " + gap["visit_number"].astype(str),
                issue,
                gap["visit_date"].dt.strftime("%Y-%m-%d"),
            )
        )
    return queries


def data_quality(
    adsl: pd.DataFrame, visits: pd.DataFrame, adverse_events: pd.DataFrame, eligibility: pd.DataFrame
) -> pd.DataFrame:
    """Every data query of the registry (see the module docstring), sorted by patient."""
    recorded = visits.loc[:, ["study_id", "visit_number", "visit_date", "vrs_pain", "tess_score"]]
    queries = _visit_queries(adsl, recorded)
    ungraded = adverse_events[adverse_events["grade"].isna()]
    queries.append(
        _query(
            ungraded["study_id"],
            "AE " + ungraded["term"].astype(str),
            "AE without grade",
            "onset " + ungraded["onset_date"].dt.strftime("%Y-%m-%d"),
        )
    )
    no_check = adsl.loc[~adsl["USUBJID"].isin(eligibility["study_id"]), "USUBJID"]
    queries.append(
        _query(no_check, "enrolment", "no eligibility record", "enter the eligibility check and MDT decision")
    )
    off = recorded["study_id"].map(adsl.set_index("USUBJID")["EOSDT"])
    after = recorded[off.notna() & (recorded["visit_date"] > off)]
    queries.append(
        _query(
            after["study_id"],
            "visit " + after["visit_number"].astype(str),
            "visit after off-study",
            after["visit_date"].dt.strftime("%Y-%m-%d"),
        )
    )
    table = (
        pd.concat([q for q in queries if len(q)], ignore_index=True)
        if any(len(q) for q in queries)
        else pd.DataFrame(columns=QUERY_COLUMNS)
    )
    return table.loc[:, QUERY_COLUMNS].sort_values(["study_id", "issue", "record"], ignore_index=True)


def followup_completeness(adsl: pd.DataFrame, visits: pd.DataFrame) -> dict[str, float]:
    """Share of expected visits recorded, and Clark's completeness index C."""
    expected = _expected_grid(adsl)
    recorded = visits.loc[:, ["study_id", "visit_number"]].drop_duplicates()
    n_expected = len(expected)
    n_done = len(expected.merge(recorded, on=["study_id", "visit_number"]))
    end = _follow_up_end(adsl).to_numpy("datetime64[D]")
    start = adsl["TRTSDT"].to_numpy("datetime64[D]")
    observed_end = pd.concat([adsl["DTHDT"], adsl["LSTCNTDT"]], axis=1).min(axis=1).to_numpy("datetime64[D]")
    observed_end = np.minimum(observed_end, end)
    potential = (end - start).astype(float).clip(min=0)
    observed = (observed_end - start).astype(float).clip(min=0)
    return {
        "expected_visits": float(n_expected),
        "recorded_expected_visits": float(n_done),
        "visit_completeness": n_done / n_expected if n_expected else float("nan"),
        "clark_completeness": float(np.nansum(observed) / np.nansum(potential))
        if np.nansum(potential)
        else float("nan"),
    }
