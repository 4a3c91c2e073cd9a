"""DVC stage `dicom`: write the synthetic cohort as a hospital-style DICOM export.

``data/dicom/export/``: per patient a planning CT study (one CT series per lesion region, one
RTSTRUCT with every GTV, PTV and nearby OAR, one RTPLAN and RTDOSE per lesion) and, unless ``dicom.follow_up`` is false, an uncontoured follow-up CT study.
It carries the fake direct identifiers of the key table, like a real export; the `deidentify` stage
removes them. ``data/dicom/follow_up_truth/`` holds the true follow-up lesion masks (for segment QC),
``data/dicom/dose_truth.csv`` the plans' ground truth (planted OAR constraint violations).
"""

from __future__ import annotations

import json
import shutil

from stage_params import ROOT, load_section

SOURCE = ROOT / "data" / "synthetic"
OUT = ROOT / "data" / "dicom"


def main() -> None:
    from sabrkit.synthetic.dicom import write_cohort_dicom

    p = load_section("dicom")
    if OUT.exists():
        shutil.rmtree(OUT)
    summary = write_cohort_dicom(
        SOURCE,
        OUT / "export",
        follow_up=p.follow_up,
        follow_up_truth_dir=OUT / "follow_up_truth" if p.follow_up else None,
        dose_truth_path=OUT / "dose_truth.csv",
    )
    (OUT / "summary.json").write_text(
        json.dumps(
            {
                "n_patients": summary.n_patients,
                "n_image_series": summary.n_image_series,
                "n_rtstruct": summary.n_rtstruct,
                "n_rtplan": summary.n_rtplan,
                "n_rtdose": summary.n_rtdose,
                "n_files": summary.n_files,
                "n_bytes": summary.n_bytes,
            },
            indent=2,
        )
        + "\n"
    )
    print(
        f"dicom: {summary.n_patients} patients, {summary.n_image_series} CT series, {summary.n_rtstruct} RTSTRUCT, "
        f"{summary.n_files} files ({summary.n_bytes / 1e6:.0f} MB)"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
