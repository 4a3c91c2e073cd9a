"""Per-lesion dose tables from an ingest folder: DVH metrics, cumulative DVHs and BED/EQD2 maps.

Reads the ingest's ``images.csv`` (lesion masks on their CT) and ``dose.csv`` (the plan's dose
resampled onto that CT, prescription and fractions; :mod:`sabrkit.imaging.ingest_dose`) and,
per lesion, writes a BED map (alpha/beta ``alpha_beta_tumour`` inside the lesion,
``alpha_beta_normal`` elsewhere) and an EQD2 map next to it, and returns one row of DVH metrics
and BED/EQD2 summaries plus the lesion's cumulative DVH.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from sabrkit.dose.bed import LATE_ALPHA_BETA_GY, TUMOUR_ALPHA_BETA_GY, alpha_beta_map, bed_map, eqd2_map
from sabrkit.dose.dvh import DVH_METRIC_NAMES, StructureDose, cumulative_dvh, dvh_metrics
from sabrkit.errors import CaseFailure, SabrkitError
from sabrkit.registry.dose import bed

__all__ = ["LESION_DOSE_COLUMNS", "lesion_dose_tables"]

logger = logging.getLogger(__name__)

#: Columns of the per-lesion dose table.
LESION_DOSE_COLUMNS: tuple[str, ...] = (
    "lesion_id",
    "study_id",
    "prescription_gy",
    "fractions",
    "bed10_rx_gy",
    *DVH_METRIC_NAMES,
    "bed10_d98_gy",
    "bed10_mean_gy",
    "eqd2_mean_gy",
    "bed_path",
    "eqd2_path",
)


def lesion_dose_tables(
    imaging_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    alpha_beta_tumour: float = TUMOUR_ALPHA_BETA_GY,
    alpha_beta_normal: float = LATE_ALPHA_BETA_GY,
    dvh_bin_width_gy: float = 0.1,
) -> tuple[pd.DataFrame, pd.DataFrame, list[CaseFailure]]:
    """Per-lesion DVH metrics, cumulative DVHs and BED/EQD2 maps (module docstring).

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame, list of CaseFailure)
        :data:`LESION_DOSE_COLUMNS` rows, the cumulative DVHs (``lesion_id, dose_gy, volume_cc,
        volume_pct``) and one failure per lesion that could not be done. Map paths are relative
        to ``out_dir``.
    """
    import SimpleITK as sitk

    from sabrkit.imaging.io import write_image

    source, out = Path(imaging_dir), Path(out_dir)
    doses = pd.read_csv(source / "dose.csv")
    masks = pd.read_csv(source / "images.csv").set_index("lesion_id")["mask_path"]
    rows, curves, failures = [], [], []
    for row in doses.itertuples(index=False):
        try:
            dose_image = sitk.ReadImage(str(source / row.dose_path))
            mask = sitk.GetArrayFromImage(sitk.ReadImage(str(source / masks[row.lesion_id])))
            dose = sitk.GetArrayFromImage(dose_image)
            voxel_cc = float(np.prod(dose_image.GetSpacing())) / 1000.0
            structure = StructureDose(dose, mask, voxel_cc, row.lesion_id)
            ab = alpha_beta_map(dose.shape, {row.lesion_id: (mask, alpha_beta_tumour)}, alpha_beta_normal)
            maps = {}
            for kind, values in (
                ("bed", bed_map(dose, int(row.fractions), ab)),
                ("eqd2", eqd2_map(dose, int(row.fractions), ab)),
            ):
                image = sitk.GetImageFromArray(values)
                image.CopyInformation(dose_image)
                maps[kind] = f"{kind}/{row.lesion_id}_{kind}.nii.gz"
                write_image(image, out / maps[kind])
            bed_lesion = StructureDose(bed_map(dose, int(row.fractions), alpha_beta_tumour), mask, voxel_cc)
            eqd2_lesion = StructureDose(eqd2_map(dose, int(row.fractions), alpha_beta_tumour), mask, voxel_cc)
        except (SabrkitError, KeyError, RuntimeError) as exc:
            failures.append(CaseFailure(row.lesion_id, "dose", f"{type(exc).__name__}: {exc}"))
            continue
        metrics = dvh_metrics(structure, float(row.prescription_gy))
        rows.append(
            {
                "lesion_id": row.lesion_id,
                "study_id": row.study_id,
                "prescription_gy": row.prescription_gy,
                "fractions": int(row.fractions),
                "bed10_rx_gy": bed(float(row.prescription_gy), int(row.fractions), alpha_beta_tumour),
                **metrics,
                "bed10_d98_gy": bed_lesion.dose_to_percent(98.0),
                "bed10_mean_gy": float(bed_lesion.doses.mean()),
                "eqd2_mean_gy": float(eqd2_lesion.doses.mean()),
                "bed_path": maps["bed"],
                "eqd2_path": maps["eqd2"],
            }
        )
        curve = cumulative_dvh(structure, dvh_bin_width_gy)
        curve.insert(0, "lesion_id", row.lesion_id)
        curves.append(curve)
    table = pd.DataFrame(rows, columns=list(LESION_DOSE_COLUMNS))
    dvh = (
        pd.concat(curves, ignore_index=True)
        if curves
        else pd.DataFrame(columns=["lesion_id", "dose_gy", "volume_cc", "volume_pct"])
    )
    return table, dvh, failures
