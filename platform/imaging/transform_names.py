"""Names of the MONAI-based transforms, importable without importing MONAI.

``sabrkit.imaging`` re-exports the transforms lazily (MONAI and torch take seconds to import, and
every feature-extraction worker imports ``sabrkit.imaging``); the modules that define them take
their ``__all__`` from here, so each list is written once.
"""

from __future__ import annotations

__all__ = ["GEOMETRY_TRANSFORMS", "INTENSITY_TRANSFORMS"]

#: Defined in :mod:`sabrkit.imaging.transforms`.
GEOMETRY_TRANSFORMS = (
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

#: Defined in :mod:`sabrkit.imaging.intensity`.
INTENSITY_TRANSFORMS = (
    "N4BiasFieldCorrection",
    "N4BiasFieldCorrectiond",
    "ZScoreNormalize",
    "ZScoreNormalized",
    "PercentileNormalize",
    "PercentileNormalized",
)
