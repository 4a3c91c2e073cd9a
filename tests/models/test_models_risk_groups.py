"""Out-of-fold risk groups: Kaplan-Meier per group, log-rank test, plot with numbers at risk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test

from sabrkit.errors import ModelInputError
from sabrkit.models.risk_groups import km_by_risk_group, plot_km_risk_groups


@pytest.fixture(scope="module")
def oof_and_endpoints() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(12)
    ids = [f"SABR-RCC-{i:03d}" for i in range(1, 41)]
    high = rng.random(40) < 0.5
    time = rng.exponential(np.where(high, 8.0, 30.0))
    endpoints = pd.DataFrame({"study_id": ids, "pfs_months": time, "pfs_event": rng.random(40) < 0.8})
    repeats = []
    for repeat in range(3):
        flipped = high ^ (rng.random(40) < 0.1)  # other repeats disagree for a few patients
        groups = np.where(high if repeat == 0 else flipped, "high", "low")
        repeats.append(
            pd.DataFrame({"study_id": ids, "repeat": repeat, "fold": 0, "risk": 0.0, "risk_group": groups})
        )
    return pd.concat(repeats, ignore_index=True), endpoints


def test_km_and_log_rank_match_lifelines(oof_and_endpoints) -> None:
    oof, endpoints = oof_and_endpoints
    km = km_by_risk_group(oof, endpoints, repeat=0)
    rows = oof[oof["repeat"] == 0].merge(endpoints, on="study_id")
    for group in ("low", "high"):
        part = rows[rows["risk_group"] == group]
        reference = KaplanMeierFitter().fit(part["pfs_months"], part["pfs_event"])
        np.testing.assert_allclose(
            km.fitters[group].survival_function_.to_numpy(), reference.survival_function_.to_numpy()
        )
        assert km.groups.loc[group, "n"] == len(part)
        assert km.groups.loc[group, "events"] == part["pfs_event"].sum()
    high, low = rows[rows["risk_group"] == "high"], rows[rows["risk_group"] == "low"]
    reference = logrank_test(high["pfs_months"], low["pfs_months"], high["pfs_event"], low["pfs_event"])
    assert km.logrank_p_value == pytest.approx(reference.p_value)
    assert km.logrank_p_value < 0.05  # the simulated high-risk group fails earlier
    assert km.groups.loc["high", "survival_at_tau"] < km.groups.loc["low", "survival_at_tau"]


def test_pooled_counts_each_patient_once_by_majority(oof_and_endpoints) -> None:
    oof, endpoints = oof_and_endpoints
    km = km_by_risk_group(oof, endpoints, repeat="pooled")
    assert len(km.table) == 40 and km.table["study_id"].is_unique
    share = (oof["risk_group"] == "high").groupby(oof["study_id"]).mean()
    expected = np.where(share >= 0.5, "high", "low")
    assert (km.table.set_index("study_id").loc[share.index, "risk_group"].to_numpy() == expected).all()


def test_unknown_repeat_and_missing_outcomes_are_reported(oof_and_endpoints) -> None:
    oof, endpoints = oof_and_endpoints
    with pytest.raises(ModelInputError, match="repeat 7"):
        km_by_risk_group(oof, endpoints, repeat=7)
    with pytest.raises(ModelInputError, match="SABR-RCC-001"):
        km_by_risk_group(oof, endpoints.iloc[1:], repeat=0)


def test_plot_has_both_curves_and_numbers_at_risk(oof_and_endpoints, tmp_path) -> None:
    from matplotlib.figure import Figure

    oof, endpoints = oof_and_endpoints
    fig = plot_km_risk_groups(km_by_risk_group(oof, endpoints, repeat=0))
    assert isinstance(fig, Figure)
    assert len(fig.axes) >= 2  # the survival axes plus the at-risk table axes
    labels = [text.get_text() for ax in fig.axes for text in ax.get_xticklabels() + ax.texts]
    assert any("At risk" in label for label in labels)
    fig.savefig(tmp_path / "km.png")
    assert (tmp_path / "km.png").stat().st_size > 10_000


def test_permutation_test_is_one_sided_towards_a_worse_high_risk_group() -> None:
    from sabrkit.models.risk_groups import RiskGroupSurvival, logrank_permutation_test

    rng = np.random.default_rng(1)
    n = 60
    high = np.arange(n) < 30
    time = np.where(high, rng.exponential(6.0, n), rng.exponential(24.0, n))
    event = rng.random(n) < 0.8
    oof = pd.DataFrame(
        {
            "study_id": [f"SABR-RCC-{i:03d}" for i in range(n)],
            "repeat": 0,
            "fold": 0,
            "risk": 0.0,
            "risk_group": np.where(high, "high", "low"),
        }
    )
    endpoints = pd.DataFrame({"study_id": oof["study_id"], "pfs_months": time, "pfs_event": event})
    km = km_by_risk_group(oof, endpoints, repeat=0)
    z, p = logrank_permutation_test(km, np.random.default_rng(0), n_permutations=199)
    assert z == pytest.approx(np.sqrt(km.logrank_statistic), rel=1e-6) and z > 0
    assert p == pytest.approx(1 / 200)  # no permutation reaches the observed separation
    # the same separation with the labels swapped: the "high-risk" group does better -> not significant
    swapped = oof.assign(risk_group=np.where(high, "low", "high"))
    z_swapped, p_swapped = logrank_permutation_test(
        km_by_risk_group(swapped, endpoints, repeat=0), np.random.default_rng(0), n_permutations=199
    )
    assert z_swapped < 0 and p_swapped > 0.9
    assert isinstance(km, RiskGroupSurvival)
