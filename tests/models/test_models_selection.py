"""In-fold feature filters: correlation pruning and univariate survival selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_estimator
from sksurv.datasets import load_whas500
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from sabrkit.models.selection import (
    CorrelationFilter,
    UnivariateSurvivalSelector,
    concordance_per_feature,
    cox_score_z_per_feature,
)


@pytest.fixture(scope="module")
def whas500() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = load_whas500()
    return X.astype(float), y


def test_correlation_filter_passes_scikit_learn_estimator_checks() -> None:
    check_estimator(CorrelationFilter())


def test_correlation_filter_drops_the_later_column_of_a_correlated_pair() -> None:
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((3, 100))
    X = pd.DataFrame({"a": a, "b": b, "a_copy": a + 0.01 * rng.standard_normal(100), "c": c, "neg_b": -b})
    fitted = CorrelationFilter(threshold=0.9).fit(X)
    assert fitted.get_feature_names_out().tolist() == ["a", "b", "c"]
    assert fitted.transform(X).shape == (100, 3)
    assert CorrelationFilter(threshold=1.0).fit(X).get_support().all()


def test_concordance_per_feature_matches_scikit_survival(whas500) -> None:
    X, y = whas500  # has tied times and tied feature values
    ours = concordance_per_feature(X.to_numpy(), y["fstat"], y["lenfol"])
    reference = [concordance_index_censored(y["fstat"], y["lenfol"], X[c].to_numpy())[0] for c in X.columns]
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-12)


def test_cox_score_z_equals_log_rank_for_a_binary_feature_without_tied_times() -> None:
    from lifelines.statistics import logrank_test

    rng = np.random.default_rng(3)
    group = rng.integers(0, 2, 80).astype(float)
    time = rng.exponential(np.exp(-0.7 * group))
    event = rng.random(80) < 0.7
    z = cox_score_z_per_feature(group[:, None], event, time)[0]
    reference = logrank_test(time[group == 1], time[group == 0], event[group == 1], event[group == 0])
    assert z**2 == pytest.approx(reference.test_statistic, rel=1e-10)
    assert z > 0  # group 1 has the higher hazard


@pytest.mark.parametrize("method", ["concordance", "cox_score"])
def test_univariate_selector_keeps_the_informative_features(method: str) -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((120, 40))
    time = rng.exponential(np.exp(-(1.2 * X[:, 5] - 1.2 * X[:, 17])))
    y = Surv.from_arrays(event=rng.random(120) < 0.8, time=time, name_event="event", name_time="time")
    selector = UnivariateSurvivalSelector(k=2, method=method).fit(X, y)
    assert np.flatnonzero(selector.get_support()).tolist() == [5, 17]
    assert selector.transform(X).shape == (120, 2)
    assert clone(selector).get_params() == {"k": 2, "method": method}
    assert UnivariateSurvivalSelector(k=100).fit(X, y).get_support().all()


def test_univariate_selector_rejects_bad_parameters_and_outcomes() -> None:
    X = np.random.default_rng(0).standard_normal((10, 3))
    y = Surv.from_arrays(event=[True, False] * 5, time=np.arange(1, 11), name_event="event", name_time="time")
    with pytest.raises(ValueError, match="method"):
        UnivariateSurvivalSelector(method="magic").fit(X, y)
    with pytest.raises(ValueError):
        UnivariateSurvivalSelector().fit(X, np.arange(10.0))  # not a survival outcome
