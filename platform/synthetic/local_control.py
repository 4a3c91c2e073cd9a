r"""Dose-dependent local failure of each treated lesion (lesion-level ground truth of the cohort).

A local failure is a progression of the treated lesion, so it is a progression event of its
patient; the model therefore *thins* the patient's progression process of
:mod:`sabrkit.synthetic.hazard` instead of adding a new one, and leaves every patient's PFS and
OS exactly as they were. When patient :math:`i` progresses (at the latent time
:math:`T_{P,i}`), each of its treated lesions :math:`j` is involved independently with
probability

.. math::

    \pi_{ij} = \operatorname{expit}\big(\alpha + \beta_{BED}\,\frac{\mathrm{BED}_{10,ij} - 100}{10}
        + \beta_{size} \log_2\frac{d_{ij}}{20\,\mathrm{mm}}
        + \beta_{het}\, h_{ij}\big),

with :math:`\mathrm{BED}_{10} = D (1 + D / (n \cdot 10))` of the lesion's prescription (total
dose :math:`D` in :math:`n` fractions, the registry's SABR course), :math:`d` its longest
diameter and :math:`h` its heterogeneity latent (the texture of its CT). The cause-specific
hazard of local failure of lesion :math:`j` is then

.. math::

    h_{L,ij}(t) = \pi_{ij}\, h_P(t \mid x_i),

proportional in the lesion's covariates (hazard ratio :math:`\pi_{ij}/\pi_{ik}` between two
lesions of one patient), with death before progression a competing event (it removes the
patient from the risk set of every one of its lesions). The progression is ``local`` or
``both`` (local and distant) when at least one treated lesion is involved (``both`` with
probability :data:`BOTH_GIVEN_LOCAL`) and ``distant`` otherwise.

Coefficients (:data:`LOCAL_FAILURE_COEFFICIENTS`): :math:`\beta_{BED} = -0.25` per 10 Gy BED10
(odds ratio 0.78; local control rises with BED10 in SABR series, e.g. the BED10 >= 100 Gy
threshold of Onishi et al., Cancer 2004;101:1623 and the dose-response of Ohri et al., IJROBP
2013;85:e9 for lung), :math:`\beta_{size} = 0.4` per doubling of the diameter (larger lesions
fail more often), :math:`\beta_{het} = 0.3` per SD of the texture latent. The intercept
:math:`\alpha` is calibrated (``brentq``) so that in a fixed sample of the generator
(:data:`sabrkit.synthetic.hazard.CALIBRATION_SEED`, :data:`CALIBRATION_PATIENTS` patients) the mean probability
that a progression involves at least one treated lesion is :data:`TARGET_LOCAL_SHARE` (0.25, the
share of ``local`` + ``both`` progressions the generator drew before this model). Dose coverage
is not a term: the analytic dose model of :mod:`sabrkit.synthetic.rtplan` covers every PTV with
the prescription isodose, so the lesions' D98/prescription hardly varies (it is reported, not
planted).

Local status is *observed* at the patient's first progression only: when it is observed
(before censoring), every treated lesion gets a ``lesion_assessments`` row on that date,
``local_failure`` or ``controlled``; lesions of patients who did not progress have no
assessment (the registry then censors them at the last contact, or counts death as the
competing event; :mod:`sabrkit.registry.exports`).
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

__all__ = [
    "BOTH_GIVEN_LOCAL",
    "LOCAL_FAILURE_COEFFICIENTS",
    "LOCAL_FAILURE_FORMULA",
    "TARGET_LOCAL_SHARE",
    "calibrate_intercept",
    "draw_local_failures",
    "lesion_assessments",
    "local_failure_design",
    "local_failure_probability",
]

logger = logging.getLogger(__name__)

#: log odds ratios of a treated lesion's involvement in its patient's progression.
LOCAL_FAILURE_COEFFICIENTS: dict[str, float] = {
    "bed10_per_10gy_above_100": -0.25,
    "log2_diameter_per_20mm": 0.4,
    "heterogeneity": 0.3,
}
#: share of progressions with a local component the intercept is calibrated to.
TARGET_LOCAL_SHARE = 0.25
#: probability that a progression with a local failure also has a distant component.
BOTH_GIVEN_LOCAL = 0.6
CALIBRATION_PATIENTS = 5_000
LOCAL_FAILURE_FORMULA = (
    "pi_ij = expit(alpha + b_bed*(BED10_ij - 100)/10 + b_size*log2(d_ij/20 mm) + b_het*h_ij) = P(lesion j "
    "involved | patient i progresses); cause-specific hazard of local failure h_L,ij(t) = pi_ij * h_P(t|x_i); "
    "BED10 = D*(1 + D/(n*10)) of the lesion's prescription; death before progression competes"
)


def local_failure_design(lesions: pd.DataFrame, courses: pd.DataFrame) -> pd.DataFrame:
    """Covariates of :data:`LOCAL_FAILURE_COEFFICIENTS` per lesion (rows of ``lesions``).

    ``lesions`` needs ``lesion_id``, ``longest_diameter_mm`` and ``heterogeneity``; ``courses``
    ``lesion_id``, ``total_dose_gy`` and ``fractions`` (one course per lesion).
    """
    course = courses.set_index("lesion_id").loc[lesions["lesion_id"]]
    dose = course["total_dose_gy"].to_numpy(dtype=float)
    fractions = course["fractions"].to_numpy(dtype=float)
    bed10 = dose * (1.0 + dose / (fractions * 10.0))
    return pd.DataFrame(
        {
            "bed10_gy": bed10,
            "bed10_per_10gy_above_100": (bed10 - 100.0) / 10.0,
            "log2_diameter_per_20mm": np.log2(lesions["longest_diameter_mm"].to_numpy(dtype=float) / 20.0),
            "heterogeneity": lesions["heterogeneity"].to_numpy(dtype=float),
        },
        index=lesions.index,
    )


def _linear(design: pd.DataFrame, coefficients: dict[str, float]) -> np.ndarray:
    return design[list(coefficients)].to_numpy(dtype=float) @ np.array(list(coefficients.values()))


def _any_local_share(design: pd.DataFrame, study_ids: np.ndarray, intercept: float) -> float:
    p = expit(intercept + _linear(design, LOCAL_FAILURE_COEFFICIENTS))
    none = pd.Series(np.log1p(-p)).groupby(study_ids).sum()
    return float((1.0 - np.exp(none)).mean())


@functools.lru_cache(maxsize=1)
def calibrate_intercept() -> float:
    """The intercept :math:`\\alpha` (module docstring): deterministic, independent of the cohort seed."""
    import datetime as dt

    from sabrkit.synthetic import clinical, hazard

    rng = np.random.default_rng(hazard.CALIBRATION_SEED + 2)
    patients = clinical.draw_patients(CALIBRATION_PATIENTS, rng)
    lesions = clinical.draw_lesions(patients, rng)
    patients = clinical.draw_enrolment(patients, dt.date(2024, 5, 1), dt.date(2026, 5, 31), rng)
    courses = clinical.plan_sabr_courses(lesions, patients, rng)
    owner = pd.Series(rng.standard_normal(len(patients)), index=patients["study_id"])
    lesions["heterogeneity"] = owner.loc[lesions["study_id"]].to_numpy() + hazard.LESION_JITTER_SD * (
        rng.standard_normal(len(lesions))
    )
    design = local_failure_design(lesions, courses)
    study_ids = lesions["study_id"].to_numpy()
    intercept = float(
        brentq(lambda a: _any_local_share(design, study_ids, a) - TARGET_LOCAL_SHARE, -15.0, 5.0, xtol=1e-8)
    )
    logger.debug("local-failure intercept %.4f", intercept)
    return intercept


def local_failure_probability(design: pd.DataFrame) -> np.ndarray:
    """:math:`\\pi_{ij}` per lesion (row of :func:`local_failure_design`)."""
    return np.asarray(expit(calibrate_intercept() + _linear(design, LOCAL_FAILURE_COEFFICIENTS)))


def draw_local_failures(
    lesions: pd.DataFrame, courses: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.Series]:
    """Latent involvement of every lesion in its patient's (latent) progression.

    Returns
    -------
    (pandas.DataFrame, pandas.Series)
        Per lesion (index of ``lesions``): the design, ``p_local_failure`` and the latent
        ``local_failure_at_progression``; per patient (index ``study_id``): whether the
        progression also has a distant component when it has a local one (``both``).
    """
    design = local_failure_design(lesions, courses)
    design["p_local_failure"] = local_failure_probability(design)
    design["local_failure_at_progression"] = rng.random(len(lesions)) < design["p_local_failure"].to_numpy()
    patients = pd.unique(lesions["study_id"])
    both = pd.Series(rng.random(len(patients)) < BOTH_GIVEN_LOCAL, index=patients)
    return design, both


def lesion_assessments(
    lesions: pd.DataFrame, local_failure: pd.Series, patients: pd.DataFrame
) -> pd.DataFrame:
    """``lesion_assessments.csv`` rows: every treated lesion's status at its patient's observed progression.

    ``local_failure`` is indexed like ``lesions``; ``patients`` has ``study_id`` and the
    observed ``progression_date`` (None when not observed).
    """
    progression = patients.set_index("study_id")["progression_date"]
    dates = lesions["study_id"].map(progression)
    seen = dates.notna()
    return pd.DataFrame(
        {
            "lesion_id": lesions.loc[seen, "lesion_id"].to_numpy(),
            "assessment_date": dates[seen].to_numpy(),
            "local_status": np.where(local_failure[seen].to_numpy(dtype=bool), "local_failure", "controlled"),
            "longest_diameter_mm": None,
        }
    )
