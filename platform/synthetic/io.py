"""Write a synthetic cohort folder atomically and deterministically.

Layout (the data contract's)::

    registry/{patients,identifiers,lesions,sabr_courses,visits,adverse_events,
              progression_events,deaths}.csv
    biobank/samples.csv
    biobank/consents.csv      (one signed consent per patient; add withdrawn_on to withdraw)
    images.csv
    images/<lesion_id>_ct.nii.gz, images/<lesion_id>_mask.nii.gz
    ground_truth.json
    ground_truth_patients.csv

The folder is built in a hidden temporary sibling and renamed into place, so readers never see
a half-written cohort. The same cohort writes byte-identical files (fixed column order, rounded
floats, ``\\n`` line ends, sorted JSON keys, gzip without timestamps).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sabrkit.errors import ConfigError, format_problem
from sabrkit.io import atomic_directory
from sabrkit.synthetic import phantom
from sabrkit.synthetic.cohort import SyntheticCohort, generate_cohort
from sabrkit.synthetic.config import SynthConfig

__all__ = ["write_cohort", "synthesize", "write_table"]

logger = logging.getLogger(__name__)


def _cell(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write one table as CSV: ISO dates, ``true``/``false``, empty cells for missing values."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == bool or out[column].dtype == object:
            out[column] = out[column].map(_cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, lineterminator="\n")


def _write_images(cohort: SyntheticCohort, folder: Path) -> None:
    import SimpleITK as sitk

    config = cohort.config
    rows = cohort.tables["images.csv"].set_index("lesion_id")
    started = time.perf_counter()
    for k, spec in enumerate(cohort.phantoms, start=1):
        image, mask = phantom.render_lesion(spec, config.image_shape, config.spacing_mm)
        origin = phantom.region_origin(spec.site, config.image_shape, config.spacing_mm)
        row = rows.loc[spec.lesion_id]
        sitk.WriteImage(
            phantom.to_sitk(image, config.spacing_mm, origin), str(folder / row["image_path"]), True
        )
        sitk.WriteImage(
            phantom.to_sitk(mask, config.spacing_mm, origin), str(folder / row["mask_path"]), True
        )
        if k % 25 == 0:
            logger.info(
                "rendered %d/%d lesions (%.1f s)", k, len(cohort.phantoms), time.perf_counter() - started
            )


def _check_target(target: Path, overwrite: bool) -> None:
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return
    if not target.is_dir() or not (target / "ground_truth.json").is_file():
        raise ConfigError(
            format_problem(
                f"output path {target} exists and is not a synthetic cohort folder",
                "write_cohort only replaces an empty folder or an earlier cohort (with ground_truth.json)",
                "choose a new or empty folder",
            )
        )
    if not overwrite:
        raise ConfigError(
            format_problem(
                f"output folder {target} already holds a cohort",
                "with overwrite=False an existing cohort is never replaced",
                "pass overwrite=True or choose another folder",
            )
        )


def write_cohort(cohort: SyntheticCohort, out_dir: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Write ``cohort`` into ``out_dir``, atomically: build a temporary sibling, then rename it.

    Images are rendered and written when ``cohort.config.write_images`` is true; otherwise
    ``images.csv`` is written with its header only and no ``images/`` folder.

    Parameters
    ----------
    cohort : SyntheticCohort
    out_dir : path-like
        Target folder; its parent is created if needed. It may be missing, empty or an earlier
        cohort folder (one holding ``ground_truth.json``), which is replaced as a whole.
    overwrite : bool
        Whether an earlier cohort in ``out_dir`` may be replaced.

    Returns
    -------
    pathlib.Path
        The absolute path of the written folder.

    Raises
    ------
    sabrkit.errors.ConfigError
        If ``out_dir`` is a file or a non-empty folder that is not a cohort, or holds a cohort
        and ``overwrite`` is false.
    """
    target = Path(out_dir).resolve()
    _check_target(target, overwrite)
    with atomic_directory(target) as staging:
        tables = dict(cohort.tables)
        if cohort.config.write_images:
            (staging / "images").mkdir()
            _write_images(cohort, staging)
        else:
            tables["images.csv"] = tables["images.csv"].iloc[0:0]
        for relative, frame in tables.items():
            write_table(frame, staging / relative)
        write_table(cohort.truth_patients, staging / "ground_truth_patients.csv")
        truth = dict(cohort.truth, images_written=cohort.config.write_images)
        (staging / "ground_truth.json").write_text(
            json.dumps(truth, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8"
        )
    logger.info("wrote synthetic cohort (%d patients) to %s", cohort.config.n_patients, target)
    return target


def synthesize(
    out_dir: str | os.PathLike[str], config: SynthConfig | None = None, *, overwrite: bool = True
) -> Path:
    """Generate a cohort from ``config`` (default :class:`SynthConfig`) and write it.

    The generator is ``numpy.random.default_rng(config.seed)``; see :func:`write_cohort` for
    ``out_dir`` and ``overwrite``.
    """
    config = config or SynthConfig()
    target = Path(out_dir).resolve()
    _check_target(target, overwrite)  # fail before the work, not after
    cohort = generate_cohort(config, np.random.default_rng(config.seed))
    return write_cohort(cohort, out_dir, overwrite=overwrite)
