"""Nested CV (grid search inside outer folds) and patient-grouped CV of lesion-level data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sabrkit.errors import ConfigError
from sabrkit.models.dataset import make_dataset
from sabrkit.models.estimators import build_pipeline
from sabrkit.models.simulation import simulate_feature_cohort
from sabrkit.models.tuning import EventStratifiedKFold, tuned_pipeline
from sabrkit.models.validation import cv_splits, repeated_stratified_cv


@pytest.fixture(scope="module")
def cohort():
    return simulate_feature_cohort(np.random.default_rng(11), 60, 40, n_informative=3, log_hazard_ratio=2.0)


def test_inner_splitter_stratifies_on_the_event(cohort) -> None:
    splitter = EventStratifiedKFold(3, random_state=0)
    fraction = cohort.y["event"].mean()
    for _, test in splitter.split(cohort.X, cohort.y):
        assert abs(cohort.y["event"][test].mean() - fraction) <= 1 / 20 + 1e-12
    groups = np.repeat(np.arange(20), 3)
    for train, test in splitter.split(cohort.X, cohort.y, groups):
        assert not set(groups[train]) & set(groups[test])


def test_grid_is_checked_against_the_pipeline(cohort) -> None:
    pipeline = build_pipeline("coxnet")
    with pytest.raises(ConfigError, match=r"tuning parameter\(s\) \['coxnet__learning_rate'\]"):
        tuned_pipeline(pipeline, {"coxnet__learning_rate": [0.1]})
    with pytest.raises(ConfigError, match="empty tuning grid"):
        tuned_pipeline(pipeline, {})


def test_nested_cv_tunes_inside_every_outer_training_fold(cohort) -> None:
    search = tuned_pipeline(
        build_pipeline("coxnet", k=5), {"select__k": [2, 8], "coxnet__l1_ratio": [0.5, 1.0]}, inner_splits=3
    )
    result = repeated_stratified_cv(search, cohort, n_splits=4, n_repeats=1, random_state=0)
    chosen = [json.loads(text) for text in result.folds["best_params"]]
    assert len(chosen) == 4 and all(set(c) == {"select__k", "coxnet__l1_ratio"} for c in chosen)
    assert result.summary["uno_c_mean"] > 0.65
    assert result.oof["surv_24"].notna().all()  # survival functions come from the refitted best pipeline


def test_lesion_rows_of_a_patient_never_straddle_a_fold() -> None:
    rng = np.random.default_rng(2)
    patients = np.repeat([f"SABR-RCC-{i:03d}" for i in range(1, 31)], rng.integers(1, 4, 30))
    lesion_ids = [f"{p}-L{k}" for p, k in zip(patients, pd.Series(patients).groupby(patients).cumcount() + 1)]
    X = pd.DataFrame(
        {"original_firstorder_Mean": rng.standard_normal(len(patients))},
        index=pd.Index(lesion_ids, name="lesion_id"),
    )
    event = rng.random(len(patients)) < 0.4
    dataset = make_dataset(
        X,
        event,
        rng.uniform(1, 24, len(patients)),
        "radiomic",
        "local_control",
        groups=patients,
        unit="lesion",
    )
    splits = cv_splits(dataset, n_splits=5, n_repeats=3, random_state=0)
    assert len(splits) == 15
    for _, _, train, test in splits:
        assert not set(patients[train]) & set(patients[test])
    result = repeated_stratified_cv(build_pipeline("coxph"), dataset, n_splits=5, n_repeats=2, random_state=0)
    assert {"lesion_id", "study_id"} <= set(result.oof.columns)
    assert result.settings["grouped"] is True
    for _, rows in result.oof.groupby("repeat"):
        assert sorted(rows["lesion_id"]) == sorted(lesion_ids)
