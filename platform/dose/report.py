"""The dose report: prescriptions, target coverage, BED10 and the OAR constraint check (HTML).

Rendered with the study report's template (:mod:`sabrkit.registry.report`), as a page of its
own written by the DICOM path's ``dose`` stage (``reports/dose.html``), so the study report does
not depend on the optional DICOM path. When the dose outputs exist, the study report adds
:func:`dose_study_section` (per-patient constraint table with pass/fail, per-lesion DVH summary
and BED10; :func:`read_dose_outputs` reads them from the ``dose`` stage's folder).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["build_dose_report", "dose_study_section", "patient_constraint_table", "read_dose_outputs"]

logger = logging.getLogger(__name__)


def build_dose_report(
    checks: pd.DataFrame, lesion_dose: pd.DataFrame, *, table_version: str, version: str = ""
) -> str:
    """HTML of the dose report.

    Parameters
    ----------
    checks : pandas.DataFrame
        Constraint checks (:func:`sabrkit.dose.plans.check_folder`).
    lesion_dose : pandas.DataFrame
        Per-lesion table (:func:`sabrkit.dose.lesions.lesion_dose_tables`).
    table_version : str
        Version of the constraint table used.
    """
    from jinja2 import Environment, PackageLoader, select_autoescape

    from sabrkit.registry.report import _Section

    dose = _Section("Dose per lesion", "dose")
    if len(lesion_dose):
        by_schedule = (
            lesion_dose.groupby(["prescription_gy", "fractions"])
            .agg(
                lesions=("lesion_id", "size"),
                bed10_gy=("bed10_rx_gy", "first"),
                median_gtv_d98_gy=("D98%", "median"),
                median_gtv_dmean_gy=("Dmean", "median"),
            )
            .reset_index()
        )
        dose.paragraphs.append(
            f"{len(lesion_dose)} lesions of {lesion_dose['study_id'].nunique()} patients with a planned dose; "
            f"median BED10 of the prescription {lesion_dose['bed10_rx_gy'].median():.1f} Gy; median GTV D98% "
            f"{(lesion_dose['D98%'] / lesion_dose['prescription_gy']).median():.1%} of the prescription."
        )
        dose.table(by_schedule, "Schedules (total dose, fractions), GTV D98% and Dmean in Gy")
    else:
        dose.paragraphs.append("No lesion with a planned dose.")
    oar = _Section("OAR dose constraints", "constraints")
    judged = checks[checks["status"].isin(["pass", "fail"])] if len(checks) else checks
    failed = checks[checks["status"] == "fail"] if len(checks) else checks
    oar.paragraphs.append(
        f"{len(judged)} checks of {checks['oar'].nunique() if len(checks) else 0} organ types against {table_version}: "
        f"{len(failed)} violation(s); {len(checks) - len(judged)} check(s) not tabulated for the plan's fractionation."
    )
    if len(failed):
        oar.table(
            failed[["study_id", "plan_label", "oar", "metric", "fractions", "value_gy", "limit_gy"]],
            "Violations (value >= limit)",
        )
    env = Environment(loader=PackageLoader("sabrkit.registry", "templates"), autoescape=select_autoescape())
    html = env.get_template("study_report.html.j2").render(
        title="SABR for oligometastatic RCC: dose and OAR constraints",
        sections=[dose, oar],
        cutoff="n/a",
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=version,
    )
    logger.info("dose report: %d lesions, %d violations", len(lesion_dose), len(failed))
    return html


#: per-lesion DVH summary columns of the study report (lesion_dose.csv column -> label).
_LESION_SUMMARY = {
    "lesion_id": "lesion",
    "prescription_gy": "Rx (Gy)",
    "fractions": "fractions",
    "bed10_rx_gy": "BED10 Rx (Gy)",
    "D98%": "D98 (Gy)",
    "D95%": "D95 (Gy)",
    "D50%": "D50 (Gy)",
    "D2%": "D2 (Gy)",
    "Dmean": "Dmean (Gy)",
    "V100%": "V100 (%)",
    "bed10_d98_gy": "BED10 D98 (Gy)",
}


def read_dose_outputs(
    dose_dir: str | os.PathLike[str], metrics_path: str | os.PathLike[str] | None = None
) -> Any:
    """``(constraint checks, lesion dose table, table version)`` written by the ``dose`` stage, or None.

    None when the folder lacks ``constraints.csv`` or ``lesion_dose.csv`` (the DICOM path did not run).
    """
    folder = Path(dose_dir)
    checks, lesions = folder / "constraints.csv", folder / "lesion_dose.csv"
    if not (checks.is_file() and lesions.is_file()):
        return None
    version = "constraint table"
    if metrics_path is not None and Path(metrics_path).is_file():
        version = str(
            json.loads(Path(metrics_path).read_text(encoding="utf-8")).get("table_version", version)
        )
    return pd.read_csv(checks), pd.read_csv(lesions), version


def patient_constraint_table(checks: pd.DataFrame) -> pd.DataFrame:
    """One row per patient: OARs checked, checks passed and failed, the failing OAR metrics, pass/fail.

    Checks not tabulated for the plan's fractionation are counted apart and never fail a patient.
    """
    columns = ["study_id", "oars", "checks", "passed", "failed", "not_tabulated", "violations", "result"]
    if not len(checks):
        return pd.DataFrame(columns=columns)
    rows = []
    for study_id, rows_of in checks.groupby("study_id", sort=True):
        failed = rows_of[rows_of["status"] == "fail"]
        rows.append(
            {
                "study_id": study_id,
                "oars": ", ".join(sorted(rows_of["oar"].astype(str).unique())),
                "checks": int(rows_of["status"].isin(["pass", "fail"]).sum()),
                "passed": int((rows_of["status"] == "pass").sum()),
                "failed": len(failed),
                "not_tabulated": int((rows_of["status"] == "not_tabulated").sum()),
                "violations": "; ".join(
                    f"{r.oar} {r.metric} {r.value_gy:.1f} >= {r.limit_gy:.1f} Gy" for r in failed.itertuples()
                ),
                "result": "FAIL" if len(failed) else "pass",
            }
        )
    return pd.DataFrame(rows, columns=columns)


def dose_study_section(checks: pd.DataFrame, lesion_dose: pd.DataFrame, *, table_version: str) -> Any:
    """The study report's "Dose and OAR constraints" section (a :class:`sabrkit.registry.report._Section`)."""
    from sabrkit.registry.report import _Section

    section = _Section("Dose and OAR constraints", "dose")
    per_patient = patient_constraint_table(checks)
    n_fail = int((per_patient["result"] == "FAIL").sum()) if len(per_patient) else 0
    section.paragraphs.append(
        f"{len(lesion_dose)} treated lesions of {lesion_dose['study_id'].nunique() if len(lesion_dose) else 0} "
        f"patients with a planned dose (the DICOM path's RTPLAN/RTDOSE); OAR constraints checked against "
        f"{table_version}: {len(per_patient) - n_fail} patient(s) pass every tabulated constraint, {n_fail} "
        "fail at least one."
    )
    if len(lesion_dose):
        bed10 = lesion_dose["bed10_rx_gy"]
        coverage = lesion_dose["D98%"] / lesion_dose["prescription_gy"]
        section.paragraphs.append(
            f"BED10 of the prescription (alpha/beta 10 Gy): median {bed10.median():.1f} Gy (range "
            f"{bed10.min():.1f}-{bed10.max():.1f}); {int((bed10 >= 100).sum())} of {len(bed10)} lesions at "
            f"BED10 >= 100 Gy. GTV D98 / prescription: median {coverage.median():.1%} (range "
            f"{coverage.min():.1%}-{coverage.max():.1%})."
        )
    section.table(per_patient, "OAR constraints per patient (pass/fail; values in Gy)", scroll=True)
    if len(lesion_dose):
        summary = lesion_dose[list(_LESION_SUMMARY)].rename(columns=_LESION_SUMMARY)
        section.table(summary, "DVH summary per treated lesion (GTV)", scroll=True, digits=4)
    return section
