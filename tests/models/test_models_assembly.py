"""Assembly: consent filter, named feature blocks, selection of blocks, lesion-level data sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sabrkit.errors import ModelInputError
from sabrkit.models.assembly import assemble_dataset, assemble_lesion_dataset, consented_ids
from sabrkit.models.dataset import FEATURE_SETS, parse_feature_set


def _assemble(toy, feature_set: str = "clinical+radiomic+biomarker", **kwargs):
    return assemble_dataset(
        toy["patient_features"],
        toy["endpoints"],
        toy["clinical"],
        feature_set,
        biomarkers=toy["biomarkers"],
        **kwargs,
    )


def test_feature_sets_are_block_combinations_in_canonical_order() -> None:
    assert len(FEATURE_SETS) == 2**8 - 1 and "clinical+radiomic+biomarker" in FEATURE_SETS  # 8 blocks
    assert "dose+dvh+dosiomic" in FEATURE_SETS and parse_feature_set("delta+radiomic") == (
        "radiomic",
        "delta",
    )
    assert parse_feature_set("biomarker+clinical") == ("clinical", "biomarker")
    for bad in ("clinical+clinical", "radiomics", "", "clinical+"):
        with pytest.raises(ModelInputError, match="feature set joins distinct blocks"):
            parse_feature_set(bad)


def test_blocks_hold_their_columns_and_select_keeps_rows(toy_cohort) -> None:
    dataset = _assemble(toy_cohort)
    assert dataset.feature_set == "clinical+radiomic+biomarker"
    assert set(dataset.blocks) == {"clinical", "radiomic", "biomarker"}
    assert dataset.blocks["biomarker"] == ("ctdna_baseline", "il6_baseline")
    assert "original_glcm_SumEntropy" in dataset.blocks["radiomic"] and "sex=M" in dataset.blocks["clinical"]
    assert "n_lesions" in dataset.blocks["clinical"] and "n_lesions" not in dataset.blocks["radiomic"]
    clinical = dataset.select("clinical")
    assert clinical.feature_names == dataset.blocks["clinical"] and clinical.X.index.equals(dataset.X.index)
    assert (clinical.y == dataset.y).all()
    assert dataset.select("biomarker+radiomic").feature_set == "radiomic+biomarker"
    with pytest.raises(ModelInputError, match=r"needs block\(s\) \['deep'\]"):
        dataset.select("deep")
    # raw clinical levels travel as characteristics, never as features
    assert dataset.characteristics.loc["SABR-RCC-001", "systemic_therapy"] in {
        "none",
        "tki",
        "ici",
        "tki_ici",
    }
    assert "systemic_therapy" not in dataset.X.columns


def test_consent_keeps_only_consented_patients_from_ids_or_a_table(toy_cohort) -> None:
    allowed = [f"SABR-RCC-{i:03d}" for i in range(1, 41)]
    by_ids = _assemble(toy_cohort, consented=allowed)
    assert (
        list(by_ids.row_ids) == allowed
        and by_ids.consent == "applied: 20 patient(s) without consent excluded"
    )
    table = pd.DataFrame(
        {"study_id": toy_cohort["clinical"]["study_id"], "consented": [True] * 40 + [False] * 20}
    )
    by_table = _assemble(toy_cohort, consented=table)
    assert list(by_table.row_ids) == allowed
    assert consented_ids(pd.DataFrame({"study_id": ["A", "B"], "consented": ["true", "false"]})) == {"A"}
    assert _assemble(toy_cohort).consent == "not checked"
    with pytest.raises(ModelInputError, match="empty consent list"):
        _assemble(toy_cohort, consented=[])
    with pytest.raises(ModelInputError, match="collection of study IDs"):
        _assemble(toy_cohort, consented="SABR-RCC-001")


def test_unconsented_patients_are_dropped_before_completeness_is_checked(toy_cohort) -> None:
    features = toy_cohort["patient_features"].iloc[:50]  # patients 51-60 have no features...
    allowed = [f"SABR-RCC-{i:03d}" for i in range(1, 51)]  # ... and no consent: not an error
    dataset = assemble_dataset(
        features,
        toy_cohort["endpoints"],
        toy_cohort["clinical"],
        "clinical+radiomic",
        require_complete=True,
        consented=allowed,
    )
    assert dataset.n_patients == 50


def test_a_column_in_two_blocks_is_rejected(toy_cohort) -> None:
    biomarkers = toy_cohort["biomarkers"].rename(columns={"il6_baseline": "original_glcm_SumEntropy"})
    with pytest.raises(ModelInputError, match="is in blocks 'radiomic' and 'biomarker'"):
        assemble_dataset(
            toy_cohort["patient_features"],
            toy_cohort["endpoints"],
            toy_cohort["clinical"],
            "clinical+radiomic+biomarker",
            biomarkers=biomarkers,
        )


def test_deep_block_and_missing_biomarker_values_stay_nan(toy_cohort) -> None:
    deep = pd.DataFrame({"study_id": toy_cohort["clinical"]["study_id"], "deep_000": 1.0, "deep_001": 2.0})
    biomarkers = toy_cohort["biomarkers"].copy()
    biomarkers.loc[3, "il6_baseline"] = np.nan
    dataset = assemble_dataset(
        None, toy_cohort["endpoints"], None, "deep+biomarker", deep_features=deep, biomarkers=biomarkers
    )
    assert dataset.feature_names == ("deep_000", "deep_001", "ctdna_baseline", "il6_baseline")
    assert np.isnan(dataset.X.loc["SABR-RCC-004", "il6_baseline"])
    assert dataset.characteristics is None


def _lesion_tables(toy) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    rows, outcomes = [], []
    for study_id in toy["clinical"]["study_id"]:
        for n in range(1, int(rng.integers(1, 4)) + 1):
            lesion_id = f"{study_id}-L{n}"
            rows.append(
                {
                    "lesion_id": lesion_id,
                    "study_id": study_id,
                    "original_firstorder_Mean": rng.normal(),
                    "original_shape_MeshVolume": rng.uniform(100, 900),
                    "prov_params_hash": "x",
                }
            )
            outcomes.append(
                {
                    "lesion_id": lesion_id,
                    "study_id": study_id,
                    "local_control_months": rng.uniform(1, 24),
                    "local_failure": bool(rng.random() < 0.3),
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(outcomes)


def test_lesion_dataset_carries_each_lesions_patient(toy_cohort) -> None:
    lesions, outcomes = _lesion_tables(toy_cohort)
    dataset = assemble_lesion_dataset(lesions, outcomes, toy_cohort["clinical"], "clinical+radiomic")
    assert dataset.unit == "lesion" and dataset.endpoint == "local_control"
    assert dataset.X.index.name == "lesion_id" and len(dataset.X) == len(lesions)
    assert all(
        lesion.startswith(patient) for lesion, patient in zip(dataset.row_ids, dataset.study_ids, strict=True)
    )
    assert dataset.n_patients == 60 and len(dataset.y) > 60
    # clinical covariates are the lesion's patient's
    first = dataset.row_ids[0]
    patient = first.rsplit("-L", 1)[0]
    expected_age = toy_cohort["clinical"].set_index("study_id").loc[patient, "age_years"]
    assert dataset.X.loc[first, "age_years"] == pytest.approx(expected_age)
    assert dataset.characteristics.loc[first, "disease_state"] in {"oligometastatic", "oligoprogressive"}
    allowed = {f"SABR-RCC-{i:03d}" for i in range(1, 21)}
    kept = assemble_lesion_dataset(lesions, outcomes, None, "radiomic", consented=allowed)
    assert set(kept.study_ids) == allowed and kept.consent.startswith("applied: 40 patient(s)")
    with pytest.raises(ModelInputError, match="lesion_outcomes lacks"):
        assemble_lesion_dataset(lesions, outcomes.drop(columns="local_failure"))


def test_dataset_file_round_trip_keeps_blocks_characteristics_and_consent(toy_cohort, tmp_path) -> None:
    from sabrkit.models.io import read_dataset, write_dataset

    dataset = _assemble(toy_cohort, consented=toy_cohort["clinical"]["study_id"].iloc[:50])
    again = read_dataset(write_dataset(dataset, tmp_path / "dataset.parquet"))
    pd.testing.assert_frame_equal(again.X, dataset.X)
    pd.testing.assert_frame_equal(again.characteristics, dataset.characteristics)
    assert again.blocks == dataset.blocks and again.consent == dataset.consent
    assert (again.y == dataset.y).all() and again.select("biomarker").feature_names == (
        "ctdna_baseline",
        "il6_baseline",
    )
