"""Dataset assembly: joins on study_id, one-hot clinical covariates, validation of outcomes."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from sabrkit.errors import ModelInputError
from sabrkit.models.assembly import assemble_dataset
from sabrkit.models.clinical_encoding import CLINICAL_CATEGORIES, encode_clinical
from sabrkit.models.dataset import make_dataset

IDS = [f"SABR-RCC-{i:03d}" for i in range(1, 9)]


def clinical_table(ids: list[str] = IDS) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "study_id": ids,
            "age_years": np.linspace(50, 80, n),
            "sex": ["F", "M"] * (n // 2),
            "ecog": [0, 1, 2, 0, 1, 0, 0, 1][:n],
            "histology": ["clear_cell"] * (n - 2) + ["non_clear_cell"] * 2,
            "imdc_risk": ["favourable", "intermediate", "poor", "intermediate"] * (n // 4),
            "prior_nephrectomy": [True, False] * (n // 2),
            "disease_state": ["oligometastatic", "oligoprogressive"] * (n // 2),
            "systemic_therapy": ["none", "tki", "ici", "tki_ici"] * (n // 4),
            "n_lesions": [1, 2, 3, 1, 2, 1, 4, 2][:n],
            "max_bed10_gy": np.linspace(60, 150, n),
        }
    )


def endpoints_table(ids: list[str] = IDS) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "study_id": ids,
            "index_date": ["2024-06-01"] * n,
            "pfs_months": np.arange(1, n + 1, dtype=float) * 2.5,
            "pfs_event": [True, False] * (n // 2),
            "os_months": np.arange(1, n + 1, dtype=float) * 3.0,
            "os_event": [True, True] + [False] * (n - 2),
        }
    )


def patient_features(ids: list[str] = IDS) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = len(ids)
    return pd.DataFrame(
        {
            "study_id": ids,
            "original_firstorder_Mean": rng.normal(size=n),
            "original_glcm_Contrast": rng.normal(size=n),
            "n_lesions": [1, 2, 3, 1, 2, 1, 4, 2][:n],
            "total_volume_mm3": rng.uniform(100, 1000, size=n),
            "prov_params_hash": ["abc"] * n,
        }
    )


def test_clinical_one_hot_uses_documented_reference_levels() -> None:
    encoded = encode_clinical(clinical_table())
    for covariate, levels in CLINICAL_CATEGORIES.items():
        assert f"{covariate}={levels[0]}" not in encoded.columns  # reference level has no column
        for level in levels[1:]:
            assert f"{covariate}={level}" in encoded.columns
    row = encoded.loc["SABR-RCC-003"]  # F, poor, prior nephrectomy, ici
    assert row["sex=M"] == 0 and row["imdc_risk=poor"] == 1 and row["imdc_risk=intermediate"] == 0
    assert row["prior_nephrectomy=true"] == 1 and row["systemic_therapy=ici"] == 1
    assert encoded.loc["SABR-RCC-002", "prior_nephrectomy=true"] == 0
    assert encoded["ecog"].tolist() == [0, 1, 2, 0, 1, 0, 0, 1]


def test_missing_category_stays_missing_for_in_fold_imputation() -> None:
    clinical = clinical_table()
    clinical.loc[0, "imdc_risk"] = None
    encoded = encode_clinical(clinical)
    assert np.isnan(encoded.loc["SABR-RCC-001", "imdc_risk=poor"])


def test_unknown_level_is_rejected_with_the_allowed_levels() -> None:
    clinical = clinical_table()
    clinical.loc[2, "sex"] = "X"
    with pytest.raises(ModelInputError, match=r"sex must be one of \['F', 'M'\]"):
        encode_clinical(clinical)


@pytest.mark.parametrize(
    ("feature_set", "expected_present", "expected_absent"),
    [
        ("clinical", ["age_years", "n_lesions", "sex=M"], ["original_firstorder_Mean", "total_volume_mm3"]),
        ("radiomic", ["original_firstorder_Mean", "total_volume_mm3"], ["age_years", "n_lesions"]),
        ("clinical+radiomic", ["age_years", "n_lesions", "original_glcm_Contrast"], []),
    ],
)
def test_feature_sets(feature_set: str, expected_present: list[str], expected_absent: list[str]) -> None:
    dataset = assemble_dataset(
        patient_features(), endpoints_table(), clinical_table(), feature_set=feature_set
    )
    assert dataset.X.index.name == "study_id"
    assert dataset.feature_names == tuple(dataset.X.columns)
    for column in expected_present:
        assert column in dataset.X.columns
    for column in expected_absent:
        assert column not in dataset.X.columns
    assert not [c for c in dataset.X.columns if c.startswith("prov_") or c in ("study_id", "index_date")]
    assert list(dataset.X.columns).count("n_lesions") <= 1
    assert dataset.y.dtype.names == ("event", "time")
    assert dataset.y["time"].tolist() == (np.arange(1, 9) * 2.5).tolist()
    assert dataset.n_events == 4


def test_os_endpoint_and_outcome_table_round_trip() -> None:
    dataset = assemble_dataset(
        None, endpoints_table(), clinical_table(), feature_set="clinical", endpoint="os"
    )
    assert dataset.n_events == 2 and dataset.endpoint == "os"
    table = dataset.outcome_table()
    assert list(table.columns) == ["study_id", "os_months", "os_event"]
    assert table["os_months"].tolist() == dataset.y["time"].tolist()


def test_inner_join_drops_and_logs_missing_patients(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sabrkit.models.assembly"):
        dataset = assemble_dataset(
            patient_features(IDS[:6]), endpoints_table(), clinical_table(), require_complete=False
        )
    assert dataset.n_patients == 6
    assert "SABR-RCC-007" in caplog.text and "SABR-RCC-008" in caplog.text


def test_require_complete_names_the_missing_study_ids() -> None:
    with pytest.raises(ModelInputError, match=r"patient_features lacks \['SABR-RCC-007', 'SABR-RCC-008'\]"):
        assemble_dataset(
            patient_features(IDS[:6]), endpoints_table(), clinical_table(), require_complete=True
        )


def test_duplicate_study_id_is_rejected() -> None:
    features = pd.concat([patient_features(), patient_features().iloc[[0]]], ignore_index=True)
    with pytest.raises(ModelInputError, match="repeats study_id"):
        assemble_dataset(features, endpoints_table(), clinical_table())


def test_non_positive_time_is_rejected_with_the_patient() -> None:
    endpoints = endpoints_table()
    endpoints.loc[3, "pfs_months"] = 0.0
    with pytest.raises(ModelInputError, match="SABR-RCC-004"):
        assemble_dataset(patient_features(), endpoints, clinical_table())


def test_fewer_than_two_events_is_rejected() -> None:
    endpoints = endpoints_table()
    endpoints["pfs_event"] = [True] + [False] * 7
    with pytest.raises(ModelInputError, match="at least 2 events"):
        assemble_dataset(patient_features(), endpoints, clinical_table())


def test_direct_identifiers_never_reach_a_model() -> None:
    clinical = clinical_table()
    clinical["family_name"] = "Doe"
    with pytest.raises(ModelInputError, match="direct identifier"):
        assemble_dataset(patient_features(), endpoints_table(), clinical)


def test_unknown_feature_set_is_rejected() -> None:
    with pytest.raises(ModelInputError, match="feature_set 'genomic'"):
        assemble_dataset(patient_features(), endpoints_table(), clinical_table(), feature_set="genomic")
    with pytest.raises(ModelInputError, match="without deep_features"):
        assemble_dataset(patient_features(), endpoints_table(), clinical_table(), feature_set="deep")


def test_make_dataset_requires_study_id_index() -> None:
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=pd.Index(["A", "B", "C"], name="patient"))
    with pytest.raises(ModelInputError, match="indexed by study_id"):
        make_dataset(X, [True, True, False], [1.0, 2.0, 3.0], feature_set="x")


def test_default_comparator_keeps_the_established_factors() -> None:
    """The clinical comparator's covariates: IMDC risk, ECOG and disease state by default (their
    encoded columns, in data-set order); ``all`` keeps every column; an unknown covariate is named."""
    from sabrkit.models.spec import ReferenceSpec

    data = make_dataset(
        X := encode_clinical(
            pd.DataFrame(
                {
                    "study_id": ["A", "B", "C"],
                    "age_years": [60, 70, 55],
                    "ecog": [0, 1, 2],
                    "imdc_risk": ["favourable", "poor", "intermediate"],
                    "disease_state": ["oligometastatic", "oligoprogressive", "oligometastatic"],
                    "sex": ["F", "M", "F"],
                }
            )
        ),
        [True, False, True],
        [3.0, 5.0, 7.0],
        "clinical",
        blocks={"clinical": tuple(X.columns)},
    )
    kept = ReferenceSpec().comparator_data(data)
    assert kept.feature_names == (
        "ecog",
        "imdc_risk=intermediate",
        "imdc_risk=poor",
        "disease_state=oligoprogressive",
    )
    assert kept.blocks == {"clinical": kept.feature_names} and list(kept.X.columns) == list(
        kept.feature_names
    )
    assert ReferenceSpec(covariates="all").comparator_data(data).feature_names == data.feature_names
    assert ReferenceSpec(covariates=["sex", "age_years"]).comparator_data(data).feature_names == (
        "age_years",
        "sex=M",
    )
    with pytest.raises(
        ModelInputError, match=r"covariate\(s\) \['karnofsky'\].*clinical_reference.covariates"
    ):
        ReferenceSpec(covariates=["karnofsky", "ecog"]).comparator_data(data)
