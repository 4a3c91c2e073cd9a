"""DVC stage `preprocess`: geometry checks, resampling, HU clipping and lesion crops.

Reads ``<preprocess.source>/images.csv``: ``data/synthetic`` (the synthetic cohort's NIfTI, the
default) or ``data/imaging`` (what `imaging_ingest` made of the de-identified DICOM export).
"""

from __future__ import annotations

import pandas as pd
from stage_params import ROOT, load_all

OUT = ROOT / "data" / "preprocessed"


def main() -> None:
    from sabrkit.imaging import PreprocessConfig, preprocess_manifest

    params = load_all()
    p, execution = params["preprocess"], params["execution"]
    source = ROOT / p.source
    config = PreprocessConfig(
        spacing_mm=p.spacing_mm,
        interpolator=p.interpolator,
        hu_window=p.hu_window,
        crop_margin_mm=p.crop_margin_mm,
    )
    manifest = pd.read_csv(source / "images.csv")
    preprocess_manifest(
        manifest,
        OUT,
        config,
        n_jobs=execution.n_jobs,
        max_failure_fraction=p.max_failure_fraction,
        base_dir=source,
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
