"""Checks that an image and its mask can be used together.

Feature extraction and cropping index image and mask voxels with one index, so both must lie
on one voxel grid: same size, spacing, origin and direction. The tolerance follows ITK (and
pyradiomics' ``geometryTolerance``): origins and spacings may differ by at most
``tolerance * spacing[0]`` millimetres, direction cosines by at most ``tolerance``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import SimpleITK as sitk

from sabrkit.errors import ConfigError, EmptyMaskError, ImageGeometryError, format_problem

__all__ = ["DEFAULT_GEOMETRY_TOLERANCE", "grid_differences", "check_same_grid", "check_mask_not_empty"]

logger = logging.getLogger(__name__)

#: ITK's default coordinate and direction tolerance.
DEFAULT_GEOMETRY_TOLERANCE = 1e-6


def _fmt(values: Iterable[float]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"


def grid_differences(
    image: sitk.Image, mask: sitk.Image, tolerance: float = DEFAULT_GEOMETRY_TOLERANCE
) -> list[str]:
    """List how the voxel grids of ``image`` and ``mask`` differ (empty list: same grid).

    Parameters
    ----------
    image, mask : SimpleITK.Image
    tolerance : float
        Relative coordinate tolerance; see the module docstring.

    Returns
    -------
    list of str
        One entry per differing property (``size``, ``spacing``, ``origin``, ``direction``),
        each quoting both values.
    """
    problems: list[str] = []
    if image.GetDimension() != mask.GetDimension():
        return [f"dimension {image.GetDimension()} != mask dimension {mask.GetDimension()}"]
    if image.GetSize() != mask.GetSize():
        problems.append(f"image size {image.GetSize()} != mask size {mask.GetSize()}")
    coordinate_tol = abs(tolerance * image.GetSpacing()[0])
    for name in ("spacing", "origin"):
        a = np.asarray(getattr(image, f"Get{name.capitalize()}")(), dtype=float)
        b = np.asarray(getattr(mask, f"Get{name.capitalize()}")(), dtype=float)
        if np.any(np.abs(a - b) > coordinate_tol):
            problems.append(f"image {name} {_fmt(a)} != mask {name} {_fmt(b)}")
    a = np.asarray(image.GetDirection(), dtype=float)
    b = np.asarray(mask.GetDirection(), dtype=float)
    if np.any(np.abs(a - b) > tolerance):
        problems.append(f"image direction {_fmt(a)} != mask direction {_fmt(b)}")
    return problems


def check_same_grid(
    image: sitk.Image,
    mask: sitk.Image,
    case_id: str,
    tolerance: float = DEFAULT_GEOMETRY_TOLERANCE,
) -> None:
    """Raise unless ``image`` and ``mask`` share one voxel grid.

    Parameters
    ----------
    image, mask : SimpleITK.Image
    case_id : str
        Pseudonymous case (lesion) ID named in the message.
    tolerance : float, default 1e-6
        Relative coordinate tolerance (ITK semantics, see the module docstring); must be >= 0.

    Raises
    ------
    ImageGeometryError
        Naming the case and every differing property (size, spacing, origin, direction) with
        both values, the rule and the fix.
    """
    if not tolerance >= 0:
        raise ConfigError(
            format_problem(
                f"geometry tolerance {tolerance!r}",
                "the tolerance must be a number >= 0",
                "pass e.g. 1e-4 (pyradiomics' geometryTolerance)",
            )
        )
    problems = grid_differences(image, mask, tolerance)
    if problems:
        raise ImageGeometryError(
            format_problem(
                f"case {case_id}: " + "; ".join(problems),
                f"image and mask must share one voxel grid (tolerance {tolerance:g} x spacing)",
                "resample the mask onto the image grid (nearest neighbour, e.g. "
                "SimpleITK.Resample(mask, image, SimpleITK.Transform(), "
                "SimpleITK.sitkNearestNeighbor)) or re-export both from the same series",
            )
        )


def check_mask_not_empty(mask: sitk.Image, case_id: str, label: int = 1) -> int:
    """Raise unless ``mask`` has at least one voxel equal to ``label``.

    Parameters
    ----------
    mask : SimpleITK.Image
        Label map (integer voxels).
    case_id : str
        Pseudonymous case (lesion) ID named in the message.
    label : int, default 1
        The foreground label.

    Returns
    -------
    int
        The number of voxels with value ``label``.

    Raises
    ------
    EmptyMaskError
        Naming the case, the label and the labels the mask does hold.
    """
    voxels = sitk.GetArrayViewFromImage(mask)
    n_voxels = int(np.count_nonzero(voxels == label))
    if n_voxels == 0:
        present = [v.item() for v in np.unique(voxels)]
        shown = present[:10] + (["..."] if len(present) > 10 else [])
        raise EmptyMaskError(
            format_problem(
                f"case {case_id}: mask has no voxel with label {label} (labels present: {shown})",
                "the region of interest must contain at least one voxel",
                "check that the contour was exported onto this image, or set the label that "
                "the mask uses (params setting 'label')",
            )
        )
    return n_voxels
