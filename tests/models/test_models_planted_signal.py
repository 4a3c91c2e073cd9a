"""Planted signal of the synthetic cohort, found through the experiment runner (slow: builds the cohort).

The generator (``sabrkit.synthetic``) makes PFS depend on a latent texture heterogeneity that the
lesion images carry; ``ground_truth.json`` lists the pyradiomics features expected to track it
(``signal_features``) and the planted best-doing subgroup (``best_subgroup``: oligometastatic,
IMDC favourable, heterogeneity below 0). The experiment is ``experiments/radiomic_spca.yaml``
(supervised-PCA Cox model on the radiomic block, 10 x 5-fold CV), without MLflow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sabrkit.features import aggregate_lesions
from sabrkit.models.experiment import run_experiment
from sabrkit.models.experiment_io import ExperimentInputs
from sabrkit.models.spec import load_experiment

pytestmark = pytest.mark.slow

EXPERIMENT = Path(__file__).resolve().parents[2] / "experiments" / "radiomic_spca.yaml"


@pytest.fixture(scope="module")
def planted(synthetic_model_inputs):
    cohort = synthetic_model_inputs
    spec = load_experiment(EXPERIMENT)
    spec = spec.model_copy(
        update={
            "validation": spec.validation.model_copy(update={"bootstrap_optimism": 0}),
            "analysis": spec.analysis.model_copy(update={"permutations": 39, "interval_bootstrap": 0}),
        }
    )
    inputs = ExperimentInputs(
        endpoints=cohort.endpoints,
        clinical=cohort.clinical,
        patient_features=aggregate_lesions(cohort.lesion_features, spec.inputs.aggregation),
        lesion_features=cohort.lesion_features,
    )
    result = run_experiment(spec, inputs, tracking_uri=None, out_dir=None)
    return result, cohort


def test_out_of_fold_uno_c_reaches_0_65(planted) -> None:
    result, _ = planted
    summary = result.metrics["summary"]
    assert result.metrics["n_patients"] == 60 and result.metrics["validation"]["n_repeats"] == 10
    assert summary["uno_c_mean"] >= 0.65, summary["uno_c_mean"]
    assert result.metrics["risk_groups"]["permutation_p"] < 0.05


def test_signal_features_rank_in_the_top_ten_in_most_repeats(planted) -> None:
    result, cohort = planted
    signal = set(cohort.truth["signal_features"])
    ranks = result.tables["importance"]
    top10 = ranks[ranks["rank"] <= 10].groupby("repeat")["feature"].apply(set)
    share = (top10.map(lambda features: bool(features & signal))).mean()
    assert len(top10) == 10 and share >= 0.8, share
    # more than chance: the radiomic block has about 110 features of which 15 are signal features
    mean_signal_in_top10 = top10.map(lambda features: len(features & signal)).mean()
    assert mean_signal_in_top10 >= 3, mean_signal_in_top10


def test_planted_best_subgroup_appears_in_the_low_risk_profile(planted) -> None:
    result, cohort = planted
    best = cohort.truth["best_subgroup"]
    truth = cohort.truth_patients.set_index("study_id")
    groups = (
        result.tables["oof"]
        .groupby("study_id")["risk_group"]
        .agg(lambda g: "high" if (g == "high").mean() >= 0.5 else "low")
    )
    members = truth.index[truth["best_subgroup"].astype(bool)]
    assert len(members) >= 5
    assert (groups.loc[members] == "low").mean() >= 0.8  # the planted best-doing patients are called low risk
    profile = result.tables["profile"].set_index(["characteristic", "level"])["smd"]
    # the subgroup's defining traits, as the profile of the low-risk group shows them
    assert profile[("disease_state", best["disease_state"])] > 0.2
    assert profile[("original_firstorder_Entropy", "")] < -0.5  # homogeneous lesion texture
    assert profile[("original_firstorder_Uniformity", "")] > 0.5
