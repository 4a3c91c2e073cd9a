"""Perturbations, ICC(1,1) against pingouin, and the ICC selector's train-only fitting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin
import pytest
import SimpleITK as sitk
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sabrkit.errors import ConfigError, ModelInputError
from sabrkit.features import (
    ICCSelector,
    PerturbationConfig,
    aggregate_perturbed,
    extract_perturbed_features,
    icc1,
    icc_table,
    load_params,
)
from sabrkit.features.robustness import perturb_lesion


def _perturbation_table(rng: np.random.Generator, n_patients: int = 30, k: int = 6) -> pd.DataFrame:
    """Feature A: patient signal >> perturbation noise (ICC ~ 0.99); B: noise only (ICC ~ 0)."""
    rows = []
    for i in range(n_patients):
        signal = rng.normal(0, 10)
        for r in range(k):
            rows.append(
                {
                    "study_id": f"SABR-RCC-{i + 1:03d}",
                    "perturbation": r,
                    "original_firstorder_Mean": signal + rng.normal(0, 1),
                    "original_glcm_Contrast": rng.normal(0, 1),
                    "original_glszm_ZoneEntropy": signal + rng.normal(0, 8),
                }
            )
    return pd.DataFrame(rows)


def test_icc1_equals_pingouin(rng: np.random.Generator) -> None:
    table = _perturbation_table(rng)
    ours = icc_table(table, id_column="study_id").set_index("feature")
    features = ["original_firstorder_Mean", "original_glcm_Contrast", "original_glszm_ZoneEntropy"]
    values = table.sort_values(["study_id", "perturbation"])[features].to_numpy().reshape(30, 6, 3)
    vectorised = icc1(values)
    for j, feature in enumerate(features):
        reference = pingouin.intraclass_corr(
            table, targets="study_id", raters="perturbation", ratings=feature
        )
        by_type = reference.set_index("Type")  # pingouin 0.6 names the row ICC(1,1), 0.5 ICC1
        expected = float(by_type.loc["ICC(1,1)" if "ICC(1,1)" in by_type.index else "ICC1", "ICC"])
        assert vectorised[j] == pytest.approx(expected, abs=1e-10)
        assert ours.loc[feature, "icc"] == pytest.approx(expected, abs=1e-10)
    assert (
        ours.loc["original_firstorder_Mean", "icc"] > 0.95 and ours.loc["original_glcm_Contrast", "icc"] < 0.3
    )
    assert ours.loc["original_firstorder_Mean", "ci95_low"] < ours.loc["original_firstorder_Mean", "icc"]


def test_selector_learns_only_from_training_patients(rng: np.random.Generator) -> None:
    side = _perturbation_table(rng)
    X = side.loc[side["perturbation"] == 0].set_index("study_id").drop(columns="perturbation")
    X.insert(0, "age_years", np.arange(len(X), dtype=float))  # clinical column: never perturbed, kept
    train, held_out = X.index[:20], X.index[20:]
    selector = ICCSelector(perturbed_features=side, threshold=0.75).fit(X.loc[train])
    assert list(selector.get_feature_names_out()) == ["age_years", "original_firstorder_Mean"]

    # replace the held-out patients' features and perturbations with a perfectly robust signal
    changed_side = side.copy()
    held = changed_side["study_id"].isin(held_out)
    changed_side.loc[held, "original_glcm_Contrast"] = np.repeat(rng.normal(0, 100, size=held.sum() // 6), 6)
    changed_X = X.copy()
    changed_X.loc[held_out, "original_glcm_Contrast"] = 1e6
    other = ICCSelector(perturbed_features=changed_side, threshold=0.75).fit(changed_X.loc[train])
    pd.testing.assert_series_equal(selector.icc_, other.icc_)
    np.testing.assert_array_equal(selector.support_, other.support_)
    pd.testing.assert_frame_equal(selector.transform(X.loc[train]), other.transform(changed_X.loc[train]))
    # whereas fitting on every patient does see them
    everyone = ICCSelector(perturbed_features=changed_side, threshold=0.75).fit(changed_X)
    assert everyone.icc_["original_glcm_Contrast"] > selector.icc_["original_glcm_Contrast"]

    pipeline = Pipeline([("icc", ICCSelector(perturbed_features=side)), ("scale", StandardScaler())])
    out_a = clone(pipeline).fit(X.loc[train]).transform(X.loc[train])
    out_b = clone(pipeline).set_params(icc__perturbed_features=changed_side).fit(changed_X.loc[train])
    np.testing.assert_array_equal(out_a, out_b.transform(changed_X.loc[train]))


def test_selector_refuses_bad_input(rng: np.random.Generator) -> None:
    side = _perturbation_table(rng, n_patients=4)
    X = side.loc[side["perturbation"] == 0].set_index("study_id").drop(columns="perturbation")
    with pytest.raises(ModelInputError, match="min_targets"):
        ICCSelector(perturbed_features=side).fit(X)
    with pytest.raises(ModelInputError, match="DataFrame"):
        ICCSelector(perturbed_features=side).fit(X.to_numpy())


def test_perturbation_is_seeded_and_keeps_the_grid(make_ct_case: Callable) -> None:
    image, mask = make_ct_case(radius_mm=7.0)
    config = PerturbationConfig(n_perturbations=3)
    a_image, a_mask = perturb_lesion(image, mask, config, np.random.default_rng(1))
    b_image, b_mask = perturb_lesion(image, mask, config, np.random.default_rng(1))
    _c_image, c_mask = perturb_lesion(image, mask, config, np.random.default_rng(2))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(a_image), sitk.GetArrayFromImage(b_image))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(a_mask), sitk.GetArrayFromImage(b_mask))
    assert not np.array_equal(sitk.GetArrayFromImage(a_mask), sitk.GetArrayFromImage(c_mask))
    assert a_image.GetSize() == image.GetSize() and a_mask.GetSpacing() == mask.GetSpacing()
    original, moved = sitk.GetArrayFromImage(mask).sum(), sitk.GetArrayFromImage(a_mask).sum()
    assert 0.6 * original < moved < 1.4 * original
    with pytest.raises(ConfigError, match="n_perturbations"):
        PerturbationConfig(n_perturbations=1)


def test_perturbed_extraction_and_patient_table(tmp_path: Path, write_case: Callable) -> None:
    rows = []
    for lesion_id, radius in (("SABR-RCC-001-L1", 5.0), ("SABR-RCC-001-L2", 7.0), ("SABR-RCC-002-L1", 6.0)):
        image, mask = write_case(lesion_id, radius_mm=radius)
        rows.append((lesion_id, lesion_id.rsplit("-L", 1)[0], str(image), str(mask)))
    manifest = pd.DataFrame(rows, columns=["lesion_id", "study_id", "image_path", "mask_path"])
    params = load_params("ct_v1").derive(
        "ct-v1-robustness-test", feature_classes={"shape": ["MeshVolume"], "firstorder": ["Mean", "Variance"]}
    )
    config = PerturbationConfig(n_perturbations=3)
    first, failures = extract_perturbed_features(manifest, params, config, seed=5, progress=False)
    again, _ = extract_perturbed_features(manifest, params, config, seed=5, progress=False)
    assert failures == [] and len(first) == 9
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert first.groupby("lesion_id")["original_shape_MeshVolume"].nunique().min() > 1  # perturbed
    patients = aggregate_perturbed(first, "largest")
    assert list(patients.columns[:2]) == ["study_id", "perturbation"] and len(patients) == 6
    assert set(icc_table(first)["feature"]) == {"original_shape_MeshVolume", "original_firstorder_Mean",
                                                "original_firstorder_Variance"}  # fmt: skip
