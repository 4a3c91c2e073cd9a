"""The cohort's tables in the data contract's layout, and its ground-truth document.

:func:`contract_tables` selects and orders the columns of every file of the cohort folder
(see the helper brief's data contract); :func:`build_truth` assembles ``ground_truth.json``:
settings, hazard model and coefficients, image model, verified signal features, the planted
best subgroup and the true and observed survival figures.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.synthetic import hazard, local_control, phantom
from sabrkit.synthetic.clinical import SABR_COURSE_COLUMNS
from sabrkit.synthetic.config import SynthConfig
from sabrkit.timescale import DAYS_PER_MONTH

__all__ = ["CONTRACT_COLUMNS", "contract_tables", "build_truth"]

logger = logging.getLogger(__name__)

#: relative path -> columns, in order, of every table of the cohort folder.
CONTRACT_COLUMNS: dict[str, tuple[str, ...]] = {
    "registry/patients.csv": (
        "study_id",
        "mdt_date",
        "enrolment_date",
        "age_years",
        "sex",
        "ecog",
        "histology",
        "imdc_risk",
        "prior_nephrectomy",
        "disease_state",
        "systemic_therapy",
        "last_contact_date",
    ),
    "registry/identifiers.csv": ("study_id", "hospital_number", "family_name", "given_name", "date_of_birth"),
    "registry/lesions.csv": (
        "lesion_id",
        "study_id",
        "lesion_number",
        "site",
        "longest_diameter_mm",
        "series_uid",
        "roi_name",
    ),
    "registry/sabr_courses.csv": SABR_COURSE_COLUMNS,
    "registry/visits.csv": ("study_id", "visit_number", "visit_date", "vrs_pain", "tess_score"),
    "registry/adverse_events.csv": (
        "study_id",
        "term",
        "grade",
        "ctcae_version",
        "onset_date",
        "attribution_sabr",
    ),
    "registry/lesion_assessments.csv": (
        "lesion_id",
        "assessment_date",
        "local_status",
        "longest_diameter_mm",
    ),
    "registry/progression_events.csv": ("study_id", "event_date", "progression_type"),
    "registry/deaths.csv": ("study_id", "death_date", "cause"),
    "biobank/samples.csv": ("study_id", "timepoint", "specimen_type", "collected_at", "volume_ml"),
    "biobank/consents.csv": ("study_id", "form_version", "signed_on", "scopes", "withdrawn_on"),
    "images.csv": ("lesion_id", "study_id", "image_path", "mask_path", "modality", "scanner"),
}


#: the consent form every synthetic patient signs at enrolment, and its scopes.
CONSENT_FORM = ("1.0", "SABR-RCC registry and biobank consent", "2024-01-01")
CONSENT_SCOPES = "storage;future_research;image_linkage"


def consent_table(patients: pd.DataFrame) -> pd.DataFrame:
    """One signed consent per patient (form 1.0 at enrolment, every scope but genetic research);
    ``withdrawn_on`` empty. Edit the written ``biobank/consents.csv`` to record a withdrawal."""
    return pd.DataFrame(
        {
            "study_id": patients["study_id"],
            "form_version": CONSENT_FORM[0],
            "signed_on": patients["enrolment_date"],
            "scopes": CONSENT_SCOPES,
            "withdrawn_on": None,
        }
    )


def contract_tables(
    patients: pd.DataFrame,
    identifiers: pd.DataFrame,
    lesions: pd.DataFrame,
    courses: pd.DataFrame,
    visits: pd.DataFrame,
    adverse_events: pd.DataFrame,
    samples: pd.DataFrame,
    images: pd.DataFrame,
    lesion_assessments: pd.DataFrame,
) -> dict[str, pd.DataFrame]:
    """Every table of the cohort folder with exactly the contract's columns (dates as ``date``)."""
    progressed = patients[patients["progression_date"].notna()]
    died = patients[patients["death_date"].notna()]
    frames = {
        "registry/patients.csv": patients,
        "registry/identifiers.csv": identifiers,
        "registry/lesions.csv": lesions,
        "registry/sabr_courses.csv": courses,
        "registry/visits.csv": visits,
        "registry/adverse_events.csv": adverse_events,
        "registry/lesion_assessments.csv": lesion_assessments,
        "registry/progression_events.csv": progressed.rename(columns={"progression_date": "event_date"}),
        "registry/deaths.csv": died.rename(columns={"death_cause": "cause"}),
        "biobank/samples.csv": samples,
        "biobank/consents.csv": consent_table(patients),
        "images.csv": images,
    }
    return {
        path: frames[path].loc[:, list(cols)].reset_index(drop=True)
        for path, cols in CONTRACT_COLUMNS.items()
    }


def _r(value: float, digits: int = 6) -> float:
    return round(float(value), digits)


def _oracle(patients: pd.DataFrame, progression: hazard.Coefficients) -> dict[str, float]:
    """Oracle C on the observed PFS (months from the first fraction, event = progression or death)."""
    end = patients["progression_date"].where(patients["progression_date"].notna(), patients["death_date"])
    event = end.notna().to_numpy()
    end = end.where(end.notna(), patients["last_contact_date"])
    months = (
        np.array([(e - i).days for e, i in zip(end, patients["index_date"])], dtype=float) / DAYS_PER_MONTH
    )
    return hazard.oracle_concordance(patients["lp_progression"].to_numpy(dtype=float), months, event)


def build_truth(
    config: SynthConfig,
    baseline: hazard.BaselineHazards,
    patients: pd.DataFrame,
    lesions: pd.DataFrame,
    phantoms: Sequence[phantom.LesionPhantom],
    s_pfs: np.ndarray,
    s_os: np.ndarray,
    best: np.ndarray,
    local: pd.DataFrame,
) -> dict[str, Any]:
    """The ``ground_truth.json`` document (JSON-ready, floats rounded to 6 decimals)."""
    progression = hazard.as_coefficients(
        dict(config.progression_coefficients), hazard.PROGRESSION_COEFFICIENTS
    )
    death = hazard.as_coefficients(dict(config.death_coefficients), hazard.DEATH_COEFFICIENTS)
    population = hazard.population_summary(config.target_pfs_2y, config.target_os_2y, progression, death)
    pfs_event = patients["progression_date"].notna() | patients["death_date"].notna()
    oracle = _oracle(patients, progression)
    return {
        "generator": "sabrkit.synthetic",
        "config": config.to_dict(),
        "hazard_model": {
            "formula": hazard.HAZARD_FORMULA,
            "time_unit": "months = days / 30.4375 from the first SABR fraction (index date)",
            "progression_coefficients": dict(progression),
            "death_coefficients": dict(death),
            "hazard_ratio_sources": "docs of sabrkit.synthetic.hazard.PROGRESSION_COEFFICIENTS (IMDC: Heng 2009/2013)",
            "baseline": {
                "scale_progression": _r(baseline.scale_progression, 10),
                "shape_progression": baseline.shape_progression,
                "scale_death": _r(baseline.scale_death, 10),
                "scale_death_after_progression": _r(baseline.scale_death_after_progression, 10),
                "shape_death": baseline.shape_death,
            },
            "tumour_burden_z": {
                "definition": "(log(total lesion volume mm3) - log_volume_mean) / log_volume_sd; "
                "lesion volume = pi/6 * d * (d*axis_ratio_1) * (d*axis_ratio_2), d = longest diameter",
                "log_volume_mean": _r(baseline.log_volume_mean),
                "log_volume_sd": _r(baseline.log_volume_sd),
            },
            "lesion_heterogeneity": f"patient heterogeneity + N(0, {hazard.LESION_JITTER_SD}^2)",
            "calibration": {
                "method": "brentq on the mean S(24 months) over a fixed covariate sample",
                "seed": hazard.CALIBRATION_SEED,
                "n": hazard.CALIBRATION_SIZE,
            },
            "censoring": "administrative at cutoff_date; loss to follow-up with probability "
            f"{config.loss_to_follow_up} at a uniform time; events no earlier than the day after the last fraction",
        },
        "local_control_model": {
            "formula": local_control.LOCAL_FAILURE_FORMULA,
            "coefficients": dict(local_control.LOCAL_FAILURE_COEFFICIENTS),
            "intercept": _r(local_control.calibrate_intercept()),
            "intercept_calibration": f"mean P(progression involves a treated lesion) = "
            f"{local_control.TARGET_LOCAL_SHARE} over {local_control.CALIBRATION_PATIENTS} patients drawn "
            f"with seed {hazard.CALIBRATION_SEED + 2}",
            "both_given_local": local_control.BOTH_GIVEN_LOCAL,
            "observation": "local status observed at the patient's first progression only "
            "(lesion_assessments.csv); death before progression is a competing event",
            "n_local_failures_observed": int(
                (
                    local["local_failure_at_progression"]
                    & lesions["study_id"].map(patients.set_index("study_id")["progression_date"]).notna()
                ).sum()
            ),
        },
        "image_model": {
            "texture_sd_hu": f"{phantom.TEXTURE_AMPLITUDE_HU} * exp({phantom.TEXTURE_GAIN} * lesion heterogeneity)",
            "mask": "tumour eroded by one voxel (contour just inside the edge)",
            "noise": "scanner-dependent, spatially correlated Gaussian",
        },
        "signal_features": list(phantom.SIGNAL_FEATURES),
        "signal_feature_spearman_rho": dict(phantom.SIGNAL_FEATURE_RHO),
        "best_subgroup": {
            **{k: v for k, v in hazard.BEST_SUBGROUP.items()},
            "population_fraction": _r(population["best_subgroup_fraction"]),
            "population_pfs_2y": _r(population["best_subgroup_pfs_2y"]),
            "population_os_2y": _r(population["best_subgroup_os_2y"]),
            "population_pfs_2y_others": _r(population["other_pfs_2y"]),
            "n_in_cohort": int(best.sum()),
            "true_pfs_2y_in_cohort": _r(s_pfs[best].mean()) if best.any() else None,
        },
        "oracle": {
            "definition": "C of the true progression linear predictor eta_P (lp_progression of "
            "ground_truth_patients.csv) on this cohort's observed PFS; population: Harrell C of eta_P "
            "for PFS truncated at 24 months in a 5,000-patient sample of the generator",
            **{k: _r(v) if np.isfinite(v) else None for k, v in oracle.items()},
            "oracle_harrell_c_population": _r(population["oracle_c_population"]),
        },
        "true_pfs_2y": _r(s_pfs.mean()),
        "true_os_2y": _r(s_os.mean()),
        "population_pfs_2y": _r(population["population_pfs_2y"]),
        "population_os_2y": _r(population["population_os_2y"]),
        "n_patients": int(len(patients)),
        "n_lesions": int(len(lesions)),
        "n_pfs_events": int(pfs_event.sum()),
        "n_progressions": int(patients["progression_date"].notna().sum()),
        "n_deaths": int(patients["death_date"].notna().sum()),
        "lesions": {
            spec.lesion_id: {
                "heterogeneity": _r(spec.heterogeneity),
                "texture_sd_hu": _r(phantom.texture_amplitude(spec.heterogeneity), 3),
                "noise_sd_hu": spec.noise_sd_hu,
                "bed10_gy": _r(bed10, 3),
                "p_local_failure": _r(p_fail),
                "local_failure_at_progression": bool(failed),
            }
            for spec, bed10, p_fail, failed in zip(
                phantoms,
                local["bed10_gy"],
                local["p_local_failure"],
                local["local_failure_at_progression"],
                strict=True,
            )
        },
    }
