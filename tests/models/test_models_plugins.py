"""The features room's ComBat and ICC filter plug into model pipelines by name and refit per fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sabrkit.models.assembly import assemble_dataset
from sabrkit.models.spec import parse_experiment
from sabrkit.models.validation import repeated_stratified_cv


def test_the_features_room_provides_the_plugins():
    from sabrkit.features import ComBat, ICCSelector  # the pipelines below build them by name

    assert callable(ComBat) and callable(ICCSelector)


@pytest.fixture(scope="module")
def radiomic(toy_cohort):
    return assemble_dataset(
        toy_cohort["patient_features"], toy_cohort["endpoints"], toy_cohort["clinical"], "clinical+radiomic"
    ).select("radiomic")


def _spec(preprocessing: list) -> object:
    return parse_experiment(
        {
            "name": "p",
            "data": {"feature_set": "radiomic"},
            "model": {"estimator": "coxnet", "params": {"alpha": 0.05}, "preprocessing": preprocessing},
        }
    )


def _round_trip(fitted, X: pd.DataFrame, folder) -> np.ndarray:
    import mlflow.sklearn

    from sabrkit.models.tracking import save_final_model

    save_final_model(fitted, folder / "model", X)
    return mlflow.sklearn.load_model(str(folder / "model")).predict(X)


def test_combat_step_harmonises_inside_each_training_fold(radiomic, tmp_path) -> None:
    ids = radiomic.row_ids
    scanner = pd.Series(np.where(np.arange(len(ids)) % 2 == 0, "vendor_a", "vendor_b"), index=ids)
    shifted = radiomic.X.copy()
    shifted[scanner.to_numpy() == "vendor_b"] += 3.0  # a scanner offset on every feature
    dataset = radiomic.with_outcome(radiomic.y)
    dataset = type(dataset)(shifted, dataset.y, "radiomic", dataset.feature_names, blocks=dataset.blocks)
    spec = _spec(["impute", "variance", {"combat": {}}, "scale", {"select": {"k": 5}}])
    pipeline = spec.model.build(side_data={"batches": scanner, "perturbed_features": None})
    assert [name for name, _ in pipeline.steps] == [
        "impute",
        "variance",
        "combat",
        "scale",
        "select",
        "coxnet",
    ]
    fitted = pipeline.fit(dataset.X.iloc[:40], dataset.y[:40])
    harmonised = fitted[:3].transform(dataset.X.iloc[40:])
    assert isinstance(harmonised, pd.DataFrame) and list(harmonised.index) == list(
        ids[40:]
    )  # index kept for lookup
    radiomic_columns = [c for c in harmonised.columns if c.startswith("original_")]  # what ComBat harmonises
    gap = (
        harmonised[radiomic_columns]
        .groupby(scanner.loc[ids[40:]].to_numpy())
        .mean()
        .diff()
        .iloc[-1]
        .abs()
        .mean()
    )
    raw_gap = (
        dataset.X.iloc[40:][radiomic_columns].groupby(scanner.loc[ids[40:]].to_numpy()).mean().diff().iloc[-1]
    )
    assert (
        raw_gap.abs().mean() > 2.5 and gap < 1.0
    )  # the offset is largely removed on rows the step never saw
    # the stored model keeps the scanner of every known patient (as a plain dict) and predicts the same
    assert _round_trip(fitted, dataset.X.iloc[40:], tmp_path) == pytest.approx(
        fitted.predict(dataset.X.iloc[40:])
    )
    result = repeated_stratified_cv(pipeline, dataset, n_splits=3, n_repeats=1, random_state=0)
    assert result.summary["uno_c_mean"] > 0.6


def test_icc_step_drops_unreliable_features_learnt_on_training_patients(radiomic, tmp_path) -> None:
    rng = np.random.default_rng(0)
    reliable = ["original_glcm_SumEntropy", "original_glcm_JointEntropy"]
    rows = []
    for perturbation in range(4):
        frame = radiomic.X.copy()
        for column in frame.columns:
            noise = 0.05 if column in reliable else 5.0  # other features do not survive perturbation
            frame[column] = frame[column] + noise * rng.standard_normal(len(frame)) * frame[column].std()
        rows.append(frame.reset_index().assign(perturbation=perturbation))
    perturbed = pd.concat(rows, ignore_index=True)
    spec = _spec([{"icc": {"threshold": 0.75}}, "impute", "variance", "scale"])
    pipeline = spec.model.build(side_data={"batches": None, "perturbed_features": perturbed})
    fitted = pipeline.fit(radiomic.X.iloc[:40], radiomic.y[:40])
    kept = set(fitted[:-1].get_feature_names_out())
    assert set(reliable) <= kept and "original_firstorder_Noise00" not in kept
    assert fitted.named_steps["icc"].icc_.index.isin(radiomic.X.columns).all()
    assert _round_trip(fitted, radiomic.X, tmp_path) == pytest.approx(fitted.predict(radiomic.X))
    assert (
        fitted.named_steps["icc"].perturbed_features is perturbed
    )  # the stored copy dropped it, not the model
    result = repeated_stratified_cv(pipeline, radiomic, n_splits=3, n_repeats=1, random_state=0)
    assert result.summary["uno_c_mean"] > 0.6


@pytest.mark.parametrize("step", ["combat", "icc"])
def test_side_data_steps_take_bootstrap_copies(radiomic, step: str) -> None:
    """The interval's bootstrap cohorts name each copy of a patient ``<id>#b<k>`` (unique rows);
    ComBat and the ICC filter look the copy's source patient up in their side data, so no
    replicate fails (before this every replicate failed and the experiments had no interval)."""
    from sabrkit.models.inference import bootstrap_cv_interval
    from sabrkit.rowkeys import copy_key, source_keys

    assert list(source_keys([copy_key("SABR-001", 3), "SABR-002", "A#b"])) == ["SABR-001", "SABR-002", "A#b"]
    ids = radiomic.row_ids
    scanner = pd.Series(np.where(np.arange(len(ids)) % 2 == 0, "vendor_a", "vendor_b"), index=ids)
    rng = np.random.default_rng(1)
    perturbed = pd.concat(
        [
            (radiomic.X + 0.05 * rng.standard_normal(radiomic.X.shape) * radiomic.X.std().to_numpy())
            .reset_index()
            .assign(perturbation=p)
            for p in range(3)
        ],
        ignore_index=True,
    )
    first = {
        "combat": ["impute", "variance", {"combat": {}}],
        "icc": [{"icc": {"threshold": 0.5}}, "impute", "variance"],
    }
    pipeline = _spec([*first[step], "scale", {"select": {"k": 5}}]).model.build(
        side_data={"batches": scanner, "perturbed_features": perturbed}
    )
    interval = bootstrap_cv_interval(
        pipeline, radiomic, np.random.default_rng(0), 20, observed={"uno_c": 0.7}, n_splits=3
    )
    assert interval.settings["n_failed"] == 0
    low, high = interval.intervals["uno_c"]
    assert np.isfinite(low) and low < 0.7 < high


def test_a_failing_bootstrap_names_its_first_error(radiomic, caplog) -> None:
    """Replicates that fail are left out, counted and the first error is named (not only at debug level)."""
    from sabrkit.models.inference import bootstrap_cv_interval

    pipeline = _spec(["impute", {"combat": {}}, "scale"]).model.build(
        side_data={"batches": {"nobody": "a"}, "perturbed_features": None}
    )
    with caplog.at_level("WARNING"):
        interval = bootstrap_cv_interval(
            pipeline, radiomic, np.random.default_rng(0), 20, observed={"uno_c": 0.7}, n_splits=3
        )
    assert interval.settings["n_failed"] == 20 and "no batch for row(s)" in interval.settings["first_failure"]
    assert "20 of 20 bootstrap replicates failed" in caplog.text and "no batch for row(s)" in caplog.text
    assert np.isnan(interval.intervals["uno_c"][0])
