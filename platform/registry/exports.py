"""Analysis-ready tables (CDISC-like, pseudonymous) built from the registry tables.

:func:`build_analysis_tables` is pure: registry DataFrames in (:func:`sabrkit.registry.frames.registry_frames`),
five tables out. No table carries a direct identifier: patients appear only as ``USUBJID`` =
the pseudonymous study ID. Months are days / 30.4375.

``adsl``
    one row per patient (ADaM ADSL-like): baseline, subgroup variables, treatment dates,
    disposition, PFS/OS and follow-up.
``adtte``
    time-to-event rows (ADaM ADTTE-like), ``PARAMCD`` ``PFS`` and ``OS`` per patient and ``LC``
    (local control) per treated lesion; ``CNSR`` = 1 censored, 0 event; ``EVNTCD`` = 0
    censored, 1 event, 2 competing event (death before local failure, LC only).
``ae``
    one row per adverse event (SDTM AE-like) with the CTCAE grade (``AETOXGR``), its version,
    study day and phase (``ACUTE`` when the onset is at most 90 days after the last SABR
    fraction given before it, ``LATE`` after that, ``PRE-SABR`` before the first fraction).
``vrs``, ``tess``
    one row per visit with a score (ADaM ADQS-like): ``AVAL``, baseline ``BASE`` (visit 0),
    change ``CHG``, and whether the visit was in its window.

Event and censoring rules (also in ``docs/registry.md``):

* PFS: from the first SABR fraction to the first progression (local, distant or both) or death,
  whichever is first; otherwise censored at the last contact.
* OS: from the first SABR fraction to death from any cause; otherwise censored at the last contact.
* LC, per treated lesion: from the lesion's first fraction to its first assessment with
  ``local_failure`` (event 1). A patient without any lesion assessment whose first progression
  is ``local`` or ``both`` counts a local failure of every treated lesion at that date (the
  registry cannot say which lesion failed; this is the conservative reading). Death without a
  prior local failure is a competing event (2). Otherwise the lesion is censored at its last
  assessment, or at the patient's last contact when it has none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sabrkit.db.csv_export import neutralise_formulas
from sabrkit.io import atomic_write
from sabrkit.registry.ctcae import TERM_LIST_VERSION, ctcae_terms
from sabrkit.registry.dose import bed10
from sabrkit.registry.endpoints import DAYS_PER_MONTH, compute_endpoints
from sabrkit.registry.schedule import BASELINE_WINDOW_BEFORE_DAYS, VISIT_WINDOW_DAYS
from sabrkit.registry.vocabulary import THERAPY_LABELS

__all__ = ["AnalysisTables", "build_analysis_tables", "write_analysis_tables", "ACUTE_DAYS", "STUDY_NAME"]

logger = logging.getLogger(__name__)

#: An adverse event is acute when it starts at most this many days after the last fraction.
ACUTE_DAYS = 90
STUDY_NAME = "SABR-RCC"


@dataclass(frozen=True)
class AnalysisTables:
    """The exported tables (see the module docstring)."""

    adsl: pd.DataFrame
    adtte: pd.DataFrame
    ae: pd.DataFrame
    vrs: pd.DataFrame
    tess: pd.DataFrame

    def as_dict(self) -> dict[str, pd.DataFrame]:
        return {"adsl": self.adsl, "adtte": self.adtte, "ae": self.ae, "vrs": self.vrs, "tess": self.tess}


def _months(end: pd.Series, start: pd.Series) -> pd.Series:
    return (end - start).dt.days / DAYS_PER_MONTH


def _site_group(sites: pd.Series) -> str:
    values = set(sites)
    if "bone" in values:
        return "bone"
    return "lung" if values == {"lung"} else "other"


def _lesion_group(n: int) -> str:
    return "1" if n == 1 else "2-5" if n <= 5 else ">5"


def _adsl(frames: dict[str, pd.DataFrame], endpoints: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    patients = frames["patients"].set_index("study_id").sort_index()
    lesions, courses = frames["lesions"], frames["sabr_courses"]
    ids = patients.index
    course_bed10 = pd.Series(
        [bed10(float(d), int(n)) for d, n in zip(courses["total_dose_gy"], courses["fractions"])],
        index=courses.index,
        dtype=float,
    )
    progression = frames["progression_events"].set_index("study_id")
    deaths = frames["deaths"].set_index("study_id")
    off = frames["off_study"].set_index("study_id")
    n_lesions = lesions.groupby("study_id")["lesion_id"].nunique().reindex(ids).fillna(0).astype(int)
    end = endpoints.set_index("study_id")
    adsl = pd.DataFrame(
        {
            "STUDYID": STUDY_NAME,
            "USUBJID": ids,
            "AGE": patients["age_years"],
            "SEX": patients["sex"],
            "ECOG": patients["ecog"],
            "KPS": patients["kps"].astype("Int64"),
            "HISTOL": patients["histology"],
            "IMDC": patients["imdc_risk"],
            "PRNEPH": patients["prior_nephrectomy"].astype(bool),
            "PRSYSLN": patients["prior_systemic_lines"].astype("Int64"),
            "DISSTATE": patients["disease_state"],
            "NMETS": patients["n_metastases"].astype("Int64"),
            "NLESIONS": n_lesions,
            "LESGRP": n_lesions.map(_lesion_group),
            "SITEGRP": lesions.groupby("study_id")["site"].agg(_site_group).reindex(ids),
            "SYSTHER": patients["systemic_therapy"],
            "TRT01A": patients["systemic_therapy"].map(THERAPY_LABELS),
            "MAXBED10": course_bed10.groupby(courses["study_id"]).max().reindex(ids),
            "MDTDT": patients["mdt_date"],
            "ENRLDT": patients["enrolment_date"],
            "TRTSDT": courses.groupby("study_id")["start_date"].min().reindex(ids),
            "TRTEDT": courses.groupby("study_id")["end_date"].max().reindex(ids),
            "LSTCNTDT": patients["last_contact_date"],
            "PROGDT": progression["event_date"].reindex(ids),
            "PROGTYPE": progression["progression_type"].reindex(ids),
            "DTHDT": deaths["death_date"].reindex(ids),
            "DTHCAUS": deaths["cause"].reindex(ids),
            "EOSDT": off["off_study_date"].reindex(ids),
            "EOSSTT": off["reason"].reindex(ids).fillna("ongoing"),
        }
    ).reset_index(drop=True)
    adsl["DTHFL"] = adsl["DTHDT"].notna()
    adsl["PFSMO"] = end["pfs_months"].reindex(ids).to_numpy()
    adsl["PFSEVNT"] = end["pfs_event"].reindex(ids).to_numpy(dtype=bool)
    adsl["OSMO"] = end["os_months"].reindex(ids).to_numpy()
    adsl["OSEVNT"] = end["os_event"].reindex(ids).to_numpy(dtype=bool)
    adsl["FUPMO"] = adsl["OSMO"]
    adsl["ANYSYST"] = adsl["SYSTHER"] != "none"
    adsl["CUTOFFDT"] = cutoff
    return adsl


def _adtte(adsl: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    parts = []
    for code, name, months, event in (
        ("PFS", "Progression-free survival (months)", "PFSMO", "PFSEVNT"),
        ("OS", "Overall survival (months)", "OSMO", "OSEVNT"),
    ):
        part = pd.DataFrame(
            {
                "USUBJID": adsl["USUBJID"],
                "LESIONID": pd.NA,
                "PARAMCD": code,
                "PARAM": name,
                "STARTDT": adsl["TRTSDT"],
                "AVAL": adsl[months],
                "EVENT": adsl[event],
            }
        )
        part["ADT"] = part["STARTDT"] + pd.to_timedelta(np.rint(part["AVAL"] * DAYS_PER_MONTH), unit="D")
        part["EVNTCD"] = part["EVENT"].astype(int)
        part["EVNTDESC"] = np.where(
            part["EVENT"], "progression or death" if code == "PFS" else "death", "censored at last contact"
        )
        parts.append(part)
    parts.append(_local_control(adsl, frames))
    adtte = pd.concat(parts, ignore_index=True)
    adtte["CNSR"] = (~adtte["EVENT"].astype(bool)).astype(int)
    adtte.loc[adtte["EVNTCD"] == 2, "CNSR"] = 1
    columns = [
        "USUBJID",
        "LESIONID",
        "PARAMCD",
        "PARAM",
        "STARTDT",
        "ADT",
        "AVAL",
        "CNSR",
        "EVENT",
        "EVNTCD",
        "EVNTDESC",
    ]
    return adtte.loc[:, columns]


def _local_control(adsl: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    lesions = frames["lesions"].loc[:, ["lesion_id", "study_id"]]
    start = frames["sabr_courses"].groupby("lesion_id")["start_date"].min()
    lesions = lesions[lesions["lesion_id"].isin(start.index)].copy()
    lesions["STARTDT"] = lesions["lesion_id"].map(start)
    checks = frames["lesion_assessments"]
    failure = checks[checks["local_status"] == "local_failure"].groupby("lesion_id")["assessment_date"].min()
    last_check = checks.groupby("lesion_id")["assessment_date"].max()
    patient = adsl.set_index("USUBJID")
    assessed_patients = set(lesions.loc[lesions["lesion_id"].isin(last_check.index), "study_id"])
    local_prog = patient["PROGDT"].where(patient["PROGTYPE"].isin(["local", "both"]))
    fallback = lesions["study_id"].map(local_prog).where(~lesions["study_id"].isin(assessed_patients))
    fail_date = lesions["lesion_id"].map(failure).fillna(fallback)
    death = lesions["study_id"].map(patient["DTHDT"])
    censor = lesions["lesion_id"].map(last_check).fillna(lesions["study_id"].map(patient["LSTCNTDT"]))
    is_fail = fail_date.notna() & (death.isna() | (fail_date <= death))
    is_death = ~is_fail & death.notna()
    end = fail_date.where(is_fail, death.where(is_death, censor))
    code = np.select([is_fail, is_death], [1, 2], 0)
    return pd.DataFrame(
        {
            "USUBJID": lesions["study_id"].to_numpy(),
            "LESIONID": lesions["lesion_id"].to_numpy(),
            "PARAMCD": "LC",
            "PARAM": "Local control of the treated lesion (months)",
            "STARTDT": lesions["STARTDT"].to_numpy(),
            "ADT": end.to_numpy(),
            "AVAL": _months(end, lesions["STARTDT"]).to_numpy(),
            "EVENT": code == 1,
            "EVNTCD": code,
            "EVNTDESC": np.select(
                [is_fail, is_death],
                ["local failure", "death without local failure (competing)"],
                "censored at last assessment or contact",
            ),
        }
    )


def _ae(adsl: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    events = frames["adverse_events"].sort_values(["study_id", "onset_date", "term", "id"], kind="stable")
    terms = ctcae_terms()
    decoded = events["term"].map(lambda t: terms.get(str(t).strip().lower()))
    first = events["study_id"].map(adsl.set_index("USUBJID")["TRTSDT"])
    courses = frames["sabr_courses"].loc[:, ["study_id", "end_date"]].sort_values("end_date")
    last_fraction = pd.Series(pd.NaT, index=events.index, dtype="datetime64[ns]")
    if len(events) and len(courses):
        merged = pd.merge_asof(
            events.loc[:, ["study_id", "onset_date"]].reset_index().sort_values("onset_date"),
            courses.rename(columns={"end_date": "LASTFXDT"}),
            left_on="onset_date",
            right_on="LASTFXDT",
            by="study_id",
            direction="backward",
        )
        last_fraction = merged.set_index("index")["LASTFXDT"].reindex(events.index)
    days_after = (events["onset_date"] - last_fraction).dt.days
    study_day = (events["onset_date"] - first).dt.days
    phase = np.where(
        events["onset_date"] < first,
        "PRE-SABR",
        np.where(days_after.notna() & (days_after <= ACUTE_DAYS), "ACUTE", "LATE"),
    )
    ae = pd.DataFrame(
        {
            "STUDYID": STUDY_NAME,
            "DOMAIN": "AE",
            "USUBJID": events["study_id"],
            "AESEQ": events.groupby("study_id").cumcount() + 1,
            "AETERM": events["term"],
            "AEDECOD": [d.term if d is not None else t for d, t in zip(decoded, events["term"])],
            "AEBODSYS": [d.soc if d is not None else pd.NA for d in decoded],
            "AETOXGR": events["grade"].astype("Int64"),
            "AECTCV": events["ctcae_version"],
            "AESTDTC": events["onset_date"].dt.strftime("%Y-%m-%d"),
            "AEENDTC": events["resolution_date"].dt.strftime("%Y-%m-%d"),
            "AEREL": events["attribution_sabr"].str.upper(),
            "AESABRFL": events["attribution_sabr"].isin(["definite", "probable", "possible"]),
            "AELESID": events["lesion_id"],
            "AESTDY": np.where(study_day >= 0, study_day + 1, study_day),
            "DAYSLFX": days_after.astype("Int64"),
            "AEPHASE": phase,
        }
    )
    ae.loc[ae["AECTCV"] != TERM_LIST_VERSION, "AEBODSYS"] = pd.NA
    return ae.reset_index(drop=True)


def _scores(adsl: pd.DataFrame, visits: pd.DataFrame, column: str, code: str) -> pd.DataFrame:
    scored = visits.loc[visits[column].notna(), ["study_id", "visit_number", "visit_date", column]]
    index_date = scored["study_id"].map(adsl.set_index("USUBJID")["TRTSDT"])
    due = index_date + pd.to_timedelta(np.rint(scored["visit_number"] * DAYS_PER_MONTH), unit="D")
    offset = (scored["visit_date"] - due).dt.days
    low = np.where(scored["visit_number"] == 0, -BASELINE_WINDOW_BEFORE_DAYS, -VISIT_WINDOW_DAYS)
    table = pd.DataFrame(
        {
            "USUBJID": scored["study_id"],
            "PARAMCD": code,
            "VISITNUM": scored["visit_number"].astype(int),
            "ADT": scored["visit_date"],
            "ADY": (scored["visit_date"] - index_date).dt.days,
            "AVAL": scored[column].astype(float),
            "ABLFL": scored["visit_number"] == 0,
            "INWINDOW": (offset >= low) & (offset <= VISIT_WINDOW_DAYS),
        }
    ).sort_values(["USUBJID", "VISITNUM"], ignore_index=True)
    base = table[table["ABLFL"]].set_index("USUBJID")["AVAL"]
    table["BASE"] = table["USUBJID"].map(base)
    table["CHG"] = table["AVAL"] - table["BASE"]
    return table


def build_analysis_tables(
    frames: dict[str, pd.DataFrame], *, cutoff: pd.Timestamp | None = None
) -> AnalysisTables:
    """Build ADSL, ADTTE, AE, VRS and TESS tables from registry DataFrames.

    Parameters
    ----------
    frames : dict of DataFrame
        The registry tables (:func:`sabrkit.registry.frames.registry_frames`); only patients with
        at least one SABR course are analysed (the index date is the first fraction).
    cutoff : Timestamp, optional
        Data cut-off; default: the latest last-contact or death date.

    Raises
    ------
    ValidationError
        As :func:`sabrkit.registry.endpoints.compute_endpoints` (e.g. an event before the first fraction).
    """
    treated = set(frames["sabr_courses"]["study_id"])
    frames = dict(frames)
    frames["patients"] = frames["patients"][frames["patients"]["study_id"].isin(treated)]
    if cutoff is None:
        dates = pd.concat([frames["patients"]["last_contact_date"], frames["deaths"]["death_date"]])
        cutoff = dates.max() if len(dates) else pd.Timestamp.today().normalize()
    endpoints = compute_endpoints(
        frames["patients"], frames["sabr_courses"], frames["progression_events"], frames["deaths"]
    )
    adsl = _adsl(frames, endpoints, pd.Timestamp(cutoff))
    tables = AnalysisTables(
        adsl=adsl,
        adtte=_adtte(adsl, frames),
        ae=_ae(adsl, frames),
        vrs=_scores(adsl, frames["visits"], "vrs_pain", "VRS"),
        tess=_scores(adsl, frames["visits"], "tess_score", "TESS"),
    )
    logger.info(
        "analysis tables: %d patients, %d time-to-event rows, %d AEs",
        len(adsl),
        len(tables.adtte),
        len(tables.ae),
    )
    return tables


def write_analysis_tables(
    tables: AnalysisTables,
    out_dir: Path,
    *,
    formats: tuple[str, ...] = ("parquet", "csv"),
) -> list[Path]:
    """Write each table as ``<out_dir>/<name>.parquet`` and/or ``.csv`` (atomic renames); returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in tables.as_dict().items():
        for suffix in formats:
            path = out_dir / f"{name}.{suffix}"
            with atomic_write(path) as tmp:
                if suffix == "parquet":
                    table.to_parquet(tmp, index=False)
                else:
                    neutralise_formulas(table).to_csv(tmp, index=False, date_format="%Y-%m-%d")
            written.append(path)
    return written
