"""Experiment definitions: model x feature set x validation, validated from YAML.

An experiment file (``experiments/<name>.yaml``) names *what* to validate, never *which
columns*: feature sets are whole blocks and every data-dependent step is a pipeline step, so
no experiment can select features (or tune, scale, harmonise) on all patients before
validation. Unknown keys anywhere are rejected with the key named. Example::

    name: clinical_radiomic_coxnet
    description: Elastic-net Cox on clinical and radiomic features.
    data: {feature_set: clinical+radiomic, endpoint: pfs}
    model:
      estimator: coxnet
      params: {l1_ratio: 0.5, alpha: 0.05, k: 20}
      tuning: {grid: {coxnet__l1_ratio: [0.2, 0.5, 0.9]}, inner_splits: 3}
    validation: {n_splits: 5, n_repeats: 10, random_state: 42, strata: systemic_therapy}

A researcher's own data comes as one table instead of ``data``/``inputs``: a ``table``
section names the file and its id, time, event, covariate and feature-block columns
(:class:`~sabrkit.models.table_spec.TableSpec`). Sections ``inputs`` (paths relative to the project root), ``clinical_reference`` (the
clinical-only model always validated beside it), ``analysis`` and ``tracking`` have defaults;
see ``docs/models.md``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sabrkit.errors import ConfigError, format_problem
from sabrkit.models.table_spec import TableSpec

if TYPE_CHECKING:
    from sabrkit.models.dataset import SurvivalDataset

__all__ = [
    "ExperimentSpec",
    "InputsSpec",
    "DataSpec",
    "ModelSpec",
    "TuningSpec",
    "ValidationSpec",
    "ReferenceSpec",
    "AnalysisSpec",
    "TrackingSpec",
    "TableSpec",
    "load_experiment",
    "parse_experiment",
]

logger = logging.getLogger(__name__)

StepSpecModel = str | dict[str, dict[str, Any] | None]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputsSpec(_Strict):
    """Where the tables come from, relative to the project root (defaults: the spine's outputs)."""

    lesion_features: str | None = "data/features/lesion_features.parquet"
    aggregation: Literal["largest", "volume_weighted_mean", "mean", "max", "min"] = "largest"
    clinical: str | None = Field(
        "data/registry/clinical.parquet", description="null: no clinical table, no reference"
    )
    endpoints: str = "data/registry/endpoints.parquet"
    deep_features: str | None = None
    biomarkers: str | None = None
    lesion_outcomes: str | None = Field(
        None,
        description="local control per treated lesion (data/registry/lesion_outcomes.parquet, written by `ingest`)",
    )
    lesion_dose: str | None = Field(
        "data/dose/lesion_dose.csv",
        description="per-lesion dose table of the `dose` stage: dose and dvh blocks",
    )
    dosiomics: str | None = Field(
        "data/dose/dosiomics.parquet", description="dose/BED map features of the `dose` stage: dosiomic block"
    )
    delta_features: str | None = Field(
        "data/followup/delta_features.parquet",
        description="follow-up change per lesion (delta_*): delta block",
    )
    consent: str | None = Field(
        "data/registry/consent.parquet",
        description="consent snapshot (study_id, consented) written by `ingest`; 'not_required' with consent_reason",
    )
    consent_reason: str | None = Field(
        None, description="why consent does not apply (only with consent: not_required)"
    )
    images: str | None = Field(None, description="image manifest with a scanner column: ComBat batches")
    perturbed_features: str | None = Field(None, description="perturbed feature table: ICC filter")

    @model_validator(mode="after")
    def _consent_checked(self) -> InputsSpec:
        if not self.consent:
            raise ValueError(
                "inputs.consent is required: the consent snapshot (data/registry/consent.parquet) or "
                "'not_required' with inputs.consent_reason"
            )
        if self.consent == "not_required" and not (self.consent_reason or "").strip():
            raise ValueError(
                "inputs.consent: not_required needs inputs.consent_reason (why consent does not apply)"
            )
        return self


class DataSpec(_Strict):
    feature_set: str
    endpoint: Literal["pfs", "os", "local_control"] = "pfs"
    unit: Literal["patient", "lesion"] = "patient"

    @field_validator("feature_set")
    @classmethod
    def _known_blocks(cls, value: str) -> str:
        from sabrkit.models.dataset import parse_feature_set

        return "+".join(parse_feature_set(value))

    @model_validator(mode="after")
    def _unit_matches_endpoint(self) -> DataSpec:
        if (self.unit == "lesion") != (self.endpoint == "local_control"):
            raise ValueError(
                "local_control is a lesion-level endpoint: use unit 'lesion' with it and only with it"
            )
        return self


class TuningSpec(_Strict):
    """Nested CV: grid search inside every outer training fold."""

    grid: dict[str, list[Any]]
    inner_splits: int = Field(3, ge=2)


_SIDE_DATA = {"combat": "batches", "icc": "perturbed_features"}


def _with_side_data(preprocessing: list | None, side_data: dict[str, Any] | None) -> list | None:
    if preprocessing is None:
        return None
    from sabrkit.models.steps import normalise_step_specs

    out: list = []
    for name, params in normalise_step_specs(preprocessing):
        key = _SIDE_DATA.get(name)
        if key is not None and key not in params:
            if not side_data or side_data.get(key) is None:
                raise ConfigError(
                    format_problem(
                        f"preprocessing step {name!r} without {key}",
                        f"the {name!r} step needs the {key} table",
                        "set inputs.images (ComBat scanner batches) or inputs.perturbed_features (ICC) "
                        "in the experiment file",
                    )
                )
            params = {**params, key: side_data[key]}
        out.append({name: params})
    return out


def _check_estimator(name: str) -> str:
    from sabrkit.models.estimators import available_estimators

    if name not in available_estimators():
        raise ValueError(f"unknown estimator {name!r}; registered: {list(available_estimators())}")
    return name


class ModelSpec(_Strict):
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)
    preprocessing: list[StepSpecModel] | None = None
    tuning: TuningSpec | None = None

    @field_validator("estimator")
    @classmethod
    def _registered(cls, value: str) -> str:
        return _check_estimator(value)

    def build(self, random_state: int = 0, side_data: dict[str, Any] | None = None) -> Any:
        """The unfitted pipeline (wrapped in a grid search when ``tuning`` is set).

        ``side_data`` supplies the ``combat`` step's ``batches`` and the ``icc`` step's
        ``perturbed_features`` when the spec does not set them (they are tables, not YAML).
        """
        from sabrkit.models.estimators import build_pipeline
        from sabrkit.models.tuning import tuned_pipeline

        pipeline = build_pipeline(
            self.estimator, preprocessing=_with_side_data(self.preprocessing, side_data), **self.params
        )
        if self.tuning is None:
            return pipeline
        return tuned_pipeline(pipeline, self.tuning.grid, self.tuning.inner_splits, random_state=random_state)


class ReferenceSpec(_Strict):
    """The comparator validated beside every experiment on the same folds.

    By default the clinical-only model; ``feature_set`` names another fixed comparator (e.g.
    ``dose``: BED10 of the prescription alone for a lesion-level local-control model), shown in
    the same place as the clinical model (``clinical_reference``, ``delta_*`` of the comparison).
    """

    estimator: str = "coxph"
    feature_set: str = "clinical"
    covariates: list[str] | Literal["all"] | None = Field(
        None,
        description="covariates of the comparator (clinical covariate names or column names); 'all': every "
        "column of feature_set; null (default): the established prognostic factors (imdc_risk, ecog, "
        "disease_state) for the clinical comparator, every column otherwise",
    )
    params: dict[str, Any] = Field(default_factory=dict)
    preprocessing: list[StepSpecModel] | None = None

    @field_validator("estimator")
    @classmethod
    def _registered(cls, value: str) -> str:
        return _check_estimator(value)

    @field_validator("feature_set")
    @classmethod
    def _known_blocks(cls, value: str) -> str:
        from sabrkit.models.dataset import parse_feature_set

        return "+".join(parse_feature_set(value))

    @field_validator("covariates")
    @classmethod
    def _some_covariates(cls, value: list[str] | str | None) -> list[str] | str | None:
        if isinstance(value, list) and not value:
            raise ValueError("clinical_reference.covariates: name at least one covariate, or 'all'")
        return value

    @property
    def chosen_covariates(self) -> tuple[str, ...] | None:
        """The covariates the comparator keeps, or None for every column of ``feature_set``."""
        from sabrkit.models.clinical_encoding import ESTABLISHED_CLINICAL

        if self.covariates == "all":
            return None
        if self.covariates is None:
            return ESTABLISHED_CLINICAL if self.feature_set == "clinical" else None
        return tuple(self.covariates)

    def comparator_data(self, data: SurvivalDataset) -> SurvivalDataset:
        """``data`` (already the comparator's blocks) restricted to :attr:`chosen_covariates`."""
        from sabrkit.models.clinical_encoding import covariate_columns

        chosen = self.chosen_covariates
        if chosen is None or not data.feature_names:
            return data  # nothing to restrict (an empty table is reported by the runner)
        return data.restrict(covariate_columns(chosen, data.feature_names))

    def build(self) -> Any:
        from sabrkit.models.estimators import build_pipeline

        return build_pipeline(self.estimator, preprocessing=self.preprocessing, **self.params)


class ValidationSpec(_Strict):
    n_splits: int = Field(5, ge=2)
    n_repeats: int = Field(10, ge=1)
    random_state: int = 42
    strata: str | None = None
    tau_months: float = Field(24.0, gt=0)
    auc_times: tuple[float, ...] = (12.0, 24.0)
    bootstrap_optimism: int = Field(
        0, ge=0, description="bootstrap samples of Harrell's optimism correction; 0 = off"
    )


class AnalysisSpec(_Strict):
    importance_repeats: int = Field(5, ge=0, description="shuffles per feature and fold; 0 = no importance")
    permutations: int = Field(
        99, ge=0, description="whole-procedure permutation test: CV re-runs on permuted outcomes; 0 = off"
    )
    permutation_cv_repeats: int = Field(
        1, ge=1, description="CV repeats inside the permutation test (observed and null)"
    )
    interval_bootstrap: int = Field(
        100,
        ge=0,
        description="bootstrap cohorts of the interval for C and delta-C (whole CV re-run); 0 = off",
    )
    interval_cv_repeats: int = Field(1, ge=1, description="CV repeats inside every bootstrap cohort")
    therapy_column: str | None = Field(
        "systemic_therapy", description="forest plot by therapy class; null: none"
    )

    @field_validator("interval_bootstrap")
    @classmethod
    def _enough_bootstrap(cls, value: int) -> int:
        if 0 < value < 20:
            raise ValueError(
                "interval_bootstrap needs 0 (off) or at least 20 bootstrap cohorts for a 95 % interval"
            )
        return value

    screening: bool = True
    screening_fdr: float = Field(0.10, gt=0, lt=1)
    decision_curve: bool = Field(True, description="decision-curve analysis at 24 months (dcurves)")


class TrackingSpec(_Strict):
    experiment_name: str = "sabr-experiments"
    registered_model_name: str | None = Field(None, description="default: sabr-<experiment name>")
    register_model: bool = True


class ExperimentSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    inputs: InputsSpec = InputsSpec()
    data: DataSpec | None = Field(None, description="registry tables (inputs:); exclusive with table")
    table: TableSpec | None = Field(
        None, description="one table of the researcher's own; exclusive with data"
    )
    model: ModelSpec
    clinical_reference: ReferenceSpec = ReferenceSpec()
    validation: ValidationSpec = ValidationSpec()
    analysis: AnalysisSpec = AnalysisSpec()
    tracking: TrackingSpec = TrackingSpec()

    @model_validator(mode="after")
    def _one_source(self) -> ExperimentSpec:
        if (self.data is None) == (self.table is None):
            raise ValueError(
                "an experiment has either data: (the registry tables) or table: (one table), not both "
                "or neither"
            )
        if self.table is not None and self.clinical_reference.covariates is not None:
            raise ValueError(
                "clinical_reference.covariates is for the registry data (data:); a table experiment names its "
                "comparator's covariates in table.comparator"
            )
        return self

    @property
    def feature_set(self) -> str:
        """The model's blocks joined by ``+`` (registry blocks, or the table's block names)."""
        return self.table.feature_set if self.table is not None else self.data.feature_set  # type: ignore[union-attr]

    @property
    def registered_model_name(self) -> str | None:
        if not self.tracking.register_model:
            return None
        return self.tracking.registered_model_name or f"sabr-{self.name}"

    @property
    def compares_with_reference(self) -> bool:
        """False only when the experiment *is* the clinical reference model (or a table has no comparator)."""
        if self.table is not None:
            return self.table.comparator is not None
        assert self.data is not None
        reference = self.clinical_reference.feature_set
        if self.inputs.clinical is None and "clinical" in reference.split("+"):
            return False  # no clinical table: no clinical reference model
        if self.data.feature_set != reference or self.model.tuning is not None:
            return True
        if self.clinical_reference.chosen_covariates is not None:
            return True  # the comparator keeps fewer covariates than the model's feature set
        if self.model.estimator != self.clinical_reference.estimator or self.model.preprocessing is not None:
            return True
        return repr(self.model.build()) != repr(self.clinical_reference.build())


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '<top>'}: {e['msg']} (got {e.get('input')!r})"
        for e in exc.errors()
    )


def parse_experiment(document: dict[str, Any], source: str = "<experiment>") -> ExperimentSpec:
    """Validate an experiment mapping; raise :class:`ConfigError` naming every bad key."""
    try:
        return ExperimentSpec.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(
            format_problem(
                f"{source}: {_problems(exc)}",
                "experiment files follow sabrkit.models.spec.ExperimentSpec (unknown keys are rejected)",
                "correct the keys named above (see docs/models.md)",
            )
        ) from None


def load_experiment(path: str | os.PathLike[str]) -> ExperimentSpec:
    """Read and validate ``experiments/<name>.yaml``; ``name`` defaults to, and must equal, the file stem."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            format_problem(
                f"experiment file {path}", "the file must exist", "give the path of experiments/<name>.yaml"
            )
        )
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            format_problem(f"{path}: {exc}", "experiment files are YAML", "fix the syntax")
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(
            format_problem(f"{path} holds {type(document).__name__}", "a mapping at the top", "fix it")
        )
    document.setdefault("name", path.stem)
    if document["name"] != path.stem:
        raise ConfigError(
            format_problem(
                f"{path}: name {document['name']!r}",
                "an experiment's name equals its file name (DVC runs experiments by file name)",
                f"rename the file or set name: {path.stem}",
            )
        )
    return parse_experiment(document, str(path))
