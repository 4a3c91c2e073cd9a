"""DVC stage `report`: the study report, its metrics and the analysis tables from the ingested registry.

Reads ``data/registry/sabrkit.db`` (written by the ``ingest`` stage), writes the analysis tables
(``data/exports/{adsl,adtte,ae,vrs,tess}.{parquet,csv}``), the self-contained study report
``reports/study.html`` and ``metrics/study.json``. When the DICOM path's ``dose`` stage has run
(``data/dose/constraints.csv`` and ``lesion_dose.csv`` exist) the report adds its dose and OAR
constraints section; the DICOM path is optional, so these files are not DVC dependencies of this
stage: `sabrkit demo --with-dicom` re-runs it after that pipeline. Parameters: the ``report`` section of
``params.yaml`` (target_patients, landmark_months, cutoff_date); until that section is
registered in ``stage_params.py`` the defaults below apply.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from stage_params import ROOT, load_all

DATABASE = ROOT / "data" / "registry" / "sabrkit.db"
EXPORTS = ROOT / "data" / "exports"
REPORT = ROOT / "reports" / "study.html"
METRICS = ROOT / "metrics" / "study.json"


@dataclass(frozen=True)
class _Defaults:
    target_patients: int = 60
    landmark_months: float = 24.0
    cutoff_date: dt.date | None = None


def main() -> None:
    import pandas as pd

    from sabrkit.audit import open_database
    from sabrkit.registry.exports import build_analysis_tables, write_analysis_tables
    from sabrkit.registry.frames import registry_frames
    from sabrkit.registry.report import build_study_report, write_study_report
    from sabrkit.version import __version__

    params = load_all().get("report") or _Defaults()
    with open_database(f"sqlite:///{DATABASE}", actor="dvc-report") as db:
        frames = registry_frames(db)
    cutoff = pd.Timestamp(params.cutoff_date) if params.cutoff_date else None
    tables = build_analysis_tables(frames, cutoff=cutoff)
    write_analysis_tables(tables, EXPORTS)
    from sabrkit.dose.report import dose_study_section, read_dose_outputs

    dose = read_dose_outputs(ROOT / "data" / "dose", ROOT / "metrics" / "constraints.json")
    extra = [] if dose is None else [dose_study_section(dose[0], dose[1], table_version=dose[2])]
    report = build_study_report(
        tables,
        frames,
        target_patients=params.target_patients,
        landmark_months=params.landmark_months,
        version=__version__,
        extra_sections=extra,
    )
    write_study_report(report, REPORT, METRICS)
    print(
        f"report: {len(report.section_titles)} sections, {report.metrics['n_patients']} patients, "
        f"2-year PFS {report.metrics['pfs_2y']:.3f} -> {REPORT}"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
