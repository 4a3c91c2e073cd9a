"""Quality control of lesion masks: volume, connected components, Dice, and a PNG per lesion.

For each mask: voxel count and volume (:math:`V = n \\cdot s_x s_y s_z` mm³), the number of
26-connected components and the share of the largest (a lesion mask is usually one blob;
several components flag stray voxels or two lesions under one ID), Dice against a reference
mask when one exists (:func:`~sabrkit.imaging.unet_infer.dice_coefficient`), and a PNG of the
mask's middle axial slice with the contour over the image (reference contour dashed).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from sabrkit.errors import CaseFailure

__all__ = ["QC_COLUMNS", "mask_qc", "qc_png", "qc_manifest"]

logger = logging.getLogger(__name__)

QC_COLUMNS = (
    "lesion_id",
    "n_voxels",
    "volume_mm3",
    "n_components",
    "largest_component_fraction",
    "dice",
    "png_path",
)


def mask_qc(mask: Any, reference: Any | None = None) -> dict[str, float]:
    """Volume, components and (with ``reference`` on the same grid) Dice of a SimpleITK mask."""
    import SimpleITK as sitk

    from sabrkit.imaging.geometry import check_same_grid
    from sabrkit.imaging.unet_infer import dice_coefficient

    voxels = sitk.GetArrayViewFromImage(mask) > 0
    n_voxels = int(voxels.sum())
    labels, n_components = ndi.label(voxels, structure=np.ones((3, 3, 3), bool))
    largest = int(np.bincount(labels.ravel())[1:].max()) if n_components else 0
    dice = math.nan
    if reference is not None:
        check_same_grid(mask, reference, "qc", tolerance=1e-4)
        dice = dice_coefficient(voxels, sitk.GetArrayViewFromImage(reference) > 0)
    return {
        "n_voxels": n_voxels,
        "volume_mm3": round(n_voxels * float(np.prod(mask.GetSpacing())), 3),
        "n_components": int(n_components),
        "largest_component_fraction": round(largest / n_voxels, 4) if n_voxels else math.nan,
        "dice": dice,
    }


def qc_png(
    image: Any,
    mask: Any,
    path: str | os.PathLike[str],
    *,
    reference: Any | None = None,
    title: str = "",
    window: tuple[float, float] = (-250.0, 350.0),
) -> Path:
    """Draw the middle axial slice of ``mask`` with its contour over ``image`` (matplotlib Agg)."""
    import SimpleITK as sitk
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pixels = sitk.GetArrayViewFromImage(image)
    voxels = sitk.GetArrayViewFromImage(mask) > 0
    slices = np.flatnonzero(voxels.any(axis=(1, 2)))
    k = int((slices[0] + slices[-1]) // 2) if slices.size else pixels.shape[0] // 2
    spacing = image.GetSpacing()
    figure = Figure(figsize=(4, 4), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.imshow(pixels[k], cmap="gray", vmin=window[0], vmax=window[1], aspect=spacing[1] / spacing[0])
    if voxels[k].any():
        ax.contour(voxels[k].astype(float), levels=[0.5], colors=["red"], linewidths=1.2)
    if reference is not None:
        ref = sitk.GetArrayViewFromImage(reference)[k] > 0
        if ref.any():
            ax.contour(ref.astype(float), levels=[0.5], colors=["cyan"], linewidths=1.0, linestyles="dashed")
    ax.set_title(f"{title} (slice {k})", fontsize=8)
    ax.set_axis_off()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, bbox_inches="tight")
    return target


def qc_manifest(
    manifest: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    reference_column: str | None = None,
    png: bool = True,
) -> pd.DataFrame:
    """QC every lesion of a manifest (``lesion_id, image_path, mask_path`` [+ a reference column]).

    Writes ``<out_dir>/<lesion_id>_qc.png`` per lesion and returns one row per lesion with
    :data:`QC_COLUMNS` (``png_path`` relative to ``out_dir``); unreadable cases are recorded
    in ``.attrs["failures"]`` and left out.
    """
    from sabrkit.errors import SabrkitError
    from sabrkit.imaging.io import read_image

    base = Path(base_dir) if base_dir is not None else None
    out = Path(out_dir)

    def resolve(value: object) -> Path:
        file = Path(str(value))
        return file if file.is_absolute() or base is None else base / file

    rows, failures = [], []
    for row in manifest.itertuples(index=False):
        lesion_id = str(row.lesion_id)
        try:
            image = read_image(resolve(row.image_path), lesion_id)
            mask = read_image(resolve(row.mask_path), lesion_id, role="mask")
            reference = None
            if reference_column and isinstance(getattr(row, reference_column, None), str):
                reference = read_image(
                    resolve(getattr(row, reference_column)), lesion_id, role="reference mask"
                )
            record: dict[str, Any] = {"lesion_id": lesion_id, **mask_qc(mask, reference), "png_path": ""}
            if png:
                name = f"{lesion_id}_qc.png"
                title = f"{lesion_id}" + (
                    f" Dice {record['dice']:.2f}" if not math.isnan(record["dice"]) else ""
                )
                qc_png(image, mask, out / name, reference=reference, title=title)
                record["png_path"] = name
        except SabrkitError as exc:
            failures.append(CaseFailure(lesion_id, "qc", f"{type(exc).__name__}: {exc}"))
            continue
        rows.append(record)
    table = pd.DataFrame(rows, columns=list(QC_COLUMNS))
    table.attrs["failures"] = failures
    logger.info("QC of %d mask(s) into %s (%d failed)", len(table), out, len(failures))
    return table
