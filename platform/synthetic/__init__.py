"""Synthetic SABR oligometastatic RCC cohorts: registry, biobank, CT phantoms and ground truth."""

from sabrkit.synthetic.clinical import DOSE_TABLE, SITES
from sabrkit.synthetic.cohort import SCANNERS, SyntheticCohort, generate_cohort
from sabrkit.synthetic.config import SynthConfig
from sabrkit.synthetic.hazard import (
    BEST_SUBGROUP,
    DEATH_COEFFICIENTS,
    HAZARD_FORMULA,
    PROGRESSION_COEFFICIENTS,
    BaselineHazards,
    calibrate_baseline,
)
from sabrkit.synthetic.io import synthesize, write_cohort
from sabrkit.synthetic.phantom import SIGNAL_FEATURES, LesionPhantom, render_lesion
from sabrkit.synthetic.truth import CONTRACT_COLUMNS

__all__ = [
    "BEST_SUBGROUP",
    "BaselineHazards",
    "CONTRACT_COLUMNS",
    "DEATH_COEFFICIENTS",
    "DOSE_TABLE",
    "HAZARD_FORMULA",
    "LesionPhantom",
    "PROGRESSION_COEFFICIENTS",
    "SCANNERS",
    "SIGNAL_FEATURES",
    "SITES",
    "SynthConfig",
    "SyntheticCohort",
    "calibrate_baseline",
    "generate_cohort",
    "render_lesion",
    "synthesize",
    "write_cohort",
]
