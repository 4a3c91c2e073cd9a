"""MONAI-style intensity transforms for MR (and CT): N4 bias-field correction, normalisation.

Same pattern as :mod:`sabrkit.imaging.transforms`: an array form (settings validated in
``__init__``, work in ``__call__`` on a SimpleITK image) and a dict form (``...d``) that
touches only its keys, both subclasses of MONAI's ``Transform`` / ``MapTransform`` so they
mix with MONAI transforms in ``Compose``. All three keep the image geometry and return
float32 images.

* :class:`N4BiasFieldCorrection` - SimpleITK's N4 (Tustison et al., IEEE TMI 2010;29:1310),
  fitted on a shrunken copy for speed; the full-resolution bias field is
  ``exp(log_bias)`` from ``GetLogBiasFieldAsImage`` and the corrected image is ``I / bias``.
* :class:`ZScoreNormalize` - :math:`(I - \\mu) / \\sigma` with mean and standard deviation
  over the foreground mask when one is given (e.g. the body), else over all voxels.
* :class:`PercentileNormalize` - :math:`(I - p_{lo}) / (p_{hi} - p_{lo})` with percentiles
  :math:`p_{lo}, p_{hi}` (default 1 and 99), optionally clipped to [0, 1].
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk
from monai.transforms import MapTransform, Transform

from sabrkit.errors import ConfigError, EmptyMaskError, format_problem
from sabrkit.imaging.transform_names import INTENSITY_TRANSFORMS

__all__ = list(INTENSITY_TRANSFORMS)

logger = logging.getLogger(__name__)


def _bad(what: str, rule: str, fix: str) -> ConfigError:
    return ConfigError(format_problem(what, rule, fix))


def _foreground(image: sitk.Image, mask: sitk.Image | None) -> np.ndarray:
    values = sitk.GetArrayViewFromImage(image)
    if mask is None:
        return values.reshape(-1)
    selected = values[sitk.GetArrayViewFromImage(mask) > 0]
    if selected.size == 0:
        raise EmptyMaskError(
            format_problem(
                "normalisation mask has no foreground voxel",
                "statistics need at least one voxel",
                "pass a non-empty mask or none",
            )
        )
    return selected


def _float_like(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    out = sitk.GetImageFromArray(array.astype(np.float32))
    out.CopyInformation(reference)
    return out


class N4BiasFieldCorrection(Transform):
    """Remove a smooth multiplicative bias field (MR inhomogeneity) with SimpleITK's N4.

    Parameters
    ----------
    shrink_factor : int, default 4
        The field is fitted on the image shrunk by this factor per axis (N4 is slow at full size).
    iterations : sequence of int, default (50, 50, 30)
        Maximum iterations per fitting level (one level per entry).
    convergence_threshold : float, default 1e-6
    """

    def __init__(
        self,
        shrink_factor: int = 4,
        iterations: Sequence[int] = (50, 50, 30),
        convergence_threshold: float = 1e-6,
    ) -> None:
        if isinstance(shrink_factor, bool) or not isinstance(shrink_factor, int) or shrink_factor < 1:
            raise _bad(f"shrink_factor={shrink_factor!r}", "must be an integer >= 1", "use 4")
        levels = [int(i) for i in iterations]
        if not levels or min(levels) < 1:
            raise _bad(
                f"iterations={iterations!r}", "one positive iteration count per level", "use (50, 50, 30)"
            )
        if not (math.isfinite(convergence_threshold) and convergence_threshold > 0):
            raise _bad(f"convergence_threshold={convergence_threshold!r}", "must be > 0", "use 1e-6")
        self.shrink_factor, self.iterations, self.convergence_threshold = (
            shrink_factor,
            levels,
            convergence_threshold,
        )

    def __call__(self, image: sitk.Image, mask: sitk.Image | None = None) -> sitk.Image:
        """Corrected float32 image; ``mask`` (optional, e.g. the body) limits where N4 fits."""
        source = sitk.Cast(image, sitk.sitkFloat32)
        if mask is None:
            mask = sitk.OtsuThreshold(source, 0, 1, 200)
        mask = sitk.Cast(mask > 0, sitk.sitkUInt8)
        shrink = [self.shrink_factor] * source.GetDimension()
        small = sitk.Shrink(source, shrink)
        small_mask = sitk.Shrink(mask, shrink)
        n4 = sitk.N4BiasFieldCorrectionImageFilter()
        n4.SetMaximumNumberOfIterations(self.iterations)
        n4.SetConvergenceThreshold(self.convergence_threshold)
        n4.Execute(small, small_mask)
        log_bias = n4.GetLogBiasFieldAsImage(source)
        return sitk.Cast(source / sitk.Exp(log_bias), sitk.sitkFloat32)


class N4BiasFieldCorrectiond(MapTransform):
    """Dict form of :class:`N4BiasFieldCorrection`; ``mask_key`` (optional) names the fitting mask."""

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable] = ("image",),
        mask_key: Hashable | None = None,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.corrector = N4BiasFieldCorrection(**kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        mask = d.get(self.mask_key) if self.mask_key is not None else None
        for key in self.key_iterator(d):
            d[key] = self.corrector(d[key], mask)
        return d


class ZScoreNormalize(Transform):
    """Subtract the mean and divide by the standard deviation (over ``mask`` when given).

    Parameters
    ----------
    eps : float, default 1e-8
        Added to the standard deviation so a constant image does not divide by zero.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        if not (math.isfinite(eps) and eps > 0):
            raise _bad(f"eps={eps!r}", "must be > 0", "use 1e-8")
        self.eps = float(eps)

    def __call__(self, image: sitk.Image, mask: sitk.Image | None = None) -> sitk.Image:
        values = _foreground(image, mask).astype(np.float64)
        mean, sd = float(values.mean()), float(values.std())
        array = (sitk.GetArrayViewFromImage(image).astype(np.float64) - mean) / (sd + self.eps)
        return _float_like(array, image)


class ZScoreNormalized(MapTransform):
    """Dict form of :class:`ZScoreNormalize`; statistics over ``mask_key``'s foreground when given."""

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable] = ("image",),
        mask_key: Hashable | None = None,
        eps: float = 1e-8,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.normalizer = ZScoreNormalize(eps)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        mask = d.get(self.mask_key) if self.mask_key is not None else None
        for key in self.key_iterator(d):
            d[key] = self.normalizer(d[key], mask)
        return d


class PercentileNormalize(Transform):
    """Map percentile ``lower`` to 0 and ``upper`` to 1 (robust min-max scaling).

    Parameters
    ----------
    lower, upper : float, default 1.0 and 99.0
        Percentiles, ``0 <= lower < upper <= 100``.
    clip : bool, default True
        Clip the result to [0, 1].
    """

    def __init__(self, lower: float = 1.0, upper: float = 99.0, clip: bool = True) -> None:
        if not (math.isfinite(lower) and math.isfinite(upper) and 0 <= lower < upper <= 100):
            raise _bad(f"percentiles ({lower!r}, {upper!r})", "need 0 <= lower < upper <= 100", "use (1, 99)")
        self.lower, self.upper, self.clip = float(lower), float(upper), bool(clip)

    def __call__(self, image: sitk.Image, mask: sitk.Image | None = None) -> sitk.Image:
        lo, hi = np.percentile(_foreground(image, mask), [self.lower, self.upper])
        scale = float(hi - lo) if hi > lo else 1.0
        array = (sitk.GetArrayViewFromImage(image).astype(np.float64) - lo) / scale
        if self.clip:
            array = np.clip(array, 0.0, 1.0)
        return _float_like(array, image)


class PercentileNormalized(MapTransform):
    """Dict form of :class:`PercentileNormalize`."""

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable] = ("image",),
        mask_key: Hashable | None = None,
        lower: float = 1.0,
        upper: float = 99.0,
        clip: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.normalizer = PercentileNormalize(lower, upper, clip)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        mask = d.get(self.mask_key) if self.mask_key is not None else None
        for key in self.key_iterator(d):
            d[key] = self.normalizer(d[key], mask)
        return d
