"""Lesion-level validation keeps every patient's lesions in one fold (dose features, local control)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold

from sabrkit.models import assemble_lesion_dataset
from sabrkit.models.validation import cv_splits
from sabrkit.synthetic import SynthConfig
from sabrkit.synthetic.cohort import generate_cohort


@pytest.fixture(scope="module")
def lesion_dataset():
    """The synthetic registry's lesions (1-5 per patient) with dose-map features and a local-control outcome."""
    cohort = generate_cohort(SynthConfig(n_patients=40, seed=20240513), np.random.default_rng(20240513))
    lesions = cohort.table("lesions")[["lesion_id", "study_id"]]
    rng = np.random.default_rng(7)
    features = lesions.assign(
        dose_firstorder_Mean=rng.normal(60, 10, len(lesions)),
        bed_firstorder_Mean=rng.normal(120, 20, len(lesions)),
    )
    outcomes = lesions.assign(
        local_control_months=rng.uniform(1, 36, len(lesions)), local_failure=rng.random(len(lesions)) < 0.4
    )
    return assemble_lesion_dataset(features, outcomes, feature_set="radiomic")


def test_cv_groups_keep_a_patients_lesions_together(lesion_dataset) -> None:
    patients = pd.Series(lesion_dataset.study_ids)
    assert patients.value_counts().max() >= 3  # several lesions per patient: a straddle is possible
    splits = cv_splits(lesion_dataset, n_splits=5, n_repeats=3, random_state=0)
    for repeat in range(3):
        tested = np.concatenate([test for r, _, _, test in splits if r == repeat])
        assert sorted(tested) == list(range(len(patients)))  # each lesion tested once per repeat
    for _, _, train, test in splits:
        assert not set(patients.iloc[train]) & set(patients.iloc[test])


def test_plain_lesion_kfold_would_split_patients(lesion_dataset) -> None:
    """The control: folds drawn over lesions alone put some patient on both sides."""
    patients = pd.Series(lesion_dataset.study_ids)
    splits = KFold(5, shuffle=True, random_state=0).split(np.zeros(len(patients)))
    assert any(set(patients.iloc[train]) & set(patients.iloc[test]) for train, test in splits)
