"""Paired comparison with the clinical-only model, and Harrell's bootstrap optimism correction."""

from __future__ import annotations

import numpy as np
import pytest

from sabrkit.errors import ModelInputError
from sabrkit.models.comparison import paired_cv_comparison
from sabrkit.models.dataset import make_dataset
from sabrkit.models.estimators import build_pipeline
from sabrkit.models.optimism import bootstrap_optimism
from sabrkit.models.simulation import simulate_feature_cohort
from sabrkit.models.validation import repeated_stratified_cv


@pytest.fixture(scope="module")
def cohort():
    return simulate_feature_cohort(np.random.default_rng(11), 60, 60, n_informative=3, log_hazard_ratio=2.5)


def test_differences_are_paired_fold_by_fold(cohort) -> None:
    informative = cohort.X.columns[:3].tolist()
    model = repeated_stratified_cv(
        build_pipeline("coxnet", k=5), cohort, n_splits=5, n_repeats=3, random_state=4
    )
    noise_only = make_dataset(
        cohort.X.drop(columns=informative), cohort.y["event"], cohort.y["time"], "noise"
    )
    reference = repeated_stratified_cv(
        build_pipeline("coxnet", k=5), noise_only, n_splits=5, n_repeats=3, random_state=4
    )
    comparison = paired_cv_comparison(model, reference, "noise")
    folds = comparison.folds
    assert (folds["uno_c_diff"] == folds["uno_c_model"] - folds["uno_c_reference"]).all()
    assert (folds["ibs_diff"] == folds["ibs_reference"] - folds["ibs_model"]).all()  # lower IBS is better
    per_repeat = folds.groupby("repeat")["uno_c_diff"].mean()
    assert comparison.summary["delta_uno_c_mean"] == pytest.approx(per_repeat.mean())
    assert comparison.summary["delta_uno_c_sd"] == pytest.approx(per_repeat.std(ddof=1))
    assert (
        comparison.summary["delta_uno_c_mean"] > 0.15
        and comparison.summary["delta_uno_c_share_better"] == 1.0
    )
    assert comparison.summary["delta_ibs_mean"] > 0


def test_results_from_different_folds_cannot_be_paired(cohort) -> None:
    first = repeated_stratified_cv(build_pipeline("coxnet"), cohort, n_splits=3, n_repeats=1, random_state=0)
    other = repeated_stratified_cv(build_pipeline("coxnet"), cohort, n_splits=3, n_repeats=1, random_state=1)
    with pytest.raises(ModelInputError, match="different folds"):
        paired_cv_comparison(first, other)


def test_bootstrap_optimism_shrinks_the_apparent_concordance(cohort) -> None:
    signal = bootstrap_optimism(
        build_pipeline("coxnet", k=5), cohort, np.random.default_rng(0), n_bootstrap=20
    )
    assert signal["harrell_c_optimism"] > 0
    assert signal["harrell_c_corrected"] == pytest.approx(
        signal["harrell_c_apparent"] - signal["harrell_c_optimism"]
    )
    assert signal["harrell_c_corrected"] > 0.7 and signal["n_bootstrap_failed"] == 0
    noise = simulate_feature_cohort(np.random.default_rng(3), 60, 200)
    chance = bootstrap_optimism(
        build_pipeline("coxnet", k=10), noise, np.random.default_rng(0), n_bootstrap=20
    )
    assert chance["harrell_c_apparent"] > 0.7  # selection on all patients looks good ...
    assert chance["harrell_c_optimism"] > 0.1  # ... the bootstrap removes much of it ...
    # ... but not all: with p >> n the corrected C of pure noise stays above 0.5 (repeated CV does not)
    assert 0.5 < chance["harrell_c_corrected"] < 0.66
