"""Semi-automatic lesion segmentation from a reader's click (seed) or box.

The method is threshold region growing with thresholds estimated around the click; the
growing itself is SimpleITK's :func:`~SimpleITK.ConnectedThreshold` (``"threshold"``) or
:func:`~SimpleITK.ConfidenceConnected` (``"confidence"``, the region's own mean +- k SD).

For ``"threshold"`` (the default) on the image smoothed with a Gaussian of ``smoothing_mm``:

1. the radial profile :math:`p(r)` (median intensity on 1 mm shells around the seed) gives the
   background level :math:`\\mu_b` (median of a ring just outside the estimated edge, refined
   three times) and the lesion radius :math:`R` (first radius where :math:`p` crosses the
   midpoint);
2. the lesion level :math:`\\mu_t` is probed on several shells around the seed (0-2, 2-5, 5-9,
   9-14 mm), because the centre of a large lesion is often necrotic;
3. for each probe the region connected to the seed with intensities beyond
   :math:`(\\mu_t + \\mu_b)/2` (on the lesion's side), inside a ball of ``ball_factor x R``
   (box mode: inside the box), is opened, hole-filled, and scored by the mean gradient
   magnitude on its boundary; the best-scoring region wins;
4. the region is eroded by ``inner_margin_voxels`` (contours drawn just inside the edge, as
   for radiomics contours that avoid partial volume; set 0 to keep the edge).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from sabrkit.errors import ConfigError, EmptyMaskError, format_problem

__all__ = ["SeedSegmentationConfig", "segment_from_seed", "segment_from_box", "SEMIAUTO_METHODS"]

logger = logging.getLogger(__name__)

SEMIAUTO_METHODS = ("threshold", "confidence")
_CROSS = ndi.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class SeedSegmentationConfig:
    """Settings of :func:`segment_from_seed` / :func:`segment_from_box` (see the module docstring)."""

    method: str = "threshold"
    smoothing_mm: float = 1.0
    max_radius_mm: float = 40.0
    ball_factor: float = 1.3
    inner_margin_voxels: int = 1
    probe_shells_mm: tuple[tuple[float, float], ...] = ((0, 2), (2, 5), (5, 9), (9, 14))
    confidence_multiplier: float = 3.0

    def __post_init__(self) -> None:
        if self.method not in SEMIAUTO_METHODS:
            raise ConfigError(format_problem(f"method={self.method!r}", f"one of {SEMIAUTO_METHODS}", "use 'threshold'"))
        for name in ("smoothing_mm", "max_radius_mm", "ball_factor", "confidence_multiplier"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(format_problem(f"{name}={value!r}", "must be a positive number", "use the default"))
        if not (isinstance(self.inner_margin_voxels, int) and self.inner_margin_voxels >= 0):
            raise ConfigError(format_problem(f"inner_margin_voxels={self.inner_margin_voxels!r}", "an integer >= 0", "use 1"))


def _check_index(image: sitk.Image, index: Sequence[int], what: str) -> tuple[int, int, int]:
    point = tuple(int(v) for v in index)
    if len(point) != 3 or not all(0 <= p < n for p, n in zip(point, image.GetSize())):
        raise ConfigError(format_problem(f"{what} {tuple(index)} for an image of size {image.GetSize()}",
                                         "voxel indices (x, y, z) inside the image", "click inside the image"))
    return point  # type: ignore[return-value]


def _profile(sub: np.ndarray, r: np.ndarray, max_r: float) -> np.ndarray:
    n = int(max_r) + 1
    shell = np.minimum(r.astype(int), n - 1).ravel()
    order = np.argsort(shell, kind="stable")
    values, shells = sub.ravel()[order], shell[order]
    bounds = np.searchsorted(shells, np.arange(n + 1))
    return np.array([np.median(values[a:b]) if b > a else np.nan for a, b in zip(bounds[:-1], bounds[1:])])


def _grow(sub: np.ndarray, seed: tuple[int, int, int], lower: float, upper: float, limit: np.ndarray,
          config: SeedSegmentationConfig, spacing: Sequence[float]) -> np.ndarray:
    """Seed-connected region of voxels in [lower, upper] within ``limit`` (SimpleITK region growing)."""
    image = sitk.GetImageFromArray(np.where(limit, sub, np.float32(-1e9)).astype(np.float32))
    image.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    seed_xyz = (seed[2], seed[1], seed[0])
    if config.method == "confidence":
        grown = sitk.ConfidenceConnected(image, seedList=[seed_xyz], numberOfIterations=3,
                                         multiplier=config.confidence_multiplier, initialNeighborhoodRadius=1)
        candidate = sitk.GetArrayFromImage(grown).astype(bool) & limit
    else:
        candidate = (sub >= lower) & (sub <= upper) & limit
    candidate = ndi.binary_opening(candidate, structure=_CROSS)
    filled = ndi.binary_fill_holes(candidate)
    if not filled[seed]:  # seed in a hole that is not closed: grow from the nearest candidate voxel
        if not filled.any():
            return filled
        dist, nearest = ndi.distance_transform_edt(~filled, sampling=spacing, return_indices=True)
        seed = tuple(int(nearest[axis][seed]) for axis in range(3))  # type: ignore[assignment]
        seed_xyz = (seed[2], seed[1], seed[0])
    marker = sitk.GetImageFromArray(filled.astype(np.uint8))
    grown = sitk.ConnectedThreshold(marker, seedList=[seed_xyz], lower=1, upper=1)
    return sitk.GetArrayFromImage(grown).astype(bool)


def _segment(image: sitk.Image, seed: tuple[int, int, int], config: SeedSegmentationConfig,
             box: tuple[tuple[int, ...], tuple[int, ...]] | None) -> sitk.Image:
    spacing = np.array(image.GetSpacing(), dtype=float)[::-1]  # z, y, x
    voxels = sitk.GetArrayViewFromImage(image)
    centre = np.array(seed[::-1])
    if box is None:
        half = np.ceil(config.max_radius_mm / spacing).astype(int)
        lo, hi = np.maximum(centre - half, 0), np.minimum(centre + half + 1, voxels.shape)
    else:
        b_lo, b_hi = np.array(box[0][::-1]), np.array(box[1][::-1])
        pad = np.ceil(np.maximum((b_hi - b_lo + 1) * 0.25, 4.0 / spacing)).astype(int)
        lo, hi = np.maximum(b_lo - pad, 0), np.minimum(b_hi + pad + 1, voxels.shape)
    crop = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    raw = voxels[crop].astype(np.float32)
    sub = ndi.gaussian_filter(raw, config.smoothing_mm / spacing)
    grad = ndi.gaussian_gradient_magnitude(raw, 1.0 / spacing)
    local = tuple(int(c - a) for c, a in zip(centre, lo))
    grid = np.indices(sub.shape, dtype=np.float32)
    r = np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grid, local, spacing)))
    max_r = float(r.max()) if box is not None else config.max_radius_mm
    profile = _profile(sub, r, max_r)
    radii = np.arange(len(profile))
    in_box = None
    if box is not None:
        idx = np.indices(sub.shape)
        in_box = np.all([(idx[a] >= b_lo[a] - lo[a]) & (idx[a] <= b_hi[a] - lo[a]) for a in range(3)], axis=0)
    best: tuple[float, np.ndarray | None] = (-1.0, None)
    for start, stop in config.probe_shells_mm:
        probe = (r >= start) & (r < stop) if in_box is None else (r >= start) & (r < stop) & in_box
        if not probe.any():
            continue
        mu_t = float(np.median(sub[probe]))
        mu_b = float(np.median(sub[~in_box])) if in_box is not None else float(np.nanmedian(profile[int(max_r * 0.6):]))
        radius = max_r / 2
        for _ in range(3 if in_box is None else 1):
            mid, sign = (mu_t + mu_b) / 2, (np.sign(mu_t - mu_b) or 1.0)
            beyond = np.flatnonzero((sign * (profile - mid) < 0) & (radii >= start))
            radius = float(beyond[0] + 0.5) if beyond.size else max_r / 2
            ring = (r >= 1.2 * radius + 1) & (r < 1.2 * radius + 1 + max(4.0, 0.5 * radius))
            if in_box is None and ring.any():
                mu_b = float(np.median(sub[ring]))
        mid, sign = (mu_t + mu_b) / 2, (np.sign(mu_t - mu_b) or 1.0)
        limit = in_box if in_box is not None else r <= config.ball_factor * radius
        lower, upper = (mid, np.inf) if sign > 0 else (-np.inf, mid)
        region = _grow(sub, local, lower, upper, limit, config, spacing)
        if not region.any():
            continue
        edge = region & ~ndi.binary_erosion(region, structure=_CROSS)
        score = float(grad[edge].mean())
        if score > best[0]:
            best = (score, region)
    region = best[1]
    if region is None or not region.any():
        raise EmptyMaskError(format_problem(f"no region grew from seed {seed}", "the click must be inside a lesion that "
                                            "differs from its surroundings", "click the lesion centre or draw a box"))
    if config.inner_margin_voxels:
        eroded = ndi.binary_erosion(region, structure=_CROSS, iterations=config.inner_margin_voxels)
        region = eroded if eroded.any() else region
    mask = np.zeros(voxels.shape, dtype=np.uint8)
    mask[crop] = region
    out = sitk.GetImageFromArray(mask)
    out.CopyInformation(image)
    return out


def segment_from_seed(image: sitk.Image, seed: Sequence[int], config: SeedSegmentationConfig | None = None) -> sitk.Image:
    """Segment the lesion under ``seed`` (voxel index x, y, z); returns a uint8 mask on ``image``'s grid.

    Raises
    ------
    ConfigError
        The seed lies outside the image.
    EmptyMaskError
        Nothing grew (the click is not on a lesion).
    """
    config = config or SeedSegmentationConfig()
    return _segment(image, _check_index(image, seed, "seed"), config, None)


def segment_from_box(image: sitk.Image, box_min: Sequence[int], box_max: Sequence[int],
                     config: SeedSegmentationConfig | None = None) -> sitk.Image:
    """Segment the lesion inside a box (inclusive voxel indices x, y, z); the box centre is the seed."""
    config = config or SeedSegmentationConfig()
    lo = _check_index(image, box_min, "box corner")
    hi = _check_index(image, box_max, "box corner")
    if any(a > b for a, b in zip(lo, hi)):
        raise ConfigError(format_problem(f"box {lo}..{hi}", "box_min <= box_max on every axis", "swap the corners"))
    seed = tuple((a + b) // 2 for a, b in zip(lo, hi))
    return _segment(image, seed, config, (lo, hi))  # type: ignore[arg-type]
