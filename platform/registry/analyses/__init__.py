"""Study analyses: pure functions over the exported tables (ADSL, ADTTE, AE, VRS, TESS), with figures."""

from sabrkit.registry.analyses.competing import (
    CumulativeIncidence,
    local_failure_incidence,
    plot_cumulative_incidence,
)
from sabrkit.registry.analyses.km import (
    LogRank,
    cox_by,
    endpoint_frame,
    km_curve,
    km_landmarks,
    logrank_by,
    plot_km,
)
from sabrkit.registry.analyses.pro import plot_score_by_month, score_by_month
from sabrkit.registry.analyses.subgroups import SUBGROUPS, plot_forest, subgroup_hazard_ratios
from sabrkit.registry.analyses.swimmer import plot_swimmer
from sabrkit.registry.analyses.toxicity import (
    Proportion,
    exact_proportion,
    grade3plus,
    max_grade_per_patient,
    toxicity_summary,
)

__all__ = [
    "endpoint_frame",
    "km_curve",
    "km_landmarks",
    "logrank_by",
    "cox_by",
    "LogRank",
    "plot_km",
    "CumulativeIncidence",
    "local_failure_incidence",
    "plot_cumulative_incidence",
    "score_by_month",
    "plot_score_by_month",
    "SUBGROUPS",
    "subgroup_hazard_ratios",
    "plot_forest",
    "plot_swimmer",
    "Proportion",
    "exact_proportion",
    "grade3plus",
    "max_grade_per_patient",
    "toxicity_summary",
]
