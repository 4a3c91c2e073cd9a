"""Low-risk profile (standardised mean differences), risk by therapy class, screening with FDR, plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from scipy.stats import false_discovery_control

from sabrkit.errors import ModelInputError
from sabrkit.models.assembly import assemble_dataset
from sabrkit.models.plots import plot_therapy_forest, plot_volcano
from sabrkit.models.profile import low_risk_profile, risk_by_therapy, standardised_mean_difference
from sabrkit.models.screening import benjamini_hochberg, univariate_cox_screen


@pytest.fixture(scope="module")
def dataset(toy_cohort):
    return assemble_dataset(
        toy_cohort["patient_features"],
        toy_cohort["endpoints"],
        toy_cohort["clinical"],
        "clinical+radiomic+biomarker",
        biomarkers=toy_cohort["biomarkers"],
    )


@pytest.fixture(scope="module")
def groups(dataset) -> pd.Series:
    """Risk groups by the planted signal itself: high SumEntropy = high risk."""
    value = dataset.X["original_glcm_SumEntropy"]
    return pd.Series(np.where(value > value.median(), "high", "low"), index=dataset.X.index)


def test_smd_formulas() -> None:
    low, high = np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 4.0, 5.0, 6.0])
    assert standardised_mean_difference(low, high) == pytest.approx(
        -2 / np.sqrt((low.var(ddof=1) + high.var(ddof=1)) / 2)
    )
    p_low, p_high = 0.75, 0.25
    expected = (p_low - p_high) / np.sqrt((p_low * (1 - p_low) + p_high * (1 - p_high)) / 2)
    assert standardised_mean_difference(
        np.array([1, 1, 1, 0.0]), np.array([1, 0, 0, 0.0]), binary=True
    ) == pytest.approx(expected)
    assert standardised_mean_difference(np.ones(3), np.ones(3)) == 0.0


def test_profile_lists_every_block_and_finds_the_planted_characteristics(dataset, groups) -> None:
    profile = low_risk_profile(dataset, groups)
    assert set(profile["block"]) == {"clinical", "radiomic", "biomarker"}
    row = profile.set_index(["characteristic", "level"])
    sum_entropy = row.loc[("original_glcm_SumEntropy", ""), "smd"]
    assert sum_entropy < -1.5  # the low-risk group has homogeneous texture (by construction of the groups)
    therapy_levels = profile[profile["characteristic"] == "systemic_therapy"]["level"].tolist()
    assert sorted(therapy_levels) == ["ici", "none", "tki", "tki_ici"]
    share = (dataset.characteristics["disease_state"] == "oligometastatic")[groups == "low"].mean()
    assert row.loc[("disease_state", "oligometastatic"), "low_value"] == pytest.approx(share)
    with pytest.raises(ModelInputError, match="risk groups missing"):
        low_risk_profile(dataset, groups.iloc[:10])


def test_risk_by_therapy_matches_lifelines_within_each_class(dataset, groups) -> None:
    table = risk_by_therapy(dataset, groups)
    assert table["therapy"].tolist()[-1] == "all" and table["n"].iloc[-1] == 60
    assert table.set_index("therapy").loc["none", "label"] == "SABR alone"
    frame = pd.DataFrame(
        {
            "time": dataset.y["time"],
            "event": dataset.y["event"].astype(int),
            "high_risk": (groups == "high").astype(int).to_numpy(),
        }
    )
    expected = CoxPHFitter().fit(frame, "time", "event").summary.loc["high_risk"]
    overall = table.iloc[-1]
    assert overall["hazard_ratio"] == pytest.approx(expected["exp(coef)"], rel=1e-6)
    assert overall["ci_low"] == pytest.approx(expected["exp(coef) lower 95%"], rel=1e-6)
    assert overall["hazard_ratio"] > 1.5
    figure = plot_therapy_forest(table, note="prognostic")
    assert len(figure.axes) == 1


def test_benjamini_hochberg_matches_scipy_and_keeps_nan() -> None:
    p = np.array([0.001, 0.02, np.nan, 0.04, 0.5])
    q = benjamini_hochberg(p)
    assert np.isnan(q[2])
    assert q[[0, 1, 3, 4]] == pytest.approx(false_discovery_control(p[[0, 1, 3, 4]], method="bh"))


def test_screening_reports_lifelines_hazard_ratios_and_fdr(dataset) -> None:
    table = univariate_cox_screen(dataset, ("biomarker", "radiomic"), fdr=0.1)
    assert set(table["block"]) == {"biomarker", "radiomic"}
    assert len(table) == len(dataset.blocks["biomarker"]) + len(dataset.blocks["radiomic"])
    top = table.iloc[0]
    assert top["feature"] in {"original_glcm_SumEntropy", "original_glcm_JointEntropy", "ctdna_baseline"}
    assert top["significant"] and top["hazard_ratio"] > 1.5
    x = dataset.X["ctdna_baseline"]
    frame = pd.DataFrame(
        {"x": (x - x.mean()) / x.std(ddof=1), "time": dataset.y["time"], "event": dataset.y["event"]}
    )
    expected = CoxPHFitter().fit(frame, "time", "event").summary.loc["x"]
    row = table.set_index("feature").loc["ctdna_baseline"]
    assert row["hazard_ratio"] == pytest.approx(expected["exp(coef)"], rel=1e-6)
    assert row["p_value"] == pytest.approx(expected["p"], rel=1e-6)
    assert row["ci_high"] == pytest.approx(expected["exp(coef) upper 95%"], rel=1e-6)
    assert table["q_value"].to_numpy() == pytest.approx(benjamini_hochberg(table["p_value"].to_numpy()))
    noise = table[table["feature"].str.contains("Noise")]
    assert noise["significant"].mean() < 0.2
    figure = plot_volcano(table)
    assert len(figure.axes) == 1
    with pytest.raises(ModelInputError, match="screening needs"):
        univariate_cox_screen(dataset.select("clinical"), ("biomarker",))
