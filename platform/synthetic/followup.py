"""Follow-up of synthetic SABR patients: monthly visits, adverse events, biobank samples, key table.

Everything here is drawn after the outcomes (progression, death, last contact) are known, so
visits stop at death or last contact, pain and quality of life react to SABR and progression,
and no record falls after the data cut-off. Adverse events use CTCAE v5.0 terms matched to the
treated site; grade >= 3 is rare (under 5 % of patients), as in published RCC SABR series.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from sabrkit.timescale import DAYS_PER_MONTH

__all__ = [
    "CTCAE_VERSION",
    "TIMEPOINT_MONTHS",
    "draw_visits",
    "draw_adverse_events",
    "draw_biobank_samples",
    "draw_identifiers",
]

logger = logging.getLogger(__name__)

CTCAE_VERSION = "5.0"
MAX_VISIT_MONTH = 24
TIMEPOINT_MONTHS = {"month_1": 1, "month_3": 3, "month_6": 6, "month_12": 12, "month_24": 24}

# (term, probability per treated lesion, onset window in days after the course's first fraction)
_SITE_AES: dict[str, tuple[tuple[str, float, tuple[int, int]], ...]] = {
    "lung": (
        ("Fatigue", 0.25, (0, 30)),
        ("Cough", 0.12, (7, 90)),
        ("Pneumonitis", 0.07, (45, 180)),
        ("Dyspnea", 0.06, (30, 180)),
    ),
    "bone": (
        ("Pain", 0.22, (0, 10)),
        ("Fatigue", 0.18, (0, 30)),
        ("Nausea", 0.05, (0, 14)),
        ("Dermatitis radiation", 0.04, (7, 40)),
    ),
    "brain": (("Headache", 0.20, (0, 30)), ("Fatigue", 0.18, (0, 30)), ("Nausea", 0.10, (0, 14))),
    "adrenal": (
        ("Fatigue", 0.22, (0, 30)),
        ("Nausea", 0.18, (0, 21)),
        ("Abdominal pain", 0.07, (7, 60)),
        ("Diarrhea", 0.05, (0, 30)),
    ),
    "liver": (("Fatigue", 0.22, (0, 30)), ("Nausea", 0.14, (0, 21)), ("Abdominal pain", 0.08, (7, 60))),
    "pancreas": (
        ("Nausea", 0.22, (0, 21)),
        ("Fatigue", 0.18, (0, 30)),
        ("Abdominal pain", 0.10, (7, 60)),
        ("Diarrhea", 0.08, (0, 30)),
        ("Vomiting", 0.06, (0, 21)),
    ),
    "lymph_node": (("Fatigue", 0.18, (0, 30)), ("Nausea", 0.08, (0, 21)), ("Diarrhea", 0.04, (0, 30))),
}
_LOCATION_AES: dict[str, tuple[tuple[str, float, tuple[int, int]], ...]] = {
    "chest_wall": (("Chest wall pain", 0.18, (14, 180)), ("Dermatitis radiation", 0.08, (7, 40))),
    "central": (("Esophagitis", 0.22, (7, 30)),),
    "vertebral": (("Fracture", 0.07, (30, 365)),),
}
_SYSTEMIC_AES: dict[str, tuple[tuple[str, float], ...]] = {
    "tki": (("Hypertension", 0.22), ("Diarrhea", 0.18), ("Palmar-plantar erythrodysesthesia syndrome", 0.12)),
    "ici": (("Hypothyroidism", 0.12), ("Rash maculo-papular", 0.10), ("Pruritus", 0.08)),
}
_GRADE3_P = {"Fracture": 0.20, "Pneumonitis": 0.05, "Hypertension": 0.03}
_GRADE3_DEFAULT = 0.004

# timepoint -> specimen types collected
_SPECIMENS = {
    "baseline": ("plasma", "serum", "whole_blood", "pbmc", "urine"),
    "end_of_sabr": ("plasma", "serum"),
    "month_1": ("plasma", "serum"),
    "month_3": ("plasma", "serum", "pbmc", "urine"),
    "month_6": ("plasma", "serum"),
    "month_12": ("plasma", "serum", "pbmc", "urine"),
    "month_24": ("plasma", "serum", "pbmc"),
    "progression": ("plasma", "serum", "pbmc", "urine"),
}
_VOLUMES_ML = {
    "plasma": (3.0, 3.5, 4.0, 4.5, 5.0),
    "serum": (2.0, 2.5, 3.0),
    "whole_blood": (2.0, 4.0),
    "pbmc": (1.0,),
    "urine": (10.0, 20.0, 30.0),
}

_FAMILY = (
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Huang",
    "Zhao",
    "Wu",
    "Zhou",
    "Xu",
    "Sun",
    "Ma",
    "Zhu",
    "Hu",
    "Guo",
    "He",
    "Lin",
    "Gao",
    "Luo",
)
_GIVEN_M = ("Wei", "Qiang", "Jun", "Lei", "Yong", "Jie", "Tao", "Ming", "Chao", "Hao", "Bin", "Gang")
_GIVEN_F = ("Fang", "Na", "Min", "Jing", "Li", "Yan", "Xiu", "Juan", "Ying", "Hua", "Mei", "Lan")


def _visit_month_day(index: dt.date, month: int) -> dt.date:
    return index + dt.timedelta(days=int(round(month * DAYS_PER_MONTH)))


def _alive_on(day: dt.date, row) -> bool:
    return day <= row.last_contact_date and (row.death_date is None or day < row.death_date)


def draw_visits(patients: pd.DataFrame, lesions: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Monthly visits (0 = first fraction, then months 1-24) with VRS pain and TESS.

    ``patients`` needs ``study_id, ecog, index_date, last_contact_date, death_date,
    progression_date`` (``None`` when absent). Pain starts at 2-3 for patients with a painful
    (mostly bone) lesion and falls within 1-3 months of SABR in 80 % of them; pain rises and
    TESS declines (about 0.8 points a month, up to 15) after progression.

    Returns
    -------
    pandas.DataFrame
        ``study_id, visit_number, visit_date, vrs_pain, tess_score``.
    """
    painful = lesions.groupby("study_id")["painful"].any()
    rows = []
    for row in patients.itertuples(index=False):
        has_pain = bool(painful.get(row.study_id, False))
        pain0 = int(rng.integers(2, 4)) if has_pain else int(rng.random() < 0.35)
        relief = (pain0 - 0.4) if has_pain and rng.random() < 0.8 else 0.3 * pain0
        tess0 = float(np.clip(rng.normal(49.0 - 5.0 * row.ecog - 3.0 * has_pain, 5.0), 15.0, 60.0))
        for month in range(MAX_VISIT_MONTH + 1):
            day = _visit_month_day(row.index_date, month)
            if month:
                day += dt.timedelta(days=int(rng.integers(-3, 4)))
            if not _alive_on(day, row):
                break
            pain = pain0 - relief * (1.0 - np.exp(-month / 1.5))
            tess = tess0 + 2.0 * has_pain * (1.0 - np.exp(-month / 2.0))
            if row.progression_date is not None and day >= row.progression_date:
                since = (day - row.progression_date).days / DAYS_PER_MONTH
                pain += 0.8 * (1.0 - np.exp(-since / 2.0))
                tess -= min(15.0, 0.8 * since + 2.0)
            vrs = int(np.clip(np.rint(pain + rng.normal(0.0, 0.35)), 0, 4))
            score = int(np.clip(np.rint(tess + rng.normal(0.0, 2.0)), 0, 60))
            rows.append((row.study_id, month, day, vrs, score))
    return pd.DataFrame(rows, columns=["study_id", "visit_number", "visit_date", "vrs_pain", "tess_score"])


def _grade(term: str, rng: np.random.Generator) -> int:
    if rng.random() < _GRADE3_P.get(term, _GRADE3_DEFAULT):
        return 3
    return 1 if rng.random() < 0.7 else 2


def draw_adverse_events(
    patients: pd.DataFrame, lesions: pd.DataFrame, courses: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """CTCAE v5.0 adverse events: site-specific SABR toxicity plus systemic-therapy toxicity.

    One record per patient and term (the worst grade); onset within the term's window after the
    course's first fraction, kept only if on or before the last contact (and before death).

    Returns
    -------
    pandas.DataFrame
        ``study_id, term, grade, ctcae_version, onset_date, attribution_sabr``.
    """
    last_contact = dict(zip(patients["study_id"], patients["last_contact_date"]))
    death_date = dict(zip(patients["study_id"], patients["death_date"]))
    course_start = dict(zip(courses["lesion_id"], courses["start_date"]))
    found: dict[tuple[str, str], tuple[int, dt.date, str]] = {}

    def record(sid: str, term: str, grade: int, onset: dt.date, attribution: str) -> None:
        death = death_date[sid]
        if onset > last_contact[sid] or (death is not None and onset >= death):
            return
        key = (sid, term)
        if key not in found or grade > found[key][0]:
            found[key] = (grade, onset, attribution)

    for lesion in lesions.itertuples(index=False):
        start = course_start[lesion.lesion_id]
        options = _SITE_AES[lesion.site] + _LOCATION_AES.get(lesion.location, ())
        for term, p, (lo, hi) in options:
            if rng.random() < p:
                onset = start + dt.timedelta(days=int(rng.integers(lo, hi + 1)))
                generic = term in ("Fatigue", "Nausea", "Headache", "Diarrhea", "Vomiting")
                attribution = rng.choice(
                    ["probable", "possible"] if generic else ["definite", "probable", "possible"]
                )
                record(lesion.study_id, term, _grade(term, rng), onset, str(attribution))
    for row in patients.itertuples(index=False):
        drugs = {"tki": ("tki",), "ici": ("ici",), "tki_ici": ("tki", "ici")}.get(row.systemic_therapy, ())
        for drug in drugs:
            for term, p in _SYSTEMIC_AES[drug]:
                if rng.random() < p:
                    onset = row.index_date + dt.timedelta(days=int(rng.integers(0, 181)))
                    record(
                        row.study_id,
                        term,
                        _grade(term, rng),
                        onset,
                        str(rng.choice(["unlikely", "unrelated"])),
                    )
    rows = [(sid, term, g, CTCAE_VERSION, onset, attr) for (sid, term), (g, onset, attr) in found.items()]
    out = pd.DataFrame(
        rows, columns=["study_id", "term", "grade", "ctcae_version", "onset_date", "attribution_sabr"]
    )
    return out.sort_values(["study_id", "onset_date", "term"], kind="stable").reset_index(drop=True)


def _collected_at(day: dt.date, rng: np.random.Generator) -> str:
    minutes = 7 * 60 + 30 + 5 * int(rng.integers(0, 54))  # 07:30 to 11:55
    return f"{day.isoformat()}T{minutes // 60:02d}:{minutes % 60:02d}"


def draw_biobank_samples(
    patients: pd.DataFrame, courses: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """Samples at protocol timepoints while the patient is alive and on study.

    Baseline between enrolment and the first fraction; end of SABR on the last fraction day;
    months 1, 3, 6, 12, 24 (+- 5 days) after the first fraction; at progression (0-7 days
    later). About 4 % of timepoints and 3 % of single specimens are missed.

    Returns
    -------
    pandas.DataFrame
        ``study_id, timepoint, specimen_type, collected_at, volume_ml``.
    """
    sabr_end = courses.groupby("study_id")["end_date"].max()
    rows = []
    for row in patients.itertuples(index=False):
        lead = (row.index_date - row.enrolment_date).days
        plan = [
            ("baseline", row.index_date - dt.timedelta(days=int(rng.integers(0, min(lead, 7) + 1)))),
            ("end_of_sabr", sabr_end[row.study_id]),
        ]
        for name, month in TIMEPOINT_MONTHS.items():
            plan.append(
                (name, _visit_month_day(row.index_date, month) + dt.timedelta(days=int(rng.integers(-5, 6))))
            )
        if row.progression_date is not None:
            plan.append(("progression", row.progression_date + dt.timedelta(days=int(rng.integers(0, 8)))))
        for timepoint, day in sorted(plan, key=lambda item: item[1]):
            if not _alive_on(day, row) or rng.random() < 0.04:
                continue
            for specimen in _SPECIMENS[timepoint]:
                if rng.random() < 0.03:
                    continue
                volume = float(rng.choice(_VOLUMES_ML[specimen]))
                rows.append((row.study_id, timepoint, specimen, _collected_at(day, rng), volume))
    return pd.DataFrame(rows, columns=["study_id", "timepoint", "specimen_type", "collected_at", "volume_ml"])


def _birth_date(enrolment: dt.date, age: int, rng: np.random.Generator) -> dt.date:
    """A birth date that makes the patient exactly ``age`` full years old at enrolment."""

    def years_before(day: dt.date, years: int) -> dt.date:
        try:
            return day.replace(year=day.year - years)
        except ValueError:  # 29 February
            return day.replace(year=day.year - years, day=28)

    latest = years_before(enrolment, age)
    earliest = years_before(enrolment, age + 1) + dt.timedelta(days=1)
    return earliest + dt.timedelta(days=int(rng.integers(0, (latest - earliest).days + 1)))


def draw_identifiers(patients: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Fake direct identifiers for the key table (never to leave it).

    Returns
    -------
    pandas.DataFrame
        ``study_id, hospital_number, family_name, given_name, date_of_birth``.
    """
    n = len(patients)
    numbers = rng.choice(90_000_000, size=n, replace=False) + 10_000_000
    rows = []
    for row, number in zip(patients.itertuples(index=False), numbers):
        given = _GIVEN_M if row.sex == "M" else _GIVEN_F
        name = str(rng.choice(given))
        if rng.random() < 0.5:
            name += str(rng.choice(given)).lower()
        rows.append(
            (
                row.study_id,
                f"H{int(number):08d}",
                str(rng.choice(_FAMILY)),
                name,
                _birth_date(row.enrolment_date, int(row.age_years), rng),
            )
        )
    return pd.DataFrame(
        rows, columns=["study_id", "hospital_number", "family_name", "given_name", "date_of_birth"]
    )
