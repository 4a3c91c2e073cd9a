"""The dose report: prescriptions, target coverage, BED10 and the OAR constraint check (HTML).

Rendered with the study report's template (:mod:`sabrkit.registry.report`), as a page of its
own written by the DICOM path's ``dose`` stage (``reports/dose.html``), so the study report does
not depend on the optional DICOM path.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

__all__ = ["build_dose_report"]

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
