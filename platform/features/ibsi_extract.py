r"""pyradiomics feature classes on an IBSI-processed ROI, with IBSI's texture aggregations.

:func:`ibsi_features` takes a :class:`~sabrkit.features.ibsi_processing.ProcessedROI` and runs
pyradiomics' own feature classes (``radiomics.shape``, ``firstorder``, ``glcm`` ...) on it:

* **shape** on the morphological mask (interpolated, not re-segmented), as IBSI defines it;
* **firstorder** on the intensities inside the re-segmented intensity mask; its histogram
  features (Entropy, Uniformity: IBSI ``ih_*``) use sabrkit's bin numbers;
* **texture** classes on sabrkit's bin numbers. pyradiomics' ``_applyBinning`` would re-bin
  from ``floor(min/w) w`` (or from each slice's own range); :class:`_PresetBins` replaces it by
  the bins computed once for the whole ROI (lower-bound anchored, see
  :mod:`sabrkit.features.ibsi_processing`), and sets ``Ng`` to the discretisation's number of
  bins (IBSI's :math:`N_g`, e.g. in the normalised inverse differences) also for a single slice.
  Every feature formula stays pyradiomics'.

Texture aggregation (IBSI manual 3.1) maps to pyradiomics as follows; the column prefix is
``original`` for 3-D direction-averaged features (pyradiomics' own default, so production tables
keep their names) and ``original-<aggregation>`` otherwise:

============  ==================================================  ===================  ==========
aggregation   how                                                 IBSI tag suffix      prefix
============  ==================================================  ===================  ==========
3D            whole volume, 13 directions, features averaged      ``_3D_avg`` / ``_3D``  original
3D merged     ``weightingNorm: no_weighting`` (matrices summed)   ``_3D_comb``         original-3d-comb
2.5D          ``force2D`` on the volume: per in-plane direction,  ``_2_5D_avg`` /      original-25d
              matrices summed over slices, features averaged      ``_2_5D``
2.5D merged   ``force2D`` + ``no_weighting``                      ``_2_5D_comb``       original-25d-comb
2D            each slice alone (``force2D``), features averaged   ``_2D_avg`` / ``_2D``  original-2d
              over its directions, then over slices
2D merged     each slice, directions merged, averaged over slices ``_2D_comb``         original-2d-comb
============  ==================================================  ===================  ==========

GLSZM, NGTDM and GLDM (IBSI NGLDM) have no directions: ``_3D``, ``_2_5D``, ``_2D``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from sabrkit.errors import ConfigError, format_problem
from sabrkit.features.ibsi_processing import ProcessedROI

__all__ = ["TEXTURE_CLASSES", "DIRECTIONAL_CLASSES", "aggregation_prefix", "ibsi_features"]

logger = logging.getLogger(__name__)

#: pyradiomics texture classes, in pyradiomics' order.
TEXTURE_CLASSES: tuple[str, ...] = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")
#: Texture classes computed per direction (IBSI ``avg`` vs ``comb``).
DIRECTIONAL_CLASSES: tuple[str, ...] = ("glcm", "glrlm")

_PREFIX = {
    ("3D", False): "original",
    ("3D", True): "original-3d-comb",
    ("2.5D", False): "original-25d",
    ("2.5D", True): "original-25d-comb",
    ("2D", False): "original-2d",
    ("2D", True): "original-2d-comb",
}
#: pyradiomics settings the IBSI chain owns; a profile with a ``preprocessing`` section may not set them.
OWNED_SETTINGS: tuple[str, ...] = (
    "resampledPixelSpacing", "interpolator", "resegmentRange", "resegmentMode", "resegmentShape",
    "normalize", "normalizeScale", "removeOutliers", "force2D", "force2Ddimension", "weightingNorm", "preCrop",
)  # fmt: skip


def aggregation_prefix(aggregation: str, merged: bool = False) -> str:
    """Column prefix of a texture aggregation (``("2D", True)`` -> ``"original-2d-comb"``)."""
    return _PREFIX[(aggregation, merged)]


def _preset_bins_class(feature_class: type) -> type:
    """Subclass of a pyradiomics feature class whose discretisation is sabrkit's preset bins."""

    class _PresetBins(feature_class):
        def _applyBinning(self, matrix: np.ndarray) -> np.ndarray:
            bins = np.where(self.maskArray, self.settings["sabrkit_bins"], 0)
            levels = np.unique(bins[self.maskArray])
            self.coefficients["grayLevels"] = levels
            self.coefficients["Ng"] = max(int(levels.max()), int(self.settings["sabrkit_n_bins"]))
            return bins

    _PresetBins.__name__ = f"PresetBins{feature_class.__name__}"
    _PresetBins.__module__ = (
        feature_class.__module__
    )  # pyradiomics logs to logging.getLogger(self.__module__)
    return _PresetBins


def _sitk(array: np.ndarray, spacing: tuple[float, float, float]) -> Any:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    return image


def _crop(mask: np.ndarray) -> tuple[slice, ...]:
    where = np.nonzero(mask)
    return tuple(slice(int(c.min()), int(c.max()) + 1) for c in where)


def _run_class(
    feature_class: type,
    intensities: np.ndarray,
    mask: np.ndarray,
    bins: np.ndarray,
    n_bins: int,
    spacing: tuple[float, float, float],
    settings: dict[str, Any],
    names: list[str] | None,
) -> dict[str, float]:
    """One pyradiomics feature class on arrays already cropped to the ROI (z, y, x)."""
    image = _sitk(intensities.astype(np.float64), spacing)
    label = _sitk(mask.astype(np.uint8), spacing)
    instance = _preset_bins_class(feature_class)(
        image, label, **{**settings, "label": 1, "sabrkit_bins": bins, "sabrkit_n_bins": n_bins}
    )
    if names:
        for name in names:
            instance.enableFeatureByName(name)
    else:
        instance.enableAllFeatures()
    return {str(k): float(v) for k, v in instance.execute().items()}


def ibsi_features(
    roi: ProcessedROI,
    setting: dict[str, Any],
    feature_classes: dict[str, list[str] | None],
    aggregations: tuple[str, ...] = ("3D",),
    merge_directions: bool = False,
) -> dict[str, float]:
    """Features of an IBSI-processed ROI through pyradiomics' feature classes.

    Parameters
    ----------
    roi : ProcessedROI
        From :func:`~sabrkit.features.ibsi_processing.process_roi` (with a discretisation).
    setting : dict
        pyradiomics settings for the feature classes (``distances``, ``symmetricalGLCM``,
        ``gldm_a``, ``voxelArrayShift`` ...); binning keys are ignored (bins are preset).
    feature_classes : dict
        pyradiomics ``featureClass`` section: class -> feature names (``None``: all).
    aggregations : tuple of {"2D", "2.5D", "3D"}
        Texture aggregations (module table).
    merge_directions : bool
        Also compute the direction-merged GLCM/GLRLM variants.

    Returns
    -------
    dict
        ``<prefix>_<class>_<feature>`` -> value (module table).

    Raises
    ------
    ConfigError
        An unknown feature class, or a setting the IBSI chain owns (:data:`OWNED_SETTINGS`).
    """
    from radiomics import getFeatureClasses

    available = getFeatureClasses()
    unknown = [name for name in feature_classes if name not in available or name == "shape2D"]
    owned = [key for key in setting if key in OWNED_SETTINGS]
    if unknown or owned:
        raise ConfigError(
            format_problem(
                f"IBSI extraction with feature classes {unknown} / pyradiomics settings {owned}",
                f"classes are {sorted(set(available) - {'shape2D'})}; resampling, re-segmentation, "
                "normalisation and aggregation belong in the profile's preprocessing section",
                "remove the names listed (see docs/ibsi.md)",
            )
        )
    base = {k: v for k, v in setting.items() if k not in ("binWidth", "binCount", "label")}
    features: dict[str, float] = {}
    if roi.n_bins == 0 and any(name != "shape" for name in feature_classes):
        raise ConfigError(
            format_problem(
                "IBSI extraction without a discretisation",
                "intensity and texture classes need binWidth or binCount",
                "set binWidth or binCount in the profile's pyradiomics settings",
            )
        )
    if "shape" in feature_classes:
        box = _crop(roi.morph_mask)
        values = _run_class(
            available["shape"], roi.intensities[box], roi.morph_mask[box], roi.bins[box], roi.n_bins,
            roi.spacing, base, feature_classes["shape"],
        )  # fmt: skip
        features.update({f"original_shape_{k}": v for k, v in values.items()})
    box = _crop(roi.intensity_mask)
    intensities, mask, bins = roi.intensities[box], roi.intensity_mask[box], roi.bins[box]
    if "firstorder" in feature_classes:
        values = _run_class(
            available["firstorder"], intensities, mask, bins, roi.n_bins, roi.spacing, base,
            feature_classes["firstorder"],
        )  # fmt: skip
        features.update({f"original_firstorder_{k}": v for k, v in values.items()})
    textures = [name for name in TEXTURE_CLASSES if name in feature_classes]
    for aggregation in aggregations:
        for merged in (False, True) if merge_directions else (False,):
            classes = [c for c in textures if c in DIRECTIONAL_CLASSES] if merged else textures
            if not classes:
                continue
            extra: dict[str, Any] = {"weightingNorm": "no_weighting"} if merged else {}
            if aggregation != "3D":
                extra.update(force2D=True, force2Ddimension=0)
            settings = {**base, **extra}
            prefix = aggregation_prefix(aggregation, merged)
            for name in classes:
                if aggregation == "2D":
                    values = _per_slice(
                        available[name], intensities, mask, bins, roi, settings, feature_classes[name]
                    )
                else:
                    values = _run_class(
                        available[name], intensities, mask, bins, roi.n_bins, roi.spacing, settings,
                        feature_classes[name],
                    )  # fmt: skip
                features.update({f"{prefix}_{name}_{k}": v for k, v in values.items()})
    return features


def _per_slice(
    feature_class: type,
    intensities: np.ndarray,
    mask: np.ndarray,
    bins: np.ndarray,
    roi: ProcessedROI,
    settings: dict[str, Any],
    names: list[str] | None,
) -> dict[str, float]:
    """IBSI 2-D aggregation: the class on every slice holding ROI voxels, features averaged over slices."""
    per_slice: list[dict[str, float]] = []
    for z in range(mask.shape[0]):
        if not mask[z].any():
            continue
        box = (slice(z, z + 1), *_crop(mask[z]))
        per_slice.append(
            _run_class(
                feature_class,
                intensities[box],
                mask[box],
                bins[box],
                roi.n_bins,
                roi.spacing,
                settings,
                names,
            )
        )
    keys = per_slice[0].keys()
    return {key: float(np.mean([values[key] for values in per_slice])) for key in keys}


def profile_features(image: Any, mask: Any, params: Any, case_id: str = "image") -> dict[str, float]:
    """Features of one image/mask pair under a profile with a ``preprocessing`` section.

    Runs :func:`~sabrkit.features.ibsi_processing.process_roi` (interpolating only the grid
    window around the ROI; discretising with the profile's
    ``binWidth`` or ``binCount``; pyradiomics' default ``binWidth: 25`` when neither is set) and
    :func:`ibsi_features`.

    Parameters
    ----------
    image, mask : SimpleITK.Image
    params : RadiomicsParams
        With ``preprocessing`` set.
    case_id : str
        Named in error messages.

    Returns
    -------
    dict
        Column name -> value.
    """
    from sabrkit.features.ibsi_processing import process_roi

    processing = params.preprocessing
    if processing is None:
        raise ConfigError(
            format_problem(
                f"profile {params.version!r} has no preprocessing section",
                "profile_features runs the IBSI chain a profile's sabrkit.preprocessing section describes",
                "use sabrkit.features.extract.run_pyradiomics for plain pyradiomics profiles",
            )
        )
    setting = params.setting
    bin_count = setting.get("binCount")
    bin_width = None if bin_count is not None else float(setting.get("binWidth", 25))
    roi = process_roi(
        image, mask, processing, label=params.label, bin_width=bin_width,
        bin_count=None if bin_count is None else int(bin_count), case_id=case_id, crop=True,
    )  # fmt: skip
    return ibsi_features(
        roi, setting, params.feature_classes, processing.texture_aggregation, processing.merge_directions
    )
