"""The lesion-level feature blocks dose, dvh, dosiomic and delta: loading, joining, aggregation, grouping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sabrkit.errors import ModelInputError
from sabrkit.models import assemble_lesion_dataset
from sabrkit.models.assembly import assemble_dataset
from sabrkit.models.lesion_blocks import DVH_COLUMNS, aggregate_block, lesion_block
from sabrkit.models.validation import cv_splits

LESIONS = pd.DataFrame(
    {
        "lesion_id": [f"SABR-RCC-00{p}-L{n}" for p in range(1, 7) for n in (1, 2)],
        "study_id": [f"SABR-RCC-00{p}" for p in range(1, 7) for _ in (1, 2)],
    }
)


def _lesion_dose(rng: np.random.Generator) -> pd.DataFrame:
    n = len(LESIONS)
    rx = rng.choice([30.0, 50.0, 54.0], n)
    table = LESIONS.assign(prescription_gy=rx, fractions=3, bed10_rx_gy=rx * (1 + rx / 30.0))
    for column in DVH_COLUMNS:
        table[column] = rng.uniform(1, 80, n)
    return table.assign(bed_path="bed/x.nii.gz", eqd2_path="eqd2/x.nii.gz")


def _delta(rng: np.random.Generator) -> pd.DataFrame:
    """A hand-made follow-up table as helper w15f's stage writes it (delta_* columns per lesion)."""
    n = len(LESIONS)
    return LESIONS.assign(
        delta_original_firstorder_Mean=rng.normal(0, 5, n),
        delta_original_shape_MeshVolume_per_month=rng.normal(-100, 50, n),
        followup_date="2025-01-01",  # not a feature: not prefixed delta_
    )


def _outcomes(rng: np.random.Generator) -> pd.DataFrame:
    n = len(LESIONS)
    return LESIONS.assign(
        local_control_months=rng.uniform(2, 30, n),
        local_failure=np.arange(n) % 3 == 0,
        competing_death=False,
    )


def test_blocks_take_their_columns_and_nothing_else() -> None:
    rng = np.random.default_rng(1)
    dose = _lesion_dose(rng)
    assert list(lesion_block(dose, "dose").columns) == ["study_id", "bed10_rx_gy"]
    dvh = lesion_block(dose, "dvh")
    assert set(dvh.columns) == {"study_id", *DVH_COLUMNS.values(), "dvh_d98_rx_ratio"}
    np.testing.assert_allclose(dvh["dvh_d98_rx_ratio"], dose["D98%"] / dose["prescription_gy"])
    delta = lesion_block(_delta(rng), "delta")
    assert list(delta.columns) == [
        "study_id",
        "delta_original_firstorder_Mean",
        "delta_original_shape_MeshVolume_per_month",
    ]
    assert delta.index.name == "lesion_id" and delta.index.is_unique


def test_bad_block_tables_are_named() -> None:
    with pytest.raises(ModelInputError, match="no column starting with"):
        lesion_block(LESIONS.assign(change=1.0), "delta")
    with pytest.raises(ModelInputError, match="repeats lesions"):
        lesion_block(pd.concat([_delta(np.random.default_rng(0))] * 2), "delta")
    with pytest.raises(ModelInputError, match="lacks"):
        lesion_block(LESIONS, "dose")
    with pytest.raises(ModelInputError, match="not numeric"):
        lesion_block(LESIONS.assign(delta_x="a"), "delta")


def test_lesion_dataset_joins_dose_dvh_and_delta_blocks_at_lesion_level() -> None:
    rng = np.random.default_rng(2)
    dose, delta, outcomes = _lesion_dose(rng), _delta(rng), _outcomes(rng)
    blocks = {b: lesion_block(dose, b) for b in ("dose", "dvh")} | {"delta": lesion_block(delta, "delta")}
    data = assemble_lesion_dataset(
        None, outcomes.iloc[1:], feature_set="dose+dvh+delta", lesion_blocks=blocks
    )
    assert data.unit == "lesion" and list(data.row_ids) == sorted(outcomes["lesion_id"].iloc[1:])
    assert set(data.blocks) == {"dose", "dvh", "delta"}
    row = data.X.loc["SABR-RCC-002-L1"]
    source = dose.set_index("lesion_id").loc["SABR-RCC-002-L1"]
    assert row["bed10_rx_gy"] == source["bed10_rx_gy"] and row["dvh_d98_gy"] == source["D98%"]
    assert (
        row["delta_original_firstorder_Mean"]
        == delta.set_index("lesion_id").loc["SABR-RCC-002-L1", "delta_original_firstorder_Mean"]
    )
    assert list(data.study_ids[:2]) == ["SABR-RCC-001", "SABR-RCC-002"]
    assert data.select("dose").feature_names == ("bed10_rx_gy",)
    with pytest.raises(ModelInputError, match="without the delta block"):
        assemble_lesion_dataset(None, outcomes, feature_set="delta", lesion_blocks={})


def test_patient_aggregation_follows_the_radiomic_rule() -> None:
    rng = np.random.default_rng(3)
    delta = lesion_block(_delta(rng), "delta")
    volume = pd.Series(rng.uniform(100, 5000, len(LESIONS)), index=LESIONS["lesion_id"])
    largest = aggregate_block(delta, volume, "largest").set_index("study_id")
    mean = aggregate_block(delta, None, "mean").set_index("study_id")
    weighted = aggregate_block(delta, volume, "volume_weighted_mean").set_index("study_id")
    column = "delta_original_firstorder_Mean"
    for patient, rows in delta.groupby("study_id"):
        v = volume.loc[rows.index]
        assert largest.loc[patient, column] == rows.loc[v.idxmax(), column]
        assert mean.loc[patient, column] == pytest.approx(rows[column].mean())
        assert weighted.loc[patient, column] == pytest.approx(np.average(rows[column], weights=v))
    with pytest.raises(ModelInputError, match="without lesion volumes"):
        aggregate_block(delta, None, "largest")
    endpoints = pd.DataFrame(
        {
            "study_id": largest.index,
            "pfs_months": rng.uniform(1, 30, len(largest)),
            "pfs_event": [True, False, True, True, False, True],
        }
    )
    data = assemble_dataset(None, endpoints, None, "delta", patient_blocks={"delta": largest.reset_index()})
    assert data.unit == "patient" and data.X.shape == (6, 2)


def test_experiment_inputs_read_the_delta_block(tmp_path: Path) -> None:
    from sabrkit.models.experiment_io import read_experiment_inputs
    from sabrkit.models.spec import parse_experiment

    rng = np.random.default_rng(4)
    (tmp_path / "data" / "followup").mkdir(parents=True)
    (tmp_path / "data" / "registry").mkdir(parents=True)
    _delta(rng).to_parquet(tmp_path / "data" / "followup" / "delta_features.parquet")
    _outcomes(rng).to_parquet(tmp_path / "data" / "registry" / "lesion_outcomes.parquet")
    pd.DataFrame({"study_id": LESIONS["study_id"].unique(), "pfs_months": 1.0, "pfs_event": True}).to_parquet(
        tmp_path / "data" / "registry" / "endpoints.parquet"
    )
    spec = parse_experiment(
        {
            "name": "delta_lc",
            "inputs": {
                "lesion_features": None,
                "clinical": None,
                "consent": "not_required",
                "consent_reason": "a unit test of the block",
                "lesion_outcomes": "data/registry/lesion_outcomes.parquet",
            },
            "data": {"feature_set": "delta", "endpoint": "local_control", "unit": "lesion"},
            "model": {"estimator": "coxph"},
        }
    )
    inputs = read_experiment_inputs(spec, tmp_path)
    assert set(inputs.lesion_blocks) == {"delta"} and "delta_features" in inputs.input_paths
    assert inputs.lesion_blocks["delta"].shape == (len(LESIONS), 3)


def test_cv_groups_of_a_dose_dataset_keep_each_patients_lesions_in_one_fold() -> None:
    """Registry lesions of the generator (1-5 per patient) with their real local-control outcome."""
    from sabrkit.synthetic import SynthConfig
    from sabrkit.synthetic.cohort import generate_cohort

    cohort = generate_cohort(SynthConfig(n_patients=60, seed=20240501), np.random.default_rng(20240501))
    courses = cohort.table("sabr_courses")
    dose = courses.assign(
        bed10_rx_gy=courses["total_dose_gy"] * (1 + courses["total_dose_gy"] / (courses["fractions"] * 10.0))
    )
    assessments = cohort.table("lesion_assessments").set_index("lesion_id")
    outcomes = courses[["lesion_id", "study_id"]].assign(
        local_control_months=np.arange(len(courses)) % 20 + 1.0,
        local_failure=courses["lesion_id"].map(assessments["local_status"]).eq("local_failure"),
    )
    data = assemble_lesion_dataset(
        None, outcomes, feature_set="dose", lesion_blocks={"dose": lesion_block(dose, "dose")}
    )
    patients = pd.Series(data.study_ids)
    assert patients.value_counts().max() >= 3 and data.n_events >= 5
    for _, _, train, test in cv_splits(data, n_splits=5, n_repeats=3, random_state=42):
        assert not set(patients.iloc[train]) & set(patients.iloc[test])
