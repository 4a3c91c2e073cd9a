"""Baseline clinical data of synthetic SABR patients: covariates, lesions and SABR courses.

Proportions follow published oligometastatic RCC SABR series (mostly clear-cell, IMDC
favourable/intermediate, prior nephrectomy, 1-2 lesions, lung and bone first). Doses follow the
SABR-COMET table (Palma et al., BMC Cancer 2012;12:305, table 1), reproduced in
:data:`DOSE_TABLE`. Every draw goes through the :class:`numpy.random.Generator` handed in.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

__all__ = [
    "DOSE_TABLE",
    "SITES",
    "draw_patients",
    "draw_lesions",
    "draw_enrolment",
    "fraction_dates",
    "next_weekday",
    "plan_sabr_courses",
    "study_id",
]

logger = logging.getLogger(__name__)

#: Columns, in order, of registry/sabr_courses.csv (one row per treated lesion).
SABR_COURSE_COLUMNS: tuple[str, ...] = (
    "lesion_id",
    "study_id",
    "total_dose_gy",
    "fractions",
    "start_date",
    "end_date",
    "technique",
)

SITES: tuple[str, ...] = ("lung", "bone", "lymph_node", "adrenal", "liver", "brain", "pancreas")
_SITE_P = (0.40, 0.20, 0.13, 0.09, 0.06, 0.06, 0.06)

# (median mm, sd of log, min mm, max mm) of the longest diameter per site.
_DIAMETER = {
    "lung": (16.0, 0.45, 8.0, 50.0),
    "bone": (27.0, 0.35, 10.0, 60.0),
    "lymph_node": (20.0, 0.35, 10.0, 50.0),
    "adrenal": (30.0, 0.40, 12.0, 60.0),
    "liver": (22.0, 0.40, 8.0, 60.0),
    "brain": (12.0, 0.40, 8.0, 30.0),
    "pancreas": (20.0, 0.35, 8.0, 45.0),
}

#: SABR-COMET dose/fractionation: (site, location) -> allowed (total dose Gy, fractions).
DOSE_TABLE: dict[tuple[str, str], tuple[tuple[float, int], ...]] = {
    ("lung", "peripheral"): ((54.0, 3), (55.0, 5)),  # 54/3 if <= 30 mm, else 55/5
    ("lung", "chest_wall"): ((55.0, 5),),
    ("lung", "central"): ((60.0, 8),),
    ("bone", "non_vertebral"): ((35.0, 5),),
    ("bone", "vertebral"): ((30.0, 3), (20.0, 1)),
    ("brain", "parenchyma"): ((40.0, 5),),
    ("adrenal", "gland"): ((60.0, 8),),
    ("lymph_node", "other"): ((45.0, 3), (48.0, 4), (50.0, 5), (60.0, 8)),
    ("liver", "other"): ((45.0, 3), (48.0, 4), (50.0, 5), (60.0, 8)),
    ("pancreas", "other"): ((45.0, 3), (48.0, 4), (50.0, 5), (60.0, 8)),
}

_N_LESIONS_P = (0.45, 0.27, 0.14, 0.09, 0.05)  # 1..5 lesions
_IMDC = ("favourable", "intermediate", "poor")
_ECOG_P = {"favourable": (0.75, 0.23, 0.02), "intermediate": (0.55, 0.38, 0.07), "poor": (0.30, 0.52, 0.18)}
_NEPHRECTOMY_P = {"favourable": 0.95, "intermediate": 0.85, "poor": 0.60}
_THERAPIES = ("none", "tki", "ici", "tki_ici")
_THERAPY_P = {"oligometastatic": (0.45, 0.20, 0.10, 0.25), "oligoprogressive": (0.0, 0.35, 0.20, 0.45)}


def study_id(number: int) -> str:
    """Pseudonymous study ID of patient ``number`` (1-based): ``SABR-RCC-001``."""
    return f"SABR-RCC-{number:03d}"


def draw_patients(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw baseline covariates of ``n`` patients (no dates, no identifiers).

    Returns
    -------
    pandas.DataFrame
        ``study_id, age_years, sex, ecog, histology, imdc_risk, prior_nephrectomy,
        disease_state, systemic_therapy``, one row per patient.
    """
    age = np.clip(np.rint(rng.normal(63.0, 9.5, n)), 32, 88).astype(int)
    sex = np.where(rng.random(n) < 0.70, "M", "F")
    imdc = rng.choice(_IMDC, size=n, p=(0.32, 0.53, 0.15))
    u = rng.random(n)
    ecog = np.empty(n, dtype=int)
    nephrectomy = np.empty(n, dtype=bool)
    v = rng.random(n)
    for risk in _IMDC:
        sel = imdc == risk
        ecog[sel] = np.searchsorted(np.cumsum(_ECOG_P[risk])[:-1], u[sel], side="right")
        nephrectomy[sel] = v[sel] < _NEPHRECTOMY_P[risk]
    histology = np.where(rng.random(n) < 0.85, "clear_cell", "non_clear_cell")
    state = np.where(rng.random(n) < 0.40, "oligoprogressive", "oligometastatic")
    w = rng.random(n)
    therapy = np.empty(n, dtype=object)
    for name, probs in _THERAPY_P.items():
        sel = state == name
        therapy[sel] = np.asarray(_THERAPIES, dtype=object)[
            np.searchsorted(np.cumsum(probs)[:-1], w[sel], side="right")
        ]
    return pd.DataFrame(
        {
            "study_id": [study_id(i + 1) for i in range(n)],
            "age_years": age,
            "sex": sex,
            "ecog": ecog,
            "histology": histology,
            "imdc_risk": imdc,
            "prior_nephrectomy": nephrectomy,
            "disease_state": state,
            "systemic_therapy": therapy.astype(str),
        }
    )


def draw_lesions(
    patients: pd.DataFrame, rng: np.random.Generator, *, max_diameter_mm: float = 60.0
) -> pd.DataFrame:
    """Draw 1-5 treated lesions per patient with site, size, location and shape.

    Parameters
    ----------
    patients : pandas.DataFrame
        Needs ``study_id``.
    rng : numpy.random.Generator
    max_diameter_mm : float
        Upper limit of the longest diameter (a CT region must hold the lesion).

    Returns
    -------
    pandas.DataFrame
        ``lesion_id, study_id, lesion_number, site, longest_diameter_mm`` plus the generator's
        own columns ``location`` (dose-table key), ``axis_ratio_1``, ``axis_ratio_2`` (shorter
        axes / longest), ``painful`` (bool) and ``volume_mm3`` (ellipsoid volume).
    """
    n = len(patients)
    counts = rng.choice(np.arange(1, 6), size=n, p=_N_LESIONS_P)
    owner = np.repeat(patients["study_id"].to_numpy(), counts)
    number = np.concatenate([np.arange(1, c + 1) for c in counts]) if n else np.zeros(0, int)
    m = len(owner)
    site = rng.choice(SITES, size=m, p=_SITE_P)
    z = rng.standard_normal(m)
    diameter = np.empty(m)
    for name, (median, sd_log, lo, hi) in _DIAMETER.items():
        sel = site == name
        diameter[sel] = np.clip(median * np.exp(sd_log * z[sel]), lo, min(hi, max_diameter_mm))
    diameter = np.round(diameter, 1)
    ratios = np.sort(rng.uniform(0.65, 0.95, (m, 2)), axis=1)[:, ::-1]
    u = rng.random(m)
    location = np.full(m, "other", dtype=object)
    location[site == "lung"] = np.where(
        u[site == "lung"] < 0.55, "peripheral", np.where(u[site == "lung"] < 0.75, "chest_wall", "central")
    )
    location[site == "bone"] = np.where(u[site == "bone"] < 0.45, "vertebral", "non_vertebral")
    location[site == "brain"] = "parenchyma"
    location[site == "adrenal"] = "gland"
    pain_p = np.where(site == "bone", 0.6, np.where(location == "chest_wall", 0.25, 0.03))
    painful = rng.random(m) < pain_p
    volume = np.pi / 6.0 * diameter**3 * ratios[:, 0] * ratios[:, 1]
    return pd.DataFrame(
        {
            "lesion_id": [f"{s}-L{k}" for s, k in zip(owner, number)],
            "study_id": owner,
            "lesion_number": number.astype(int),
            "site": site,
            "longest_diameter_mm": diameter,
            "location": location.astype(str),
            "axis_ratio_1": np.round(ratios[:, 0], 4),
            "axis_ratio_2": np.round(ratios[:, 1], 4),
            "painful": painful,
            "volume_mm3": volume,
        }
    )


def _add_days(start: dt.date, days: np.ndarray) -> list[dt.date]:
    return [start + dt.timedelta(days=int(d)) for d in days]


def next_weekday(day: dt.date) -> dt.date:
    """``day`` itself if Monday-Friday, else the following Monday."""
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def fraction_dates(start: dt.date, fractions: int) -> list[dt.date]:
    """Dates of ``fractions`` fractions on consecutive weekdays from ``start`` (a weekday)."""
    days = [next_weekday(start)]
    while len(days) < fractions:
        days.append(next_weekday(days[-1] + dt.timedelta(days=1)))
    return days


def draw_enrolment(
    patients: pd.DataFrame, start: dt.date, end: dt.date, rng: np.random.Generator
) -> pd.DataFrame:
    """Add ``enrolment_date`` (uniform over [start, end]), ``mdt_date`` (3-21 days earlier) and
    ``index_date`` (first SABR fraction, a weekday 7-28 days after enrolment)."""
    n = len(patients)
    span = (end - start).days
    enrol = _add_days(start, rng.integers(0, span + 1, n))
    mdt_gap = rng.integers(3, 22, n)
    sabr_gap = rng.integers(7, 29, n)
    out = patients.copy()
    out["enrolment_date"] = enrol
    out["mdt_date"] = [e - dt.timedelta(days=int(g)) for e, g in zip(enrol, mdt_gap)]
    out["index_date"] = [next_weekday(e + dt.timedelta(days=int(g))) for e, g in zip(enrol, sabr_gap)]
    return out


def plan_sabr_courses(
    lesions: pd.DataFrame, patients: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """One SABR course per lesion from :data:`DOSE_TABLE`, on consecutive weekdays.

    The first lesion of a patient starts on the patient's ``index_date``; each further lesion is
    treated concurrently (same start, 40 %) or from the next weekday after the previous course.

    Returns
    -------
    pandas.DataFrame
        ``lesion_id, study_id, total_dose_gy, fractions, start_date, end_date, technique``.
    """
    index = dict(zip(patients["study_id"], patients["index_date"]))
    techniques = np.asarray(["vmat", "imrt", "cyberknife"], dtype=object)
    rows = []
    previous_start: dt.date | None = None
    previous_end: dt.date | None = None
    for lesion in lesions.itertuples(index=False):
        options = DOSE_TABLE[(lesion.site, lesion.location)]
        if lesion.site == "lung" and lesion.location == "peripheral":
            dose, fx = options[0] if lesion.longest_diameter_mm <= 30.0 else options[1]
        elif lesion.site == "bone" and lesion.location == "vertebral":
            dose, fx = options[0] if rng.random() < 0.6 else options[1]
        else:
            dose, fx = options[int(rng.integers(len(options)))]
        if lesion.lesion_number == 1 or previous_end is None or previous_start is None:
            start = index[lesion.study_id]
        elif rng.random() < 0.4:
            start = previous_start
        else:
            start = next_weekday(previous_end + dt.timedelta(days=1))
        days = fraction_dates(start, fx)
        previous_start, previous_end = days[0], days[-1]
        technique = techniques[int(rng.choice(3, p=(0.8, 0.1, 0.1)))]
        rows.append((lesion.lesion_id, lesion.study_id, dose, fx, days[0], days[-1], technique))
    return pd.DataFrame(
        rows,
        columns=list(SABR_COURSE_COLUMNS),
    )
