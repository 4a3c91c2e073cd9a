"""Image I/O, geometry checks and MONAI-style preprocessing (``sabrkit.imaging``).

The transform classes import MONAI (and torch), which takes seconds; they are re-exported
lazily so that ``import sabrkit.imaging`` (used by every feature-extraction worker) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from sabrkit.imaging.geometry import check_mask_not_empty, check_same_grid, grid_differences
from sabrkit.imaging.io import read_image, sha256_file, write_image
from sabrkit.imaging.preprocess import MANIFEST_COLUMNS, PreprocessConfig, check_manifest, preprocess_manifest

if TYPE_CHECKING:
    from sabrkit.imaging.transforms import (
        CheckGeometryd,
        ClipIntensity,
        ClipIntensityd,
        CropToMask,
        CropToMaskd,
        ResampleToSpacing,
        ResampleToSpacingd,
        mask_bounding_box,
        sabrkit_cause,
    )

_LAZY_FROM_TRANSFORMS = (
    "ResampleToSpacing",
    "ResampleToSpacingd",
    "ClipIntensity",
    "ClipIntensityd",
    "CropToMask",
    "CropToMaskd",
    "CheckGeometryd",
    "mask_bounding_box",
    "sabrkit_cause",
)

__all__ = [
    "read_image",
    "write_image",
    "sha256_file",
    "check_same_grid",
    "check_mask_not_empty",
    "grid_differences",
    "PreprocessConfig",
    "preprocess_manifest",
    "check_manifest",
    "MANIFEST_COLUMNS",
    *_LAZY_FROM_TRANSFORMS,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_FROM_TRANSFORMS:
        return getattr(import_module("sabrkit.imaging.transforms"), name)
    raise AttributeError(f"module 'sabrkit.imaging' has no attribute {name!r}")
