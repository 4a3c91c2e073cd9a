"""The dose-dependent local-failure model of the generator: consistency and the planted BED10 effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sabrkit.synthetic import SynthConfig, local_control
from sabrkit.synthetic.cohort import generate_cohort


@pytest.fixture(scope="module")
def large_cohort():
    """1,500 patients (about 3,000 lesions); tables only, nothing rendered."""
    config = SynthConfig(n_patients=1500, seed=20240501, write_images=False)
    return generate_cohort(config, np.random.default_rng(config.seed))


def _lesion_outcomes(cohort) -> pd.DataFrame:
    """Cause-specific local-control data from the cohort's tables: a lesion fails at its patient's
    progression when assessed ``local_failure``; death, a controlled assessment and the last
    contact censor it."""
    patients = cohort.table("patients").set_index("study_id")
    progression = cohort.table("progression_events").set_index("study_id")["event_date"]
    courses = cohort.table("sabr_courses").set_index("lesion_id")
    status = cohort.table("lesion_assessments").set_index("lesion_id")["local_status"]
    lesions = cohort.table("lesions").set_index("lesion_id")
    start = pd.to_datetime(courses["start_date"])
    study = lesions["study_id"]
    end = pd.to_datetime(study.map(progression)).fillna(
        pd.to_datetime(study.map(patients["last_contact_date"]))
    )
    truth = pd.DataFrame(cohort.truth["lesions"]).T
    return pd.DataFrame(
        {
            "study_id": study,
            "months": (end - start.reindex(lesions.index)).dt.days / 30.4375,
            "failure": status.reindex(lesions.index).eq("local_failure").astype(int),
            "bed10_per_10gy": truth.loc[lesions.index, "bed10_gy"].astype(float) / 10.0,
            "log2_diameter": np.log2(lesions["longest_diameter_mm"].astype(float)),
            "heterogeneity": truth.loc[lesions.index, "heterogeneity"].astype(float),
        }
    )


def test_cause_specific_cox_recovers_the_planted_bed10_effect(large_cohort) -> None:
    """lifelines' Cox on the cohort's lesions (deaths censored, robust SE clustered by patient):
    higher BED10 lowers the hazard of local failure, larger lesions raise it, as planted."""
    from lifelines import CoxPHFitter

    data = _lesion_outcomes(large_cohort)
    assert data["failure"].sum() >= 100
    fit = CoxPHFitter().fit(
        data.drop(columns="study_id").assign(months=data["months"].clip(lower=0.01)),
        "months",
        "failure",
        cluster_col=None,
        robust=True,
    )
    summary = fit.summary
    assert summary.loc["bed10_per_10gy", "coef"] < 0 and summary.loc["bed10_per_10gy", "coef upper 95%"] < 0
    assert summary.loc["log2_diameter", "coef lower 95%"] > 0
    assert summary.loc["heterogeneity", "coef"] > 0


def test_local_failures_are_progressions_of_their_patient(large_cohort) -> None:
    events = large_cohort.table("progression_events").set_index("study_id")
    assessments = large_cohort.table("lesion_assessments")
    lesions = large_cohort.table("lesions").set_index("lesion_id")
    assessments = assessments.assign(study_id=assessments["lesion_id"].map(lesions["study_id"]))
    # every treated lesion of a patient with an observed progression is assessed on that date, no other
    assert set(assessments["study_id"]) == set(events.index)
    assert (
        pd.Series(assessments["assessment_date"].to_numpy())
        == assessments["study_id"].map(events["event_date"]).to_numpy()
    ).all()
    assert len(assessments) == lesions["study_id"].isin(events.index).sum()
    any_local = (assessments["local_status"] == "local_failure").groupby(assessments["study_id"]).any()
    kind = events["progression_type"]
    assert (kind[any_local[any_local].index].isin(["local", "both"])).all()
    assert (kind[any_local[~any_local].index] == "distant").all()
    # death before progression competes: a patient who died without progression has no assessment
    deaths = large_cohort.table("deaths").set_index("study_id")
    assert not (set(deaths.index) - set(events.index)) & set(assessments["study_id"])


def test_intercept_calibration_hits_the_local_share() -> None:
    """The calibrated intercept reproduces the target share in an independent draw of the generator."""
    alpha = local_control.calibrate_intercept()
    assert local_control.calibrate_intercept() == alpha  # deterministic
    cohort = generate_cohort(
        SynthConfig(n_patients=4000, seed=7, write_images=False), np.random.default_rng(7)
    )
    design = local_control.local_failure_design(
        cohort.table("lesions").assign(
            heterogeneity=[
                cohort.truth["lesions"][i]["heterogeneity"] for i in cohort.table("lesions")["lesion_id"]
            ]
        ),
        cohort.table("sabr_courses"),
    )
    p = local_control.local_failure_probability(design)
    share = 1 - np.exp(pd.Series(np.log1p(-p)).groupby(cohort.table("lesions")["study_id"].to_numpy()).sum())
    assert share.mean() == pytest.approx(local_control.TARGET_LOCAL_SHARE, abs=0.02)
    assert design["bed10_gy"].between(59.0, 152.0).all()  # the SABR-COMET schedules: BED10 59.5 to 151.2 Gy
