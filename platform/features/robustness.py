r"""Feature robustness under image perturbations, and a selector that keeps robust features.

Following Zwanenburg et al. (*Sci Rep* 2019, "Assessing robustness of radiomic features by
image perturbation"), each lesion is re-extracted ``n_perturbations`` times after a random
combination of

* **noise**: Gaussian noise added to the image (``noise_sd_hu``);
* **rotation**: a rotation about the mask centroid around the axial (z) axis, uniform in
  :math:`\pm` ``max_rotation_deg``;
* **translation**: a sub-voxel shift uniform in :math:`\pm` ``max_translation_voxels`` per
  axis (image B-spline interpolated, mask linearly interpolated and thresholded at 0.5);
* **volume adaptation**: the mask grown or shrunk by a fraction of its volume uniform in
  :math:`\pm` ``max_volume_change`` (voxels added or removed in order of their Euclidean
  distance, in mm, to the mask boundary, as Zwanenburg et al. do);
* **contour randomisation**: every voxel on the mask boundary (inside or just outside) flips
  with probability ``contour_flip_probability``. Zwanenburg et al. randomise the contour with
  supervoxels; flipping boundary voxels is a simpler stand-in with the same purpose (contour
  uncertainty of about one voxel).

Robustness is the intraclass correlation across perturbations, ICC(1,1) (one-way random
effects, absolute agreement, single measurement; pingouin's ``ICC1``), the form Zwanenburg et
al. use because perturbations are random draws, not fixed raters (pingouin's ``ICC(1,1)`` row). With :math:`n` lesions
(targets), :math:`k` perturbations,

.. math::

    \mathrm{ICC}(1,1) = \frac{MS_B - MS_W}{MS_B + (k - 1) MS_W},\quad
    MS_B = \frac{k \sum_i (\bar x_i - \bar x)^2}{n - 1},\quad
    MS_W = \frac{\sum_{ij} (x_{ij} - \bar x_i)^2}{n (k - 1)} .

:func:`icc_table` reports it with pingouin (with 95 % CIs); :func:`icc1` is the same formula
vectorised over features (checked against pingouin in the tests), used by
:class:`ICCSelector`, which recomputes it in every training fold from the training patients
only.
"""

from __future__ import annotations

import logging
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sabrkit.errors import CaseFailure, ConfigError, ExtractionError, ModelInputError, format_problem
from sabrkit.features.io import feature_columns
from sabrkit.features.params import RadiomicsParams

__all__ = [
    "PerturbationConfig",
    "perturb_lesion",
    "extract_perturbed_features",
    "aggregate_perturbed",
    "icc1",
    "icc_table",
    "ICCSelector",
    "config_dict",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PerturbationConfig:
    """Settings of the perturbation chain (see the module docstring); validated on construction."""

    n_perturbations: int = 10
    noise_sd_hu: float = 10.0
    max_rotation_deg: float = 10.0
    max_translation_voxels: float = 0.5
    max_volume_change: float = 0.15
    contour_flip_probability: float = 0.25

    def __post_init__(self) -> None:
        checks = {
            "n_perturbations": self.n_perturbations >= 2,
            "noise_sd_hu": self.noise_sd_hu >= 0,
            "max_rotation_deg": 0 <= self.max_rotation_deg <= 45,
            "max_translation_voxels": 0 <= self.max_translation_voxels <= 1,
            "max_volume_change": 0 <= self.max_volume_change <= 0.5,
            "contour_flip_probability": 0 <= self.contour_flip_probability <= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(
                format_problem(
                    f"perturbation settings {[(b, getattr(self, b)) for b in bad]}",
                    "n_perturbations >= 2, noise >= 0, rotation 0-45 deg, translation 0-1 voxel, "
                    "volume change 0-0.5, flip probability 0-1",
                    "use e.g. PerturbationConfig() (10 perturbations)",
                )
            )


def _boundary(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    inner = mask & ~ndimage.binary_erosion(mask)
    outer = ndimage.binary_dilation(mask) & ~mask
    return inner | outer


def _adapt_volume(region: np.ndarray, fraction: float, spacing_zyx: tuple[float, ...]) -> np.ndarray:
    """Grow (fraction > 0) or shrink the mask by ``fraction`` of its voxels, nearest the boundary first."""
    from scipy import ndimage

    n = int(region.sum())
    change = int(round(abs(fraction) * n))
    if change == 0:
        return region
    out = region.copy()
    if fraction > 0:
        distance = ndimage.distance_transform_edt(~region, sampling=spacing_zyx)
        candidates = np.flatnonzero(~region)
        chosen = candidates[np.argsort(distance.ravel()[candidates], kind="stable")[:change]]
        out.ravel()[chosen] = True
    else:
        distance = ndimage.distance_transform_edt(region, sampling=spacing_zyx)
        candidates = np.flatnonzero(region)
        chosen = candidates[np.argsort(distance.ravel()[candidates], kind="stable")[: min(change, n - 1)]]
        out.ravel()[chosen] = False
    return out


def perturb_lesion(
    image: Any, mask: Any, config: PerturbationConfig, rng: np.random.Generator
) -> tuple[Any, Any]:
    """One random perturbation of a lesion (image and mask stay on their grid).

    Parameters
    ----------
    image, mask : SimpleITK.Image
        Same grid; mask label 1.
    config : PerturbationConfig
    rng : numpy.random.Generator
        The only source of randomness.

    Returns
    -------
    (SimpleITK.Image, SimpleITK.Image)
        Perturbed image (float32) and mask (uint8, non-empty).
    """
    import SimpleITK as sitk

    mask_array = sitk.GetArrayFromImage(mask) > 0
    centre_index = [float(v) for v in np.argwhere(mask_array).mean(axis=0)[::-1]]  # x, y, z
    transform = sitk.Euler3DTransform()
    transform.SetCenter(image.TransformContinuousIndexToPhysicalPoint(centre_index))
    transform.SetRotation(
        0.0, 0.0, np.deg2rad(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg))
    )
    shift = rng.uniform(-config.max_translation_voxels, config.max_translation_voxels, size=3)
    transform.SetTranslation(tuple(float(s * sp) for s, sp in zip(shift, image.GetSpacing())))
    moved_image = sitk.Resample(
        sitk.Cast(image, sitk.sitkFloat32), image, transform, sitk.sitkBSpline, -1024.0
    )
    moved_mask = sitk.Resample(sitk.Cast(mask > 0, sitk.sitkFloat32), mask, transform, sitk.sitkLinear, 0.0)
    pixels = sitk.GetArrayFromImage(moved_image).astype(np.float32)
    if config.noise_sd_hu > 0:
        pixels += rng.normal(0.0, config.noise_sd_hu, size=pixels.shape).astype(np.float32)
    region = sitk.GetArrayFromImage(moved_mask) >= 0.5
    if config.max_volume_change > 0 and region.any():
        fraction = rng.uniform(-config.max_volume_change, config.max_volume_change)
        region = _adapt_volume(region, fraction, tuple(float(s) for s in image.GetSpacing()[::-1]))
    if config.contour_flip_probability > 0:
        edge = _boundary(region)
        flips = edge & (rng.random(region.shape) < config.contour_flip_probability)
        flipped = region ^ flips
        region = flipped if flipped.any() else region
    if not region.any():  # the chain removed everything (a one-voxel lesion): keep the original
        region = mask_array
    out_image = sitk.GetImageFromArray(pixels)
    out_image.CopyInformation(image)
    out_mask = sitk.GetImageFromArray(region.astype(np.uint8))
    out_mask.CopyInformation(mask)
    return out_image, out_mask


@dataclass(frozen=True)
class _PerturbationTask:
    lesion_id: str
    study_id: str
    image_path: str
    mask_path: str
    params: RadiomicsParams
    config: PerturbationConfig
    seed: int


def _lesion_rng(seed: int, lesion_id: str) -> np.random.Generator:
    """Generator of one lesion: independent of run order and worker count."""
    return np.random.default_rng(
        np.random.SeedSequence(entropy=seed, spawn_key=(zlib.crc32(lesion_id.encode()),))
    )


def _perturb_and_extract(task: _PerturbationTask) -> tuple[str, list[dict[str, Any]], CaseFailure | None]:
    """Worker: all perturbations of one lesion, or the reason it failed."""
    import math

    from sabrkit.features.extract import run_pyradiomics
    from sabrkit.imaging.io import read_image

    rng = _lesion_rng(task.seed, task.lesion_id)
    rows: list[dict[str, Any]] = []
    try:
        image = read_image(task.image_path, task.lesion_id, role="image")
        mask = read_image(task.mask_path, task.lesion_id, role="mask")
        for k in range(task.config.n_perturbations):
            moved_image, moved_mask = perturb_lesion(image, mask, task.config, rng)
            features = run_pyradiomics(moved_image, moved_mask, task.params)
            bad = [n for n, v in features.items() if not math.isfinite(v)]
            if bad:
                raise ValueError(f"perturbation {k}: pyradiomics returned non-finite values for {bad[:5]}")
            rows.append(
                {"lesion_id": task.lesion_id, "study_id": task.study_id, "perturbation": k, **features}
            )
    except Exception as exc:  # recorded, never NaN
        return task.lesion_id, [], CaseFailure(task.lesion_id, "perturbation", f"{type(exc).__name__}: {exc}")
    return task.lesion_id, rows, None


def extract_perturbed_features(
    manifest: pd.DataFrame,
    params: RadiomicsParams,
    config: PerturbationConfig,
    seed: int,
    *,
    n_jobs: int = 1,
    scheduler: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    max_failure_fraction: float = 0.0,
    progress: bool = True,
) -> tuple[pd.DataFrame, list[CaseFailure]]:
    """Extract features of ``config.n_perturbations`` perturbed copies of every lesion.

    Returns
    -------
    (DataFrame, list of CaseFailure)
        Long table ``lesion_id, study_id, perturbation, <features>`` sorted by lesion and
        perturbation (lesions that failed are absent), and the failures.

    Raises
    ------
    ExtractionError
        More than ``max_failure_fraction`` of the lesions failed.
    """
    from sabrkit.features.execution import run_tasks
    from sabrkit.imaging import check_manifest

    check_manifest(manifest)
    base = Path(base_dir) if base_dir is not None else None

    def resolve(path: object) -> str:
        file = Path(str(path))
        return str(file if file.is_absolute() or base is None else base / file)

    tasks = [
        _PerturbationTask(str(r.lesion_id), str(r.study_id), resolve(r.image_path), resolve(r.mask_path), params,
                          config, int(seed))
        for r in manifest.sort_values("lesion_id").itertuples(index=False)
    ]  # fmt: skip
    rows: list[dict[str, Any]] = []
    failures: list[CaseFailure] = []
    results = run_tasks(
        _perturb_and_extract, tasks, n_jobs=n_jobs, scheduler=scheduler, progress=progress,
        description="extracting perturbed lesions", min_tasks_per_worker=1,
    )  # fmt: skip
    for _, lesion_rows, failure in results:
        rows.extend(lesion_rows)
        if failure is not None:
            failures.append(failure)
    failures.sort(key=lambda f: f.case_id)
    if tasks and len(failures) / len(tasks) > max_failure_fraction:
        raise ExtractionError(failures, len(tasks), max_failure_fraction)
    table = pd.DataFrame(rows)
    if not table.empty:
        table = table.sort_values(["lesion_id", "perturbation"], kind="stable").reset_index(drop=True)
    logger.info("perturbed extraction: %d lesion(s) x %d perturbation(s)", len(tasks) - len(failures),
                config.n_perturbations)  # fmt: skip
    return table, failures


def aggregate_perturbed(perturbed_lesions: pd.DataFrame, method: str = "largest") -> pd.DataFrame:
    """Patient-level perturbation table: :func:`~sabrkit.features.aggregate_lesions` per perturbation.

    Returns
    -------
    DataFrame
        ``study_id, perturbation, <features>, n_lesions, total_volume_mm3``.
    """
    from sabrkit.features.aggregate import aggregate_lesions

    parts = []
    for k, replica in perturbed_lesions.groupby("perturbation", sort=True):
        patients = aggregate_lesions(replica.drop(columns="perturbation"), method)
        patients.insert(1, "perturbation", int(k))
        parts.append(patients)
    return (
        pd.concat(parts, ignore_index=True).sort_values(["study_id", "perturbation"]).reset_index(drop=True)
    )


def icc1(ratings: np.ndarray) -> np.ndarray:
    """ICC(1,1) per feature from an array ``targets x raters x features`` (module docstring).

    Features with no variance at all give NaN.
    """
    n, k = ratings.shape[0], ratings.shape[1]
    target_means = ratings.mean(axis=1)
    grand = target_means.mean(axis=0)
    ms_between = k * ((target_means - grand) ** 2).sum(axis=0) / (n - 1)
    ms_within = ((ratings - target_means[:, None, :]) ** 2).sum(axis=(0, 1)) / (n * (k - 1))
    denominator = ms_between + (k - 1) * ms_within
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (ms_between - ms_within) / denominator, np.nan)


def _ratings(
    perturbed: pd.DataFrame, id_column: str, rater_column: str, features: list[str]
) -> tuple[np.ndarray, list[str]]:
    """targets x raters x features array over the targets that have every rater."""
    raters = sorted(perturbed[rater_column].unique())
    counts = perturbed.groupby(id_column)[rater_column].nunique()
    complete = sorted(counts.index[counts == len(raters)])
    table = perturbed.loc[perturbed[id_column].isin(complete)].sort_values([id_column, rater_column])
    values = table[features].to_numpy(dtype=float).reshape(len(complete), len(raters), len(features))
    return values, complete


def icc_table(
    perturbed: pd.DataFrame, id_column: str = "lesion_id", rater_column: str = "perturbation"
) -> pd.DataFrame:
    """ICC(1,1) per feature with pingouin (its ``ICC(1,1)`` row), with the 95 % confidence interval.

    Returns
    -------
    DataFrame
        ``feature, icc, ci95_low, ci95_high, n_targets, n_perturbations``, sorted by ``icc``.
    """
    import pingouin

    features = feature_columns(perturbed)
    rows = []
    for feature in features:
        long = perturbed[[id_column, rater_column, feature]]
        if long[feature].nunique() < 2:
            rows.append({"feature": feature, "icc": np.nan, "ci95_low": np.nan, "ci95_high": np.nan})
            continue
        result = pingouin.intraclass_corr(long, targets=id_column, raters=rater_column, ratings=feature)
        by_type = result.set_index("Type")
        icc_row = by_type.loc["ICC(1,1)" if "ICC(1,1)" in by_type.index else "ICC1"]  # pingouin >= 0.6 / 0.5
        low, high = icc_row["CI95" if "CI95" in icc_row.index else "CI95%"]
        rows.append(
            {
                "feature": feature,
                "icc": float(icc_row["ICC"]),
                "ci95_low": float(low),
                "ci95_high": float(high),
            }
        )
    table = pd.DataFrame(rows)
    table["n_targets"] = perturbed[id_column].nunique()
    table["n_perturbations"] = perturbed[rater_column].nunique()
    return table.sort_values("icc", kind="stable").reset_index(drop=True)


class ICCSelector(TransformerMixin, BaseEstimator):
    """Drop features whose ICC(1,1) across perturbations, over the training patients, is low.

    Parameters
    ----------
    perturbed_features : DataFrame
        Side data: perturbed feature values of the cohort, one row per
        (``id_column``, ``rater_column``), e.g. :func:`aggregate_perturbed` output. May cover
        more patients than ``X``: ``fit`` uses only the rows whose ID is in ``X.index``.
    threshold : float, default 0.75
        Keep a feature when its ICC >= threshold (0.75: "good" reliability, Koo & Li 2016).
    id_column, rater_column : str
        Columns of ``perturbed_features``.
    min_targets : int, default 5
        Fewest training patients with complete perturbations needed to estimate an ICC.

    Attributes
    ----------
    icc_ : Series
        ICC per perturbed feature of ``X``, from the training patients.
    support_ : ndarray of bool
        Kept columns of ``X``; columns absent from ``perturbed_features`` (clinical
        covariates) are always kept.
    feature_names_in_, n_features_in_
    """

    def __init__(
        self,
        perturbed_features: pd.DataFrame | None = None,
        threshold: float = 0.75,
        id_column: str = "study_id",
        rater_column: str = "perturbation",
        min_targets: int = 5,
    ) -> None:
        self.perturbed_features = perturbed_features
        self.threshold = threshold
        self.id_column = id_column
        self.rater_column = rater_column
        self.min_targets = min_targets

    def fit(self, X: pd.DataFrame, y: Any = None) -> ICCSelector:
        """Compute the ICC of every perturbed column of ``X`` over ``X``'s patients only.

        Raises
        ------
        ModelInputError
            ``X`` is not a DataFrame indexed by patient, or fewer than ``min_targets``
            training patients have complete perturbation data.
        """
        if not isinstance(X, pd.DataFrame) or self.perturbed_features is None:
            raise ModelInputError(
                format_problem(
                    f"X is a {type(X).__name__}, perturbed_features is {type(self.perturbed_features).__name__}",
                    "ICCSelector reads the training patients from X.index and needs perturbed_features",
                    "put it first in the pipeline, on a DataFrame indexed by study_id",
                )
            )
        side = self.perturbed_features
        from sabrkit.rowkeys import source_keys

        # the training patients; a bootstrap copy counts as its source patient, once
        training = side.loc[side[self.id_column].isin(set(source_keys(X.index)))]
        perturbed = [
            c for c in X.columns if c in side.columns and c not in (self.id_column, self.rater_column)
        ]
        values, targets = _ratings(training, self.id_column, self.rater_column, perturbed)
        if len(targets) < self.min_targets:
            raise ModelInputError(
                format_problem(
                    f"{len(targets)} training patient(s) with complete perturbation data",
                    f"the ICC needs at least min_targets={self.min_targets}",
                    "extract perturbed features for the cohort (pipelines/robustness.py)",
                )
            )
        self.icc_ = pd.Series(icc1(values), index=perturbed, name="icc")
        keep = {c: bool(self.icc_[c] >= self.threshold) for c in perturbed}  # NaN ICC: dropped
        self.support_ = np.array([keep.get(c, True) for c in X.columns])
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.n_training_targets_ = len(targets)
        logger.debug("ICCSelector keeps %d of %d perturbed features", sum(keep.values()), len(perturbed))
        return self

    def get_support(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_.copy()

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """The kept columns of ``X`` (same rows and index)."""
        check_is_fitted(self, "support_")
        if not isinstance(X, pd.DataFrame) or list(X.columns) != list(self.feature_names_in_):
            raise ModelInputError(
                format_problem("X differs from the table seen at fit", "same columns", "pass it")
            )
        return X.loc[:, self.support_]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.feature_names_in_[self.support_]


def config_dict(config: PerturbationConfig) -> dict[str, Any]:
    """JSON-ready settings (for provenance and metrics files)."""
    return asdict(config)
