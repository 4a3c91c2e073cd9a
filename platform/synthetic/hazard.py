r"""Proportional-hazards model of progression and death for the synthetic cohort.

The model is an illness-death (semi-Markov) model with Weibull cause-specific hazards, time
:math:`t` in months (days / 30.4375) from the first SABR fraction:

.. math::

    h_P(t \mid x) &= \lambda_P\, k_P\, t^{k_P - 1} \exp(\eta_P),
        \qquad \eta_P = \beta_P^\top x      &\text{(progression)}\\
    h_{D}(t \mid x) &= \lambda_D\, k_D\, t^{k_D - 1} \exp(\eta_D),
        \qquad \eta_D = \beta_D^\top x      &\text{(death before progression)}\\
    h_{DP}(s \mid x) &= \lambda_{DP}\, k_D\, s^{k_D - 1} \exp(\eta_D) &\text{(death, $s$ months after progression)}

Progression-free survival is :math:`S_{PFS}(t) = \exp(-\lambda_P t^{k_P} e^{\eta_P}
- \lambda_D t^{k_D} e^{\eta_D})`; overall survival adds the deaths that follow a progression,

.. math::

    S_{OS}(t) = S_{PFS}(t) + \int_0^t S_{PFS}(u)\, h_P(u)\, \exp(-\lambda_{DP} (t-u)^{k_D} e^{\eta_D})\, du,

so OS >= PFS for every patient by construction. The covariates :math:`x` (see
:data:`PROGRESSION_COEFFICIENTS`, :data:`DEATH_COEFFICIENTS`) are clinical (IMDC risk, ECOG,
disease state, systemic therapy, histology, age) and image-derived: the patient-level latent
``heterogeneity`` (standard normal; it sets the texture of every lesion of the patient) and
``tumour_burden_z``, the standardised log of the total lesion volume.

Calibration: :math:`\lambda_D` is fixed (about 3 % deaths before progression by 2 years at
:math:`\eta_D = 0`); :math:`\lambda_P` and then :math:`\lambda_{DP}` are found by root-finding
so that the population means of :math:`S_{PFS}(24)` and :math:`S_{OS}(24)` over
:data:`CALIBRATION_SIZE` covariate draws from a ``Generator`` seeded with
:data:`CALIBRATION_SEED` (the heterogeneity latent stratified on normal quantiles) hit the
targets; :math:`S_{OS}` uses the midpoint rule on a 64-step grid. The calibration is
deterministic and independent of the cohort's own seed.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import norm

from sabrkit.synthetic.clinical import draw_lesions, draw_patients

__all__ = [
    "PROGRESSION_COEFFICIENTS",
    "DEATH_COEFFICIENTS",
    "HAZARD_FORMULA",
    "BaselineHazards",
    "calibrate_baseline",
    "design_matrix",
    "linear_predictors",
    "survival_at",
    "draw_event_times",
    "draw_heterogeneity",
    "patient_burden",
    "BEST_SUBGROUP",
    "IMAGE_TERMS",
    "as_coefficients",
    "oracle_concordance",
    "in_best_subgroup",
    "population_summary",
]

logger = logging.getLogger(__name__)

HORIZON_MONTHS = 24.0
CALIBRATION_SEED = 8_675_309
CALIBRATION_SIZE = 50_000
SHAPE_PROGRESSION = 0.9  # k_P < 1: progression hazard highest early after SABR
SHAPE_DEATH = 1.3  # k_D
LESION_JITTER_SD = 0.25  # lesion heterogeneity = patient heterogeneity + N(0, 0.25^2)
_DEATH_CUMHAZ_24M = 0.03  # lambda_D * 24^k_D
_CALIBRATION_GRID = 64  # midpoint-rule steps for S_OS(24) during calibration

#: log hazard ratios of progression (per SD for continuous terms). The clinical effects sit
#: within published ranges for metastatic RCC (hazard ratios, rounded):
#:
#: - IMDC intermediate 1.8, poor 3.0 vs favourable: Heng et al., J Clin Oncol 2009;27:5794 and
#:   Lancet Oncol 2013;14:141 (OS medians 43 / 23 / 8 months; PFS ratios somewhat smaller);
#: - ECOG 1: 1.5, ECOG >= 2: 2.5 (Karnofsky < 80 % is an IMDC factor, HR about 1.6-2 in Heng 2009);
#: - oligoprogressive vs oligometastatic disease before SABR: 2.0 (shorter PFS after SABR in
#:   oligoprogression, e.g. Cheung et al., Eur Urol 2021;80:693; Tang et al., Lancet Oncol 2021;22:1732);
#: - non-clear-cell histology 1.3; systemic therapy classes 0.85-0.70 (reference: none).
#:
#: The image phenotype keeps its own signal: HR 2.7 per SD of the heterogeneity latent, 1.35
#: per SD of tumour burden. Every value is a ``synthesize`` parameter
#: (:class:`~sabrkit.synthetic.config.SynthConfig`); 0 switches an effect off.
PROGRESSION_COEFFICIENTS: dict[str, float] = {
    "heterogeneity": 1.0,
    "tumour_burden_z": 0.3,
    "imdc_intermediate": 0.59,
    "imdc_poor": 1.10,
    "oligoprogressive": 0.69,
    "ecog_1": 0.41,
    "ecog_2": 0.92,
    "non_clear_cell": 0.26,
    "age_per_10y": 0.0,
    "therapy_tki": -0.16,
    "therapy_ici": -0.25,
    "therapy_tki_ici": -0.36,
}
#: log hazard ratios of death (before and after progression): IMDC 2.0 / 5.0 (Heng 2013 OS),
#: ECOG 1.5 / 2.5, age 1.35 per 10 years.
DEATH_COEFFICIENTS: dict[str, float] = {
    "heterogeneity": 0.45,
    "tumour_burden_z": 0.20,
    "imdc_intermediate": 0.69,
    "imdc_poor": 1.61,
    "oligoprogressive": 0.30,
    "ecog_1": 0.41,
    "ecog_2": 0.92,
    "non_clear_cell": 0.20,
    "age_per_10y": 0.30,
    "therapy_tki": 0.0,
    "therapy_ici": 0.0,
    "therapy_tki_ici": 0.0,
}
#: covariates of the image phenotype (switch both off to make the images carry no outcome signal).
IMAGE_TERMS: tuple[str, ...] = ("heterogeneity", "tumour_burden_z")
Coefficients = tuple[tuple[str, float], ...]


def as_coefficients(values: dict[str, float] | None, defaults: dict[str, float]) -> Coefficients:
    """``defaults`` updated by ``values`` as a hashable, ordered tuple of ``(term, log HR)``."""
    merged = dict(defaults)
    merged.update(values or {})
    return tuple((k, float(merged[k])) for k in defaults)


DEFAULT_PROGRESSION: Coefficients = as_coefficients(None, PROGRESSION_COEFFICIENTS)
DEFAULT_DEATH: Coefficients = as_coefficients(None, DEATH_COEFFICIENTS)
HAZARD_FORMULA = (
    "h_P(t|x) = lam_P * k_P * t^(k_P-1) * exp(b_P.x); "
    "h_D(t|x) = lam_D * k_D * t^(k_D-1) * exp(b_D.x) before progression; "
    "h_DP(s|x) = lam_DP * k_D * s^(k_D-1) * exp(b_D.x), s = months since progression; "
    "t in months (days/30.4375) from the first SABR fraction; PFS = min(progression, death); "
    "x = heterogeneity (patient latent, N(0,1)), tumour_burden_z = (log total lesion volume mm3 - mu)/sd, "
    "IMDC, disease state, ECOG, histology, (age - 63)/10, systemic therapy (reference: none)"
)


@dataclass(frozen=True)
class BaselineHazards:
    """Weibull baseline hazards (scales per month^k) and the standardisation of tumour burden."""

    scale_progression: float
    scale_death: float
    scale_death_after_progression: float
    shape_progression: float
    shape_death: float
    log_volume_mean: float
    log_volume_sd: float
    population_pfs_2y: float
    population_os_2y: float


def draw_heterogeneity(n: int, rng: np.random.Generator) -> np.ndarray:
    """Patient-level latent heterogeneity, standard normal."""
    return rng.standard_normal(n)


def patient_burden(lesions: pd.DataFrame, study_ids: pd.Series) -> np.ndarray:
    """Total lesion volume (mm3) per patient, in the order of ``study_ids``."""
    total = lesions.groupby("study_id")["volume_mm3"].sum()
    return total.reindex(study_ids).to_numpy(dtype=float)


def design_matrix(patients: pd.DataFrame, log_volume_mean: float, log_volume_sd: float) -> pd.DataFrame:
    """Covariates ``x`` of the hazard model, named as the coefficient keys.

    ``patients`` needs the baseline columns, ``heterogeneity`` and ``total_volume_mm3``.
    """
    imdc = patients["imdc_risk"].to_numpy()
    ecog = patients["ecog"].to_numpy()
    therapy = patients["systemic_therapy"].to_numpy()
    return pd.DataFrame(
        {
            "heterogeneity": patients["heterogeneity"].to_numpy(dtype=float),
            "tumour_burden_z": (np.log(patients["total_volume_mm3"].to_numpy(dtype=float)) - log_volume_mean)
            / log_volume_sd,
            "imdc_intermediate": (imdc == "intermediate").astype(float),
            "imdc_poor": (imdc == "poor").astype(float),
            "oligoprogressive": (patients["disease_state"].to_numpy() == "oligoprogressive").astype(float),
            "ecog_1": (ecog == 1).astype(float),
            "ecog_2": (ecog == 2).astype(float),
            "non_clear_cell": (patients["histology"].to_numpy() == "non_clear_cell").astype(float),
            "age_per_10y": (patients["age_years"].to_numpy(dtype=float) - 63.0) / 10.0,
            "therapy_tki": (therapy == "tki").astype(float),
            "therapy_ici": (therapy == "ici").astype(float),
            "therapy_tki_ici": (therapy == "tki_ici").astype(float),
        },
        index=patients.index,
    )


def linear_predictors(
    x: pd.DataFrame, progression: Coefficients = DEFAULT_PROGRESSION, death: Coefficients = DEFAULT_DEATH
) -> tuple[np.ndarray, np.ndarray]:
    """``(eta_P, eta_D)``: linear predictors of progression and death (``(term, log HR)`` pairs)."""
    eta_p = x[[k for k, _ in progression]].to_numpy() @ np.array([v for _, v in progression])
    eta_d = x[[k for k, _ in death]].to_numpy() @ np.array([v for _, v in death])
    return eta_p, eta_d


def _pfs(t: float, eta_p: np.ndarray, eta_d: np.ndarray, lam_p: float, lam_d: float) -> np.ndarray:
    return np.exp(-lam_p * t**SHAPE_PROGRESSION * np.exp(eta_p) - lam_d * t**SHAPE_DEATH * np.exp(eta_d))


def _os_parts(
    t: float, eta_p: np.ndarray, eta_d: np.ndarray, lam_p: float, lam_d: float, n_grid: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pieces of S_OS(t) that do not depend on lambda_DP (midpoint rule on the progression time)."""
    edges = np.linspace(0.0, t, n_grid + 1)
    mid = 0.5 * (edges[1:] + edges[:-1])
    d_cumhaz_p = np.diff(edges**SHAPE_PROGRESSION)[None, :] * lam_p * np.exp(eta_p)[:, None]
    s_mid = np.exp(
        -lam_p * mid[None, :] ** SHAPE_PROGRESSION * np.exp(eta_p)[:, None]
        - lam_d * mid[None, :] ** SHAPE_DEATH * np.exp(eta_d)[:, None]
    )
    weight = d_cumhaz_p * s_mid
    exposure = (t - mid)[None, :] ** SHAPE_DEATH * np.exp(eta_d)[:, None]
    return _pfs(t, eta_p, eta_d, lam_p, lam_d), weight, exposure


def survival_at(
    t: float, eta_p: np.ndarray, eta_d: np.ndarray, baseline: BaselineHazards, n_grid: int = 240
) -> tuple[np.ndarray, np.ndarray]:
    """True ``(S_PFS(t), S_OS(t))`` per patient (t in months), from the formulas above."""
    eta_p, eta_d = np.asarray(eta_p, float), np.asarray(eta_d, float)
    pfs, weight, exposure = _os_parts(
        t, eta_p, eta_d, baseline.scale_progression, baseline.scale_death, n_grid
    )
    os_ = pfs + (weight * np.exp(-baseline.scale_death_after_progression * exposure)).sum(axis=1)
    return pfs, os_


@functools.lru_cache(maxsize=1)
def _calibration_sample() -> tuple[pd.DataFrame, float, float]:
    rng = np.random.default_rng(CALIBRATION_SEED)
    patients = draw_patients(CALIBRATION_SIZE, rng)
    lesions = draw_lesions(patients, rng)
    patients["total_volume_mm3"] = patient_burden(lesions, patients["study_id"])
    # Stratified latent (normal quantiles in random order): removes its sampling noise.
    quantiles = norm.ppf((np.arange(CALIBRATION_SIZE) + 0.5) / CALIBRATION_SIZE)
    patients["heterogeneity"] = rng.permutation(quantiles)
    log_volume = np.log(patients["total_volume_mm3"].to_numpy())
    return patients, float(log_volume.mean()), float(log_volume.std())


@functools.lru_cache(maxsize=8)
def calibrate_baseline(
    target_pfs_2y: float,
    target_os_2y: float,
    progression: Coefficients = DEFAULT_PROGRESSION,
    death: Coefficients = DEFAULT_DEATH,
) -> BaselineHazards:
    """Baseline scales that give the target population 2-year PFS and OS (deterministic).

    Raises
    ------
    sabrkit.errors.ConfigError
        If no scale reaches the targets (e.g. OS target below what deaths before progression
        alone already give).
    """
    from sabrkit.errors import ConfigError, format_problem

    patients, mu, sd = _calibration_sample()
    eta_p, eta_d = linear_predictors(design_matrix(patients, mu, sd), progression, death)
    horizon = HORIZON_MONTHS
    lam_d = _DEATH_CUMHAZ_24M / horizon**SHAPE_DEATH

    def pfs_gap(log_lam: float) -> float:
        return float(_pfs(horizon, eta_p, eta_d, np.exp(log_lam), lam_d).mean() - target_pfs_2y)

    try:
        lam_p = float(np.exp(brentq(pfs_gap, -20.0, 5.0, xtol=1e-8)))
        pfs, weight, exposure = _os_parts(horizon, eta_p, eta_d, lam_p, lam_d, n_grid=_CALIBRATION_GRID)

        def os_gap(log_lam: float) -> float:
            return float(
                (pfs + (weight * np.exp(-np.exp(log_lam) * exposure)).sum(axis=1)).mean() - target_os_2y
            )

        lam_dp = float(np.exp(brentq(os_gap, -25.0, 8.0, xtol=1e-8)))
    except ValueError as exc:
        raise ConfigError(
            format_problem(
                f"targets pfs_2y={target_pfs_2y}, os_2y={target_os_2y}",
                f"the hazard model cannot reach them ({exc})",
                "choose targets with os_2y well above pfs_2y and both between 0.1 and 0.95",
            )
        ) from exc
    baseline = BaselineHazards(lam_p, lam_d, lam_dp, SHAPE_PROGRESSION, SHAPE_DEATH, mu, sd, 0.0, 0.0)
    pfs_all, os_all = survival_at(horizon, eta_p, eta_d, baseline, n_grid=_CALIBRATION_GRID)
    logger.debug("calibrated baseline hazards: %s", baseline)
    return BaselineHazards(
        lam_p,
        lam_d,
        lam_dp,
        SHAPE_PROGRESSION,
        SHAPE_DEATH,
        mu,
        sd,
        float(pfs_all.mean()),
        float(os_all.mean()),
    )


def draw_event_times(
    eta_p: np.ndarray, eta_d: np.ndarray, baseline: BaselineHazards, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Latent (uncensored) times in months of progression and death.

    Progression time is ``inf`` when death comes first. Inverse-transform sampling:
    :math:`T = (E / (\\lambda e^{\\eta}))^{1/k}` with :math:`E \\sim \\mathrm{Exp}(1)`.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(progression_months, death_months)``; ``death_months >= progression_months``.
    """
    n = len(eta_p)
    e = rng.standard_exponential((n, 3))
    t_p = (e[:, 0] / (baseline.scale_progression * np.exp(eta_p))) ** (1.0 / SHAPE_PROGRESSION)
    t_d0 = (e[:, 1] / (baseline.scale_death * np.exp(eta_d))) ** (1.0 / SHAPE_DEATH)
    after = (e[:, 2] / (baseline.scale_death_after_progression * np.exp(eta_d))) ** (1.0 / SHAPE_DEATH)
    progressed = t_p < t_d0
    death = np.where(progressed, t_p + after, t_d0)
    progression = np.where(progressed, t_p, np.inf)
    return progression, death


#: the planted best-doing subgroup (additive effects make it the lowest-risk corner).
BEST_SUBGROUP: dict[str, object] = {
    "disease_state": "oligometastatic",
    "imdc_risk": "favourable",
    "heterogeneity_below": 0.0,
    "description": (
        "oligometastatic disease, IMDC favourable risk and below-median tumour heterogeneity "
        "(patient latent < 0, i.e. homogeneous lesion texture: low first-order variance/entropy)"
    ),
}


def in_best_subgroup(patients: pd.DataFrame) -> np.ndarray:
    """Whether each patient belongs to :data:`BEST_SUBGROUP` (needs ``heterogeneity``)."""
    threshold = float(BEST_SUBGROUP["heterogeneity_below"])  # type: ignore[arg-type]
    return (
        (patients["disease_state"].to_numpy() == BEST_SUBGROUP["disease_state"])
        & (patients["imdc_risk"].to_numpy() == BEST_SUBGROUP["imdc_risk"])
        & (patients["heterogeneity"].to_numpy(dtype=float) < threshold)
    )


@functools.lru_cache(maxsize=8)
def population_summary(
    target_pfs_2y: float,
    target_os_2y: float,
    progression: Coefficients = DEFAULT_PROGRESSION,
    death: Coefficients = DEFAULT_DEATH,
) -> dict[str, float]:
    """Population 2-year PFS/OS overall, in :data:`BEST_SUBGROUP` and outside it (calibration sample),
    and the population (oracle) Harrell C of the true progression linear predictor for PFS
    without censoring before 24 months (``oracle_c_population``)."""
    baseline = calibrate_baseline(target_pfs_2y, target_os_2y, progression, death)
    patients, mu, sd = _calibration_sample()
    eta_p, eta_d = linear_predictors(design_matrix(patients, mu, sd), progression, death)
    pfs, os_ = survival_at(HORIZON_MONTHS, eta_p, eta_d, baseline, n_grid=_CALIBRATION_GRID)
    best = in_best_subgroup(patients)
    return {
        "population_pfs_2y": float(pfs.mean()),
        "population_os_2y": float(os_.mean()),
        "best_subgroup_fraction": float(best.mean()),
        "best_subgroup_pfs_2y": float(pfs[best].mean()),
        "best_subgroup_os_2y": float(os_[best].mean()),
        "other_pfs_2y": float(pfs[~best].mean()),
        "other_os_2y": float(os_[~best].mean()),
        "oracle_c_population": _population_oracle_c(eta_p, eta_d, baseline),
    }


def _population_oracle_c(eta_p: np.ndarray, eta_d: np.ndarray, baseline: BaselineHazards) -> float:
    """Harrell C of the true ``eta_P`` for PFS truncated at 24 months on a fixed 5,000-patient
    subsample of the calibration sample (latent times drawn with a fixed seed)."""
    from sksurv.metrics import concordance_index_censored

    rng = np.random.default_rng(CALIBRATION_SEED + 1)
    pick = rng.choice(len(eta_p), size=5000, replace=False)
    t_p, t_d = draw_event_times(eta_p[pick], eta_d[pick], baseline, rng)
    pfs = np.minimum(t_p, t_d)
    event = pfs <= HORIZON_MONTHS
    return float(concordance_index_censored(event, np.minimum(pfs, HORIZON_MONTHS), eta_p[pick])[0])


def oracle_concordance(
    eta_p: np.ndarray, time_months: np.ndarray, event: np.ndarray, tau_months: float = HORIZON_MONTHS
) -> dict[str, float]:
    """Harrell's and Uno's C of the true progression linear predictor on observed PFS.

    The oracle: what a model that knew the generator's ``eta_P`` would reach on this cohort's
    own observed (censored) outcomes (:func:`sksurv.metrics.concordance_index_censored`,
    :func:`sksurv.metrics.concordance_index_ipcw` with the cohort as its own censoring
    reference, truncated at ``tau_months`` or the last observed time if earlier). NaN for a
    cohort without a comparable pair (fewer than two patients, or no event).
    """
    from sksurv.metrics import concordance_index_censored, concordance_index_ipcw
    from sksurv.util import Surv

    event = np.asarray(event, dtype=bool)
    time_months = np.asarray(time_months, dtype=float)
    if len(event) < 2 or not event.any():
        # a cohort of one patient, or without a progression event, has no comparable pair: no C
        nan = float("nan")
        return {"oracle_harrell_c": nan, "oracle_uno_c": nan, "oracle_tau_months": float(tau_months)}
    y = Surv.from_arrays(event, time_months)
    harrell = concordance_index_censored(event, time_months, eta_p)[0]
    tau = min(tau_months, float(time_months[event].max())) if event.any() else tau_months
    try:
        uno = concordance_index_ipcw(y, y, eta_p, tau=tau)[0]
    except ValueError:
        uno = float("nan")
    return {"oracle_harrell_c": float(harrell), "oracle_uno_c": float(uno), "oracle_tau_months": float(tau)}
