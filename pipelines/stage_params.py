"""Typed, validated sections of ``params.yaml`` for the pipeline entry points.

Only entry points read ``params.yaml``; each turns its section into one of these frozen pydantic
models, which refuse unknown keys (a typo such as ``bin_widht`` stops the stage with a message
naming the key) and wrong types, and hand plain values to the package.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ROOT = Path(__file__).resolve().parents[1]
PARAMS_FILE = ROOT / "params.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SynthesizeParams(_Section):
    seed: int
    n_patients: int = Field(gt=0)
    enrolment_start: dt.date
    enrolment_end: dt.date
    cutoff_date: dt.date
    image_shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    # log hazard ratios by hazard term (sabrkit.synthetic.hazard); validated by SynthConfig
    progression_coefficients: dict[str, float] = Field(default_factory=dict)
    death_coefficients: dict[str, float] = Field(default_factory=dict)


class ReportParams(_Section):
    target_patients: int = Field(60, gt=0)
    landmark_months: float = Field(24.0, gt=0)
    cutoff_date: dt.date | None = None


class PreprocessParams(_Section):
    # folder whose images.csv lists the lesion images and masks: data/synthetic (the synthetic
    # cohort's NIfTI) or data/imaging (the DICOM path: dicom -> deidentify -> imaging_ingest)
    source: Literal["data/synthetic", "data/imaging"] = "data/synthetic"
    spacing_mm: tuple[float, float, float]
    interpolator: Literal["linear", "bspline"] = "bspline"
    hu_window: tuple[float, float]
    crop_margin_mm: float = Field(ge=0)
    max_failure_fraction: float = Field(0.0, ge=0, le=1)


class FeaturesParams(_Section):
    radiomics_params: str
    max_failure_fraction: float = Field(0.0, ge=0, le=1)


class AssembleParams(_Section):
    aggregation: Literal["largest", "volume_weighted_mean", "mean", "max", "min"]
    feature_set: Literal["clinical", "radiomic", "clinical+radiomic"]
    endpoint: Literal["pfs", "os"]
    # consent snapshot written by `ingest` (repo-relative), or "not_required" with consent_reason
    consent: str = "data/registry/consent.parquet"
    consent_reason: str | None = None


class TrainParams(_Section):
    estimator: str
    estimator_params: dict[str, Any] = Field(default_factory=dict)
    tuning: dict[str, Any] | None = None  # {grid: {step__param: [...]}, inner_splits: 3}: nested CV
    n_splits: int = Field(ge=2)
    n_repeats: int = Field(ge=1)
    random_state: int
    tau_months: float = Field(gt=0)
    experiment_name: str


class EvaluateParams(_Section):
    permutations: int = Field(99, ge=0)  # whole-procedure permutation test (CV re-runs)
    permutation_cv_repeats: int = Field(1, ge=1)
    interval_bootstrap: int = Field(100, ge=0)  # bootstrap cohorts of the C / delta-C interval
    interval_cv_repeats: int = Field(1, ge=1)
    importance_repeats: int = Field(0, ge=0)


class DeepFeaturesParams(_Section):
    seed: int
    checkpoint: str | None = None
    crop_size_voxels: int = Field(32, ge=8, multiple_of=8)
    crop_spacing_mm: float = Field(1.5, gt=0)
    hu_window: tuple[float, float] = (-200.0, 300.0)
    channels: tuple[int, ...] = (4, 8, 16)
    epochs: int = Field(15, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(0.002, gt=0)
    noise_sd: float = Field(0.05, ge=0)


class RobustnessParams(_Section):
    seed: int
    n_perturbations: int = Field(8, ge=2)
    noise_sd_hu: float = Field(10.0, ge=0)
    max_rotation_deg: float = Field(10.0, ge=0, le=45)
    max_translation_voxels: float = Field(0.5, ge=0, le=1)
    max_volume_change: float = Field(0.15, ge=0, le=0.5)
    contour_flip_probability: float = Field(0.25, ge=0, le=1)
    icc_threshold: float = Field(0.75, ge=0, le=1)
    max_failure_fraction: float = Field(0.0, ge=0, le=1)


class DicomParams(_Section):
    follow_up: bool = True  # also write uncontoured follow-up CTs


class DeidentifyParams(_Section):
    max_shift_days: int = Field(365, ge=1)  # dates move back 1..N days, one offset per patient
    keep_label_pattern: str = r"(GTV|CTV|ITV|PTV|IGTV)[A-Za-z0-9_\-]{0,12}"


class ImagingIngestParams(_Section):
    roi_pattern: str = r"GTV.*"
    lesion_pattern: str = r"GTV[_-]?L(?P<n>\d+)"
    lesion_id_template: str = "{study_id}-L{n}"
    modalities: tuple[str, ...] = ("CT", "MR")
    slice_tolerance: float = Field(0.01, gt=0, lt=0.5)
    max_failure_fraction: float = Field(0.0, ge=0, le=1)


class DoseParams(_Section):
    alpha_beta_tumour: float = Field(10.0, gt=0)  # Gy, inside lesions (BED10)
    alpha_beta_normal: float = Field(3.0, gt=0)  # Gy, late-responding tissue elsewhere
    dvh_bin_width_gy: float = Field(0.1, gt=0)  # cumulative DVH tables
    constraint_table: str | None = None  # YAML path (project-relative); None: packaged TG-101
    dosiomics_params: str = "dose_v1"  # pyradiomics profile of the dose/BED features


class UnetParams(_Section):
    channels: tuple[int, ...] = (8, 16, 32, 64)
    strides: tuple[int, ...] = (2, 2, 2)
    num_res_units: int = Field(0, ge=0)
    patch_size: tuple[int, int, int] = (32, 32, 32)
    hu_window: tuple[float, float] = (-250.0, 350.0)
    samples_per_lesion: int = Field(4, ge=1)
    batch_lesions: int = Field(4, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    max_epochs: int = Field(200, ge=1)
    max_minutes: float = Field(8.0, gt=0)
    validate_every: int = Field(10, ge=1)
    held_out_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 20240501
    experiment_name: str = "sabr-lesion-unet"


class SegmentParams(_Section):
    spacing_mm: float = Field(1.0, gt=0)
    min_dice_warning: float = Field(0.5, ge=0, le=1)


class FollowupParams(_Section):
    """The `followup` stage (sabrkit.imaging.followup_run.FollowUpConfig; docs/imaging.md)."""

    min_interval_days: int = Field(28, ge=0)  # a follow-up is a study at least this long after planning
    search_margin_mm: float = Field(15.0, ge=0)
    max_rotation_deg: float = Field(15.0, gt=0, le=180)
    max_translation_mm: float = Field(60.0, gt=0)
    min_correlation: float = Field(0.5, ge=-1, le=1)
    empty_mask_is_complete_response: bool = False
    mask_source: Literal["semiauto", "segment"] = "semiauto"
    links: str | None = None  # CSV lesion_id,series_uid (project-relative) replacing the pairing rule
    seed: int = 20240501  # metric sampling of the registration
    max_failure_fraction: float = Field(0.25, ge=0, le=1)


class ExperimentsParams(_Section):
    """Which files of ``experiments/`` the ``experiment`` stage runs (``experiment@<name>``)."""

    names: list[str] = Field(default_factory=list)
    #: experiments the DICOM path's pipeline runs (they need its dose tables); the comparison
    #: table lists each one whose metrics file exists
    dicom_names: list[str] = Field(default_factory=list)

    @field_validator("names", "dicom_names")
    @classmethod
    def _files_exist(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError(f"names repeat: {sorted({n for n in names if names.count(n) > 1})}")
        missing = [name for name in names if not (ROOT / "experiments" / f"{name}.yaml").is_file()]
        if missing:
            raise ValueError(f"no experiments/<name>.yaml for {missing}; add the file or drop the name")
        return names


class ExecutionParams(_Section):
    n_jobs: int = Field(1, ge=1)
    cache_dir: str | None = None
    scheduler: str | None = None


SECTIONS: dict[str, type[_Section]] = {
    "synthesize": SynthesizeParams,
    "report": ReportParams,
    "preprocess": PreprocessParams,
    "features": FeaturesParams,
    "assemble": AssembleParams,
    "train": TrainParams,
    "evaluate": EvaluateParams,
    "deep_features": DeepFeaturesParams,
    "robustness": RobustnessParams,
    "experiments": ExperimentsParams,
    "execution": ExecutionParams,
    "dicom": DicomParams,
    "deidentify": DeidentifyParams,
    "imaging_ingest": ImagingIngestParams,
    "dose": DoseParams,
    "unet": UnetParams,
    "segment": SegmentParams,
    "followup": FollowupParams,
}


class ParamsError(SystemExit):
    """Stops a stage with a readable message (exit status 2)."""


def load_all(path: Path = PARAMS_FILE) -> dict[str, _Section]:
    """Read and validate every section of ``params.yaml``."""
    raw = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ParamsError(
            f"{path}: unknown section(s) {unknown}; rule: sections are {sorted(SECTIONS)}; "
            "fix: rename or remove them"
        )
    out: dict[str, _Section] = {}
    for name, model in SECTIONS.items():
        try:
            out[name] = model.model_validate(raw.get(name, {}))
        except ValidationError as exc:
            problems = "; ".join(
                f"{name}.{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})"
                for e in exc.errors()
            )
            raise ParamsError(f"{path}: {problems}; fix: correct params.yaml") from None
    return out


def load_section(name: str, path: Path = PARAMS_FILE) -> Any:
    """Validated section ``name`` of ``params.yaml`` (the whole file is checked)."""
    return load_all(path)[name]
