"""DVC stage `imaging_ingest`: de-identified DICOM -> NIfTI images, lesion masks and manifests.

Writes ``data/imaging/``: ``images.csv`` (one row per contoured lesion, the columns of the cohort's
``images.csv`` plus ``study_date, series_uid, roi_name``; read by `preprocess`), ``series.csv`` (every
image series, contoured or not; read by `segment`), ``failures.csv``, ``images/``, ``masks/`` and the
state file that makes a re-run skip unchanged series.
"""

from __future__ import annotations

from stage_params import ROOT, load_section

SOURCE = ROOT / "data" / "dicom_deid"
OUT = ROOT / "data" / "imaging"


def main() -> None:
    from sabrkit.errors import ExtractionError
    from sabrkit.imaging import IngestConfig, ingest_folder

    p = load_section("imaging_ingest")
    config = IngestConfig(
        roi_pattern=p.roi_pattern,
        lesion_pattern=p.lesion_pattern,
        lesion_id_template=p.lesion_id_template,
        modalities=p.modalities,
        slice_tolerance=p.slice_tolerance,
    )
    result = ingest_folder(SOURCE, OUT, config)
    n_units = max(len(result.series) + len(result.failures), 1)
    if result.failures and len(result.failures) / n_units > p.max_failure_fraction:
        raise ExtractionError(result.failures, n_units, p.max_failure_fraction)
    print(
        f"imaging_ingest: {len(result.lesions)} lesion masks, {len(result.series)} series, "
        f"{len(result.failures)} failure(s); {result.n_units_done} converted, {result.n_units_reused} unchanged"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
