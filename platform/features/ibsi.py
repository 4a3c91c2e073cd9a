r"""IBSI-1 compliance: sabrkit's features on the IBSI phantoms vs the IBSI consensus reference values.

Six configurations (IBSI reference manual, Zwanenburg et al., arXiv:1612.07003; *Radiology* 2020),
each a packaged profile (``sabrkit/features/params/ibsi_*.yaml``) run through the IBSI chain of
:mod:`sabrkit.features.ibsi_processing` and pyradiomics' feature classes
(:mod:`sabrkit.features.ibsi_extract`):

=========  ==============  ==============================================================
config     profile         image / settings
=========  ==============  ==============================================================
digital    ibsi_digital    digital phantom (5 x 4 x 4, grey levels 1..6): no interpolation,
                           no re-segmentation, bin width 1 (identity); 2D, 2.5D, 3D
A          ibsi_ct_a       CT phantom: no interpolation, range [-500, 400] HU, FBS 25; 2D, 2.5D
B          ibsi_ct_b       in-plane 2 x 2 mm bilinear, range [-500, 400], FBN 32; 2D, 2.5D
C          ibsi_ct_c       2 mm trilinear, range [-1000, 400], FBS 25; 3D
D          ibsi_ct_d       2 mm trilinear, mean +/- 3 SD, FBN 32; 3D
E          ibsi_ct_e       2 mm tricubic, range [-1000, 400] and mean +/- 3 SD, FBN 32; 3D
=========  ==============  ==============================================================

:func:`ibsi_tag_map` maps our column names to IBSI tags for a profile's aggregations;
:func:`compare_with_ibsi_reference` applies it with the matching rule

.. math::

    |x_{ours} - x_{ref}| \le \max\left(t,\ \tfrac{1}{2}\,10^{\lfloor \log_{10}|x_{ref}| \rfloor - 2}\right)

with :math:`t` the file's tolerance (half a unit in the third significant digit: the reference
values are given to 3 significant digits; the digital phantom's tolerance is 0).
Where pyradiomics' definition differs from IBSI's by an exact formula, the IBSI value is computed
from pyradiomics' (:data:`CONVERSIONS`: kurtosis - 3; PCA axis lengths rescaled from N to N - 1
normalisation); the table shows both. A mismatch that remains is *known* when
:data:`KNOWN_DEVIATIONS` gives its reason, else *unexplained*. The preprocessing checkpoints of
the reference files (``vox_dim_x_interp_img``, ``int_mask_vox_count_reseg_roi`` ...) are compared
with :meth:`~sabrkit.features.ibsi_processing.ProcessedROI.checkpoints` by the same rule.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from sabrkit.errors import NotFoundError, ValidationError, format_problem
from sabrkit.features.params import RadiomicsParams

__all__ = [
    "CONFIGURATIONS",
    "CONVERSIONS",
    "IBSI_TAGS",
    "KNOWN_DEVIATIONS",
    "MAPPING_NOTES",
    "check_configurations",
    "compare_checkpoints",
    "comparison_table",
    "compare_with_ibsi_reference",
    "configuration_files",
    "extract_phantom_features",
    "ibsi_phantom_params",
    "ibsi_summary",
    "ibsi_tag_map",
    "read_ibsi_reference",
    "render_ibsi_markdown",
    "run_configuration",
]

logger = logging.getLogger(__name__)

_SHAPE = {
    "MeshVolume": "morph_volume", "VoxelVolume": "morph_vol_approx", "SurfaceArea": "morph_area_mesh",
    "SurfaceVolumeRatio": "morph_av", "Compactness1": "morph_comp_1", "Compactness2": "morph_comp_2",
    "SphericalDisproportion": "morph_sph_dispr", "Sphericity": "morph_sphericity",
    "Maximum3DDiameter": "morph_diam", "MajorAxisLength": "morph_pca_maj_axis",
    "MinorAxisLength": "morph_pca_min_axis", "LeastAxisLength": "morph_pca_least_axis",
    "Elongation": "morph_pca_elongation", "Flatness": "morph_pca_flatness",
}  # fmt: skip
_FIRSTORDER = {
    "Mean": "stat_mean", "Variance": "stat_var", "Skewness": "stat_skew", "Kurtosis": "stat_kurt",
    "Median": "stat_median", "Minimum": "stat_min", "10Percentile": "stat_p10", "90Percentile": "stat_p90",
    "Maximum": "stat_max", "InterquartileRange": "stat_iqr", "Range": "stat_range",
    "MeanAbsoluteDeviation": "stat_mad", "RobustMeanAbsoluteDeviation": "stat_rmad", "Energy": "stat_energy",
    "RootMeanSquared": "stat_rms", "Entropy": "ih_entropy", "Uniformity": "ih_uniformity",
}  # fmt: skip
_GLCM = {
    "MaximumProbability": "joint_max", "JointAverage": "joint_avg", "SumSquares": "joint_var",
    "JointEntropy": "joint_entr", "DifferenceAverage": "diff_avg", "DifferenceVariance": "diff_var",
    "DifferenceEntropy": "diff_entr", "SumAverage": "sum_avg", "SumEntropy": "sum_entr",
    "JointEnergy": "energy", "Contrast": "contrast", "Id": "inv_diff", "Idn": "inv_diff_norm",
    "Idm": "inv_diff_mom", "Idmn": "inv_diff_mom_norm", "InverseVariance": "inv_var", "Correlation": "corr",
    "Autocorrelation": "auto_corr", "ClusterTendency": "clust_tend", "ClusterShade": "clust_shade",
    "ClusterProminence": "clust_prom", "Imc1": "info_corr1", "Imc2": "info_corr2",
}  # fmt: skip
_GLRLM = {
    "ShortRunEmphasis": "sre", "LongRunEmphasis": "lre", "LowGrayLevelRunEmphasis": "lgre",
    "HighGrayLevelRunEmphasis": "hgre", "ShortRunLowGrayLevelEmphasis": "srlge",
    "ShortRunHighGrayLevelEmphasis": "srhge", "LongRunLowGrayLevelEmphasis": "lrlge",
    "LongRunHighGrayLevelEmphasis": "lrhge", "GrayLevelNonUniformity": "glnu",
    "GrayLevelNonUniformityNormalized": "glnu_norm", "RunLengthNonUniformity": "rlnu",
    "RunLengthNonUniformityNormalized": "rlnu_norm", "RunPercentage": "r_perc",
    "GrayLevelVariance": "gl_var", "RunVariance": "rl_var", "RunEntropy": "rl_entr",
}  # fmt: skip
_GLSZM = {
    "SmallAreaEmphasis": "sze", "LargeAreaEmphasis": "lze", "LowGrayLevelZoneEmphasis": "lgze",
    "HighGrayLevelZoneEmphasis": "hgze", "SmallAreaLowGrayLevelEmphasis": "szlge",
    "SmallAreaHighGrayLevelEmphasis": "szhge", "LargeAreaLowGrayLevelEmphasis": "lzlge",
    "LargeAreaHighGrayLevelEmphasis": "lzhge", "GrayLevelNonUniformity": "glnu",
    "GrayLevelNonUniformityNormalized": "glnu_norm", "SizeZoneNonUniformity": "zsnu",
    "SizeZoneNonUniformityNormalized": "zsnu_norm", "ZonePercentage": "z_perc",
    "GrayLevelVariance": "gl_var", "ZoneVariance": "zs_var", "ZoneEntropy": "zs_entr",
}  # fmt: skip
_NGTDM = {"Coarseness": "coarseness", "Contrast": "contrast", "Busyness": "busyness",
          "Complexity": "complexity", "Strength": "strength"}  # fmt: skip
_GLDM = {
    "SmallDependenceEmphasis": "lde", "LargeDependenceEmphasis": "hde", "LowGrayLevelEmphasis": "lgce",
    "HighGrayLevelEmphasis": "hgce", "SmallDependenceLowGrayLevelEmphasis": "ldlge",
    "SmallDependenceHighGrayLevelEmphasis": "ldhge", "LargeDependenceLowGrayLevelEmphasis": "hdlge",
    "LargeDependenceHighGrayLevelEmphasis": "hdhge", "GrayLevelNonUniformity": "glnu",
    "DependenceNonUniformity": "dcnu", "DependenceNonUniformityNormalized": "dcnu_norm",
    "GrayLevelVariance": "gl_var", "DependenceVariance": "dc_var", "DependenceEntropy": "dc_entr",
}  # fmt: skip

#: Feature family: pyradiomics class -> (IBSI prefix, name map, directional).
_FAMILIES: dict[str, tuple[str, dict[str, str], bool]] = {
    "glcm": ("cm", _GLCM, True),
    "glrlm": ("rlm", _GLRLM, True),
    "glszm": ("szm", _GLSZM, False),
    "gldm": ("ngl", _GLDM, False),
    "ngtdm": ("ngt", _NGTDM, False),
}
_TAG_DIMENSION = {"2D": "2D", "2.5D": "2_5D", "3D": "3D"}
#: IBSI features pyradiomics computes once under another name (column alias -> IBSI feature).
_GLCM_ALIASES = {"DifferenceAverage#dissimilarity": "dissimilarity", "ClusterTendency#sum_var": "sum_var"}


def ibsi_tag_map(aggregations: tuple[str, ...] = ("3D",), merge_directions: bool = False) -> dict[str, str]:
    """Our column name -> IBSI tag for the given texture aggregations.

    A key may carry ``#alias`` (``original_glcm_DifferenceAverage#dissimilarity``): the same
    column compared with a second IBSI tag (IBSI's dissimilarity equals the difference average,
    its sum variance equals cluster tendency; pyradiomics removed both duplicates).
    """
    from sabrkit.features.ibsi_extract import aggregation_prefix

    tags: dict[str, str] = {f"original_shape_{k}": v for k, v in _SHAPE.items()}
    tags.update({f"original_firstorder_{k}": v for k, v in _FIRSTORDER.items()})
    for aggregation in aggregations:
        dimension = _TAG_DIMENSION[aggregation]
        for merged in (False, True) if merge_directions else (False,):
            prefix = aggregation_prefix(aggregation, merged)
            for name, (ibsi_prefix, names, directional) in _FAMILIES.items():
                if merged and not directional:
                    continue
                suffix = f"_{dimension}_{'comb' if merged else 'avg'}" if directional else f"_{dimension}"
                pairs = dict(names)
                if name == "glcm":
                    pairs.update(_GLCM_ALIASES)
                for feature, ibsi_name in pairs.items():
                    tags[f"{prefix}_{name}_{feature}"] = f"{ibsi_prefix}_{ibsi_name}{suffix}"
    return tags


#: Our feature name -> IBSI tag (3-D, direction-averaged), the production mapping.
IBSI_TAGS: dict[str, str] = {
    **{f"original_shape_{k}": v for k, v in _SHAPE.items()},
    **{f"original_firstorder_{k}": v for k, v in _FIRSTORDER.items()},
    **{f"original_glcm_{k}": f"cm_{v}_3D_avg" for k, v in _GLCM.items()},
    "original_glcm_DifferenceAverage#dissimilarity": "cm_dissimilarity_3D_avg",
    "original_glcm_ClusterTendency#sum_var": "cm_sum_var_3D_avg",
    **{f"original_glrlm_{k}": f"rlm_{v}_3D_avg" for k, v in _GLRLM.items()},
    **{f"original_glszm_{k}": f"szm_{v}_3D" for k, v in _GLSZM.items()},
    **{f"original_ngtdm_{k}": f"ngt_{v}_3D" for k, v in _NGTDM.items()},
    **{f"original_gldm_{k}": f"ngl_{v}_3D" for k, v in _GLDM.items()},
}

#: Notes on mappings that are not one-to-one by name (shown in the docs).
MAPPING_NOTES: dict[str, str] = {
    "cm_dissimilarity": "pyradiomics removed Dissimilarity: it equals DifferenceAverage",
    "cm_sum_var": "pyradiomics removed SumVariance: it equals ClusterTendency",
    "ih_entropy": "firstorder Entropy on sabrkit's discretisation (IBSI ih_*)",
    "ih_uniformity": "firstorder Uniformity on sabrkit's discretisation (IBSI ih_*)",
}

_AXES_REASON = (
    "pyradiomics normalises the voxel-coordinate covariance by N, the IBSI consensus by N - 1 (unbiased): "
    "IBSI value = pyradiomics value x sqrt(N / (N - 1)), N = voxels in the morphological mask "
    "(pyradiomics issue AIM-Harvard/pyradiomics#610)"
)
#: IBSI tag -> (exact conversion from pyradiomics' value, reason). ``n_voxels``: morphological mask.
CONVERSIONS: dict[str, tuple[Any, str]] = {
    "stat_kurt": (
        lambda value, n_voxels: value - 3.0,
        "pyradiomics returns kurtosis, IBSI excess kurtosis: IBSI value = pyradiomics value - 3 (pyradiomics' "
        "docstring of getKurtosisFeatureValue: 'not corrected, yielding a value 3 higher')",
    ),
    **{
        tag: (lambda value, n_voxels: value * math.sqrt(n_voxels / (n_voxels - 1)) if n_voxels > 1 else value,
              _AXES_REASON)
        for tag in ("morph_pca_maj_axis", "morph_pca_min_axis", "morph_pca_least_axis")
    },
}  # fmt: skip

#: IBSI tag -> documented reason why a compared feature still differs from the reference.
#: Empty: every compared feature matches on all six configurations (see docs/ibsi.md).
KNOWN_DEVIATIONS: dict[str, str] = {}

#: IBSI features not compared: pyradiomics has no counterpart.
NOT_IMPLEMENTED = (
    "local intensity (loc_*), intensity-volume histogram (ivh_*), grey level distance zone matrix "
    "(dzm_*), intensity-histogram features other than entropy and uniformity (pyradiomics' first-order "
    "class computes them on raw intensities: those are the stat_* ones; ih_min, ih_max, ih_mean and ih_median "
    "of sabrkit's bin numbers are compared as discretisation checkpoints), stat_medad / stat_cov / stat_qcod, "
    "NGLDM dependence count percentage and energy (ngl_dc_perc, ngl_dc_energy), and the morphology features "
    "without a pyradiomics counterpart (asphericity, centre-of-mass shift, bounding-box / ellipsoid / convex-hull "
    "densities, integrated intensity, Moran's I, Geary's C)"
)

#: Configuration -> (profile, phantom folder, reference file).
CONFIGURATIONS: dict[str, tuple[str, str, str]] = {
    "digital": ("ibsi_digital", "ibsi_digital_phantom", "ibsi_1_dig_phantom.csv"),
    **{
        c: (f"ibsi_ct_{c.lower()}", "ibsi_ct_phantom", f"ibsi_1_chest_config_{c.lower()}.csv")
        for c in "ABCDE"
    },
}


def ibsi_phantom_params() -> RadiomicsParams:
    """The ``ibsi_digital`` profile (digital-phantom configuration, see the module docstring)."""
    from sabrkit.features.params import load_params

    return load_params("ibsi_digital")


def read_ibsi_reference(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an IBSI reference file (``reference value;tolerance;tag``, semicolon-separated).

    Returns
    -------
    DataFrame
        ``tag, reference, tolerance`` for every tag with a reference value.

    Raises
    ------
    NotFoundError
        The file does not exist.
    ValidationError
        The columns are not the IBSI ones.
    """
    file = Path(path)
    if not file.is_file():
        raise NotFoundError(
            format_problem(
                f"IBSI reference file {str(file)!r} does not exist",
                "the IBSI check compares with ibsi_1_dig_phantom.csv",
                "pass ../shared/data/ibsi_reference/ibsi_1_dig_phantom.csv",
            )
        )
    table = pd.read_csv(file, sep=";")
    expected = ["reference value", "tolerance", "tag"]
    if list(table.columns) != expected:
        raise ValidationError(
            format_problem(
                f"{file}: columns {list(table.columns)}", f"columns are {expected}", "pass the IBSI CSV"
            )
        )
    table = table.rename(columns={"reference value": "reference"}).dropna(subset=["reference"])
    return table[["tag", "reference", "tolerance"]].reset_index(drop=True)


def extract_phantom_features(
    image_path: str | os.PathLike[str], mask_path: str | os.PathLike[str], profile: str = "ibsi_digital"
) -> pd.Series:
    """Features of an IBSI phantom through sabrkit's own extraction (``extract_lesion_features``).

    Returns
    -------
    Series
        Column name -> value (``original_<family>_<feature>``, ``original-2d_glcm_...`` ...).
    """
    from sabrkit.features.extract import extract_lesion_features
    from sabrkit.features.io import feature_columns
    from sabrkit.features.params import load_params

    manifest = pd.DataFrame(
        {"lesion_id": ["IBSI-PHANTOM"], "study_id": ["IBSI"], "image_path": [str(image_path)],
         "mask_path": [str(mask_path)]}
    )  # fmt: skip
    table = extract_lesion_features(manifest, load_params(profile), progress=False).features
    return table[feature_columns(table)].iloc[0].astype(float)


def _matching_tolerance(reference: float, tolerance: float) -> float:
    if reference == 0 or not math.isfinite(reference):
        return float(tolerance)
    half_unit = 0.5 * 10.0 ** (math.floor(math.log10(abs(reference))) - 2)
    return max(float(tolerance), half_unit)


def compare_with_ibsi_reference(
    ours: pd.Series,
    reference: pd.DataFrame,
    tag_map: dict[str, str] | None = None,
    n_voxels: int | None = None,
) -> pd.DataFrame:
    """Compare our features with the IBSI reference.

    Parameters
    ----------
    ours : Series
        Column name -> value (:func:`extract_phantom_features`, :func:`run_configuration`).
    reference : DataFrame
        From :func:`read_ibsi_reference`.
    tag_map : dict, optional
        Column -> IBSI tag (:func:`ibsi_tag_map`); default :data:`IBSI_TAGS` (3-D).
    n_voxels : int, optional
        Voxels in the morphological mask, for the exact PCA-axis conversion (:data:`CONVERSIONS`);
        without it the axes are compared unconverted.

    Returns
    -------
    DataFrame
        One row per mapped feature: ``feature, ibsi_tag, pyradiomics`` (pyradiomics' value),
        ``ours`` (IBSI definition: converted where :data:`CONVERSIONS` says), ``reference``,
        ``tolerance`` (rule in the module docstring), ``difference``, ``match`` (bool),
        ``conversion`` (reason, when converted), ``known_deviation`` (reason, for a documented
        mismatch) and ``note``; in mapping order.

    Raises
    ------
    ValidationError
        A mapped feature is absent from ``ours`` or a mapped tag from the reference.
    """
    tags = IBSI_TAGS if tag_map is None else tag_map
    reference_by_tag = reference.set_index("tag")
    rows: list[dict[str, Any]] = []
    for key, tag in tags.items():
        feature = key.split("#", 1)[0]
        if feature not in ours.index or tag not in reference_by_tag.index:
            raise ValidationError(
                format_problem(
                    f"IBSI mapping {feature} -> {tag}: " + ("feature not computed" if feature not in ours.index
                                                             else "tag has no reference value"),
                    "every mapped feature is computed and every mapped tag has a reference",
                    "extract with the configuration's ibsi_* profile and pass its reference file",
                )
            )  # fmt: skip
        raw = float(ours[feature])
        conversion = ""
        value = raw
        if tag in CONVERSIONS and (n_voxels is not None or not tag.startswith("morph_pca")):
            convert, conversion = CONVERSIONS[tag]
            value = float(convert(raw, n_voxels or 0))
        expected = float(reference_by_tag.loc[tag, "reference"])
        tolerance = _matching_tolerance(expected, float(reference_by_tag.loc[tag, "tolerance"]))
        difference = value - expected
        match = abs(difference) <= tolerance * (1 + 1e-9)
        family = tag.rsplit("_", 2)[0] if tag.startswith(("cm_", "rlm_")) else tag
        rows.append(
            {
                "feature": feature,
                "ibsi_tag": tag,
                "pyradiomics": raw,
                "ours": value,
                "reference": expected,
                "tolerance": tolerance,
                "difference": difference,
                "match": bool(match),
                "conversion": conversion,
                "known_deviation": "" if match else KNOWN_DEVIATIONS.get(tag, ""),
                "note": MAPPING_NOTES.get(family, MAPPING_NOTES.get(tag, "")),
            }
        )
    return pd.DataFrame(rows)


def compare_checkpoints(checkpoints: dict[str, float], reference: pd.DataFrame) -> pd.DataFrame:
    """Compare preprocessing checkpoints (``ProcessedROI.checkpoints()``) with the reference's.

    Returns
    -------
    DataFrame
        ``ibsi_tag, ours, reference, tolerance, match`` for every checkpoint tag both hold, in
        the reference file's order.
    """
    rows = []
    for item in reference.itertuples(index=False):
        if item.tag in checkpoints:
            value, expected = float(checkpoints[item.tag]), float(item.reference)
            tolerance = _matching_tolerance(expected, float(item.tolerance))
            rows.append(
                {"ibsi_tag": item.tag, "ours": value, "reference": expected, "tolerance": tolerance,
                 "match": bool(abs(value - expected) <= tolerance * (1 + 1e-9))}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["ibsi_tag", "ours", "reference", "tolerance", "match"])


def configuration_files(
    config: str, data_dir: str | os.PathLike[str], reference_dir: str | os.PathLike[str]
) -> tuple[Path, Path, Path]:
    """(image, mask, reference file) of a configuration under the shared-data layout.

    ``data_dir`` holds ``ibsi_digital_phantom/nifti`` and/or ``ibsi_ct_phantom/nifti``;
    ``reference_dir`` holds the ``ibsi_1_*.csv`` files.

    Raises
    ------
    ValidationError
        Unknown configuration name.
    NotFoundError
        A file is missing (named, with where to get it).
    """
    if config not in CONFIGURATIONS:
        raise ValidationError(
            format_problem(
                f"IBSI configuration {config!r}", f"one of {list(CONFIGURATIONS)}", "pick one of them"
            )
        )
    _, phantom, reference_name = CONFIGURATIONS[config]
    folder = Path(data_dir) / phantom / "nifti"
    files = (
        folder / "image" / "phantom.nii.gz",
        folder / "mask" / "mask.nii.gz",
        Path(reference_dir) / reference_name,
    )
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise NotFoundError(
            format_problem(
                f"IBSI configuration {config}: missing {missing}",
                f"the check reads {phantom}/nifti/{{image/phantom,mask/mask}}.nii.gz and {reference_name}",
                "pass --data with the folder holding the phantom (the CT phantom is CC BY-NC: see "
                "shared/data/README.md; SABRKIT_IBSI_DATA) and --reference with the IBSI CSV folder",
            )
        )
    return files


def run_configuration(
    config: str,
    image_path: str | os.PathLike[str],
    mask_path: str | os.PathLike[str],
    reference_path: str | os.PathLike[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run one IBSI configuration: its profile's chain on the phantom, compared with the reference.

    Returns
    -------
    features : DataFrame
        :func:`compare_with_ibsi_reference` for the profile's aggregations.
    checkpoints : DataFrame
        :func:`compare_checkpoints`.
    """
    import SimpleITK as sitk

    from sabrkit.features.execution import radiomics_quiet
    from sabrkit.features.ibsi_extract import ibsi_features
    from sabrkit.features.ibsi_processing import process_roi
    from sabrkit.features.params import load_params

    profile_name = CONFIGURATIONS[config][0]
    params = load_params(profile_name)
    processing = params.preprocessing
    assert processing is not None, profile_name
    reference = read_ibsi_reference(reference_path)
    image, mask = sitk.ReadImage(str(image_path)), sitk.ReadImage(str(mask_path))
    bin_count = params.setting.get("binCount")
    roi = process_roi(
        image, mask, processing, label=params.label,
        bin_width=None if bin_count is not None else float(params.setting.get("binWidth", 25)),
        bin_count=None if bin_count is None else int(bin_count), case_id=f"IBSI {config}",
    )  # fmt: skip
    with radiomics_quiet():
        values = ibsi_features(
            roi,
            params.setting,
            params.feature_classes,
            processing.texture_aggregation,
            processing.merge_directions,
        )
    tag_map = ibsi_tag_map(processing.texture_aggregation, processing.merge_directions)
    comparison = compare_with_ibsi_reference(
        pd.Series(values), reference, tag_map, n_voxels=int(roi.morph_mask.sum())
    )
    logger.info("IBSI %s: %d of %d within tolerance", config, int(comparison["match"].sum()), len(comparison))
    return comparison, compare_checkpoints(roi.checkpoints(), reference)


def ibsi_summary(comparison: pd.DataFrame, checkpoints: pd.DataFrame | None = None) -> dict[str, Any]:
    """Counts for ``metrics/ibsi.json`` (one configuration).

    Returns
    -------
    dict
        ``n_compared``, ``n_within_tolerance``, ``n_converted`` (exact IBSI conversions applied),
        ``n_known_deviations`` (mismatches with a documented reason), ``n_unexplained``
        (mismatches without one; should be 0), ``mismatched_tags``; with ``checkpoints`` also
        ``checkpoints``: ``n_compared``, ``n_within_tolerance``, ``mismatched_tags`` and
        ``values`` (tag -> ours, reference, tolerance, match).
    """
    mismatched = comparison.loc[~comparison["match"]]
    explained = mismatched["known_deviation"] != ""
    summary: dict[str, Any] = {
        "n_compared": int(len(comparison)),
        "n_within_tolerance": int(comparison["match"].sum()),
        "n_converted": int((comparison["conversion"] != "").sum()) if "conversion" in comparison else 0,
        "n_known_deviations": int(explained.sum()),
        "n_unexplained": int((~explained).sum()),
        "mismatched_tags": sorted(mismatched["ibsi_tag"].tolist()),
    }
    if checkpoints is not None:
        summary["checkpoints"] = {
            "n_compared": int(len(checkpoints)),
            "n_within_tolerance": int(checkpoints["match"].sum()),
            "mismatched_tags": sorted(checkpoints.loc[~checkpoints["match"], "ibsi_tag"].tolist()),
            "values": {
                row.ibsi_tag: {"ours": row.ours, "reference": row.reference, "tolerance": row.tolerance,
                               "match": bool(row.match)}
                for row in checkpoints.itertuples(index=False)
            },
        }  # fmt: skip
    return summary


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def render_ibsi_markdown(
    results: dict[str, tuple[pd.DataFrame, pd.DataFrame]], *, pyradiomics_version: str
) -> str:
    """The docs page ``docs/ibsi.md`` from :func:`run_configuration` results (config -> (features, checkpoints))."""
    lines = [
        "# IBSI-1 compliance",
        "",
        "<!-- generated by `python pipelines/ibsi_check.py --docs docs/ibsi.md`; do not edit by hand -->",
        "",
        f"sabrkit's IBSI chain (`sabrkit.features.ibsi_processing`) and pyradiomics {pyradiomics_version}'s feature "
        "classes (`sabrkit.features.ibsi_extract`) on the IBSI-1 digital phantom and on the IBSI-1 CT radiomics "
        "phantom under configurations A-E, compared with the IBSI consensus reference values. Each configuration "
        "is a packaged profile (`sabrkit features params ibsi_ct_c` shows one). A feature matches when "
        "|ours - reference| is at most the file's tolerance, or half a unit in the reference's third significant "
        "digit if that is larger. Run it on your install: `sabrkit features ibsi --config all --data DIR --out "
        "ibsi.json` (see [features.md](features.md#ibsi-check)).",
        "",
        "| config | profile | features within tolerance | converted exactly | known deviations | unexplained | "
        "checkpoints within tolerance |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for config, (comparison, checkpoints) in results.items():
        summary = ibsi_summary(comparison, checkpoints)
        cp = summary["checkpoints"]
        lines.append(
            f"| {config} | `{CONFIGURATIONS[config][0]}` | "
            f"{summary['n_within_tolerance']} of {summary['n_compared']} | "
            f"{summary['n_converted']} | {summary['n_known_deviations']} | {summary['n_unexplained']} | "
            f"{cp['n_within_tolerance']} of {cp['n_compared']} |"
        )
    lines += ["", "## Remaining deviations", ""]
    any_mismatch = False
    for config, (comparison, _) in results.items():
        for row in comparison.loc[~comparison["match"]].itertuples(index=False):
            any_mismatch = True
            reason = row.known_deviation or "UNEXPLAINED: investigate before relying on this feature"
            lines.append(f"- {config}: `{row.ibsi_tag}` (`{row.feature}`): ours {_fmt(row.ours)}, reference "
                         f"{_fmt(row.reference)} +/- {_fmt(row.tolerance)}. {reason}.")  # fmt: skip
    if not any_mismatch:
        lines.append("None: every compared feature of every configuration is within tolerance.")
    lines += ["", "## Exact conversions", ""]
    seen: set[str] = set()
    for comparison, _ in results.values():
        for row in comparison.loc[comparison["conversion"] != ""].itertuples(index=False):
            if row.ibsi_tag not in seen:
                seen.add(row.ibsi_tag)
                lines.append(f"- `{row.ibsi_tag}` (`{row.feature}`): {row.conversion}.")
    lines += [
        "",
        "## Mapping notes",
        "",
        *[f"- `{tag}`: {note}." for tag, note in MAPPING_NOTES.items()],
        "",
        "## Not compared",
        "",
        f"IBSI features pyradiomics lacks: {NOT_IMPLEMENTED}.",
        "",
    ]
    for config, (comparison, checkpoints) in results.items():
        lines += [
            f"## Configuration {config} (`{CONFIGURATIONS[config][0]}`, reference `{CONFIGURATIONS[config][2]}`)",
            "",
            "| IBSI tag | our column | pyradiomics | ours (IBSI) | reference | tolerance | match |",
            "|---|---|---:|---:|---:|---:|:---:|",
        ]
        for row in comparison.itertuples(index=False):
            lines.append(
                f"| `{row.ibsi_tag}` | `{row.feature}` | {_fmt(row.pyradiomics)} | {_fmt(row.ours)} | "
                f"{_fmt(row.reference)} | {_fmt(row.tolerance)} | {'yes' if row.match else '**no**'} |"
            )
        lines += ["", "Preprocessing checkpoints:", "", "| IBSI tag | ours | reference | tolerance | match |",
                  "|---|---:|---:|---:|:---:|"]  # fmt: skip
        for row in checkpoints.itertuples(index=False):
            lines.append(f"| `{row.ibsi_tag}` | {_fmt(row.ours)} | {_fmt(row.reference)} | {_fmt(row.tolerance)} | "
                         f"{'yes' if row.match else '**no**'} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def check_configurations(
    configs: list[str],
    data_dir: str | os.PathLike[str],
    reference_dir: str | os.PathLike[str],
    *,
    skip_missing: bool = False,
) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[pd.DataFrame, pd.DataFrame]]]:
    """Run several configurations; the sections of ``metrics/ibsi.json`` and the comparison tables.

    Parameters
    ----------
    configs : list of str
        Names from :data:`CONFIGURATIONS` (``"digital"``, ``"A"`` ... ``"E"``).
    data_dir : path
        Folder holding ``ibsi_digital_phantom/`` and/or ``ibsi_ct_phantom/``.
    reference_dir : path
        Folder holding the ``ibsi_1_*.csv`` reference files.
    skip_missing : bool
        Record a configuration whose files are missing as ``{"skipped": reason}`` instead of raising.

    Returns
    -------
    summaries : dict
        Config -> :func:`ibsi_summary` (with checkpoints) or ``{"skipped": reason}``.
    results : dict
        Config -> (feature comparison, checkpoint comparison) for the configurations that ran.

    Raises
    ------
    NotFoundError
        A configuration's files are missing and ``skip_missing`` is False.
    """
    summaries: dict[str, dict[str, Any]] = {}
    results: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for config in configs:
        try:
            files = configuration_files(config, data_dir, reference_dir)
        except NotFoundError as exc:
            if not skip_missing:
                raise
            summaries[config] = {"skipped": str(exc)}
            logger.warning("IBSI %s skipped: %s", config, exc)
            continue
        results[config] = run_configuration(config, *files)
        summaries[config] = ibsi_summary(*results[config])
    return summaries, results


def comparison_table(results: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> pd.DataFrame:
    """All configurations' feature comparisons in one table with a leading ``config`` column."""
    frames = [comparison.assign(config=config) for config, (comparison, _) in results.items()]
    if not frames:
        return pd.DataFrame(columns=["config", "feature", "ibsi_tag", "ours", "reference", "match"])
    table = pd.concat(frames, ignore_index=True)
    return table[["config", *[c for c in table.columns if c != "config"]]]
