"""Simulated feature cohorts with known truth, for negative controls, tests and benchmarks.

:func:`simulate_feature_cohort` draws standard-normal features, a proportional-hazards outcome
driven by the first ``n_informative`` features (or by nothing: pure noise), and independent
exponential censoring tuned to an expected event fraction. Deterministic given the
:class:`numpy.random.Generator`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sabrkit.errors import ModelInputError, format_problem
from sabrkit.models.dataset import SurvivalDataset, make_dataset

__all__ = ["simulate_feature_cohort"]


def simulate_feature_cohort(
    rng: np.random.Generator,
    n_patients: int = 60,
    n_features: int = 1000,
    n_informative: int = 0,
    log_hazard_ratio: float = 1.0,
    event_fraction: float = 35 / 60,
    median_months: float = 18.0,
) -> SurvivalDataset:
    r"""Draw a cohort of ``n_patients`` with ``n_features`` features and a survival outcome.

    Model: :math:`x_{ij} \sim N(0, 1)`; event time :math:`T_i \sim \text{Exp}(\lambda_0 e^{\eta_i})`
    with :math:`\eta_i = \beta \sum_{j < m} x_{ij} / \sqrt{m}` (:math:`m` = ``n_informative``,
    :math:`\beta` = ``log_hazard_ratio``; :math:`\eta = 0` for pure noise) and
    :math:`\lambda_0 = \ln 2 / \text{median}`; censoring :math:`C_i \sim \text{Exp}(c\lambda_0)`
    with :math:`c = (1 - p)/p` so that :math:`P(T < C) = p` = ``event_fraction`` when
    :math:`\eta = 0`. Observed time :math:`\min(T, C)` in months.

    Returns
    -------
    SurvivalDataset
        Study IDs ``SIM-001`` ..., feature columns ``feature_0000`` ...; the informative ones come
        first. ``feature_set`` is ``"simulated"``.
    """
    if not 0 <= n_informative <= n_features or not 0 < event_fraction < 1 or n_patients < 4:
        raise ModelInputError(
            format_problem(
                f"n_patients={n_patients}, n_features={n_features}, n_informative={n_informative}, "
                f"event_fraction={event_fraction}",
                "0 <= n_informative <= n_features, 0 < event_fraction < 1, n_patients >= 4",
                "choose values in range",
            )
        )
    features = rng.standard_normal((n_patients, n_features))
    eta = np.zeros(n_patients)
    if n_informative:
        eta = log_hazard_ratio * features[:, :n_informative].sum(axis=1) / np.sqrt(n_informative)
    base_rate = np.log(2.0) / median_months
    event_time = rng.exponential(1.0 / (base_rate * np.exp(eta)))
    censor_rate = base_rate * (1.0 - event_fraction) / event_fraction
    censor_time = rng.exponential(1.0 / censor_rate, size=n_patients)
    time = np.maximum(np.minimum(event_time, censor_time), 1e-3)
    event = event_time <= censor_time
    index = pd.Index([f"SIM-{i + 1:03d}" for i in range(n_patients)], name="study_id")
    X = pd.DataFrame(features, index=index, columns=[f"feature_{j:04d}" for j in range(n_features)])
    return make_dataset(X, event, time, feature_set="simulated")
