"""DVC stage `dose`: DVH tables, BED/EQD2 maps and the OAR constraint check of the DICOM path.

* ``data/dose/plan_dvh.csv``: DVH metrics of every ROI (targets and OARs) of every plan of the
  de-identified export, on each plan's dose grid; ``data/dose/constraints.csv``: each OAR's
  checks against the versioned constraint table (TG-101 unless ``dose.constraint_table``);
* ``data/dose/lesion_dose.csv`` + ``lesion_dvh_curves.csv`` + ``bed/``, ``eqd2/``: per lesion,
  from the dose the `imaging_ingest` stage resampled onto the CT (``data/imaging/dose.csv``);
* ``data/dose/dosiomics.parquet``: pyradiomics features of each lesion's dose and BED maps
  (``dose_*``, ``bed_*`` columns; profile ``dose.dosiomics_params``, default ``dose_v1``);
* ``reports/dose.html``: dose per lesion and the OAR constraint section;
* ``data/dose/failures.csv`` and ``metrics/constraints.json`` (n_patients, n_plans, n_checks,
  n_violations, n_not_tabulated, n_failures, table_version).
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
from stage_params import ROOT, load_section

DICOM = ROOT / "data" / "dicom_deid"
IMAGING = ROOT / "data" / "imaging"
OUT = ROOT / "data" / "dose"
METRICS = ROOT / "metrics" / "constraints.json"
REPORT = ROOT / "reports" / "dose.html"


def main() -> None:
    from sabrkit.dose import load_constraint_table
    from sabrkit.dose.dosiomics import extract_dosiomics
    from sabrkit.dose.lesions import lesion_dose_tables
    from sabrkit.dose.plans import check_folder
    from sabrkit.features.io import write_feature_table

    p = load_section("dose")
    n_jobs = load_section("execution").n_jobs
    table = load_constraint_table(ROOT / p.constraint_table if p.constraint_table else None)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    checked = check_folder(DICOM, table)
    checked.dvh.to_csv(OUT / "plan_dvh.csv", index=False, lineterminator="\n")
    checked.checks.to_csv(OUT / "constraints.csv", index=False, lineterminator="\n")
    lesions, curves, failures = lesion_dose_tables(
        IMAGING,
        OUT,
        alpha_beta_tumour=p.alpha_beta_tumour,
        alpha_beta_normal=p.alpha_beta_normal,
        dvh_bin_width_gy=p.dvh_bin_width_gy,
    )
    lesions.to_csv(OUT / "lesion_dose.csv", index=False, lineterminator="\n")
    curves.to_csv(OUT / "lesion_dvh_curves.csv", index=False, lineterminator="\n")
    dosiomics, dosiomic_failures = (
        extract_dosiomics(IMAGING, lesions, OUT, params_name=p.dosiomics_params, n_jobs=n_jobs)
        if len(lesions)
        else (pd.DataFrame(), [])
    )
    if len(dosiomics):
        write_feature_table(dosiomics, OUT / "dosiomics.parquet")
    all_failures = [*checked.failures, *failures, *dosiomic_failures]
    pd.DataFrame(
        [(f.case_id, f.stage, f.reason) for f in all_failures], columns=["case_id", "stage", "reason"]
    ).to_csv(OUT / "failures.csv", index=False, lineterminator="\n")
    summary = {
        **checked.summary(),
        "n_failures": len(all_failures),
        "n_lesions": len(lesions),
        "table_version": table.version,
    }
    METRICS.parent.mkdir(exist_ok=True)
    METRICS.write_text(json.dumps(summary, indent=2) + "\n")
    from sabrkit.dose.report import build_dose_report
    from sabrkit.version import __version__

    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(
        build_dose_report(checked.checks, lesions, table_version=table.version, version=__version__),
        encoding="utf-8",
    )
    print(
        f"dose: {summary['n_plans']} plans of {summary['n_patients']} patients, {summary['n_checks']} checks, "
        f"{summary['n_violations']} violation(s), {len(lesions)} lesion BED maps, {len(all_failures)} failure(s)"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
