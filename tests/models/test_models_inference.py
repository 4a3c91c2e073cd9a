"""Whole-procedure permutation test and bootstrap interval of the CV C (sabrkit.models.inference).

The null behaviour is checked on small simulated sets (fast); the large-scale rates (>= 200 null
cohorts, coverage over >= 100 cohorts) are measured by benchmarks/inference.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from sabrkit.errors import ModelInputError
from sabrkit.models import build_pipeline
from sabrkit.models.inference import (
    bootstrap_cv_interval,
    procedure_permutation_test,
    run_procedure,
    signed_logrank_z,
)
from sabrkit.models.simulation import simulate_feature_cohort


def _pipeline():
    return build_pipeline("coxph", alpha=0.1)


def test_permutation_p_is_uniform_on_null_cohorts() -> None:
    """40 pure-noise cohorts, 9 permutations each: P(p <= 0.1) is 0.1 when the null is exact."""
    rng = np.random.default_rng(2026)
    p_values = []
    for _ in range(40):
        data = simulate_feature_cohort(rng, 36, 3, n_informative=0)
        test = procedure_permutation_test(_pipeline(), data, rng, 9, n_splits=3, n_repeats=1, random_state=0)
        assert test.p_logrank in {k / 10 for k in range(1, 11)}  # p = (1 + #null >= obs) / (1 + B)
        p_values.append(test.p_logrank)
    k = int(np.sum(np.array(p_values) <= 0.1))
    assert k <= binom.ppf(0.999, 40, 0.1), k  # label shuffling of CV groups exceeds this more often
    assert 0.35 < np.mean(p_values) < 0.75


def test_planted_signal_gets_the_smallest_p() -> None:
    rng = np.random.default_rng(7)
    data = simulate_feature_cohort(rng, 60, 3, n_informative=2, log_hazard_ratio=2.0)
    test = procedure_permutation_test(_pipeline(), data, rng, 19, n_splits=5, n_repeats=1, random_state=0)
    assert test.p_logrank == pytest.approx(1 / 20) and test.p_uno_c == pytest.approx(1 / 20)
    assert test.observed.uno_c > 0.7 and abs(np.nanmean(test.null["uno_c"]) - 0.5) < 0.06
    assert len(test.null) == 19


def test_permutations_do_not_depend_on_n_jobs() -> None:
    data = simulate_feature_cohort(np.random.default_rng(3), 30, 3)
    one = procedure_permutation_test(_pipeline(), data, np.random.default_rng(1), 5, n_splits=3, n_jobs=1)
    two = procedure_permutation_test(_pipeline(), data, np.random.default_rng(1), 5, n_splits=3, n_jobs=2)
    np.testing.assert_allclose(one.null.to_numpy(), two.null.to_numpy())


def test_signed_logrank_matches_lifelines_and_handles_one_group() -> None:
    from lifelines.statistics import logrank_test

    rng = np.random.default_rng(0)
    time, event = rng.exponential(10, 50), rng.random(50) < 0.7
    high = rng.random(50) < 0.5
    z = signed_logrank_z(time, event, high)
    reference = logrank_test(
        time[high], time[~high], event_observed_A=event[high], event_observed_B=event[~high]
    )
    assert z**2 == pytest.approx(reference.test_statistic, rel=1e-6)
    assert signed_logrank_z(time, event, np.zeros(50, bool)) == float("-inf")


def test_bootstrap_interval_surrounds_the_estimate_and_pairs_the_reference() -> None:
    rng = np.random.default_rng(11)
    data = simulate_feature_cohort(rng, 60, 4, n_informative=2, log_hazard_ratio=1.5)
    reference = data.select("simulated") if "simulated" in data.blocks else data
    observed_model = run_procedure(_pipeline(), data, 5, 1, 0)
    observed = {"uno_c": observed_model.uno_c, "delta_uno_c": 0.0}
    interval = bootstrap_cv_interval(
        _pipeline(),
        data,
        rng,
        30,
        observed=observed,
        reference=(_pipeline(), reference),
        n_splits=5,
        random_state=0,
    )
    low, high = interval.intervals["uno_c"]
    assert low < observed_model.uno_c < high and 0.02 < high - low < 0.5
    # the same model as its own reference, on the same bootstrap cohorts and folds: delta exactly 0
    assert np.allclose(interval.replicates["delta_uno_c"], 0.0)
    assert interval.summary()["uno_c_ci_low"] == low and interval.settings["n_failed"] == 0


def test_bootstrap_refuses_too_few_samples_and_other_patients() -> None:
    data = simulate_feature_cohort(np.random.default_rng(0), 30, 3)
    with pytest.raises(ModelInputError, match="at least 20"):
        bootstrap_cv_interval(_pipeline(), data, np.random.default_rng(0), 10, observed={"uno_c": 0.5})
    other = simulate_feature_cohort(np.random.default_rng(1), 31, 3)
    with pytest.raises(ModelInputError, match="same patients"):
        bootstrap_cv_interval(
            _pipeline(),
            data,
            np.random.default_rng(0),
            20,
            observed={"uno_c": 0.5},
            reference=(_pipeline(), other),
        )
    with pytest.raises(ModelInputError, match="at least 1"):
        procedure_permutation_test(_pipeline(), data, np.random.default_rng(0), 0)
