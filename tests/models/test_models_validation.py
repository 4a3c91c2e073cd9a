"""Repeated stratified CV: negative control, planted signal, stratification, in-fold cut-offs."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedKFold

from sabrkit.errors import ModelInputError
from sabrkit.models.dataset import SurvivalDataset
from sabrkit.models.estimators import build_pipeline
from sabrkit.models.selection import UnivariateSurvivalSelector
from sabrkit.models.simulation import simulate_feature_cohort
from sabrkit.models.validation import (
    evaluate_fold,
    fold_concordance,
    permuted_control,
    repeated_stratified_cv,
    stratification_labels,
)


@pytest.fixture(scope="module")
def noise_cohort():
    """60 patients x 1000 pure-noise features, about 35 events."""
    return simulate_feature_cohort(np.random.default_rng(20240501), n_patients=60, n_features=1000)


@pytest.fixture(scope="module")
def signal_cohort():
    """60 patients, 3 informative features among 200."""
    return simulate_feature_cohort(
        np.random.default_rng(11), n_patients=60, n_features=200, n_informative=3, log_hazard_ratio=2.5
    )


def test_pure_noise_gives_chance_concordance_when_selection_is_inside_the_folds(noise_cohort) -> None:
    assert 30 <= noise_cohort.n_events <= 40
    result = repeated_stratified_cv(
        build_pipeline("coxnet"), noise_cohort, n_splits=5, n_repeats=3, random_state=0
    )
    assert 0.40 <= result.summary["uno_c_mean"] <= 0.60
    assert 0.40 <= result.summary["harrell_c_mean"] <= 0.60


def test_selecting_on_all_patients_first_leaks(noise_cohort) -> None:
    """The harness detects leakage: selecting before CV inflates C on pure noise (README: ~0.76)."""
    preselected = UnivariateSurvivalSelector(k=10).fit(noise_cohort.X, noise_cohort.y).get_feature_names_out()
    leaky = SurvivalDataset(noise_cohort.X[preselected], noise_cohort.y, "leaky", tuple(preselected))
    result = repeated_stratified_cv(build_pipeline("coxnet"), leaky, n_splits=5, n_repeats=3, random_state=0)
    assert result.summary["uno_c_mean"] > 0.65


def test_planted_signal_is_found(signal_cohort) -> None:
    result = repeated_stratified_cv(
        build_pipeline("coxnet"), signal_cohort, n_splits=5, n_repeats=3, random_state=0
    )
    assert result.summary["uno_c_mean"] >= 0.65
    assert result.summary["n_uno_undefined"] == 0


def test_permuted_outcome_control_destroys_the_signal(signal_cohort) -> None:
    control = permuted_control(
        build_pipeline("coxnet"),
        signal_cohort,
        np.random.default_rng(2),
        n_splits=5,
        n_repeats=3,
        random_state=0,
    )
    assert control.settings["control"] == "permuted outcome"
    assert 0.35 <= control.summary["uno_c_mean"] <= 0.62
    assert control.summary["n_events"] == signal_cohort.n_events


def test_result_tables_and_summary(signal_cohort) -> None:
    result = repeated_stratified_cv(
        build_pipeline("coxnet"), signal_cohort, n_splits=4, n_repeats=2, random_state=3
    )
    assert len(result.folds) == 8
    assert result.folds[["repeat", "fold"]].drop_duplicates().shape[0] == 8
    assert list(result.oof.columns) == [
        "study_id",
        "repeat",
        "fold",
        "risk",
        "risk_group",
        "surv_12",
        "surv_24",
    ]
    assert result.oof[["surv_12", "surv_24"]].notna().all().all()  # coxnet has a baseline survival function
    assert ((result.oof["surv_24"] <= result.oof["surv_12"] + 1e-12) & (result.oof["surv_24"] >= 0)).all()
    for _, rows in result.oof.groupby("repeat"):  # every patient exactly once per repeat
        assert sorted(rows["study_id"]) == sorted(signal_cohort.study_ids)
    assert set(result.oof["risk_group"]) == {"high", "low"}
    assert (result.folds["tau_months"] <= 24.0).all()
    summary = result.summary
    for key in (
        "harrell_c_mean",
        "harrell_c_sd",
        "harrell_c_p025",
        "harrell_c_p975",
        "uno_c_mean",
        "uno_c_sd",
    ):
        assert np.isfinite(summary[key])
    assert summary["harrell_c_p025"] <= summary["harrell_c_mean"] <= summary["harrell_c_p975"]
    assert summary["n_patients"] == 60 and summary["n_events"] == signal_cohort.n_events
    # summaries are over repeats: each repeat's value is the mean of its folds
    assert list(result.repeats["repeat"]) == [0, 1]
    per_repeat = result.folds.groupby("repeat")["uno_c"].mean().to_numpy()
    assert result.repeats["uno_c"].to_numpy() == pytest.approx(per_repeat)
    assert summary["uno_c_mean"] == pytest.approx(per_repeat.mean())
    assert summary["uno_c_sd"] == pytest.approx(np.std(per_repeat, ddof=1))
    assert summary["uno_c_fold_sd"] == pytest.approx(result.folds["uno_c"].std(ddof=1))
    for key in ("auc_12_mean", "auc_24_mean", "ibs_mean", "ibs_km_mean", "calibration_error_24_mean"):
        assert key in summary


def test_cv_is_deterministic_given_random_state(signal_cohort) -> None:
    first = repeated_stratified_cv(build_pipeline("coxnet"), signal_cohort, n_repeats=2, random_state=7)
    again = repeated_stratified_cv(build_pipeline("coxnet"), signal_cohort, n_repeats=2, random_state=7)
    other = repeated_stratified_cv(build_pipeline("coxnet"), signal_cohort, n_repeats=2, random_state=8)
    pd.testing.assert_frame_equal(first.oof, again.oof)
    pd.testing.assert_frame_equal(first.folds, again.folds)
    assert not first.oof["fold"].equals(other.oof["fold"])


def test_every_test_fold_keeps_the_event_fraction(noise_cohort) -> None:
    dataset = SurvivalDataset(
        noise_cohort.X.iloc[:, :5], noise_cohort.y, "small", tuple(noise_cohort.X.columns[:5])
    )
    labels = stratification_labels(dataset)
    assert set(labels) == {0, 1}  # the event indicator, not the (event, time) pairs
    result = repeated_stratified_cv(build_pipeline("coxph"), dataset, n_splits=5, n_repeats=4, random_state=1)
    overall = dataset.y["event"].mean()
    fold_size = dataset.n_patients / 5
    fractions = result.folds["n_test_events"] / result.folds["n_test"]
    assert (np.abs(fractions - overall) <= 1 / fold_size + 1e-12).all()
    # what the structured y would do: every distinct (event, time) pair is its own class
    with pytest.raises(ValueError, match="number of members in each class"):
        list(StratifiedKFold(5).split(dataset.X, dataset.y))


def test_strata_are_crossed_with_the_event(signal_cohort) -> None:
    site = pd.Series(np.where(np.arange(60) % 3 == 0, "lung", "bone"), index=signal_cohort.X.index)
    labels = stratification_labels(signal_cohort, site)
    assert set(labels) <= {"0|lung", "1|lung", "0|bone", "1|bone"}
    result = repeated_stratified_cv(
        build_pipeline("coxnet"), signal_cohort, n_splits=3, n_repeats=1, random_state=0, strata=site
    )
    for fold in range(3):
        test_ids = result.oof.loc[result.oof["fold"] == fold, "study_id"]
        # each (event, site) cell is split evenly (+-1), so 20 lung patients give 20/3 +- 2 per fold
        assert abs((site.loc[test_ids] == "lung").sum() - 20 / 3) <= 2
    with pytest.raises(ModelInputError, match="no_such_column"):
        stratification_labels(signal_cohort, "no_such_column")


def test_risk_cutoff_comes_from_the_training_fold_only(signal_cohort) -> None:
    pipeline = build_pipeline("coxnet")
    train, test = np.arange(0, 48), np.arange(48, 60)
    evaluation = evaluate_fold(pipeline, signal_cohort, train, test)
    # the cut-off is the median risk of the training patients under the model fitted on them
    fitted = pipeline.fit(signal_cohort.X.iloc[train], signal_cohort.y[train])
    assert evaluation.risk_cutoff == pytest.approx(
        float(np.median(fitted.predict(signal_cohort.X.iloc[train])))
    )
    # changing the test patients (features and outcomes) leaves the cut-off unchanged
    X_changed = signal_cohort.X.copy()
    X_changed.iloc[test] = X_changed.iloc[test] * 5.0 + 3.0
    y_changed = signal_cohort.y.copy()
    y_changed["time"][test] = y_changed["time"][test][::-1]
    changed = SurvivalDataset(X_changed, y_changed, "changed", signal_cohort.feature_names)
    changed_evaluation = evaluate_fold(pipeline, changed, train, test)
    assert changed_evaluation.risk_cutoff == evaluation.risk_cutoff
    assert not np.allclose(changed_evaluation.test_risk, evaluation.test_risk)
    expected = np.where(changed_evaluation.test_risk > evaluation.risk_cutoff, "high", "low")
    assert (changed_evaluation.risk_group == expected).all()


def test_cv_records_the_training_cutoff_of_each_fold(signal_cohort) -> None:
    result = repeated_stratified_cv(
        build_pipeline("coxnet"), signal_cohort, n_splits=5, n_repeats=1, random_state=0
    )
    oof = result.oof.merge(result.folds[["repeat", "fold", "risk_cutoff"]], on=["repeat", "fold"])
    assert ((oof["risk"] > oof["risk_cutoff"]) == (oof["risk_group"] == "high")).all()


def test_undefined_concordance_is_nan_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    from sksurv.util import Surv

    y_train = Surv.from_arrays(
        [True, False, True, True], [5.0, 8.0, 12.0, 30.0], name_event="event", name_time="time"
    )
    y_test = Surv.from_arrays([False, False, False], [4.0, 9.0, 15.0], name_event="event", name_time="time")
    harrell, uno, tau, undefined = fold_concordance(
        y_train, y_test, np.array([0.1, 0.2, 0.3]), tau_months=24.0
    )
    assert np.isnan(harrell) and np.isnan(uno) and tau == 24.0 and len(undefined) == 2

    # a cohort with few events: some 6-fold test folds have no event before tau
    dataset = simulate_feature_cohort(np.random.default_rng(4), 30, 5, event_fraction=0.2, median_months=40.0)
    with caplog.at_level(logging.WARNING, logger="sabrkit.models.validation"):
        result = repeated_stratified_cv(
            build_pipeline("coxph"), dataset, n_splits=6, n_repeats=2, random_state=0
        )
    n_nan = int(result.folds["uno_c"].isna().sum())
    assert n_nan > 0
    assert result.summary["n_uno_undefined"] == n_nan
    assert np.isfinite(result.summary["uno_c_mean"])
    assert "undefined metric" in caplog.text
    assert result.folds["undefined"].str.contains("uno:").sum() == n_nan
