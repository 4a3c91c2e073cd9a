"""ComBat transformer: agreement with neuroCombat, and learning from training rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sabrkit.errors import ModelInputError, ValidationError
from sabrkit.features import ComBat, scanner_batches

# Input: 15 samples x 4 features, batches A (5), B (4), C (6); made with
#   rng = np.random.default_rng(7); shift = {A: 0, B: 2, C: -1}; scale = {A: 1, B: 2, C: 0.5}
#   value[k] = round(10 + 3 k + shift[b] (k + 1) + scale[b] rng.normal(), 6)
VALUES = [
    [10.00123, 13.298746, 15.725862, 18.109408], [9.545329, 12.008353, 16.060144, 20.340215],
    [9.507793, 12.379525, 16.489842, 19.356887], [10.105414, 12.069532, 15.970748, 19.695303],
    [8.655785, 12.542384, 14.098777, 17.710462], [8.31653, 16.529818, 19.465107, 27.542529],
    [12.313502, 16.626138, 16.966481, 25.922614], [11.902998, 17.226618, 18.939728, 26.044493],
    [10.042962, 15.382326, 24.121797, 25.384931], [8.983739, 11.442195, 12.7082, 14.944149],
    [9.055232, 11.031891, 12.387472, 15.03807], [9.679412, 10.226428, 13.429691, 15.059677],
    [8.679265, 12.000208, 13.38113, 14.400356], [9.037258, 11.288345, 12.905609, 15.341455],
    [8.966741, 11.333624, 13.719261, 14.662169],
]  # fmt: skip
BATCH = ["A"] * 5 + ["B"] * 4 + ["C"] * 6
# Reference: neuroCombat 0.2.12 (github.com/Jfortin1/neuroCombat, commit ac82a06), parametric EB,
# no covariates:
#   out = neuroCombat(dat=np.array(VALUES).T, covars=pd.DataFrame({"batch": BATCH}), batch_col="batch")
#   out["data"].T  (rows 0, 5 and 9 below, rounded to 1e-10)
NEUROCOMBAT_ROWS = {
    0: [10.3217277797, 13.738521857, 16.0619233579, 18.5343520692],
    5: [8.2226344904, 13.100536464, 15.4331706616, 20.2228651326],
    9: [9.5021127467, 13.2786173898, 14.9394563488, 19.3416035345],
}
# neuroCombatFromTraining(dat=NEW.T, batch=np.array(["B", "C"]), estimates=out["estimates"])["data"].T
NEW = [[11.0, 14.0, 17.0, 20.0], [9.0, 12.0, 15.0, 18.0]]
NEUROCOMBAT_APPLIED = [
    [9.7543707547, 11.5319772674, 14.0266785021, 15.4917055318],
    [9.5372792536, 13.9266705974, 20.0094751441, 25.4324748921],
]
COLUMNS = [f"original_firstorder_F{k}" for k in range(4)]


def _table(values: list[list[float]], ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(values, index=pd.Index(ids, name="study_id"), columns=COLUMNS)


@pytest.fixture
def cohort() -> tuple[pd.DataFrame, pd.Series]:
    ids = [f"SABR-RCC-{i:03d}" for i in range(1, 16)]
    return _table(VALUES, ids), pd.Series(BATCH, index=ids)


def test_matches_neurocombat_on_training_and_new_rows(cohort: tuple[pd.DataFrame, pd.Series]) -> None:
    X, batches = cohort
    new_ids = ["SABR-RCC-101", "SABR-RCC-102"]
    all_batches = pd.concat([batches, pd.Series(["B", "C"], index=new_ids)])
    model = ComBat(batches=all_batches).fit(X)
    harmonized = model.transform(X)
    for row, expected in NEUROCOMBAT_ROWS.items():
        np.testing.assert_allclose(harmonized.iloc[row].to_numpy(), expected, atol=1e-9)
    applied = model.transform(_table(NEW, new_ids))
    np.testing.assert_allclose(applied.to_numpy(), NEUROCOMBAT_APPLIED, atol=1e-9)
    # the scanner effect is gone: batch means of every feature move close together
    spread_before = X.groupby(batches.to_numpy()).mean().std().mean()
    spread_after = harmonized.groupby(batches.to_numpy()).mean().std().mean()
    assert spread_after < 0.25 * spread_before


def test_learns_only_from_training_rows(
    cohort: tuple[pd.DataFrame, pd.Series], rng: np.random.Generator
) -> None:
    X, batches = cohort
    train, held_out = X.iloc[::2].index.append(X.iloc[1::2].index[:3]), X.iloc[1::2].index[3:]
    model_a = ComBat(batches=batches).fit(X.loc[train])
    changed = X.copy()
    changed.loc[held_out] = rng.normal(50.0, 20.0, size=(len(held_out), 4))  # wildly different held-out rows
    model_b = ComBat(batches=batches).fit(changed.loc[train])
    for key in ("grand_mean", "var_pooled", "gamma_star", "delta_star"):
        np.testing.assert_array_equal(model_a.estimates_[key], model_b.estimates_[key])
    pd.testing.assert_frame_equal(model_a.transform(X.loc[train]), model_b.transform(changed.loc[train]))
    # inside a pipeline, fitting on the training rows of either table gives the same outputs
    pipeline = Pipeline([("combat", ComBat(batches=batches)), ("scale", StandardScaler())])
    out_a = clone(pipeline).fit(X.loc[train]).transform(X.loc[train])
    out_b = clone(pipeline).fit(changed.loc[train]).transform(changed.loc[train])
    np.testing.assert_array_equal(out_a, out_b)


def test_columns_outside_the_features_pass_through(cohort: tuple[pd.DataFrame, pd.Series]) -> None:
    X, batches = cohort
    table = X.assign(age_years=np.arange(15.0), original_firstorder_Flat=1.0)
    out = ComBat(batches=batches).fit(table).transform(table)
    pd.testing.assert_series_equal(out["age_years"], table["age_years"])
    pd.testing.assert_series_equal(out["original_firstorder_Flat"], table["original_firstorder_Flat"])
    assert not np.allclose(out[COLUMNS].to_numpy(), X.to_numpy())


def test_bad_input_is_refused(cohort: tuple[pd.DataFrame, pd.Series]) -> None:
    X, batches = cohort
    with pytest.raises(ModelInputError, match="no batch"):
        ComBat(batches=batches.iloc[:-1]).fit(X)
    with pytest.raises(ModelInputError, match="DataFrame"):
        ComBat(batches=batches).fit(X.to_numpy())


def test_scanner_batches_from_the_image_manifest() -> None:
    images = pd.DataFrame(
        {
            "lesion_id": ["SABR-RCC-001-L1", "SABR-RCC-001-L2", "SABR-RCC-002-L1"],
            "study_id": ["SABR-RCC-001", "SABR-RCC-001", "SABR-RCC-002"],
            "scanner": ["GE Discovery RT", "GE Discovery RT", "Siemens SOMATOM Confidence"],
        }
    )
    assert scanner_batches(images).to_dict() == {
        "SABR-RCC-001": "GE Discovery RT",
        "SABR-RCC-002": "Siemens SOMATOM Confidence",
    }
    mixed = images.assign(scanner=["GE Discovery RT", "Philips Brilliance Big Bore", "GE Discovery RT"])
    with pytest.raises(ValidationError, match="several scanners"):
        scanner_batches(mixed)
    assert len(scanner_batches(mixed, key="lesion_id")) == 3


def test_a_rare_batch_in_a_training_fold_is_pooled_or_left_unharmonised_never_a_crash(
    cohort: tuple[pd.DataFrame, pd.Series], caplog: pytest.LogCaptureFixture
) -> None:
    """A scanner with one training patient (the fold that stopped `dvc repro` before) warns, never raises."""
    X, batches = cohort
    labels = batches.reindex(X.index)
    a, b, c = (X.index[labels == name] for name in sorted(labels.unique()))
    # one row of B and one of C: pooled together (2 rows) beside A
    train = [*a, b[0], c[0]]
    model = ComBat(batches=batches).fit(X.loc[train])
    assert model.pooled_batches_ == sorted([labels[b[0]], labels[c[0]]]) and not model.passthrough_
    assert "pooled" in caplog.text
    out = model.transform(X)  # unseen rows of B and C are adjusted as the pooled batch
    assert np.isfinite(out[COLUMNS].to_numpy()).all()
    # one row of B and nothing else rare: B is left unharmonised, A and C are harmonised
    model = ComBat(batches=batches).fit(X.loc[[*a, *c, b[0]]])
    assert model.unharmonised_batches_ == [labels[b[0]]]
    out = model.transform(X.loc[[b[0], b[1]]])
    pd.testing.assert_frame_equal(out, X.loc[[b[0], b[1]]])
    # only one batch with enough rows: ComBat passes everything through
    model = ComBat(batches=batches).fit(X.loc[[*a, b[0]]])
    assert model.passthrough_
    pd.testing.assert_frame_equal(model.transform(X), X)
    assert "unharmonised" in caplog.text


def test_combat_pipeline_survives_cv_with_a_single_patient_scanner() -> None:
    """Repeated CV of a ComBat pipeline when one scanner has a single patient in the whole cohort."""
    from sabrkit.models import build_pipeline, repeated_stratified_cv
    from sabrkit.models.simulation import simulate_feature_cohort

    data = simulate_feature_cohort(np.random.default_rng(3), 40, 12, n_informative=2, log_hazard_ratio=1.0)
    ids = data.X.index
    scanner = pd.Series(["A"] * 20 + ["B"] * 19 + ["C"], index=ids)
    renamed = data.X.set_axis([f"original_firstorder_F{i}" for i in range(data.X.shape[1])], axis=1)
    data = type(data)(
        **{**data.__dict__, "X": renamed, "feature_names": tuple(renamed.columns), "blocks": {}}
    )
    pipeline = build_pipeline("coxph", preprocessing=[{"combat": {"batches": scanner}}, "scale"])
    result = repeated_stratified_cv(pipeline, data, n_splits=5, n_repeats=2, random_state=0)
    assert np.isfinite(result.folds["harrell_c"]).all()
