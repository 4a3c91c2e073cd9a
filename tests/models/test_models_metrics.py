"""Fold metrics against scikit-survival called directly; the KM null model; calibration at 24 months."""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.nonparametric import kaplan_meier_estimator
from sksurv.util import Surv

from sabrkit.models.metrics import (
    calibration_at,
    calibration_summary,
    fold_metrics,
    ibs_grid,
    predict_survival_at,
)
from sabrkit.models.simulation import simulate_feature_cohort


@pytest.fixture(scope="module")
def split():
    dataset = simulate_feature_cohort(
        np.random.default_rng(9), 200, 4, n_informative=2, log_hazard_ratio=1.5, median_months=14.0
    )
    X, y = dataset.X, dataset.y
    longest = set(
        np.argsort(y["time"])[-5:].tolist()
    )  # keep the longest follow-up in training, as real folds do
    test = np.array([i for i in range(0, len(y), 4) if i not in longest])
    train = np.setdiff1d(np.arange(len(y)), test)
    model = CoxPHSurvivalAnalysis().fit(X.iloc[train], y[train])
    return model, X.iloc[test], y[train], y[test]


def test_metrics_equal_scikit_survival_on_a_clean_split(split) -> None:
    model, X_test, y_train, y_test = split
    risk = model.predict(X_test)
    grid = ibs_grid(y_test, 24.0, y_train=y_train)
    survival = predict_survival_at(model, X_test, grid)
    metrics, undefined = fold_metrics(y_train, y_test, risk, survival, grid, 24.0)
    assert metrics["harrell_c"] == pytest.approx(
        concordance_index_censored(y_test["event"], y_test["time"], risk)[0]
    )
    assert metrics["uno_c"] == pytest.approx(concordance_index_ipcw(y_train, y_test, risk, tau=24.0)[0])
    for t in (12.0, 24.0):
        expected = cumulative_dynamic_auc(y_train, y_test, risk, [t])[0][0]
        assert metrics[f"auc_{t:g}"] == pytest.approx(expected)
    expected_ibs = integrated_brier_score(y_train, y_test, survival, grid)
    assert metrics["ibs"] == pytest.approx(expected_ibs)
    # the null model: the training Kaplan-Meier curve for every test patient
    x, prob = kaplan_meier_estimator(y_train["event"], y_train["time"])
    km = np.array([prob[np.searchsorted(x, t, side="right") - 1] for t in grid])
    assert metrics["ibs_km"] == pytest.approx(
        integrated_brier_score(y_train, y_test, np.tile(km, (len(y_test), 1)), grid)
    )
    assert metrics["ibs_gain"] == pytest.approx(metrics["ibs_km"] - metrics["ibs"])
    assert metrics["ibs"] < metrics["ibs_km"]  # an informative model beats the null model
    assert undefined == ()
    assert grid[0] == 1.0 and grid[-1] <= 24.0 and np.all(np.diff(grid) == 1.0)


def test_survival_is_carried_forward_past_the_training_follow_up(split) -> None:
    model, X_test, _, _ = split
    last = model.unique_times_[-1]
    at = predict_survival_at(model, X_test, [last, last + 50.0])
    assert at[:, 1] == pytest.approx(at[:, 0])
    assert predict_survival_at(object(), X_test, [1.0]) is None


def test_undefined_metrics_are_nan_with_reasons() -> None:
    y_train = Surv.from_arrays(
        [True, False, True, True, False], [2.0, 8.0, 12.0, 30.0, 31.0], name_event="event", name_time="time"
    )
    y_test = Surv.from_arrays([True, False, False], [3.0, 9.0, 10.0], name_event="event", name_time="time")
    risk = np.array([0.9, 0.2, 0.1])
    grid = ibs_grid(y_test, 24.0, y_train=y_train)
    metrics, undefined = fold_metrics(y_train, y_test, risk, None, grid, 24.0)
    assert np.isfinite(metrics["harrell_c"]) and np.isnan(metrics["auc_12"]) and np.isnan(metrics["auc_24"])
    assert np.isnan(metrics["ibs"]) and np.isfinite(metrics["ibs_km"])
    text = "; ".join(undefined)
    assert "auc_12: needs a test event by 12 months and a test patient beyond it" in text
    assert "ibs: the model predicts no survival function" in text


def test_events_after_the_training_follow_up_do_not_break_auc_12() -> None:
    # the test fold's last patient has an event after the training fold's last time: scikit-survival
    # would refuse it (no censoring weight there); it only counts as a control at 12 months
    y_train = Surv.from_arrays(
        [True, False, True, True, False, True],
        [2.0, 5.0, 9.0, 14.0, 16.0, 20.0],
        name_event="event",
        name_time="time",
    )
    y_test = Surv.from_arrays(
        [True, True, False, True], [4.0, 10.0, 15.0, 26.0], name_event="event", name_time="time"
    )
    risk = np.array([0.9, 0.6, 0.3, 0.2])
    with pytest.raises(ValueError, match="time must be smaller than largest observed time point"):
        cumulative_dynamic_auc(y_train, y_test, risk, [12.0])
    metrics, _ = fold_metrics(y_train, y_test, risk, None, ibs_grid(y_test, 24.0, y_train=y_train), 24.0)
    truncated = y_test.copy()
    truncated["event"] = truncated["event"] & (truncated["time"] <= 12.0)
    assert metrics["auc_12"] == pytest.approx(cumulative_dynamic_auc(y_train, truncated, risk, [12.0])[0][0])
    assert metrics["auc_12"] == 1.0  # both cases (4, 10 months) outrank both controls


def test_calibration_groups_compare_mean_prediction_with_kaplan_meier() -> None:
    rng = np.random.default_rng(0)
    n = 300
    rate = rng.permutation(np.repeat([0.01, 0.03, 0.08], n // 3))  # tertiles of prediction = the three rates
    time = rng.exponential(1 / rate)
    censor = rng.uniform(20, 40, n)
    observed, event = np.minimum(time, censor), time <= censor
    true_s24 = np.exp(-rate * 24)
    table = calibration_at(true_s24, observed, event, months=24.0, n_groups=3)
    assert list(table["group"]) == [1, 2, 3] and table["n"].sum() == n
    x, prob = kaplan_meier_estimator(event[true_s24 == true_s24.min()], observed[true_s24 == true_s24.min()])
    assert table.loc[0, "observed"] == pytest.approx(prob[np.searchsorted(x, 24.0, side="right") - 1])
    assert (table["observed_low"] <= table["observed"]).all() and (
        table["observed"] <= table["observed_high"]
    ).all()
    good = calibration_summary(table)
    bad = calibration_summary(calibration_at(np.clip(true_s24 + 0.25, 0, 1), observed, event))
    assert good["calibration_error_24"] < 0.06
    assert bad["calibration_error_24"] > 0.15 and bad["calibration_in_the_large_24"] > 0.15
