"""Dosiomics: pyradiomics features of the dose and BED maps inside each lesion.

The maps come from the ingest (``dose.csv``: the RTDOSE on the lesion's CT grid) and from
:func:`sabrkit.dose.lesions.lesion_dose_tables` (BED maps); features are extracted with the
versioned dose profile (``dose_v1``: bin width in Gy, no HU logic) through
:func:`sabrkit.features.extract_lesion_features`, so failures, provenance and caching work as
for CT features. Columns are renamed from ``original_<family>_<feature>`` to
``dose_<family>_<feature>`` and ``bed_<family>_<feature>`` (feature columns of
:mod:`sabrkit.features.io`); the provenance columns of each map keep a ``prov_dose_`` /
``prov_bed_`` prefix.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from sabrkit.errors import CaseFailure

__all__ = ["DOSIOMIC_MAPS", "extract_dosiomics"]

logger = logging.getLogger(__name__)

#: The maps whose features are extracted, and the column prefix of each.
DOSIOMIC_MAPS: tuple[str, ...] = ("dose", "bed")


def extract_dosiomics(
    imaging_dir: str | os.PathLike[str],
    lesion_dose: pd.DataFrame,
    dose_dir: str | os.PathLike[str],
    *,
    params_name: str = "dose_v1",
    n_jobs: int = 1,
    max_failure_fraction: float = 0.0,
) -> tuple[pd.DataFrame, list[CaseFailure]]:
    """Dose and BED features per lesion.

    Parameters
    ----------
    imaging_dir : path-like
        The ingest folder (``images.csv``, ``dose.csv``, masks and dose NIfTI).
    lesion_dose : pandas.DataFrame
        :func:`~sabrkit.dose.lesions.lesion_dose_tables`' rows (``lesion_id, study_id, bed_path``).
    dose_dir : path-like
        The folder ``bed_path`` is relative to.
    params_name : str
        Packaged pyradiomics profile (``dose_v1``) or a YAML path.

    Returns
    -------
    (pandas.DataFrame, list of CaseFailure)
        ``lesion_id, study_id``, ``dose_*`` and ``bed_*`` features, ``prov_dose_*`` and ``prov_bed_*``.
    """
    from sabrkit.features import extract_lesion_features, load_params

    source, dose_out = Path(imaging_dir), Path(dose_dir)
    params = load_params(params_name)
    masks = pd.read_csv(source / "images.csv").set_index("lesion_id")["mask_path"]
    doses = pd.read_csv(source / "dose.csv").set_index("lesion_id")["dose_path"]
    lesions = lesion_dose[["lesion_id", "study_id"]].copy()
    mask_paths = [str(source / masks[lid]) for lid in lesions["lesion_id"]]
    images = {
        "dose": [str(source / doses[lid]) for lid in lesions["lesion_id"]],
        "bed": [str(dose_out / p) for p in lesion_dose["bed_path"]],
    }
    table, failures = lesions.reset_index(drop=True), []
    for kind in DOSIOMIC_MAPS:
        manifest = lesions.assign(image_path=images[kind], mask_path=mask_paths)
        result = extract_lesion_features(
            manifest, params, n_jobs=n_jobs, max_failure_fraction=max_failure_fraction, progress=False
        )
        failures.extend(result.failures)
        renamed = result.features.rename(
            columns=lambda c, kind=kind: (
                f"{kind}_{c.removeprefix('original_')}"
                if c.startswith("original_")
                else f"prov_{kind}_{c.removeprefix('prov_')}"
                if c.startswith("prov_")
                else c
            )
        )
        table = table.merge(renamed.drop(columns=["study_id"]), on="lesion_id", how="inner")
    return table.sort_values("lesion_id").reset_index(drop=True), failures
