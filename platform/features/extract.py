"""Lesion-level handcrafted (pyradiomics) feature extraction.

One row per lesion: ``lesion_id, study_id``, the pyradiomics feature columns named
``<imageType>_<family>_<feature>`` exactly as pyradiomics names them
(``original_firstorder_Mean``, ``log-sigma-1-0-mm-3D_glcm_Contrast``,
``wavelet-LLH_glszm_ZoneEntropy`` ...), then provenance columns ``prov_*``.

Before pyradiomics sees a lesion, sabrkit reads both files, checks that image and mask share
one grid (:func:`~sabrkit.imaging.check_same_grid`, with the parameters'
``geometryTolerance``) and that the mask holds the label, so the common failures come with a
message that names the lesion and the fix. Every failure (missing file, geometry, empty mask,
a pyradiomics exception, a feature pyradiomics returned as NaN after swallowing an error)
becomes a :class:`~sabrkit.errors.CaseFailure`; no failure is ever written as NaN. Above
``max_failure_fraction`` the run raises :class:`~sabrkit.errors.ExtractionError` listing all.

Parallel runs use a spawn-context :class:`concurrent.futures.ProcessPoolExecutor`; each
worker pins ITK and BLAS to one thread, and the rows are sorted by ``lesion_id``, so results
equal a serial run. Note that pyradiomics applies ``geometryTolerance`` through SimpleITK's
process-wide default coordinate/direction tolerance, so a serial run changes that default in
the calling process.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sabrkit.errors import CaseFailure, ConfigError, ExtractionError, ValidationError, format_problem
from sabrkit.features.params import RadiomicsParams

__all__ = ["ExtractionResult", "extract_lesion_features", "PROVENANCE_COLUMNS", "RADIOMICS_LOG_LEVEL"]

logger = logging.getLogger(__name__)

#: Provenance columns of every lesion feature table, in order.
PROVENANCE_COLUMNS: tuple[str, ...] = (
    "prov_pyradiomics_version",
    "prov_params_version",
    "prov_params_hash",
    "prov_image_sha256",
    "prov_mask_sha256",
    "prov_sabrkit_version",
    "prov_mask_voxels",
    "prov_image_spacing_mm",
)

#: Level the ``radiomics`` logger is set to during extraction (its INFO/WARNING chatter is
#: noise in a batch; its ERROR messages explain NaN features and still reach its own handler).
RADIOMICS_LOG_LEVEL = logging.ERROR

_STAGE_OF_ERROR = {"ImageReadError": "read", "ImageGeometryError": "geometry", "EmptyMaskError": "mask"}


@dataclass(frozen=True)
class ExtractionResult:
    """Outcome of :func:`extract_lesion_features`.

    Attributes
    ----------
    features : DataFrame
        One row per successful lesion, sorted by ``lesion_id``.
    failures : list of CaseFailure
        One entry per failed lesion (sorted by lesion ID); empty when all succeeded.
    """

    features: pd.DataFrame
    failures: list[CaseFailure] = field(default_factory=list)


@dataclass(frozen=True)
class _LesionTask:
    lesion_id: str
    study_id: str
    image_path: str
    mask_path: str
    params: RadiomicsParams


@dataclass(frozen=True)
class _LesionOutcome:
    lesion_id: str
    row: dict[str, Any] | None
    failure: CaseFailure | None


@contextmanager
def _radiomics_quiet() -> Iterator[None]:
    """Set the ``radiomics`` logger's level for the block; adds no handler, restores the level."""
    import radiomics  # noqa: F401  - its import sets the logger to INFO; import before adjusting

    radiomics_logger = logging.getLogger("radiomics")
    previous = radiomics_logger.level
    radiomics_logger.setLevel(RADIOMICS_LOG_LEVEL)
    try:
        yield
    finally:
        radiomics_logger.setLevel(previous)


def _init_worker() -> None:
    """Process-pool initializer: one ITK / BLAS thread per worker, quiet pyradiomics."""
    import radiomics  # noqa: F401  - its import sets the logger to INFO; import before adjusting
    import SimpleITK as sitk
    from threadpoolctl import threadpool_limits

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    threadpool_limits(limits=1)
    logging.getLogger("radiomics").setLevel(RADIOMICS_LOG_LEVEL)


def _extract_lesion(task: _LesionTask) -> _LesionOutcome:
    """Worker: extract the features of one lesion, or describe why it failed."""
    from sabrkit.imaging.geometry import check_mask_not_empty, check_same_grid
    from sabrkit.imaging.io import read_image, sha256_file

    lesion_id, params = task.lesion_id, task.params
    stage = "read"
    try:
        image = read_image(task.image_path, lesion_id, role="image")
        mask = read_image(task.mask_path, lesion_id, role="mask")
        stage = "geometry"
        check_same_grid(image, mask, lesion_id, params.geometry_tolerance)
        stage = "mask"
        n_voxels = check_mask_not_empty(mask, lesion_id, params.label)
        stage = "pyradiomics"
        features = _run_pyradiomics(image, mask, params)
        stage = "result"
        not_finite = [name for name, value in features.items() if not math.isfinite(value)]
        if not_finite:
            raise ValueError(
                format_problem(
                    f"pyradiomics returned non-finite values for {not_finite}",
                    "features are never NaN; pyradiomics turns a failed feature computation into NaN",
                    "read pyradiomics' error message above, check the ROI (too small or flat?) or "
                    "disable the feature in a new params version",
                )
            )
        stage = "provenance"
        row = _provenance(task, image, n_voxels, sha256_file(task.image_path), sha256_file(task.mask_path))
    except Exception as exc:  # every per-lesion problem becomes a recorded failure, never NaN
        kind = type(exc).__name__
        failure = CaseFailure(lesion_id, _STAGE_OF_ERROR.get(kind, stage), f"{kind}: {exc}")
        return _LesionOutcome(lesion_id, None, failure)
    return _LesionOutcome(lesion_id, {"lesion_id": lesion_id, "study_id": task.study_id, **features, **row}, None)


def _run_pyradiomics(image: Any, mask: Any, params: RadiomicsParams) -> dict[str, float]:
    """Run pyradiomics' extractor on in-memory images; return the non-diagnostic features as floats."""
    from radiomics import featureextractor

    config = params.to_pyradiomics_dict()
    # Parameters were validated at load; build the extractor from the sections directly (the
    # dict constructor re-validates and attaches pyradiomics' handler to pykwalify's logger).
    extractor = featureextractor.RadiomicsFeatureExtractor(**config["setting"])
    extractor.enabledImagetypes = config["imageType"]
    extractor.enabledFeatures = config["featureClass"]
    result = extractor.execute(image, mask)
    return {name: float(value) for name, value in result.items() if not name.startswith("diagnostics_")}


def _provenance(task: _LesionTask, image: Any, n_voxels: int, image_sha: str, mask_sha: str) -> dict[str, Any]:
    import radiomics

    from sabrkit.version import __version__

    return {
        "prov_pyradiomics_version": str(radiomics.__version__),
        "prov_params_version": task.params.version,
        "prov_params_hash": task.params.params_hash,
        "prov_image_sha256": image_sha,
        "prov_mask_sha256": mask_sha,
        "prov_sabrkit_version": __version__,
        "prov_mask_voxels": int(n_voxels),
        "prov_image_spacing_mm": ",".join(f"{s:.6g}" for s in image.GetSpacing()),
    }


def _tasks(manifest: pd.DataFrame, params: RadiomicsParams, base_dir: Path | None) -> list[_LesionTask]:
    from sabrkit.imaging import check_manifest

    check_manifest(manifest)
    if manifest.empty:
        raise ValidationError(
            format_problem("the manifest has no rows", "extraction needs at least one lesion", "pass images.csv")
        )

    def resolve(path: object) -> str:
        file = Path(str(path))
        return str(file if file.is_absolute() or base_dir is None else base_dir / file)

    rows = manifest.sort_values("lesion_id", kind="stable")
    return [
        _LesionTask(str(r.lesion_id), str(r.study_id), resolve(r.image_path), resolve(r.mask_path), params)
        for r in rows.itertuples(index=False)
    ]


def _n_workers(n_jobs: int, n_tasks: int) -> int:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0 or n_jobs < -1:
        raise ConfigError(
            format_problem(f"n_jobs = {n_jobs!r}", "n_jobs is a positive integer or -1 (all cores)", "e.g. 1 or 4")
        )
    workers = (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)
    return max(1, min(workers, n_tasks))


def _progress(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("extracting lesion features"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def _run(tasks: list[_LesionTask], workers: int, progress: bool) -> list[_LesionOutcome]:
    outcomes: list[_LesionOutcome] = []
    with _progress(progress) as bar:
        job = bar.add_task("lesions", total=len(tasks))
        if workers == 1:
            with _radiomics_quiet():
                for task in tasks:
                    outcomes.append(_extract_lesion(task))
                    bar.advance(job)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker) as pool:
                futures = [pool.submit(_extract_lesion, task) for task in tasks]
                for future in as_completed(futures):
                    outcomes.append(future.result())
                    bar.advance(job)
    return sorted(outcomes, key=lambda outcome: outcome.lesion_id)


def _feature_table(rows: list[dict[str, Any]], failures: list[CaseFailure]) -> pd.DataFrame:
    """Assemble the table; a lesion whose feature set differs from the others becomes a failure."""
    if not rows:
        return pd.DataFrame(columns=["lesion_id", "study_id", *PROVENANCE_COLUMNS])
    id_columns = ("lesion_id", "study_id")
    feature_sets = [tuple(k for k in row if k not in id_columns and not k.startswith("prov_")) for row in rows]
    reference = max(set(feature_sets), key=feature_sets.count)
    kept = []
    for row, names in zip(rows, feature_sets):
        if names == reference:
            kept.append(row)
        else:
            missing = sorted(set(reference) - set(names))
            extra = sorted(set(names) - set(reference))
            failures.append(
                CaseFailure(
                    row["lesion_id"],
                    "result",
                    f"feature set differs from the other lesions (missing {missing}, extra {extra})",
                )
            )
    columns = [*id_columns, *reference, *PROVENANCE_COLUMNS]
    table = pd.DataFrame(kept, columns=columns)
    table[list(reference)] = table[list(reference)].astype("float64")
    return table


def extract_lesion_features(
    manifest: pd.DataFrame,
    params: RadiomicsParams,
    n_jobs: int = 1,
    max_failure_fraction: float = 0.0,
    progress: bool = True,
    *,
    base_dir: str | os.PathLike[str] | None = None,
) -> ExtractionResult:
    """Extract pyradiomics features for every lesion of an image manifest.

    Parameters
    ----------
    manifest : DataFrame
        Columns ``lesion_id, study_id, image_path, mask_path`` (others ignored); one row per
        lesion (``images.csv`` of a cohort or of :func:`sabrkit.imaging.preprocess_manifest`).
    params : RadiomicsParams
        From :func:`sabrkit.features.load_params` (e.g. ``load_params("ct_v1")``).
    n_jobs : int, default 1
        Worker processes; -1 uses every core. ``1`` runs in this process. Workers are spawned,
        so a script calling this with ``n_jobs > 1`` needs the ``if __name__ == "__main__":``
        guard.
    max_failure_fraction : float, default 0.0
        Largest tolerated ``n_failed / n_lesions``; above it :class:`ExtractionError` is raised.
    progress : bool, default True
        Show a rich progress bar on stderr.
    base_dir : path, optional
        Folder that relative manifest paths are resolved against (the cohort folder).

    Returns
    -------
    ExtractionResult
        ``features`` (``lesion_id, study_id``, features, ``prov_*``; sorted by ``lesion_id``)
        and ``failures`` (recorded :class:`CaseFailure` s at or below the threshold).

    Raises
    ------
    ExtractionError
        The failed fraction exceeds ``max_failure_fraction``; lists every failed lesion.
    ValidationError
        Manifest columns missing, lesion IDs repeated, or no rows.
    ConfigError
        Bad ``n_jobs`` or ``max_failure_fraction``.
    """
    if isinstance(max_failure_fraction, bool) or not (
        isinstance(max_failure_fraction, (int, float)) and 0.0 <= max_failure_fraction <= 1.0
    ):
        raise ConfigError(
            format_problem(
                f"max_failure_fraction = {max_failure_fraction!r}",
                "the tolerated failure fraction is a number in [0, 1]",
                "use 0.0 (any failure stops the run) or e.g. 0.05",
            )
        )
    tasks = _tasks(manifest, params, Path(base_dir) if base_dir is not None else None)
    workers = _n_workers(n_jobs, len(tasks))
    logger.info("extracting %d lesion(s) with params %s on %d worker(s)", len(tasks), params.version, workers)
    outcomes = _run(tasks, workers, progress)
    failures = [o.failure for o in outcomes if o.failure is not None]
    table = _feature_table([o.row for o in outcomes if o.row is not None], failures)
    failures.sort(key=lambda failure: failure.case_id)
    for failure in failures:
        logger.warning("feature extraction failed: %s", failure)
    if len(failures) / len(tasks) > max_failure_fraction:
        raise ExtractionError(failures, len(tasks), max_failure_fraction)
    return ExtractionResult(features=table.reset_index(drop=True), failures=failures)
