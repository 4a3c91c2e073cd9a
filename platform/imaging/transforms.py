"""MONAI-style preprocessing transforms that work on SimpleITK images.

Each operation comes as a pair, like MONAI's ``monai/transforms/*/array.py`` and
``dictionary.py``: the array form holds its configuration (validated in ``__init__``) and
works on one image in ``__call__``; the dict form (``...d``) applies the array form to the
keys it was given, leaves every other key (``lesion_id``, ``study_id``, paths) untouched and
returns a new dict. Both subclass :class:`monai.transforms.Transform` /
:class:`monai.transforms.MapTransform`, so they mix with MONAI transforms in
:class:`monai.transforms.Compose`.

SimpleITK images keep their physical geometry (spacing, origin, direction) through every step,
which tensors would lose; convert to tensors only at the end of a pipeline.

Note that :class:`monai.transforms.Compose` re-raises any exception of a transform as
``RuntimeError("applying transform ...")`` with the original error (for example an
:class:`~sabrkit.errors.ImageGeometryError`) as ``__cause__``; use :func:`sabrkit_cause` to
recover it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk
from monai.transforms import MapTransform, Transform

from sabrkit.errors import ConfigError, SabrkitError, format_problem
from sabrkit.imaging.geometry import DEFAULT_GEOMETRY_TOLERANCE, check_mask_not_empty, check_same_grid
from sabrkit.imaging.transform_names import GEOMETRY_TRANSFORMS

__all__ = ["INTERPOLATORS", *GEOMETRY_TRANSFORMS]

logger = logging.getLogger(__name__)

#: Interpolator names accepted by :class:`ResampleToSpacing`, mapped to SimpleITK's constants.
INTERPOLATORS: dict[str, int] = {
    "nearest": sitk.sitkNearestNeighbor,
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,
}

_UNNAMED = "<no lesion_id>"


def sabrkit_cause(exc: BaseException) -> BaseException:
    """Return the first :class:`~sabrkit.errors.SabrkitError` in ``exc``'s cause chain.

    MONAI's ``Compose`` wraps transform errors in ``RuntimeError``; this finds ours again.
    Returns ``exc`` itself when no sabrkit error is in the chain.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, SabrkitError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return exc


def _spacing_tuple(spacing_mm: float | Sequence[float]) -> tuple[float, ...]:
    values = (spacing_mm,) if isinstance(spacing_mm, (int, float)) else tuple(spacing_mm)
    if not values or not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(
            format_problem(
                f"spacing_mm {spacing_mm!r}",
                "voxel spacing must be one positive number (isotropic) or one per axis",
                "pass e.g. 1.0 or (1.0, 1.0, 1.0)",
            )
        )
    return tuple(float(v) for v in values)


def _interpolator(name: str) -> int:
    if name not in INTERPOLATORS:
        raise ConfigError(
            format_problem(
                f"interpolator {name!r}",
                f"the interpolator must be one of {sorted(INTERPOLATORS)}",
                "use 'linear' or 'bspline' for images and 'nearest' for masks",
            )
        )
    return INTERPOLATORS[name]


class ResampleToSpacing(Transform):
    """Resample an image onto a grid with the given voxel spacing.

    The new grid keeps the origin (centre of the first voxel) and direction; its size is
    ``round(size * spacing / spacing_mm)`` per axis, so it covers the same physical extent.
    Voxels sampled past the last input voxel centre take the nearest input value.

    Parameters
    ----------
    spacing_mm : float or sequence of float
        Target spacing in millimetres, one value (isotropic) or one per axis (x, y, z).
    interpolator : {"linear", "bspline", "nearest"}, default "linear"
        ``"nearest"`` keeps the input pixel type (use it for masks); the others write float32.
    """

    def __init__(self, spacing_mm: float | Sequence[float] = 1.0, interpolator: str = "linear") -> None:
        self.spacing_mm = _spacing_tuple(spacing_mm)
        self.interpolator = interpolator
        self._sitk_interpolator = _interpolator(interpolator)

    def __call__(self, image: sitk.Image) -> sitk.Image:
        dim = image.GetDimension()
        spacing = self.spacing_mm * dim if len(self.spacing_mm) == 1 else self.spacing_mm
        if len(spacing) != dim:
            raise ConfigError(
                format_problem(
                    f"spacing_mm {self.spacing_mm} for a {dim}-D image",
                    "give one spacing, or one per image axis",
                    f"pass {dim} values",
                )
            )
        old_size, old_spacing = image.GetSize(), image.GetSpacing()
        new_size = [max(1, int(round(n * s / t))) for n, s, t in zip(old_size, old_spacing, spacing)]
        nearest = self._sitk_interpolator == sitk.sitkNearestNeighbor
        pixel_type = image.GetPixelID() if nearest else sitk.sitkFloat32
        return sitk.Resample(
            image,
            new_size,
            sitk.Transform(),
            self._sitk_interpolator,
            image.GetOrigin(),
            spacing,
            image.GetDirection(),
            0.0,
            pixel_type,
            True,  # useNearestNeighborExtrapolator
        )


class ResampleToSpacingd(MapTransform):
    """Dict form of :class:`ResampleToSpacing`.

    Parameters
    ----------
    keys : hashable or sequence of hashable, default ("image", "mask")
    spacing_mm : float or sequence of float
    interpolator : str or sequence of str, default ("linear", "nearest")
        One name per key (like MONAI's ``mode``), or one name for all keys. Masks must use
        ``"nearest"``.
    allow_missing_keys : bool, default False
    """

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable] = ("image", "mask"),
        spacing_mm: float | Sequence[float] = 1.0,
        interpolator: str | Sequence[str] = ("linear", "nearest"),
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        names = (interpolator,) * len(self.keys) if isinstance(interpolator, str) else tuple(interpolator)
        if len(names) != len(self.keys):
            raise ConfigError(
                format_problem(
                    f"{len(names)} interpolator(s) {names} for keys {self.keys}",
                    "give one interpolator, or one per key",
                    "e.g. keys=('image', 'mask'), interpolator=('bspline', 'nearest')",
                )
            )
        self.resamplers = {key: ResampleToSpacing(spacing_mm, name) for key, name in zip(self.keys, names)}

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.resamplers[key](d[key])
        return d


class ClipIntensity(Transform):
    """Clip intensities to ``[lower, upper]`` (a CT Hounsfield-unit window); keeps the pixel type.

    Parameters
    ----------
    lower, upper : float
        Window bounds, ``lower < upper`` (e.g. -1000 and 3000 HU).
    """

    def __init__(self, lower: float, upper: float) -> None:
        if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
            raise ConfigError(
                format_problem(
                    f"intensity window ({lower!r}, {upper!r})",
                    "the window needs finite bounds with lower < upper",
                    "pass e.g. ClipIntensity(-1000, 3000) for CT",
                )
            )
        self.lower = float(lower)
        self.upper = float(upper)

    def __call__(self, image: sitk.Image) -> sitk.Image:
        return sitk.Clamp(image, image.GetPixelID(), self.lower, self.upper)


class ClipIntensityd(MapTransform):
    """Dict form of :class:`ClipIntensity` (default key ``"image"``; never clip masks)."""

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable] = ("image",),
        lower: float = -1000.0,
        upper: float = 3000.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.clipper = ClipIntensity(lower, upper)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.clipper(d[key])
        return d


def mask_bounding_box(
    mask: sitk.Image, margin_mm: float = 0.0, label: int = 1, case_id: str = _UNNAMED
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Index and size of the box around ``mask == label``, grown by ``margin_mm``, within the image.

    Returns
    -------
    index, size : tuple of int
        In SimpleITK (x, y, z) order, ready for ``SimpleITK.RegionOfInterest``.

    Raises
    ------
    EmptyMaskError
        The mask has no voxel equal to ``label``.
    """
    check_mask_not_empty(mask, case_id, label)
    foreground = sitk.GetArrayViewFromImage(mask) == label  # numpy axes are (z, y, x)
    n_axes = foreground.ndim
    index: list[int] = []
    size: list[int] = []
    for axis_xyz in range(n_axes):
        axis_np = n_axes - 1 - axis_xyz
        others = tuple(a for a in range(n_axes) if a != axis_np)
        hits = np.flatnonzero(foreground.any(axis=others))
        pad = int(math.ceil(margin_mm / mask.GetSpacing()[axis_xyz] - 1e-9))
        lo = max(0, int(hits[0]) - pad)
        hi = min(mask.GetSize()[axis_xyz] - 1, int(hits[-1]) + pad)
        index.append(lo)
        size.append(hi - lo + 1)
    return tuple(index), tuple(size)


class CropToMask(Transform):
    """Crop an image to the bounding box of a mask plus a margin in millimetres.

    The box is clamped to the image, and the cropped image keeps its physical position
    (its origin moves to the box corner).

    Parameters
    ----------
    margin_mm : float, default 10.0
        Margin added on every side, converted to voxels per axis by ``ceil(margin / spacing)``.
    label : int, default 1
    tolerance : float, default 1e-6
        Geometry tolerance for the image/mask grid check.
    """

    def __init__(
        self, margin_mm: float = 10.0, label: int = 1, tolerance: float = DEFAULT_GEOMETRY_TOLERANCE
    ) -> None:
        if not (math.isfinite(margin_mm) and margin_mm >= 0):
            raise ConfigError(
                format_problem(
                    f"crop margin {margin_mm!r} mm",
                    "the margin must be a finite number >= 0",
                    "pass e.g. 10.0",
                )
            )
        self.margin_mm = float(margin_mm)
        self.label = int(label)
        self.tolerance = tolerance

    def __call__(  # type: ignore[override]  # an array transform of an image and its mask (MONAI's take one)
        self, image: sitk.Image, mask: sitk.Image, case_id: str = _UNNAMED
    ) -> sitk.Image:
        """Return ``image`` cropped to ``mask``'s box (call with ``(mask, mask)`` to crop the mask)."""
        check_same_grid(image, mask, case_id, self.tolerance)
        index, size = mask_bounding_box(mask, self.margin_mm, self.label, case_id)
        return sitk.RegionOfInterest(image, size, index)


class CropToMaskd(MapTransform):
    """Dict form of :class:`CropToMask`: crops every key to the box of ``source_key``.

    Parameters
    ----------
    keys : default ("image", "mask")
    source_key : default "mask"
        The mask whose box is used (computed once, applied to every key).
    margin_mm, label, tolerance : see :class:`CropToMask`
    id_key : default "lesion_id"
        Key holding the case ID quoted in error messages.
    """

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable] = ("image", "mask"),
        source_key: Hashable = "mask",
        margin_mm: float = 10.0,
        label: int = 1,
        tolerance: float = DEFAULT_GEOMETRY_TOLERANCE,
        id_key: Hashable = "lesion_id",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.source_key = source_key
        self.id_key = id_key
        self.cropper = CropToMask(margin_mm, label, tolerance)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        case_id = str(d.get(self.id_key, _UNNAMED))
        mask = d[self.source_key]
        index, size = mask_bounding_box(mask, self.cropper.margin_mm, self.cropper.label, case_id)
        for key in self.key_iterator(d):
            check_same_grid(d[key], mask, case_id, self.cropper.tolerance)
            d[key] = sitk.RegionOfInterest(d[key], size, index)
        return d


class CheckGeometryd(MapTransform):
    """Stop with :class:`~sabrkit.errors.ImageGeometryError` unless all ``keys`` share one grid.

    Every key is compared with the first one. Nothing in the dict changes.

    Parameters
    ----------
    keys : default ("image", "mask")
    tolerance : float, default 1e-6
        Relative coordinate tolerance (see :mod:`sabrkit.imaging.geometry`).
    id_key : default "lesion_id"
    """

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable] = ("image", "mask"),
        tolerance: float = DEFAULT_GEOMETRY_TOLERANCE,
        id_key: Hashable = "lesion_id",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if not (math.isfinite(tolerance) and tolerance >= 0):
            raise ConfigError(
                format_problem(f"tolerance {tolerance!r}", "the tolerance must be >= 0", "pass e.g. 1e-4")
            )
        self.tolerance = tolerance
        self.id_key = id_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        case_id = str(d.get(self.id_key, _UNNAMED))
        present = list(self.key_iterator(d))
        for key in present[1:]:
            check_same_grid(d[present[0]], d[key], case_id, self.tolerance)
        return d
