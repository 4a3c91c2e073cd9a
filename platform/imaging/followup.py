"""Follow-up imaging: rigid registration to the planning CT, lesion size and delta features.

* :func:`register_rigid` aligns a follow-up CT to the planning CT with SimpleITK's
  ``ImageRegistrationMethod`` (Euler 3-D transform, Mattes mutual information, regular-step
  gradient descent, a three-level pyramid), starting from the geometric centres;
  :func:`resample_to` then puts a follow-up image or mask on the planning grid.
* :func:`longest_axial_diameter_mm` is the RECIST 1.1 size of a lesion mask: the largest
  Feret diameter over its axial slices (``LabelShapeStatisticsImageFilter``), what a reader
  measures on the axial images; :func:`longest_3d_diameter_mm` the 3-D Feret diameter beside it.
* :func:`delta_features` turns two lesion feature tables (planning and follow-up) into absolute
  and relative changes per month, and :func:`size_response` the diameter change with a
  RECIST 1.1-like category (CR: no lesion left, PR: at least 30 % smaller than baseline, PD: at
  least 20 % and 5 mm larger than the nadir, SD otherwise; a single-lesion reading, not a RECIST
  assessment of a patient).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.errors import ValidationError, format_problem

__all__ = [
    "delta_features",
    "longest_3d_diameter_mm",
    "longest_axial_diameter_mm",
    "register_rigid",
    "resample_to",
    "size_response",
]

logger = logging.getLogger(__name__)


def register_rigid(
    fixed: Any,
    moving: Any,
    *,
    sampling_fraction: float = 0.2,
    seed: int = 20240501,
    iterations: int = 200,
    fixed_mask: Any = None,
) -> Any:
    """Rigid (Euler 3-D) transform mapping ``fixed`` (planning CT) points into ``moving`` (follow-up CT).

    ``fixed_mask`` (optional, on ``fixed``'s grid): only its non-zero voxels enter the metric, e.g.
    everything but the lesion and its surroundings, which change between the scans.

    Returns
    -------
    SimpleITK.Transform
        Use with :func:`resample_to` (``moving`` onto ``fixed``'s grid).
    """
    import SimpleITK as sitk

    fixed_f = sitk.Cast(fixed, sitk.sitkFloat32)
    moving_f = sitk.Cast(moving, sitk.sitkFloat32)
    initial = sitk.CenteredTransformInitializer(
        fixed_f, moving_f, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(sampling_fraction, seed)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-4, numberOfIterations=iterations, gradientMagnitudeTolerance=1e-8
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    if fixed_mask is not None:
        method.SetMetricFixedMask(sitk.Cast(sitk.NotEqual(fixed_mask, 0), sitk.sitkUInt8))
    method.SetInitialTransform(initial, inPlace=False)
    transform = method.Execute(fixed_f, moving_f)
    logger.info(
        "rigid registration: metric %.4f after %d iterations (%s)",
        method.GetMetricValue(),
        method.GetOptimizerIteration(),
        method.GetOptimizerStopConditionDescription(),
    )
    return transform


def resample_to(image: Any, reference: Any, transform: Any, *, mask: bool = False) -> Any:
    """``image`` on ``reference``'s grid through ``transform`` (linear; nearest neighbour for masks)."""
    import SimpleITK as sitk

    interpolator = sitk.sitkNearestNeighbor if mask else sitk.sitkLinear
    default = 0.0 if mask else float(sitk.GetArrayViewFromImage(image).min())
    return sitk.Resample(image, reference, transform, interpolator, default, image.GetPixelID())


def longest_axial_diameter_mm(mask: Any) -> float:
    """Largest in-plane Feret diameter (mm) over the axial slices of a binary mask; 0 when empty."""
    import SimpleITK as sitk

    array = sitk.GetArrayViewFromImage(mask)
    spacing = mask.GetSpacing()[:2]
    best = 0.0
    for k in np.flatnonzero(np.asarray(array).reshape(array.shape[0], -1).any(axis=1)):
        plane = sitk.GetImageFromArray((np.asarray(array[k]) != 0).astype(np.uint8))
        plane.SetSpacing(spacing)
        stats = sitk.LabelShapeStatisticsImageFilter()
        stats.ComputeFeretDiameterOn()
        stats.Execute(plane)
        if stats.HasLabel(1):
            best = max(best, stats.GetFeretDiameter(1))
    return float(best)


def delta_features(
    baseline: pd.DataFrame, follow_up: pd.DataFrame, months: pd.Series | float
) -> pd.DataFrame:
    """Absolute and relative change per month of every shared feature column.

    Parameters
    ----------
    baseline, follow_up : pandas.DataFrame
        Lesion feature tables indexed by ``lesion_id`` (numeric feature columns).
    months : pandas.Series or float
        Months between the scans, per lesion (indexed by ``lesion_id``) or one value.

    Returns
    -------
    pandas.DataFrame
        ``delta_abs_<feature>`` = (follow-up - baseline) / months and ``delta_rel_<feature>`` =
        (follow-up - baseline) / |baseline| / months (NaN where the baseline is 0), for the lesions
        in both tables.
    """
    shared_rows = baseline.index.intersection(follow_up.index)
    columns = [
        c for c in baseline.columns if c in follow_up.columns and pd.api.types.is_numeric_dtype(baseline[c])
    ]
    if not len(shared_rows) or not columns:
        raise ValidationError(
            format_problem(
                "baseline and follow-up share no lesion or no numeric feature",
                "delta features compare the same lesions and features",
                "index both tables by lesion_id and extract the same features",
            )
        )
    span = (
        months.reindex(shared_rows)
        if isinstance(months, pd.Series)
        else pd.Series(float(months), index=shared_rows)
    )
    if not (span > 0).all():
        raise ValidationError(
            format_problem(
                f"months between scans {span[~(span > 0)].to_dict()}",
                "the follow-up comes after the baseline",
                "check the study dates",
            )
        )
    before, after = baseline.loc[shared_rows, columns], follow_up.loc[shared_rows, columns]
    change = after - before
    absolute = change.div(span, axis=0).add_prefix("delta_abs_")
    relative = (change / before.abs().replace(0, np.nan)).div(span, axis=0).add_prefix("delta_rel_")
    return pd.concat([absolute, relative], axis=1)


def longest_3d_diameter_mm(mask: Any) -> float:
    """Largest 3-D Feret diameter (mm) of a binary mask (all foreground voxels together); 0 when empty."""
    import SimpleITK as sitk

    binary = sitk.Cast(sitk.NotEqual(mask, 0), sitk.sitkUInt8)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.ComputeFeretDiameterOn()
    stats.Execute(binary)
    return float(stats.GetFeretDiameter(1)) if stats.HasLabel(1) else 0.0


#: Relative tolerance at the RECIST thresholds, so that a change of exactly -30 % or +20 % computed
#: in floating point (e.g. 21/30 - 1 = -0.30000000000000004) falls on the side the definition says.
_THRESHOLD_EPS = 1e-9


def size_response(
    baseline_mm: float, follow_up_mm: float, nadir_mm: float | None = None
) -> tuple[float, str]:
    """Relative change of the longest diameter and a RECIST 1.1-like single-lesion category.

    Parameters
    ----------
    baseline_mm : float
        Longest diameter on the planning (baseline) CT, > 0.
    follow_up_mm : float
        Longest diameter on the follow-up CT (0: no lesion left).
    nadir_mm : float, optional
        Smallest diameter so far (baseline and earlier follow-ups); progression is measured from
        it as in RECIST 1.1. Defaults to ``baseline_mm`` (first follow-up).

    Returns
    -------
    (float, str)
        ``(follow_up - baseline) / baseline`` and the category: ``CR`` when ``follow_up_mm == 0``;
        ``PD`` when ``follow_up >= 1.2 nadir`` and ``follow_up - nadir >= 5 mm``; ``PR`` when the
        change from baseline is ``<= -30 %``; ``SD`` otherwise.
    """
    if not baseline_mm > 0:
        raise ValidationError(
            format_problem(
                f"baseline diameter {baseline_mm!r} mm",
                "must be > 0",
                "measure the lesion on the planning CT",
            )
        )
    if not follow_up_mm >= 0:
        raise ValidationError(
            format_problem(
                f"follow-up diameter {follow_up_mm!r} mm", "must be >= 0", "measure the follow-up lesion"
            )
        )
    nadir = baseline_mm if nadir_mm is None else min(float(nadir_mm), baseline_mm)
    change = (follow_up_mm - baseline_mm) / baseline_mm
    if follow_up_mm == 0:
        return change, "CR"
    growth = (follow_up_mm - nadir) / nadir if nadir > 0 else np.inf
    if growth >= 0.20 - _THRESHOLD_EPS and follow_up_mm - nadir >= 5.0 - _THRESHOLD_EPS:
        return change, "PD"
    if change <= -0.30 + _THRESHOLD_EPS:
        return change, "PR"
    return change, "SD"
