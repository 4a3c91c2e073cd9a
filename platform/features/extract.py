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

Work runs in this process, a local process pool or on a Dask cluster
(:mod:`sabrkit.features.execution`); rows are sorted by ``lesion_id``, so every route gives
the same table. With ``cache_dir`` each lesion's row is stored as soon as it is computed
(:class:`~sabrkit.features.cache.LesionCache`, keyed by image, mask, parameter and code
versions), so a re-run extracts only new or changed lesions and an interrupted run loses at
most the lesions in flight. Images are read by the worker that needs them, one lesion at a
time; the caller only ever holds the small feature rows.

Note that pyradiomics applies ``geometryTolerance`` through SimpleITK's process-wide default
coordinate/direction tolerance, so an in-process run changes that default in the caller.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sabrkit.errors import CaseFailure, ConfigError, ExtractionError, ValidationError, format_problem
from sabrkit.features.cache import LesionCache, lesion_cache_key
from sabrkit.features.execution import RADIOMICS_LOG_LEVEL, run_tasks
from sabrkit.features.params import RadiomicsParams

__all__ = [
    "EXTRACTION_CODE_VERSION",
    "ExtractionResult",
    "extract_lesion_features",
    "PROVENANCE_COLUMNS",
    "RADIOMICS_LOG_LEVEL",
    "code_versions",
    "run_pyradiomics",
]

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

#: Version of sabrkit's extraction code path; bump it when a change alters feature values, so
#: cached rows computed by the old code are not reused.
EXTRACTION_CODE_VERSION = "1"

_ID_COLUMNS = ("lesion_id", "study_id")
#: Modules :func:`_extract_lesion` imports (inherited by forked workers, see :func:`~sabrkit.features.execution.start_method`).
_WORKER_MODULES = (
    "radiomics.featureextractor", "sabrkit.imaging.geometry", "sabrkit.imaging.io", "sabrkit.features.ibsi_extract",
)  # fmt: skip
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
    n_from_cache : int
        Lesions whose row came from the cache.
    n_extracted : int
        Lesions that were extracted in this run (successfully or not).
    """

    features: pd.DataFrame
    failures: list[CaseFailure] = field(default_factory=list)
    n_from_cache: int = 0
    n_extracted: int = 0

    @property
    def n_failed(self) -> int:
        """Number of failed lesions."""
        return len(self.failures)

    def failure_table(self) -> pd.DataFrame:
        """Failures as a table ``lesion_id, stage, reason`` (empty table with those columns if none)."""
        return pd.DataFrame(
            [{"lesion_id": f.case_id, "stage": f.stage, "reason": f.reason} for f in self.failures],
            columns=["lesion_id", "stage", "reason"],
        )


@dataclass(frozen=True)
class _LesionTask:
    lesion_id: str
    study_id: str
    image_path: str
    mask_path: str
    params: RadiomicsParams
    image_sha256: str | None = None
    mask_sha256: str | None = None


@dataclass(frozen=True)
class _LesionOutcome:
    lesion_id: str
    row: dict[str, Any] | None
    failure: CaseFailure | None


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
        features = run_pyradiomics(image, mask, params)
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
        image_sha = task.image_sha256 or sha256_file(task.image_path)
        mask_sha = task.mask_sha256 or sha256_file(task.mask_path)
        row = _provenance(task, image, n_voxels, image_sha, mask_sha)
    except Exception as exc:  # every per-lesion problem becomes a recorded failure, never NaN
        kind = type(exc).__name__
        failure = CaseFailure(lesion_id, _STAGE_OF_ERROR.get(kind, stage), f"{kind}: {exc}")
        return _LesionOutcome(lesion_id, None, failure)
    return _LesionOutcome(
        lesion_id, {"lesion_id": lesion_id, "study_id": task.study_id, **features, **row}, None
    )


def run_pyradiomics(image: Any, mask: Any, params: RadiomicsParams) -> dict[str, float]:
    """Run pyradiomics' extractor on in-memory images; return the non-diagnostic features as floats.

    A profile with a ``preprocessing`` section runs sabrkit's IBSI chain and pyradiomics' feature
    classes instead (:func:`sabrkit.features.ibsi_extract.profile_features`).

    Parameters
    ----------
    image, mask : SimpleITK.Image
    params : RadiomicsParams

    Returns
    -------
    dict
        ``{"original_firstorder_Mean": ..., ...}``; may hold NaN where pyradiomics swallowed
        an error (callers turn that into a failure).
    """
    if params.preprocessing is not None:
        # IBSI chain in front of pyradiomics' feature classes (sabrkit.features.ibsi_extract)
        from sabrkit.features.ibsi_extract import profile_features

        return profile_features(image, mask, params)
    from radiomics import featureextractor

    config = params.to_pyradiomics_dict()
    # Parameters were validated at load; build the extractor from the sections directly (the
    # dict constructor re-validates and attaches pyradiomics' handler to pykwalify's logger).
    extractor = featureextractor.RadiomicsFeatureExtractor(**config["setting"])
    extractor.enabledImagetypes = config["imageType"]
    extractor.enabledFeatures = config["featureClass"]
    result = extractor.execute(image, mask)
    return {name: float(value) for name, value in result.items() if not name.startswith("diagnostics_")}


def _provenance(
    task: _LesionTask, image: Any, n_voxels: int, image_sha: str, mask_sha: str
) -> dict[str, Any]:
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
            format_problem(
                "the manifest has no rows", "extraction needs at least one lesion", "pass images.csv"
            )
        )

    def resolve(path: object) -> str:
        file = Path(str(path))
        return str(file if file.is_absolute() or base_dir is None else base_dir / file)

    rows = manifest.sort_values("lesion_id", kind="stable")
    return [
        _LesionTask(str(r.lesion_id), str(r.study_id), resolve(r.image_path), resolve(r.mask_path), params)
        for r in rows.itertuples(index=False)
    ]


def _feature_table(rows: list[dict[str, Any]], failures: list[CaseFailure]) -> pd.DataFrame:
    """Assemble the table; a lesion whose feature set differs from the others becomes a failure."""
    if not rows:
        return pd.DataFrame(columns=["lesion_id", "study_id", *PROVENANCE_COLUMNS])
    id_columns = _ID_COLUMNS
    feature_sets = [
        tuple(k for k in row if k not in id_columns and not k.startswith("prov_")) for row in rows
    ]
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


def code_versions() -> dict[str, str]:
    """Versions of the code that computes features: pyradiomics, sabrkit, extraction code path."""
    from importlib.metadata import version

    from sabrkit.version import __version__

    return {
        "pyradiomics": version("pyradiomics"),
        "sabrkit": __version__,
        "extraction": EXTRACTION_CODE_VERSION,
    }


def _split_cached(
    tasks: list[_LesionTask], cache: LesionCache
) -> tuple[list[_LesionOutcome], list[_LesionTask], dict[str, str]]:
    """Look every lesion up in the cache; return (cached outcomes, tasks to run, key per lesion)."""
    from sabrkit.imaging.io import sha256_file

    versions = code_versions()
    cached: list[_LesionOutcome] = []
    pending: list[_LesionTask] = []
    keys: dict[str, str] = {}
    for task in tasks:
        try:
            image_sha, mask_sha = sha256_file(task.image_path), sha256_file(task.mask_path)
        except OSError:
            pending.append(task)  # the worker reports the missing/unreadable file as a failure
            continue
        key = lesion_cache_key(image_sha, mask_sha, task.params.params_hash, versions)
        keys[task.lesion_id] = key
        row = cache.get(key)
        if row is None:
            pending.append(
                _LesionTask(
                    task.lesion_id,
                    task.study_id,
                    task.image_path,
                    task.mask_path,
                    task.params,
                    image_sha,
                    mask_sha,
                )
            )
        else:
            ids = {"lesion_id": task.lesion_id, "study_id": task.study_id}
            cached.append(_LesionOutcome(task.lesion_id, {**ids, **row}, None))
    return cached, pending, keys


def _largest_first(tasks: list[_LesionTask]) -> list[_LesionTask]:
    """Tasks in decreasing order of image file size (a lesion's crop, so its extraction time).

    Workers take tasks in submission order; starting with the longest leaves short ones for the
    end, so no worker sits idle while another finishes a large lesion (longest-processing-time
    first). The output is sorted by lesion ID afterwards, so the order changes no value.
    """

    def size(task: _LesionTask) -> int:
        try:
            return os.stat(task.image_path).st_size
        except OSError:
            return 0  # a missing file fails fast in its worker, with its own message

    return sorted(tasks, key=size, reverse=True)


def extract_lesion_features(
    manifest: pd.DataFrame,
    params: RadiomicsParams,
    n_jobs: int = 1,
    max_failure_fraction: float = 0.0,
    progress: bool = True,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    min_lesions_per_worker: int = 4,
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
        Local worker processes; -1 uses every core. ``1`` runs in this process. Workers are
        forked or spawned (:func:`~sabrkit.features.execution.start_method`); a script calling
        this with ``n_jobs > 1`` needs the ``if __name__ == "__main__":`` guard for the spawned
        case. At most one worker per 4 pending lesions starts.
    max_failure_fraction : float, default 0.0
        Largest tolerated ``n_failed / n_lesions``; above it :class:`ExtractionError` is raised.
    progress : bool, default True
        Show a rich progress bar on stderr.
    base_dir : path, optional
        Folder that relative manifest paths are resolved against (the cohort folder).
    cache_dir : path, optional
        Per-lesion cache folder (:class:`~sabrkit.features.cache.LesionCache`). Lesions whose
        image, mask, parameters and code are unchanged are read from it; new rows are written
        to it as they arrive.
    scheduler : str, optional
        Dask scheduler address (``tcp://host:8786``): run the lesions on that cluster instead
        of local processes (``n_jobs`` is then ignored). Paths must be valid on the workers.
    min_lesions_per_worker : int, default 4
        A local worker process is started per this many pending lesions at most (starting
        one costs about one lesion's extraction); 1 starts ``n_jobs`` workers whenever there
        are that many lesions.

    Returns
    -------
    ExtractionResult
        ``features`` (``lesion_id, study_id``, features, ``prov_*``; sorted by ``lesion_id``),
        ``failures`` (recorded :class:`CaseFailure` s at or below the threshold), and how many
        lesions came from the cache or were extracted.

    Raises
    ------
    ExtractionError
        The failed fraction exceeds ``max_failure_fraction``; lists every failed lesion.
    ValidationError
        Manifest columns missing, lesion IDs repeated, or no rows.
    ConfigError
        Bad ``n_jobs``, ``max_failure_fraction`` or ``scheduler``.
    """
    from sabrkit.features.execution import check_scheduler, resolve_workers

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
    resolve_workers(n_jobs, 1)
    check_scheduler(scheduler)
    tasks = _tasks(manifest, params, Path(base_dir) if base_dir is not None else None)
    cache = LesionCache(cache_dir) if cache_dir is not None else None
    outcomes: list[_LesionOutcome] = []
    keys: dict[str, str] = {}
    pending = tasks
    if cache is not None:
        outcomes, pending, keys = _split_cached(tasks, cache)
        logger.info("%d of %d lesion(s) found in the cache %s", len(outcomes), len(tasks), cache.folder)
    logger.info("extracting %d lesion(s) with params %s", len(pending), params.version)
    results = run_tasks(
        _extract_lesion,
        _largest_first(pending),
        n_jobs=n_jobs,
        scheduler=scheduler,
        progress=progress,
        min_tasks_per_worker=min_lesions_per_worker,
        preload=_WORKER_MODULES,
    )
    for outcome in results:
        if cache is not None and outcome.row is not None and outcome.lesion_id in keys:
            cache.put(keys[outcome.lesion_id], {k: v for k, v in outcome.row.items() if k not in _ID_COLUMNS})
        outcomes.append(outcome)
    outcomes.sort(key=lambda outcome: outcome.lesion_id)
    failures = [o.failure for o in outcomes if o.failure is not None]
    table = _feature_table([o.row for o in outcomes if o.row is not None], failures)
    failures.sort(key=lambda failure: failure.case_id)
    for failure in failures:
        logger.warning("feature extraction failed: %s", failure)
    if len(failures) / len(tasks) > max_failure_fraction:
        raise ExtractionError(failures, len(tasks), max_failure_fraction)
    return ExtractionResult(
        features=table.reset_index(drop=True),
        failures=failures,
        n_from_cache=len(tasks) - len(pending),
        n_extracted=len(pending),
    )
