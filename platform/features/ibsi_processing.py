r"""IBSI-1 image processing in front of pyradiomics: interpolation, re-segmentation, discretisation.

pyradiomics 3.0.1 computes the IBSI feature definitions, but its preprocessing differs from the
IBSI reference manual (Zwanenburg et al., arXiv:1612.07003, chapter 2) in five places that this
module implements the IBSI way:

* **Grid-centred resampling** (manual 2.4): the new grid has
  :math:`n_{new} = \lceil n_{old}\, s_{old} / s_{new} \rceil` voxels per axis and the same centre
  as the original grid; pyradiomics aligns the new grid with the corner of the mask's bounding
  box. A ``None`` spacing keeps that axis (2-D, in-plane interpolation for configurations A/B).
* **Rounding** interpolated CT intensities to whole HU (``round_intensities``).
* **Mask interpolation**: the 0/1 mask is interpolated linearly and thresholded at the
  partial-volume fraction (default 0.5); pyradiomics uses nearest neighbour.
* **Re-segmentation** by range and by mean :math:`\pm k` SD, separately or combined: the
  intensity mask is the intersection, and the mean and SD are computed on the interpolated
  ROI before any range re-segmentation (manual 2.5). The morphological mask is not re-segmented.
* **Fixed bin size** bins whose first edge is the re-segmentation lower bound
  :math:`x_{min}`: :math:`b = \lfloor (x - x_{min}) / w \rfloor + 1` (manual 2.7); pyradiomics
  starts at :math:`\lfloor \min/w \rfloor w`, which shifts every grey level when the ROI
  minimum is not within one bin of the bound. Fixed bin number:
  :math:`b = \lfloor N_b (x - \min) / (\max - \min) \rfloor + 1`, :math:`b = N_b` at the maximum.

Discretisation is done here, not by pyradiomics: :mod:`sabrkit.features.ibsi_extract` hands
the bin numbers to pyradiomics' feature classes unchanged (its ``binWidth``/``binCount``
cannot reproduce lower-bound-anchored edges, nor keep one global discretisation when textures
are computed slice by slice for 2-D aggregation).

:class:`IBSIProcessing` holds the settings (the ``preprocessing`` section of a sabrkit
parameter profile); :func:`process_roi` runs the chain and returns a :class:`ProcessedROI`
whose :meth:`~ProcessedROI.checkpoints` are the IBSI diagnostic values
(``vox_dim_x_interp_img``, ``int_mask_vox_count_reseg_roi`` ...).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sabrkit.errors import ConfigError, EmptyMaskError, ImageGeometryError, format_problem, pydantic_problems

__all__ = [
    "IBSIProcessing",
    "ProcessedROI",
    "TEXTURE_AGGREGATIONS",
    "centred_grid",
    "roi_window",
    "resample_image",
    "interpolate_mask",
    "resegment",
    "discretise",
    "process_roi",
]

logger = logging.getLogger(__name__)

#: IBSI texture aggregations (manual 3.1): per slice (2D), slices merged (2.5D), volume (3D).
TEXTURE_AGGREGATIONS: tuple[str, ...] = ("2D", "2.5D", "3D")


class IBSIProcessing(BaseModel):
    """Settings of the IBSI image-processing chain (a profile's ``preprocessing`` section).

    Attributes
    ----------
    spacing_mm : list of (float or None), optional
        Target voxel spacing (x, y, z) in mm; ``None`` for an axis keeps it (``[2, 2, null]``:
        in-plane only). Omitted: no interpolation.
    image_interpolation : {"linear", "cubic"}
        Image interpolator (cubic: SimpleITK's cubic B-spline).
    round_intensities : bool
        Round interpolated intensities to integers (CT: whole HU).
    mask_interpolation : {"linear", "nearest"}
        Mask interpolator; ``linear`` is followed by the partial-volume threshold.
    mask_threshold : float
        Partial-volume fraction at or above which an interpolated mask voxel is in the ROI.
    resegment_range : [float, float or None], optional
        Intensity range kept in the intensity mask (``[-500, 400]``; ``[-1000, null]``: no upper bound).
    resegment_sigma : float, optional
        Keep intensities within mean +/- ``resegment_sigma`` SD of the interpolated ROI.
    texture_aggregation : list of {"2D", "2.5D", "3D"}
        Aggregations to compute texture features for (names in :mod:`sabrkit.features.ibsi_extract`).
    merge_directions : bool
        Also compute GLCM/GLRLM features from direction-merged matrices (IBSI ``*_comb``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    spacing_mm: tuple[float | None, float | None, float | None] | None = None
    image_interpolation: Literal["linear", "cubic"] = "linear"
    round_intensities: bool = False
    mask_interpolation: Literal["linear", "nearest"] = "linear"
    mask_threshold: float = Field(0.5, gt=0.0, le=1.0)
    resegment_range: tuple[float, float | None] | None = None
    resegment_sigma: float | None = Field(None, gt=0.0)
    texture_aggregation: tuple[Literal["2D", "2.5D", "3D"], ...] = ("3D",)
    merge_directions: bool = False

    @field_validator("spacing_mm")
    @classmethod
    def _positive_spacing(
        cls, value: tuple[float | None, float | None, float | None] | None
    ) -> tuple[float | None, float | None, float | None] | None:
        if value is not None and any(s is not None and not s > 0 for s in value):
            raise ValueError(f"spacing_mm {list(value)} must hold positive numbers (or null to keep an axis)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> IBSIProcessing:
        if self.resegment_range is not None:
            low, high = self.resegment_range
            if high is not None and not high > low:
                raise ValueError(
                    f"resegment_range {[low, high]}: the upper bound must exceed the lower bound"
                )
        if not self.texture_aggregation:
            raise ValueError("texture_aggregation names at least one of 2D, 2.5D, 3D")
        return self

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any], source: str = "preprocessing") -> IBSIProcessing:
        """Validate a parsed ``preprocessing`` section; every problem becomes :class:`ConfigError`."""
        import pydantic

        try:
            return cls.model_validate(mapping)
        except pydantic.ValidationError as exc:
            problems = pydantic_problems(exc.errors())
            raise ConfigError(
                format_problem(
                    f"{source}: {problems}",
                    f"preprocessing keys are {sorted(cls.model_fields)} (see docs/ibsi.md)",
                    "correct or remove the key named above",
                )
            ) from exc

    @property
    def lower_bound(self) -> float | None:
        """Re-segmentation range lower bound (first fixed-bin-size edge), if a range is set."""
        return None if self.resegment_range is None else float(self.resegment_range[0])


def centred_grid(
    size: tuple[int, ...], spacing: tuple[float, ...], target: tuple[float | None, ...]
) -> tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...]]:
    r"""The IBSI grid-centred output grid for one image.

    Parameters
    ----------
    size, spacing : tuple
        Input grid (x, y, z) in voxels and mm.
    target : tuple of (float or None)
        Target spacing; ``None`` keeps the axis.

    Returns
    -------
    new_size, new_spacing : tuple
        :math:`n_{new} = \lceil n\, s / s_{new} \rceil` (computed on the values rounded to 6
        decimals, so 2 mm on a 1 mm grid is not pushed up by float noise).
    first_centre_index : tuple of float
        Continuous index (in the input grid) of the first output voxel centre:
        :math:`\tfrac{n-1}{2} - \tfrac{n_{new}-1}{2}\,\tfrac{s_{new}}{s}`, so both grids share their centre.
    """
    new_size, new_spacing, first = [], [], []
    for n, s, t in zip(size, spacing, target):
        s_new = float(s) if t is None else float(t)
        n_new = int(math.ceil(round(n * s / s_new, 6)))
        new_size.append(n_new)
        new_spacing.append(s_new)
        first.append((n - 1) / 2.0 - (n_new - 1) / 2.0 * s_new / s)
    return tuple(new_size), tuple(new_spacing), tuple(first)


def roi_window(
    reference: Any, roi: np.ndarray, target: tuple[float | None, ...], margin: int = 2
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The part of the centred output grid that covers an ROI (plus ``margin`` output voxels).

    Parameters
    ----------
    reference : SimpleITK.Image
        The full input image (defines the centred grid).
    roi : ndarray of bool
        Mask (z, y, x) on the input grid.
    target : tuple of (float or None)
    margin : int

    Returns
    -------
    start, size : tuple of int
        Output-grid index (x, y, z) of the window's first voxel, and its size. Resampling only
        this window gives the same values as resampling the whole grid and cutting it out.
    """
    size, spacing, first = centred_grid(reference.GetSize(), reference.GetSpacing(), target)
    where = np.nonzero(roi)
    start, extent = [], []
    for axis, (n_new, s_new, s, f) in enumerate(zip(size, spacing, reference.GetSpacing(), first)):
        coords = where[2 - axis]
        ratio = s_new / s
        low = max(0, int(math.floor((coords.min() - 1 - f) / ratio)) - margin)
        high = min(n_new - 1, int(math.ceil((coords.max() + 1 - f) / ratio)) + margin)
        start.append(low)
        extent.append(high - low + 1)
    return tuple(start), tuple(extent)


def _input_crop(reference: Any, window: tuple[tuple[int, ...], tuple[int, ...]], target: tuple[float | None, ...],
                margin: int = 16) -> tuple[slice, ...]:  # fmt: skip
    """Input index ranges (x, y, z) an output window reads, plus ``margin`` voxels.

    16 voxels keep the cubic B-spline's prefilter (pole -0.268: 0.268**16 ~ 1e-9) unaffected by
    the cut, so values equal those of the whole image; linear interpolation needs 1.
    """
    _, spacing, first = centred_grid(reference.GetSize(), reference.GetSpacing(), target)
    start, size = window
    ranges = []
    for n, s, s_new, f, k0, k in zip(
        reference.GetSize(), reference.GetSpacing(), spacing, first, start, size
    ):
        low = int(math.floor(f + k0 * s_new / s)) - margin
        high = int(math.ceil(f + (k0 + k - 1) * s_new / s)) + margin
        ranges.append(slice(max(0, low), min(n, high + 1)))
    return tuple(ranges)


def _resampler(
    reference: Any,
    target: tuple[float | None, ...],
    window: tuple[tuple[int, ...], tuple[int, ...]] | None = None,
) -> Any:
    import SimpleITK as sitk

    size, spacing, first = centred_grid(reference.GetSize(), reference.GetSpacing(), target)
    if window is not None:
        start, size = window
        first = tuple(
            f + k * s_new / s for f, k, s_new, s in zip(first, start, spacing, reference.GetSpacing())
        )
    origin = reference.TransformContinuousIndexToPhysicalPoint([float(v) for v in first])
    resampler = sitk.ResampleImageFilter()
    resampler.SetOutputSpacing(spacing)
    resampler.SetSize([int(n) for n in size])
    resampler.SetOutputOrigin(origin)
    resampler.SetOutputDirection(reference.GetDirection())
    resampler.SetTransform(sitk.Transform())
    resampler.SetUseNearestNeighborExtrapolator(True)
    return resampler


def resample_image(
    image: Any,
    spacing_mm: tuple[float | None, ...],
    interpolation: str = "linear",
    round_intensities: bool = False,
    *,
    grid: Any = None,
    window: tuple[tuple[int, ...], tuple[int, ...]] | None = None,
) -> Any:
    """Resample an image onto the grid-centred grid of :func:`centred_grid` (float64 output).

    Parameters
    ----------
    image : SimpleITK.Image
    spacing_mm : tuple of (float or None)
        Target spacing (x, y, z); ``None`` keeps the axis.
    interpolation : {"linear", "cubic"}
    round_intensities : bool
        Round to the nearest integer afterwards (IBSI for CT: whole HU).
    grid : SimpleITK.Image, optional
        Image whose centred grid is used (default ``image``; pass the full image when
        ``image`` is a crop of it).
    window : (start, size), optional
        Only this part of the output grid (:func:`roi_window`).

    Returns
    -------
    SimpleITK.Image
    """
    import SimpleITK as sitk

    interpolators = {
        "linear": sitk.sitkLinear,
        "cubic": sitk.sitkBSpline,
        "nearest": sitk.sitkNearestNeighbor,
    }
    if interpolation not in interpolators:
        raise ConfigError(
            format_problem(
                f"image interpolation {interpolation!r}", f"one of {sorted(interpolators)}", "fix the name"
            )
        )
    resampler = _resampler(image if grid is None else grid, spacing_mm, window)
    resampler.SetInterpolator(interpolators[interpolation])
    resampler.SetOutputPixelType(sitk.sitkFloat64)
    out = resampler.Execute(sitk.Cast(image, sitk.sitkFloat64))
    if round_intensities:
        rounded = sitk.GetImageFromArray(np.rint(sitk.GetArrayViewFromImage(out)))
        rounded.CopyInformation(out)
        out = rounded
    return out


def interpolate_mask(
    mask: Any,
    spacing_mm: tuple[float | None, ...],
    interpolation: str = "linear",
    threshold: float = 0.5,
    label: int = 1,
    *,
    grid: Any = None,
    window: tuple[tuple[int, ...], tuple[int, ...]] | None = None,
) -> Any:
    """Resample a label mask the IBSI way: linear interpolation of the 0/1 mask, then ``>= threshold``.

    ``grid`` and ``window`` as in :func:`resample_image`.

    Returns
    -------
    SimpleITK.Image
        uint8 mask (1 inside) on the same grid as :func:`resample_image` gives for the image.
    """
    import SimpleITK as sitk

    binary = sitk.Cast(sitk.Equal(mask, label), sitk.sitkFloat64)
    resampler = _resampler(mask if grid is None else grid, spacing_mm, window)
    resampler.SetInterpolator(sitk.sitkLinear if interpolation == "linear" else sitk.sitkNearestNeighbor)
    resampler.SetOutputPixelType(sitk.sitkFloat64)
    fraction = resampler.Execute(binary)
    out = sitk.GetImageFromArray((sitk.GetArrayViewFromImage(fraction) >= threshold - 1e-12).astype(np.uint8))
    out.CopyInformation(fraction)
    return out


def resegment(
    values: np.ndarray,
    roi: np.ndarray,
    value_range: tuple[float, float | None] | None = None,
    sigma: float | None = None,
) -> np.ndarray:
    """Intensity mask after re-segmentation (IBSI manual 2.5).

    Parameters
    ----------
    values : ndarray
        Intensities (after interpolation).
    roi : ndarray of bool
        Interpolated ROI (the morphological mask).
    value_range : (low, high or None), optional
        Keep ``low <= x <= high``.
    sigma : float, optional
        Keep ``|x - mean| <= sigma * sd`` with mean and (population) SD over ``roi``, computed
        before any range re-segmentation; combined with the range by intersection.

    Returns
    -------
    ndarray of bool
    """
    keep = roi.copy()
    if sigma is not None:
        inside = values[roi].astype(np.float64)
        mean, sd = float(inside.mean()), float(inside.std())
        keep &= (values >= mean - sigma * sd) & (values <= mean + sigma * sd)
    if value_range is not None:
        low, high = value_range
        keep &= values >= low
        if high is not None:
            keep &= values <= high
    return keep


def discretise(
    values: np.ndarray,
    roi: np.ndarray,
    *,
    bin_width: float | None = None,
    bin_count: int | None = None,
    lower_bound: float | None = None,
) -> tuple[np.ndarray, int]:
    """Bin numbers (1, 2, ...) inside ``roi``, 0 outside (IBSI manual 2.7).

    Parameters
    ----------
    values : ndarray
    roi : ndarray of bool
        Intensity mask.
    bin_width : float, optional
        Fixed bin size: ``floor((x - lower) / w) + 1`` with ``lower`` the re-segmentation lower
        bound (``lower_bound``) or, without one, the ROI minimum.
    bin_count : int, optional
        Fixed bin number: ``floor(N (x - min) / (max - min)) + 1``, ``N`` at the maximum.
    lower_bound : float, optional

    Returns
    -------
    bins : ndarray of int64
    n_bins : int
        Number of bins of the discretisation (the largest possible bin number).
    """
    inside = values[roi].astype(np.float64)
    bins = np.zeros(values.shape, dtype=np.int64)
    if inside.size == 0:
        return bins, 0
    if (bin_width is None) == (bin_count is None):
        raise ConfigError(
            format_problem(
                f"bin_width={bin_width!r}, bin_count={bin_count!r}",
                "exactly one of a fixed bin size or a fixed bin number",
                "set binWidth or binCount in the profile's pyradiomics settings",
            )
        )
    if bin_width is not None:
        low = float(inside.min()) if lower_bound is None else float(lower_bound)
        levels = np.floor((inside - low) / float(bin_width)).astype(np.int64) + 1
        n_bins = int(levels.max())
    else:
        assert bin_count is not None
        low, high = float(inside.min()), float(inside.max())
        if high == low:
            levels = np.ones(inside.shape, dtype=np.int64)
        else:
            levels = np.floor(bin_count * (inside - low) / (high - low)).astype(np.int64) + 1
            levels[inside >= high] = bin_count
        n_bins = int(bin_count)
    bins[roi] = levels
    return bins, n_bins


@dataclass(frozen=True)
class ProcessedROI:
    """Output of :func:`process_roi`; arrays are numpy (z, y, x), spacing is (x, y, z) in mm.

    Attributes
    ----------
    intensities : ndarray of float64
        Interpolated (and rounded) image.
    morph_mask : ndarray of bool
        Interpolated ROI (morphological mask; shape features).
    intensity_mask : ndarray of bool
        After re-segmentation (intensity and texture features).
    bins : ndarray of int64
        Bin numbers inside the intensity mask, 0 elsewhere; all-zero when ``discretised`` is False.
    n_bins : int
    spacing : tuple of float
    checkpoint_values : dict
        IBSI diagnostic tags (``*_init_img``, ``*_interp_img``, ``*_init_roi``, ``*_interp_roi``,
        ``*_reseg_roi``) and, when discretised, the bin-number statistics ``ih_min``, ``ih_max``,
        ``ih_mean``, ``ih_median`` (IBSI intensity-histogram features: they check the bin edges).
    """

    intensities: np.ndarray
    morph_mask: np.ndarray
    intensity_mask: np.ndarray
    bins: np.ndarray
    n_bins: int
    spacing: tuple[float, float, float]
    checkpoint_values: dict[str, float]

    def checkpoints(self) -> dict[str, float]:
        """IBSI diagnostic tag -> value (a copy)."""
        return dict(self.checkpoint_values)


def _image_checkpoints(suffix: str, values: np.ndarray, spacing: tuple[float, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for axis, n, s in zip("xyz", values.shape[::-1], spacing):
        out[f"img_dim_{axis}_{suffix}_img"] = float(n)
        out[f"vox_dim_{axis}_{suffix}_img"] = float(s)
    out[f"mean_int_{suffix}_img"] = float(values.mean())
    out[f"min_int_{suffix}_img"] = float(values.min())
    out[f"max_int_{suffix}_img"] = float(values.max())
    return out


def _mask_checkpoints(
    suffix: str, values: np.ndarray, intensity_mask: np.ndarray, morph_mask: np.ndarray, grid: bool = True
) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind, mask in (("int", intensity_mask), ("morph", morph_mask)):
        for axis, n in zip("xyz", mask.shape[::-1]):
            if kind == "int" and grid:
                out[f"int_mask_dim_{axis}_{suffix}_roi"] = float(n)
        where = np.nonzero(mask)
        for axis, coords in zip("zyx", where):
            extent = float(coords.max() - coords.min() + 1) if coords.size else 0.0
            out[f"{kind}_mask_bb_dim_{axis}_{suffix}_roi"] = extent
        out[f"{kind}_mask_vox_count_{suffix}_roi"] = float(mask.sum())
    inside = values[intensity_mask]
    if inside.size:
        out[f"int_mask_mean_int_{suffix}_roi"] = float(inside.mean())
        out[f"int_mask_min_int_{suffix}_roi"] = float(inside.min())
        out[f"int_mask_max_int_{suffix}_roi"] = float(inside.max())
    return out


def process_roi(
    image: Any,
    mask: Any,
    processing: IBSIProcessing,
    *,
    label: int = 1,
    bin_width: float | None = None,
    bin_count: int | None = None,
    case_id: str = "image",
    crop: bool = False,
) -> ProcessedROI:
    """Run the IBSI chain: interpolate image and mask, re-segment, discretise.

    Parameters
    ----------
    image, mask : SimpleITK.Image
        On one grid (checked).
    processing : IBSIProcessing
    label : int
        ROI label in ``mask``.
    bin_width, bin_count : optional
        Discretisation (one of them, see :func:`discretise`); neither: no bins (the digital
        phantom's integer grey levels are used as they are, see :mod:`sabrkit.features.ibsi_extract`).
    case_id : str
        Named in error messages.
    crop : bool
        Interpolate only the part of the centred grid around the ROI (:func:`roi_window`): the
        same ROI values, far less work on a whole CT. The whole-image checkpoints
        (``*_interp_img``, grid dimensions) are then left out.

    Returns
    -------
    ProcessedROI

    Raises
    ------
    ImageGeometryError
        Image and mask grids differ.
    EmptyMaskError
        The ROI is empty before or after processing.
    """
    import SimpleITK as sitk

    if image.GetSize() != mask.GetSize() or not np.allclose(image.GetSpacing(), mask.GetSpacing(), rtol=1e-4):
        raise ImageGeometryError(
            format_problem(
                f"{case_id}: image grid {image.GetSize()} / {image.GetSpacing()} differs from mask grid "
                f"{mask.GetSize()} / {mask.GetSpacing()}",
                "IBSI processing interpolates image and mask from one grid",
                "resample the mask onto the image grid first (sabrkit imaging preprocess)",
            )
        )
    init_values = sitk.GetArrayFromImage(image).astype(np.float64)
    init_roi = sitk.GetArrayViewFromImage(mask) == label
    if not init_roi.any():
        raise EmptyMaskError(
            format_problem(
                f"{case_id}: mask has no voxel with label {label}", "a non-empty ROI", "check the label"
            )
        )
    checkpoints = _image_checkpoints("init", init_values, image.GetSpacing())
    checkpoints.update(_mask_checkpoints("init", init_values, init_roi, init_roi))

    if processing.spacing_mm is not None:
        source_image, source_mask, window = image, mask, None
        if crop:
            window = roi_window(image, init_roi, processing.spacing_mm)
            x, y, z = _input_crop(image, window, processing.spacing_mm)
            source_image, source_mask = image[x, y, z], mask[x, y, z]
        resampled = resample_image(
            source_image, processing.spacing_mm, processing.image_interpolation, processing.round_intensities,
            grid=image, window=window,
        )  # fmt: skip
        mask_out = interpolate_mask(
            source_mask, processing.spacing_mm, processing.mask_interpolation, processing.mask_threshold, label,
            grid=mask, window=window,
        )  # fmt: skip
        values = sitk.GetArrayFromImage(resampled)
        roi = sitk.GetArrayFromImage(mask_out).astype(bool)
        spacing = tuple(float(s) for s in resampled.GetSpacing())
    else:
        values = np.rint(init_values) if processing.round_intensities else init_values
        roi = np.array(init_roi, dtype=bool)
        spacing = tuple(float(s) for s in image.GetSpacing())
    if not crop:
        checkpoints.update(_image_checkpoints("interp", values, spacing))
    checkpoints.update(_mask_checkpoints("interp", values, roi, roi, grid=not crop))
    if not roi.any():
        raise EmptyMaskError(
            format_problem(
                f"{case_id}: no ROI voxel left after interpolating the mask to {processing.spacing_mm} mm",
                f"at least one voxel with a partial-volume fraction >= {processing.mask_threshold}",
                "use a finer spacing or a lower mask_threshold",
            )
        )
    intensity_mask = resegment(values, roi, processing.resegment_range, processing.resegment_sigma)
    checkpoints.update(_mask_checkpoints("reseg", values, intensity_mask, roi, grid=not crop))
    if not intensity_mask.any():
        raise EmptyMaskError(
            format_problem(
                f"{case_id}: re-segmentation {processing.resegment_range} / {processing.resegment_sigma} SD "
                "removed every ROI voxel",
                "re-segmentation keeps part of the ROI",
                "widen resegment_range (is the image in HU?)",
            )
        )
    if bin_width is None and bin_count is None:
        bins, n_bins = np.zeros(values.shape, dtype=np.int64), 0
    else:
        bins, n_bins = discretise(
            values,
            intensity_mask,
            bin_width=bin_width,
            bin_count=bin_count,
            lower_bound=processing.lower_bound,
        )
    if n_bins:
        # discretisation checkpoints: IBSI's intensity-histogram statistics of the bin numbers
        levels = bins[intensity_mask].astype(np.float64)
        checkpoints.update(
            {"ih_min": float(levels.min()), "ih_max": float(levels.max()), "ih_mean": float(levels.mean()),
             "ih_median": float(np.median(levels))}
        )  # fmt: skip
    logger.debug(
        "%s: IBSI processing -> %s voxels of %s mm, %d ROI / %d re-segmented voxels, %d bins",
        case_id, values.shape[::-1], spacing, int(roi.sum()), int(intensity_mask.sum()), n_bins,
    )  # fmt: skip
    return ProcessedROI(
        intensities=values,
        morph_mask=roi,
        intensity_mask=intensity_mask,
        bins=bins,
        n_bins=n_bins,
        spacing=(spacing[0], spacing[1], spacing[2]),
        checkpoint_values=checkpoints,
    )
