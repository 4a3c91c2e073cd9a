"""Assemble a whole synthetic SABR cohort: registry tables, biobank, image specs and ground truth.

:func:`generate_cohort` draws everything from the ``numpy.random.Generator`` it is given and
returns a :class:`SyntheticCohort`. Images are not rendered here: each lesion carries a
:class:`~sabrkit.synthetic.phantom.LesionPhantom` (with its own seed), rendered on demand by
:meth:`SyntheticCohort.render` or written by :func:`sabrkit.synthetic.write_cohort`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.synthetic import clinical, followup, hazard, local_control, phantom
from sabrkit.synthetic.config import SynthConfig
from sabrkit.synthetic.truth import build_truth, contract_tables
from sabrkit.timescale import DAYS_PER_MONTH

__all__ = ["SCANNERS", "SyntheticCohort", "generate_cohort"]

logger = logging.getLogger(__name__)

#: planning CT scanners: (label, image noise SD in HU, share of patients).
SCANNERS: tuple[tuple[str, float, float], ...] = (
    ("Siemens SOMATOM Confidence", 12.0, 0.50),
    ("Philips Brilliance Big Bore", 16.0, 0.35),
    ("GE Discovery RT", 22.0, 0.15),
)


@dataclass(frozen=True)
class SyntheticCohort:
    """A generated cohort: the registry/biobank tables of the data contract plus ground truth.

    ``tables`` maps each file of the cohort folder (relative path) to its DataFrame, with the
    contract's columns in order; ``phantoms`` holds one render spec per lesion; ``truth`` is the
    content of ``ground_truth.json``; ``truth_patients`` of ``ground_truth_patients.csv``.
    """

    config: SynthConfig
    tables: dict[str, pd.DataFrame]
    truth_patients: pd.DataFrame
    truth: dict[str, Any]
    phantoms: tuple[phantom.LesionPhantom, ...] = field(repr=False)

    def table(self, name: str) -> pd.DataFrame:
        """A table by short name (``patients``, ``lesions``, ``samples`` ...) or relative path."""
        for path, frame in self.tables.items():
            if name == path or path.rsplit("/", 1)[-1] == f"{name}.csv":
                return frame
        from sabrkit.errors import NotFoundError, format_problem

        raise NotFoundError(
            format_problem(
                f"table {name!r}", "no such table in the cohort", f"use one of {sorted(self.tables)}"
            )
        )

    def render(self, lesion_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Render one lesion's CT region and mask (``[z, y, x]`` int16 HU and uint8)."""
        for spec in self.phantoms:
            if spec.lesion_id == lesion_id:
                return phantom.render_lesion(spec, self.config.image_shape, self.config.spacing_mm)
        from sabrkit.errors import NotFoundError, format_problem

        raise NotFoundError(
            format_problem(
                f"lesion {lesion_id!r}", "no such lesion in the cohort", "use a lesion_id of lesions.csv"
            )
        )


def _days(months: np.ndarray) -> np.ndarray:
    return np.rint(np.where(np.isfinite(months), months, 0.0) * DAYS_PER_MONTH).astype(np.int64)


def _observe_outcomes(
    patients: pd.DataFrame,
    sabr_end: pd.Series,
    t_prog: np.ndarray,
    t_death: np.ndarray,
    config: SynthConfig,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Turn latent times into observed dates: censoring at the cut-off and loss to follow-up.

    Events never precede the day after the last fraction; death never precedes progression. The
    progression type is left empty here (:func:`_progression_types` sets it).
    """
    n = len(patients)
    index = patients["index_date"].tolist()
    end = [sabr_end[s] for s in patients["study_id"]]
    lost = rng.random(n) < config.loss_to_follow_up
    lost_u = rng.random(n)
    rng.random(n)  # drawn for the random stream only (the progression type): the local-failure model sets it
    cause_u = rng.random(n)
    prog_days, death_days = _days(t_prog), _days(t_death)
    out: dict[str, list[Any]] = {
        k: []
        for k in ("progression_date", "progression_type", "death_date", "death_cause", "last_contact_date")
    }
    for i in range(n):
        earliest = end[i] + dt.timedelta(days=1)
        censor = config.cutoff_date
        if lost[i]:
            window = max((config.cutoff_date - index[i]).days - 30, 1)
            censor = min(censor, index[i] + dt.timedelta(days=30 + int(lost_u[i] * window)))
        prog = (
            max(index[i] + dt.timedelta(days=int(prog_days[i])), earliest) if np.isfinite(t_prog[i]) else None
        )
        death = max(index[i] + dt.timedelta(days=int(death_days[i])), earliest)
        if prog is not None:
            death = max(death, prog)
        observed_death = death if death <= censor else None
        observed_prog = prog if prog is not None and prog <= censor else None
        out["progression_date"].append(observed_prog)
        out["progression_type"].append(None)  # set by the local-failure model (generate_cohort)
        out["death_date"].append(observed_death)
        if observed_death is None:
            out["death_cause"].append(None)
        else:
            rcc_p = 0.9 if prog is not None else 0.15
            out["death_cause"].append("rcc" if cause_u[i] < rcc_p else "other")
        out["last_contact_date"].append(observed_death if observed_death is not None else censor)
    result = patients.copy()
    for key, values in out.items():
        result[key] = pd.Series(values, index=patients.index, dtype=object)
    return result


def _progression_types(
    patients: pd.DataFrame, lesions: pd.DataFrame, local: pd.DataFrame, both: pd.Series
) -> pd.Series:
    """``local``/``both`` when a treated lesion is involved in the observed progression, else ``distant``."""
    involved = local["local_failure_at_progression"].groupby(lesions["study_id"].to_numpy()).any()
    has_local = patients["study_id"].map(involved).fillna(False).astype(bool)
    kind = np.where(
        has_local, np.where(patients["study_id"].map(both).fillna(False), "both", "local"), "distant"
    )
    observed = patients["progression_date"].notna().to_numpy()
    return pd.Series(
        [k if seen else None for k, seen in zip(kind, observed)], index=patients.index, dtype=object
    )


def _series_uid(rng: np.random.Generator) -> str:
    """A DICOM UID under the UUID-derived root ``2.25`` (128-bit integer, no leading zero)."""
    high, low = (int(v) for v in rng.integers(0, 2**63, size=2))
    return f"2.25.{(high << 64 | low) + 1}"


def generate_cohort(config: SynthConfig, rng: np.random.Generator) -> SyntheticCohort:
    """Draw one synthetic SABR cohort.

    Parameters
    ----------
    config : SynthConfig
    rng : numpy.random.Generator
        The only source of randomness; the same seed gives the same cohort.

    Returns
    -------
    SyntheticCohort
    """
    n = config.n_patients
    fov = min(s * n_ for s, n_ in zip(config.spacing_mm, config.image_shape))
    patients = clinical.draw_patients(n, rng)
    lesions = clinical.draw_lesions(patients, rng, max_diameter_mm=min(60.0, 0.6 * fov))
    patients = clinical.draw_enrolment(patients, config.enrolment_start, config.enrolment_end, rng)
    courses = clinical.plan_sabr_courses(lesions, patients, rng)

    progression = hazard.as_coefficients(
        dict(config.progression_coefficients), hazard.PROGRESSION_COEFFICIENTS
    )
    death = hazard.as_coefficients(dict(config.death_coefficients), hazard.DEATH_COEFFICIENTS)
    baseline = hazard.calibrate_baseline(config.target_pfs_2y, config.target_os_2y, progression, death)
    patients["heterogeneity"] = hazard.draw_heterogeneity(n, rng)
    owner = patients.set_index("study_id").loc[lesions["study_id"]]
    jitter = hazard.LESION_JITTER_SD * rng.standard_normal(len(lesions))
    lesions["heterogeneity"] = owner["heterogeneity"].to_numpy() + jitter
    patients["total_volume_mm3"] = hazard.patient_burden(lesions, patients["study_id"])
    x = hazard.design_matrix(patients, baseline.log_volume_mean, baseline.log_volume_sd)
    eta_p, eta_d = hazard.linear_predictors(x, progression, death)
    s_pfs, s_os = hazard.survival_at(hazard.HORIZON_MONTHS, eta_p, eta_d, baseline)
    t_prog, t_death = hazard.draw_event_times(eta_p, eta_d, baseline, rng)
    sabr_end = courses.groupby("study_id")["end_date"].max()
    patients = _observe_outcomes(patients, sabr_end, t_prog, t_death, config, rng)

    visits = followup.draw_visits(patients, lesions, rng)
    adverse_events = followup.draw_adverse_events(patients, lesions, courses, rng)
    samples = followup.draw_biobank_samples(patients, courses, rng)
    identifiers = followup.draw_identifiers(patients, rng)

    scanner_idx = rng.choice(len(SCANNERS), size=n, p=[s[2] for s in SCANNERS])
    scanner_of = dict(zip(patients["study_id"], scanner_idx))
    lesions["series_uid"] = [_series_uid(rng) for _ in range(len(lesions))]
    lesions["roi_name"] = [f"GTV_L{k}" for k in lesions["lesion_number"]]
    seeds = rng.integers(0, 2**63, size=len(lesions))
    # drawn after every other draw, so that the rest of the cohort is what it was before this model
    local, both = local_control.draw_local_failures(lesions, courses, rng)
    patients["progression_type"] = _progression_types(patients, lesions, local, both)
    assessments = local_control.lesion_assessments(lesions, local["local_failure_at_progression"], patients)
    phantoms = tuple(
        phantom.LesionPhantom(
            lesion_id=r.lesion_id,
            site=r.site,
            location=r.location,
            longest_diameter_mm=float(r.longest_diameter_mm),
            axis_ratio_1=float(r.axis_ratio_1),
            axis_ratio_2=float(r.axis_ratio_2),
            heterogeneity=round(float(r.heterogeneity), 6),
            noise_sd_hu=SCANNERS[scanner_of[r.study_id]][1],
            seed=int(seed),
        )
        for r, seed in zip(lesions.itertuples(index=False), seeds)
    )
    images = pd.DataFrame(
        {
            "lesion_id": lesions["lesion_id"],
            "study_id": lesions["study_id"],
            "image_path": [f"images/{lid}_ct.nii.gz" for lid in lesions["lesion_id"]],
            "mask_path": [f"images/{lid}_mask.nii.gz" for lid in lesions["lesion_id"]],
            "modality": "CT",
            "scanner": [SCANNERS[scanner_of[s]][0] for s in lesions["study_id"]],
        }
    )
    best = hazard.in_best_subgroup(patients)
    truth_patients = pd.DataFrame(
        {
            "study_id": patients["study_id"],
            "heterogeneity": np.round(patients["heterogeneity"].to_numpy(), 6),
            "total_volume_mm3": np.round(patients["total_volume_mm3"].to_numpy(), 1),
            "tumour_burden_z": np.round(x["tumour_burden_z"].to_numpy(), 6),
            "lp_progression": np.round(eta_p, 6),
            "lp_death": np.round(eta_d, 6),
            "s_pfs_24m": np.round(s_pfs, 6),
            "s_os_24m": np.round(s_os, 6),
            "latent_progression_months": np.round(np.where(np.isfinite(t_prog), t_prog, np.nan), 4),
            "latent_death_months": np.round(t_death, 4),
            "best_subgroup": best,
            "scanner": [SCANNERS[scanner_of[s]][0] for s in patients["study_id"]],
        }
    )
    tables = contract_tables(
        patients, identifiers, lesions, courses, visits, adverse_events, samples, images, assessments
    )
    patients["lp_progression"] = eta_p
    truth = build_truth(config, baseline, patients, lesions, phantoms, s_pfs, s_os, best, local)
    logger.info(
        "synthetic cohort: %d patients, %d lesions, %d progressions, %d deaths",
        n,
        len(lesions),
        int(patients["progression_date"].notna().sum()),
        int(patients["death_date"].notna().sum()),
    )
    return SyntheticCohort(config, tables, truth_patients, truth, phantoms)
