r"""Check sabrkit's handcrafted features against the IBSI-1 digital phantom reference values.

The IBSI digital phantom (Zwanenburg et al., *Radiology* 2020; IBSI reference manual,
arXiv:1612.07003) is a 5 x 4 x 4 image with 2 mm voxels whose grey levels inside the mask are
already the integers 1, 3, 4 and 6. Its reference values assume no interpolation, no
re-segmentation and no further discretisation; in pyradiomics that is (as in pyradiomics'
own IBSI comparison, see its FAQ "Does PyRadiomics adhere to IBSI definitions?"):

* no ``resampledPixelSpacing`` (no interpolation), no ``resegmentRange``, ``normalize`` off;
* ``binWidth: 1``: pyradiomics' bin edges start at :math:`\lfloor \min/1 \rfloor`, so the
  integer grey levels 1..6 fall into bins 1..6 unchanged (discretisation is the identity);
* ``voxelArrayShift: 0`` (IBSI energy has no shift), ``gldm_a: 0`` (IBSI NGLDM
  :math:`\alpha = 0`), distance 1 (Chebyshev), symmetric GLCM;
* texture matrices per direction with features averaged over the 13 directions, which is
  IBSI's ``3D_avg`` aggregation for GLCM and GLRLM; GLSZM, NGTDM and NGLDM are 3-D (``3D``).

:data:`IBSI_TAGS` maps our feature names to IBSI tags; :func:`compare_with_ibsi_reference` applies
it. The reference file gives tolerance 0 for the digital phantom because its values are
exact up to the 3 significant digits reported, so a feature matches when

.. math::

    |x_{ours} - x_{ref}| \le \max\left(t,\ \tfrac{1}{2}\,10^{\lfloor \log_{10}|x_{ref}| \rfloor - 2}\right)

with :math:`t` the file's tolerance (half a unit in the third significant digit). Every
mismatch that pyradiomics documents is listed in :data:`KNOWN_DEVIATIONS` with its reason.
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
    "IBSI_TAGS",
    "KNOWN_DEVIATIONS",
    "MAPPING_NOTES",
    "ibsi_phantom_params",
    "read_ibsi_reference",
    "extract_phantom_features",
    "compare_with_ibsi_reference",
    "ibsi_summary",
    "render_ibsi_markdown",
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

#: Our feature name -> IBSI tag (3-D, direction-averaged where IBSI distinguishes).
IBSI_TAGS: dict[str, str] = {
    **{f"original_shape_{k}": v for k, v in _SHAPE.items()},
    **{f"original_firstorder_{k}": v for k, v in _FIRSTORDER.items()},
    **{f"original_glcm_{k}": f"cm_{v}_3D_avg" for k, v in _GLCM.items()},
    # IBSI's dissimilarity equals the difference average; pyradiomics removed its duplicate
    "original_glcm_DifferenceAverage#dissimilarity": "cm_dissimilarity_3D_avg",
    # IBSI's sum variance equals cluster tendency; pyradiomics removed SumVariance as a duplicate
    "original_glcm_ClusterTendency#sum_var": "cm_sum_var_3D_avg",
    **{f"original_glrlm_{k}": f"rlm_{v}_3D_avg" for k, v in _GLRLM.items()},
    **{f"original_glszm_{k}": f"szm_{v}_3D" for k, v in _GLSZM.items()},
    **{f"original_ngtdm_{k}": f"ngt_{v}_3D" for k, v in _NGTDM.items()},
    **{f"original_gldm_{k}": f"ngl_{v}_3D" for k, v in _GLDM.items()},
}

#: Notes on mappings that are not one-to-one by name (shown in the docs table).
MAPPING_NOTES: dict[str, str] = {
    "cm_dissimilarity_3D_avg": "pyradiomics removed Dissimilarity: it equals DifferenceAverage",
    "cm_sum_var_3D_avg": "pyradiomics removed SumVariance: it equals ClusterTendency",
    "ih_entropy": "pyradiomics firstorder Entropy is computed on the discretised histogram (IBSI ih_*)",
    "ih_uniformity": "pyradiomics firstorder Uniformity is computed on the discretised histogram (IBSI ih_*)",
    "morph_pca_maj_axis": "within the file's tolerance 0.1, although pyradiomics' N normalisation (see the minor "
    "axis) makes it 0.7 % smaller",
}

_AXES_REASON = (
    "pyradiomics normalises the voxel-coordinate covariance by N, the IBSI consensus by N - 1 "
    "(unbiased), so the axis lengths are sqrt(N / (N - 1)) = sqrt(74/73) smaller on the phantom "
    "(pyradiomics issue AIM-Harvard/pyradiomics#610, open); elongation and flatness are ratios "
    "and agree"
)
#: IBSI tag -> documented reason why pyradiomics 3.0.1 differs from the IBSI reference.
KNOWN_DEVIATIONS: dict[str, str] = {
    "stat_kurt": (
        "pyradiomics returns kurtosis, IBSI excess kurtosis (kurtosis - 3); pyradiomics' docstring of "
        "getKurtosisFeatureValue: 'The PyRadiomics kurtosis is not corrected, yielding a value 3 higher'"
    ),
    "morph_pca_maj_axis": _AXES_REASON,
    "morph_pca_min_axis": _AXES_REASON,
    "morph_pca_least_axis": _AXES_REASON,
}

#: IBSI features not compared: pyradiomics lacks them, or computes them only in a configuration
#: (2-D, merged directions) other than the one checked here.
NOT_IMPLEMENTED = (
    "local intensity (loc_*), intensity-volume histogram (ivh_*), grey level distance zone matrix "
    "(dzm_*), the intensity-histogram features other than entropy and uniformity (pyradiomics computes "
    "them on raw intensities only), 2-D, 2.5-D and merged-direction (comb) texture variants, "
    "and the morphology features without a pyradiomics counterpart (asphericity, centre-of-mass shift, "
    "bounding-box / ellipsoid / convex-hull densities, integrated intensity, Moran's I, Geary's C)"
)


def ibsi_phantom_params() -> RadiomicsParams:
    """pyradiomics settings that reproduce the IBSI digital-phantom configuration (module docstring)."""
    shape = [name for name in _SHAPE]
    return RadiomicsParams.from_mapping(
        {
            "version": "ibsi-digital-phantom-v1",
            "modality": "CT",
            "description": "IBSI-1 digital phantom: no resampling, no re-segmentation, bin width 1 (identity)",
            "setting": {
                "label": 1,
                "binWidth": 1,
                "voxelArrayShift": 0,
                "normalize": False,
                "gldm_a": 0,
                "distances": [1],
                "symmetricalGLCM": True,
                "force2D": False,
                "additionalInfo": False,
            },
            "imageType": {"Original": {}},
            "featureClass": {
                "shape": shape,
                "firstorder": None,
                "glcm": None,
                "glrlm": None,
                "glszm": None,
                "ngtdm": None,
                "gldm": None,
            },
        },
        source="IBSI digital phantom parameters",
    )


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
            format_problem(f"{file}: columns {list(table.columns)}", f"columns are {expected}", "pass the IBSI CSV")
        )
    table = table.rename(columns={"reference value": "reference"}).dropna(subset=["reference"])
    return table[["tag", "reference", "tolerance"]].reset_index(drop=True)


def extract_phantom_features(image_path: str | os.PathLike[str], mask_path: str | os.PathLike[str]) -> pd.Series:
    """Features of the IBSI phantom through sabrkit's own extraction wrapper.

    Returns
    -------
    Series
        Feature name -> value (``original_<family>_<feature>``).
    """
    from sabrkit.features.extract import extract_lesion_features
    from sabrkit.features.io import feature_columns

    manifest = pd.DataFrame(
        {"lesion_id": ["IBSI-PHANTOM"], "study_id": ["IBSI"], "image_path": [str(image_path)],
         "mask_path": [str(mask_path)]}
    )  # fmt: skip
    table = extract_lesion_features(manifest, ibsi_phantom_params(), progress=False).features
    return table[feature_columns(table)].iloc[0].astype(float)


def _matching_tolerance(reference: float, tolerance: float) -> float:
    if reference == 0 or not math.isfinite(reference):
        return float(tolerance)
    half_unit = 0.5 * 10.0 ** (math.floor(math.log10(abs(reference))) - 2)
    return max(float(tolerance), half_unit)


def compare_with_ibsi_reference(ours: pd.Series, reference: pd.DataFrame) -> pd.DataFrame:
    """Compare our phantom features with the IBSI reference through :data:`IBSI_TAGS`.

    Parameters
    ----------
    ours : Series
        From :func:`extract_phantom_features`.
    reference : DataFrame
        From :func:`read_ibsi_reference`.

    Returns
    -------
    DataFrame
        One row per mapped feature: ``feature, ibsi_tag, ours, reference, tolerance`` (the
        rule in the module docstring), ``difference``, ``match`` (bool), ``known_deviation``
        (reason, for mismatches pyradiomics documents) and ``note``; in mapping order.

    Raises
    ------
    ValidationError
        A mapped feature is absent from ``ours`` or a mapped tag from the reference.
    """
    reference_by_tag = reference.set_index("tag")
    rows: list[dict[str, Any]] = []
    for key, tag in IBSI_TAGS.items():
        feature = key.split("#", 1)[0]
        if feature not in ours.index or tag not in reference_by_tag.index:
            raise ValidationError(
                format_problem(
                    f"IBSI mapping {feature} -> {tag}: " + ("feature not computed" if feature not in ours.index
                                                             else "tag has no reference value"),
                    "every mapped feature is computed and every mapped tag has a reference",
                    "extract with ibsi_phantom_params() and pass ibsi_1_dig_phantom.csv",
                )
            )  # fmt: skip
        value = float(ours[feature])
        expected = float(reference_by_tag.loc[tag, "reference"])
        tolerance = _matching_tolerance(expected, float(reference_by_tag.loc[tag, "tolerance"]))
        difference = value - expected
        match = abs(difference) <= tolerance * (1 + 1e-9)
        rows.append(
            {
                "feature": feature,
                "ibsi_tag": tag,
                "ours": value,
                "reference": expected,
                "tolerance": tolerance,
                "difference": difference,
                "match": bool(match),
                "known_deviation": "" if match else KNOWN_DEVIATIONS.get(tag, ""),
                "note": MAPPING_NOTES.get(tag, ""),
            }
        )
    return pd.DataFrame(rows)


def ibsi_summary(comparison: pd.DataFrame) -> dict[str, Any]:
    """Counts for ``metrics/ibsi.json``.

    Returns
    -------
    dict
        ``n_compared``, ``n_within_tolerance``, ``n_known_deviations`` (mismatches pyradiomics
        documents), ``n_unexplained`` (mismatches without a documented reason; should be 0),
        ``mismatched_tags``.
    """
    mismatched = comparison.loc[~comparison["match"]]
    explained = mismatched["known_deviation"] != ""
    return {
        "n_compared": int(len(comparison)),
        "n_within_tolerance": int(comparison["match"].sum()),
        "n_known_deviations": int(explained.sum()),
        "n_unexplained": int((~explained).sum()),
        "mismatched_tags": sorted(mismatched["ibsi_tag"].tolist()),
    }


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def render_ibsi_markdown(comparison: pd.DataFrame, *, pyradiomics_version: str) -> str:
    """The docs page ``docs/ibsi.md``: summary, the full comparison table, every mismatch explained."""
    summary = ibsi_summary(comparison)
    lines = [
        "# IBSI check: digital phantom",
        "",
        "<!-- generated by `python pipelines/ibsi_check.py --docs docs/ibsi.md`; do not edit by hand -->",
        "",
        f"sabrkit's extraction wrapper (pyradiomics {pyradiomics_version}) on the IBSI-1 digital phantom, "
        "compared with the IBSI consensus reference values (`ibsi_1_dig_phantom.csv`). Settings: no "
        "resampling, no re-segmentation, bin width 1 (the phantom's integer grey levels are kept), "
        "voxelArrayShift 0, NGLDM alpha 0, distance 1, 3-D texture matrices with features averaged over "
        "the 13 directions (IBSI `3D_avg`; `3D` for GLSZM, NGTDM, NGLDM). See `sabrkit.features.ibsi`.",
        "",
        "The reference tolerance is 0 for the phantom (values are exact to the 3 significant digits "
        "shown), so a feature matches when |ours - reference| is at most half a unit in the reference's "
        "third significant digit (or the file's tolerance, if larger).",
        "",
        f"**{summary['n_within_tolerance']} of {summary['n_compared']} compared features match**; "
        f"{summary['n_known_deviations']} differ for reasons pyradiomics documents (below), "
        f"{summary['n_unexplained']} differ without a known reason.",
        "",
        "| our feature | IBSI tag | ours | reference | tolerance | match | known pyradiomics deviation / note |",
        "|---|---|---:|---:|---:|:---:|---|",
    ]
    for row in comparison.itertuples(index=False):
        why = row.known_deviation or row.note
        lines.append(
            f"| `{row.feature}` | `{row.ibsi_tag}` | {_fmt(row.ours)} | {_fmt(row.reference)} | "
            f"{_fmt(row.tolerance)} | {'yes' if row.match else '**no**'} | {why} |"
        )
    lines += ["", "## Mismatches", ""]
    mismatched = comparison.loc[~comparison["match"]]
    if mismatched.empty:
        lines.append("None.")
    for row in mismatched.itertuples(index=False):
        reason = row.known_deviation or "UNEXPLAINED: investigate before relying on this feature"
        lines.append(f"- `{row.ibsi_tag}` (`{row.feature}`): ours {_fmt(row.ours)}, reference "
                     f"{_fmt(row.reference)}. {reason}.")  # fmt: skip
    lines += [
        "",
        "## Not compared",
        "",
        f"IBSI features pyradiomics lacks, or computes only in a configuration not checked here: {NOT_IMPLEMENTED}.",
        "",
    ]
    return "\n".join(lines)
