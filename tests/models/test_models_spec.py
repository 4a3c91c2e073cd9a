"""Experiment files: strict validation, no way to name columns, every shipped experiment is valid."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from sabrkit.errors import ConfigError
from sabrkit.models.spec import ExperimentSpec, load_experiment, parse_experiment

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
MINIMAL = {"name": "x", "data": {"feature_set": "clinical+radiomic"}, "model": {"estimator": "coxnet"}}


def test_minimal_experiment_gets_documented_defaults() -> None:
    spec = parse_experiment(MINIMAL)
    assert (
        spec.validation.n_splits == 5 and spec.validation.n_repeats == 10 and spec.validation.tau_months == 24
    )
    assert spec.clinical_reference.estimator == "coxph" and spec.compares_with_reference
    assert spec.inputs.lesion_features == "data/features/lesion_features.parquet"
    assert spec.registered_model_name == "sabr-x"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"model": {"estimator": "coxnet", "columns": ["original_glcm_Contrast"]}},
            r"model\.columns: Extra inputs",
        ),
        ({"data": {"feature_set": "clinical", "features": ["age_years"]}}, r"data\.features: Extra inputs"),
        ({"selected_features": ["a"]}, "selected_features: Extra inputs"),
        ({"validation": {"n_splits": 1}}, r"validation\.n_splits"),
        ({"validation": {"n_folds": 5}}, r"validation\.n_folds: Extra inputs"),
        ({"model": {"estimator": "svm"}}, "unknown estimator 'svm'"),
        ({"data": {"feature_set": "clinical+genomic"}}, "feature set joins distinct blocks"),
        ({"data": {"feature_set": "radiomic", "endpoint": "local_control"}}, "lesion-level endpoint"),
    ],
)
def test_bad_experiments_are_rejected_naming_the_key(patch: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_experiment({**MINIMAL, **patch})


def test_no_field_can_carry_a_column_list() -> None:
    """Selection before validation cannot be configured: no spec field names columns.

    The one exception is the ``table:`` section of a researcher's own table, which must say
    which columns are the ID, time, event, covariates and blocks (issue 13); it has no field
    for a selected subset either. ``clinical_reference.covariates`` names the comparator's
    prespecified clinical model (covariate names, not a feature subset of the model).
    """
    schema = ExperimentSpec.model_json_schema()
    defs = {k: v for k, v in schema.get("$defs", {}).items() if k not in ("TableSpec", "BlockSpec")}
    rest = str({**{k: v for k, v in schema.items() if k != "$defs"}, "$defs": defs}).lower()
    rest = rest.replace("'table': {'anyof': [{'$ref': '#/$defs/tablespec'}", "")
    for forbidden in ("'columns'", "'features'", "'selected'", "'feature_list'"):
        assert forbidden not in rest
    table = str(schema["$defs"]["TableSpec"]).lower()
    for forbidden in ("'features'", "'selected'", "'feature_list'"):
        assert forbidden not in table


def test_file_name_is_the_experiment_name(tmp_path: Path) -> None:
    path = tmp_path / "my_exp.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in MINIMAL.items() if k != "name"}))
    assert load_experiment(path).name == "my_exp"
    path.write_text(yaml.safe_dump(MINIMAL))
    with pytest.raises(ConfigError, match="name equals its file name"):
        load_experiment(path)
    with pytest.raises(ConfigError, match="must exist"):
        load_experiment(tmp_path / "missing.yaml")


def test_clinical_reference_experiment_is_not_compared_with_itself() -> None:
    spec = parse_experiment(
        {
            "name": "c",
            "data": {"feature_set": "clinical"},
            "model": {"estimator": "coxph", "params": {"alpha": 0.01}},
            "clinical_reference": {"covariates": "all"},
        }
    )
    assert not spec.compares_with_reference
    # the default comparator keeps the established factors only: a model of every clinical
    # covariate is then a different model, compared with it
    every = parse_experiment({**spec.model_dump(exclude={"clinical_reference"}), "name": "c"})
    assert every.clinical_reference.chosen_covariates == ("imdc_risk", "ecog", "disease_state")
    assert every.compares_with_reference
    other = parse_experiment(
        {
            "name": "c",
            "data": {"feature_set": "clinical"},
            "model": {"estimator": "coxph", "params": {"alpha": 1.0}},
        }
    )
    assert other.compares_with_reference


def test_side_data_steps_need_their_tables() -> None:
    spec = parse_experiment(
        {
            **MINIMAL,
            "model": {
                "estimator": "coxnet",
                "params": {"alpha": 0.1},
                "preprocessing": ["impute", {"combat": {}}, "scale"],
            },
        }
    )
    with pytest.raises(ConfigError, match=r"set inputs.images"):
        spec.model.build()


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_experiments_are_valid_and_build(path: Path) -> None:
    spec = load_experiment(path)
    side_data = {"batches": {}, "perturbed_features": pd.DataFrame({"study_id": [], "perturbation": []})}
    pipeline = spec.model.build(random_state=0, side_data=side_data)
    assert hasattr(pipeline, "fit") and spec.description


def test_comparator_covariates_are_checked() -> None:
    with pytest.raises(ConfigError, match="name at least one covariate"):
        parse_experiment({**MINIMAL, "clinical_reference": {"covariates": []}})
    with pytest.raises(ConfigError, match=r"clinical_reference\.covariates"):
        parse_experiment({**MINIMAL, "clinical_reference": {"covariates": "some"}})
    dose = parse_experiment(
        {
            "name": "l",
            "data": {"feature_set": "radiomic", "endpoint": "local_control", "unit": "lesion"},
            "model": {"estimator": "coxph"},
            "clinical_reference": {"feature_set": "dose"},
        }
    )
    assert dose.clinical_reference.chosen_covariates is None  # other comparators keep every column
