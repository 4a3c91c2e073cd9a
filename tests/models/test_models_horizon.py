"""Fixed-horizon classifier: labels, patients censored before 12 months, IPCW, contract."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sksurv.nonparametric import CensoringDistributionEstimator
from sksurv.util import Surv

from sabrkit.errors import ModelInputError
from sabrkit.models.estimators import build_pipeline
from sabrkit.models.horizon import FixedHorizonClassifier, horizon_labels
from sabrkit.models.simulation import simulate_feature_cohort
from sabrkit.models.validation import repeated_stratified_cv


def test_labels_never_call_a_patient_censored_before_the_horizon_progression_free() -> None:
    event = np.array([True, True, False, False, True])
    time = np.array([3.0, 15.0, 5.0, 20.0, 12.0])
    label, known = horizon_labels(event, time, 12.0)
    assert label.tolist() == [True, False, False, False, True]  # event at exactly 12 months counts
    assert known.tolist() == [True, True, False, True, True]  # censored at 5 months: unknown


def _toy(n: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    event_time = rng.exponential(12.0 / np.exp(1.2 * x[:, 0]))
    censor = rng.uniform(2, 30, n)
    y = Surv.from_arrays(
        event_time <= censor, np.minimum(event_time, censor), name_event="event", name_time="time"
    )
    return x, y


def test_exclude_fits_the_classifier_on_known_labels_only() -> None:
    X, y = _toy()
    model = FixedHorizonClassifier(12.0, censoring="exclude", classifier=LogisticRegression(C=1.0)).fit(X, y)
    label, known = horizon_labels(y["event"], y["time"], 12.0)
    reference = LogisticRegression(C=1.0).fit(X[known], label[known].astype(int))
    assert model.coef_ == pytest.approx(reference.coef_.ravel())
    assert model.n_censored_before_horizon_ == int((~known).sum()) > 0
    assert model.n_progressed_ + model.n_progression_free_ == int(known.sum())


def test_ipcw_weights_are_the_inverse_censoring_survival() -> None:
    X, y = _toy()
    model = FixedHorizonClassifier(12.0, censoring="ipcw", classifier=LogisticRegression(C=1.0)).fit(X, y)
    label, known = horizon_labels(y["event"], y["time"], 12.0)
    censoring = CensoringDistributionEstimator().fit(y)
    at = np.where(label, y["time"], 12.0)[known]
    weights = 1.0 / np.clip(censoring.predict_proba(at), 0.05, 1.0)
    reference = LogisticRegression(C=1.0).fit(
        X[known], label[known].astype(int), sample_weight=weights / weights.mean()
    )
    assert model.coef_ == pytest.approx(reference.coef_.ravel(), rel=1e-6)
    excluded = FixedHorizonClassifier(12.0, censoring="exclude", classifier=LogisticRegression(C=1.0)).fit(
        X, y
    )
    assert not np.allclose(model.coef_, excluded.coef_)


def test_predict_is_the_risk_of_progression_and_score_is_harrell_c() -> None:
    X, y = _toy(seed=1)
    model = FixedHorizonClassifier(12.0).fit(X, y)
    risk = model.predict(X)
    assert ((risk > 0) & (risk < 1)).all()
    assert model.predict_proba(X)[:, 0] == pytest.approx(1 - risk)
    assert model.score(X, y) > 0.65  # higher x0 -> earlier progression -> higher risk
    assert not hasattr(clone(model), "classifier_")


def test_a_horizon_without_both_outcomes_is_refused() -> None:
    X, y = _toy()
    with pytest.raises(ModelInputError, match="needs both outcomes"):
        FixedHorizonClassifier(1000.0).fit(X, y)  # every known label is a progression


def test_horizon_pipeline_cross_validates_like_a_survival_model() -> None:
    dataset = simulate_feature_cohort(
        np.random.default_rng(11), 60, 50, n_informative=3, log_hazard_ratio=2.5
    )
    result = repeated_stratified_cv(
        build_pipeline("horizon_logistic", k=5), dataset, n_splits=5, n_repeats=2, random_state=0
    )
    assert result.summary["uno_c_mean"] > 0.7 and result.summary["auc_12_mean"] > 0.7
    # no survival function: the IBS and calibration are undefined and say why
    assert (
        result.folds["ibs"].isna().all()
        and result.folds["undefined"].str.contains("no survival function").all()
    )
    assert result.oof["surv_24"].isna().all()
