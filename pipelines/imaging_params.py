"""Validated ``params.yaml`` sections of the imaging stages (dicom, deidentify, imaging_ingest, unet, segment).

Kept beside ``stage_params.py`` until the lead merges them there (``SECTIONS.update(IMAGING_SECTIONS)``):
``stage_params.load_all`` refuses sections it does not know, so these are read here from the raw YAML,
each validated by a frozen pydantic model that rejects unknown keys; a missing section means defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stage_params import PARAMS_FILE, ParamsError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DicomParams(_Section):
    follow_up: bool = True                       # also write uncontoured follow-up CTs


class DeidentifyParams(_Section):
    max_shift_days: int = Field(365, ge=1)       # dates move back 1..N days, one offset per patient
    keep_label_pattern: str = r"(GTV|CTV|ITV|PTV|IGTV)[A-Za-z0-9_\-]{0,12}"


class ImagingIngestParams(_Section):
    roi_pattern: str = r"GTV.*"
    lesion_pattern: str = r"GTV[_-]?L(?P<n>\d+)"
    lesion_id_template: str = "{study_id}-L{n}"
    modalities: tuple[str, ...] = ("CT", "MR")
    slice_tolerance: float = Field(0.01, gt=0, lt=0.5)
    max_failure_fraction: float = Field(0.0, ge=0, le=1)


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


IMAGING_SECTIONS: dict[str, type[_Section]] = {
    "dicom": DicomParams,
    "deidentify": DeidentifyParams,
    "imaging_ingest": ImagingIngestParams,
    "unet": UnetParams,
    "segment": SegmentParams,
}


def load_imaging_section(name: str, path: Path = PARAMS_FILE) -> Any:
    """Validated imaging section ``name`` of ``params.yaml`` (defaults when the section is absent)."""
    raw = yaml.safe_load(path.read_text()) or {}
    try:
        return IMAGING_SECTIONS[name].model_validate(raw.get(name, {}) or {})
    except ValidationError as exc:
        problems = "; ".join(f"{name}.{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})"
                             for e in exc.errors())
        raise ParamsError(f"{path}: {problems}; fix: correct params.yaml") from None


