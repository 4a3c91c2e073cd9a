"""Preprocess every lesion of an image manifest: check, crop, resample, clip, write.

The per-lesion pipeline is a :class:`monai.transforms.Compose` of the transforms in
:mod:`sabrkit.imaging.transforms`::

    CheckGeometryd -> CropToMaskd (margin) -> ResampleToSpacingd (image: linear/B-spline,
    mask: nearest) -> ClipIntensityd (HU window) -> mask still non-empty

A batch run records each failed lesion as a :class:`~sabrkit.errors.CaseFailure` and fails
with :class:`~sabrkit.errors.ExtractionError` (listing all of them) when the failed fraction
exceeds ``max_failure_fraction``. Output is written to a temporary folder beside ``out_dir``
and renamed onto it only when the run succeeds, so a failed run leaves ``out_dir`` untouched.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sabrkit.errors import CaseFailure, ConfigError, ExtractionError, ValidationError, format_problem
from sabrkit.io import atomic_directory

__all__ = ["PreprocessConfig", "preprocess_manifest", "check_manifest", "MANIFEST_COLUMNS", "MANIFEST_FILE"]

logger = logging.getLogger(__name__)

#: Columns every image manifest must have.
MANIFEST_COLUMNS: tuple[str, ...] = ("lesion_id", "study_id", "image_path", "mask_path")
#: Name of the manifest written into ``out_dir`` (paths relative to ``out_dir``).
MANIFEST_FILE = "images.csv"
FAILURES_FILE = "failures.csv"
#: Image interpolators the configuration accepts (masks always use nearest neighbour).
IMAGE_INTERPOLATORS: tuple[str, ...] = ("linear", "bspline")


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of the preprocessing pipeline (validated on construction).

    Parameters
    ----------
    spacing_mm : tuple of 3 floats, default (1.0, 1.0, 1.0)
        Target voxel spacing (x, y, z) in mm; a single number means isotropic.
    interpolator : {"linear", "bspline"}, default "bspline"
        Image interpolator; masks always use nearest neighbour.
    hu_window : (lower, upper) or None, default (-1000.0, 3000.0)
        CT intensity window in Hounsfield units; None disables clipping.
    crop_margin_mm : float or None, default 10.0
        Margin around the mask's bounding box; None disables cropping.
    label : int, default 1
        Mask foreground label.
    geometry_tolerance : float, default 1e-4
        Relative tolerance of the image/mask grid check (ITK semantics).

    Raises
    ------
    ConfigError
        Any value out of range, naming the field and the allowed values.
    """

    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    interpolator: str = "bspline"
    hu_window: tuple[float, float] | None = (-1000.0, 3000.0)
    crop_margin_mm: float | None = 10.0
    label: int = 1
    geometry_tolerance: float = 1e-4

    def __post_init__(self) -> None:
        spacing: Any = self.spacing_mm
        if isinstance(spacing, (int, float)):
            spacing = (spacing,) * 3
        spacing = tuple(spacing)
        if len(spacing) != 3 or not all(_positive(v) for v in spacing):
            _bad("spacing_mm", self.spacing_mm, "three positive numbers (mm)", "e.g. (1.0, 1.0, 1.0)")
        object.__setattr__(self, "spacing_mm", tuple(float(v) for v in spacing))
        if self.interpolator not in IMAGE_INTERPOLATORS:
            _bad("interpolator", self.interpolator, f"one of {list(IMAGE_INTERPOLATORS)}", "use 'bspline'")
        if self.hu_window is not None:
            window = tuple(self.hu_window)
            if len(window) != 2 or not all(_finite(v) for v in window) or not window[0] < window[1]:
                _bad(
                    "hu_window",
                    self.hu_window,
                    "(lower, upper) with lower < upper, or None",
                    "e.g. (-1000, 3000)",
                )
            object.__setattr__(self, "hu_window", (float(window[0]), float(window[1])))
        if self.crop_margin_mm is not None and not (
            _finite(self.crop_margin_mm) and self.crop_margin_mm >= 0
        ):
            _bad("crop_margin_mm", self.crop_margin_mm, "a number >= 0, or None", "e.g. 10.0")
        if isinstance(self.label, bool) or not isinstance(self.label, int) or self.label <= 0:
            _bad("label", self.label, "a positive integer", "use 1")
        if not (_finite(self.geometry_tolerance) and self.geometry_tolerance >= 0):
            _bad("geometry_tolerance", self.geometry_tolerance, "a number >= 0", "e.g. 1e-4")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> PreprocessConfig:
        """Build from a mapping (a ``params.yaml`` section), rejecting unknown keys."""
        allowed = ["spacing_mm", "interpolator", "hu_window", "crop_margin_mm", "label", "geometry_tolerance"]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            _bad("preprocess key(s)", unknown, f"allowed keys are {allowed}", "remove or rename the key")
        return cls(**values)

    def transforms(self) -> Any:
        """Return the per-lesion :class:`monai.transforms.Compose` for this configuration."""
        from monai.transforms import Compose

        from sabrkit.imaging.transforms import (
            CheckGeometryd,
            ClipIntensityd,
            CropToMaskd,
            ResampleToSpacingd,
        )

        steps: list[Any] = [CheckGeometryd(("image", "mask"), tolerance=self.geometry_tolerance)]
        if self.crop_margin_mm is not None:
            steps.append(
                CropToMaskd(
                    ("image", "mask"),
                    margin_mm=self.crop_margin_mm,
                    label=self.label,
                    tolerance=self.geometry_tolerance,
                )
            )
        steps.append(ResampleToSpacingd(("image", "mask"), self.spacing_mm, (self.interpolator, "nearest")))
        if self.hu_window is not None:
            steps.append(ClipIntensityd(("image",), *self.hu_window))
        return Compose(steps)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: object) -> bool:
    return _finite(value) and float(value) > 0  # type: ignore[arg-type]


def _bad(name: str, value: object, rule: str, fix: str) -> None:
    raise ConfigError(format_problem(f"PreprocessConfig {name} = {value!r}", f"{name} must be {rule}", fix))


def check_manifest(manifest: pd.DataFrame) -> None:
    """Raise :class:`ValidationError` unless ``manifest`` has the manifest columns and unique lesions."""
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise ValidationError(
            format_problem(
                f"manifest lacks column(s) {missing} (has {list(manifest.columns)})",
                f"an image manifest has columns {list(MANIFEST_COLUMNS)}",
                "use images.csv written by sabrkit.synthetic.write_cohort or by the ingest step",
            )
        )
    duplicated = sorted(manifest.loc[manifest["lesion_id"].duplicated(), "lesion_id"].astype(str).unique())
    if duplicated:
        raise ValidationError(
            format_problem(
                f"manifest repeats lesion_id {duplicated}",
                "each lesion appears once",
                "remove the duplicated rows",
            )
        )


def _resolve(path: object, base_dir: Path | None) -> Path:
    file = Path(str(path))
    return file if file.is_absolute() or base_dir is None else base_dir / file


_STAGE_OF_ERROR = {"ImageReadError": "read", "ImageGeometryError": "geometry", "EmptyMaskError": "mask"}


def _preprocess_one(task: tuple[str, str, str, str, PreprocessConfig]) -> tuple[str, CaseFailure | None]:
    """Worker: preprocess one lesion and write its files into the staging folder."""
    from sabrkit.imaging.geometry import check_mask_not_empty
    from sabrkit.imaging.io import read_image, write_image
    from sabrkit.imaging.transforms import sabrkit_cause

    lesion_id, image_path, mask_path, staging, config = task
    stage = "read"
    try:
        lesion = {
            "lesion_id": lesion_id,
            "image": read_image(image_path, lesion_id, role="image"),
            "mask": read_image(mask_path, lesion_id, role="mask"),
        }
        stage = "preprocess"
        lesion = config.transforms()(lesion)
        check_mask_not_empty(lesion["mask"], lesion_id, config.label)
        stage = "write"
        write_image(lesion["image"], Path(staging) / f"{lesion_id}_ct.nii.gz")
        write_image(lesion["mask"], Path(staging) / f"{lesion_id}_mask.nii.gz")
    except Exception as exc:  # every per-lesion problem becomes a recorded failure
        cause = sabrkit_cause(exc)
        kind = type(cause).__name__
        stage = _STAGE_OF_ERROR.get(kind, stage)
        return lesion_id, CaseFailure(lesion_id, stage, f"{kind}: {cause}")
    return lesion_id, None


def _pin_threads() -> None:
    """Process-pool initializer: one ITK / BLAS thread per worker process."""
    import SimpleITK as sitk
    from threadpoolctl import threadpool_limits

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    threadpool_limits(limits=1)


def preprocess_manifest(
    manifest: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    config: PreprocessConfig | None = None,
    n_jobs: int = 1,
    *,
    max_failure_fraction: float = 0.0,
    base_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Preprocess every lesion of ``manifest`` and write the results into ``out_dir``.

    Parameters
    ----------
    manifest : DataFrame
        Columns ``lesion_id, study_id, image_path, mask_path`` (others are kept).
    out_dir : path
        Final folder. Written as ``<lesion_id>_ct.nii.gz``, ``<lesion_id>_mask.nii.gz``,
        ``images.csv`` (paths relative to ``out_dir``) and ``failures.csv``. An existing
        ``out_dir`` is replaced only if it is empty or holds a previous ``images.csv``.
    config : PreprocessConfig, optional
        Defaults to ``PreprocessConfig()``.
    n_jobs : int, default 1
        Worker processes (spawned; ITK and BLAS pinned to one thread each; each imports
        MONAI once, a few seconds). -1 = all cores. Scripts need the
        ``if __name__ == "__main__":`` guard when ``n_jobs > 1``.
    max_failure_fraction : float, default 0.0
        Largest tolerated fraction of failed lesions, ``n_failed / n_lesions``.
    base_dir : path, optional
        Folder against which relative manifest paths are resolved (the cohort folder).

    Returns
    -------
    DataFrame
        The manifest rows of the lesions that succeeded, sorted by ``lesion_id``, with
        ``image_path``/``mask_path`` pointing at the new files (``out_dir / name``).
        ``.attrs["failures"]`` holds the recorded :class:`CaseFailure` list.

    Raises
    ------
    ExtractionError
        More than ``max_failure_fraction`` of the lesions failed; lists every failure and
        leaves ``out_dir`` untouched.
    ValidationError
        Manifest columns missing or lesion IDs repeated.
    ConfigError
        Bad ``n_jobs``, ``max_failure_fraction`` or a non-empty foreign ``out_dir``.
    """
    config = config or PreprocessConfig()
    check_manifest(manifest)
    if not (_finite(max_failure_fraction) and 0.0 <= max_failure_fraction <= 1.0):
        _bad("max_failure_fraction", max_failure_fraction, "a number in [0, 1]", "e.g. 0.0 or 0.05")
    workers = _n_workers(n_jobs, len(manifest))
    target = Path(out_dir)
    if target.exists() and any(target.iterdir()) and not (target / MANIFEST_FILE).is_file():
        raise ConfigError(
            format_problem(
                f"out_dir {str(target)!r} exists and holds files that are not a preprocessing output",
                "preprocess_manifest replaces out_dir as a whole",
                "choose a new or empty folder",
            )
        )
    base = Path(base_dir) if base_dir is not None else None
    with atomic_directory(target) as staging:
        rows = manifest.sort_values("lesion_id", kind="stable").reset_index(drop=True)
        tasks = [
            (
                str(r.lesion_id),
                str(_resolve(r.image_path, base)),
                str(_resolve(r.mask_path, base)),
                str(staging),
                config,
            )
            for r in rows.itertuples(index=False)
        ]
        outcomes = _run(tasks, workers)
        failures = [f for _, f in outcomes if f is not None]
        for failure in failures:
            logger.warning("preprocessing failed: %s", failure)
        if tasks and len(failures) / len(tasks) > max_failure_fraction:
            raise ExtractionError(failures, len(tasks), max_failure_fraction)
        failed_ids = {f.case_id for f in failures}
        kept = rows[~rows["lesion_id"].astype(str).isin(failed_ids)].copy()
        kept["image_path"] = [f"{lid}_ct.nii.gz" for lid in kept["lesion_id"]]
        kept["mask_path"] = [f"{lid}_mask.nii.gz" for lid in kept["lesion_id"]]
        kept.to_csv(staging / MANIFEST_FILE, index=False)
        pd.DataFrame(
            [(f.case_id, f.stage, f.reason) for f in failures], columns=["case_id", "stage", "reason"]
        ).to_csv(staging / FAILURES_FILE, index=False)
    kept["image_path"] = [str(target / p) for p in kept["image_path"]]
    kept["mask_path"] = [str(target / p) for p in kept["mask_path"]]
    kept = kept.reset_index(drop=True)
    kept.attrs["failures"] = failures
    logger.info("preprocessed %d lesion(s) into %s (%d failed)", len(kept), target, len(failures))
    return kept


def _n_workers(n_jobs: int, n_tasks: int) -> int:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0 or n_jobs < -1:
        _bad("n_jobs", n_jobs, "a positive integer or -1 (all cores)", "e.g. 1 or 4")
    workers = (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)
    return max(1, min(workers, n_tasks))


def _run(tasks: Sequence[tuple[Any, ...]], workers: int) -> list[tuple[str, CaseFailure | None]]:
    if workers == 1:
        return [_preprocess_one(task) for task in tasks]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_pin_threads) as pool:
        return list(pool.map(_preprocess_one, tasks))
