"""DVC stage `segment`: U-Net masks for every ingested series without a contour, with mask QC.

For each series of ``data/imaging/series.csv`` that no lesion mask was drawn on (the follow-up CTs), the
U-Net of ``models/unet`` segments the whole image by sliding window (largest component kept). Writes
``data/segmentation/``: ``masks/``, one QC PNG per series, ``segments.csv`` (volume, components, Dice
against the synthetic follow-up truth when available) and ``metrics/segment.json``.
"""

from __future__ import annotations

import json
import math
import os
import shutil

import pandas as pd
from stage_params import ROOT, load_section

IMAGING = ROOT / "data" / "imaging"
MODEL = ROOT / "models" / "unet"
TRUTH = ROOT / "data" / "dicom" / "follow_up_truth"
OUT = ROOT / "data" / "segmentation"
METRICS = ROOT / "metrics" / "segment.json"


def _truth_by_series() -> dict[str, str]:
    """De-identified series UID -> true follow-up mask (synthetic data: same secret as `deidentify`)."""
    from deidentify import DEMO_SECRET

    from sabrkit.imaging import DeidConfig, Deidentifier

    table = TRUTH / "follow_up_truth.csv"
    if not table.is_file():
        return {}
    truth = pd.read_csv(table, dtype=str)
    mapper = Deidentifier(
        DeidConfig(secret=os.environ.get("SABRKIT_DEID_SECRET") or DEMO_SECRET, pseudonym_of={})
    )
    return {
        mapper.new_uid(uid): str(TRUTH / f"{lid}_followup_mask.nii.gz")
        for uid, lid in zip(truth["series_uid"], truth["lesion_id"])
    }


def main() -> None:
    from sabrkit.imaging import load_unet, mask_qc, qc_png, read_image, segment_image, write_image

    p = load_section("segment")
    model, config = load_unet(MODEL)
    series = pd.read_csv(IMAGING / "series.csv", dtype=str)
    contoured = set(pd.read_csv(IMAGING / "images.csv", dtype=str)["series_uid"])
    todo = series[~series["series_uid"].isin(contoured)]
    truth = _truth_by_series()
    if OUT.exists():
        shutil.rmtree(OUT)
    rows = []
    for row in todo.itertuples(index=False):
        image = read_image(IMAGING / row.image_path, row.series_uid)
        mask = segment_image(model, config, image, p.spacing_mm)
        name = f"{row.study_id}_{row.series_uid}"
        write_image(mask, OUT / "masks" / f"{name}_mask.nii.gz")
        reference = (
            read_image(truth[row.series_uid], row.series_uid, role="mask")
            if row.series_uid in truth
            else None
        )
        qc = mask_qc(mask, reference)
        qc_png(
            image,
            mask,
            OUT / "png" / f"{name}.png",
            reference=reference,
            title=f"{row.study_id} {row.study_date}",
        )
        rows.append(
            {
                "study_id": row.study_id,
                "study_date": row.study_date,
                "series_uid": row.series_uid,
                "mask_path": f"masks/{name}_mask.nii.gz",
                "png_path": f"png/{name}.png",
                **qc,
            }
        )
    table = pd.DataFrame(rows)
    table.to_csv(OUT / "segments.csv", index=False)
    dice = table["dice"].dropna() if len(table) else pd.Series(dtype=float)
    summary = {
        "n_series": len(table),
        "n_with_truth": int(dice.size),
        "mean_dice_vs_truth": float(dice.mean()) if dice.size else None,
        "n_below_warning": int((dice < p.min_dice_warning).sum()),
        "n_multi_component": int((table["n_components"] > 1).sum()) if len(table) else 0,
    }
    METRICS.parent.mkdir(exist_ok=True)
    METRICS.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    mean = summary["mean_dice_vs_truth"]
    print(
        f"segment: {len(table)} uncontoured series segmented"
        + (f", mean Dice vs follow-up truth {mean:.3f}" if mean is not None and not math.isnan(mean) else "")
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
