"""DVH tables and constraint checks of RT plans read from DICOM files (RTDOSE + RTPLAN + RTSTRUCT).

:func:`find_dose_objects` sorts a folder's RTDOSE, RTPLAN and RTSTRUCT files;
:func:`plan_dvh` computes, for one linked dose object, the DVH metrics of every ROI of its
structure set that lies in the dose's frame of reference, on the dose grid (each ROI filled
on the dose grid's planes, as dicompyler-core does), and checks the OARs against the
constraint table; :func:`check_folder` does it for a whole folder and names every dose object
it could not use.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.dose.bed import TUMOUR_ALPHA_BETA_GY, bed_map
from sabrkit.dose.constraints import CHECK_COLUMNS, ConstraintTable, check_constraints, load_constraint_table
from sabrkit.dose.dvh import DVH_METRIC_NAMES, StructureDose, conformity_indices, dvh_metrics
from sabrkit.errors import CaseFailure, SabrkitError
from sabrkit.registry.dose import bed as registry_bed

__all__ = ["DVH_COLUMNS", "FolderCheck", "check_folder", "find_dose_objects", "plan_dvh"]

logger = logging.getLogger(__name__)

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: Columns of the DVH table (one row per plan and ROI).
DVH_COLUMNS: tuple[str, ...] = (
    "study_id",
    "plan_label",
    "rtplan_uid",
    "roi_number",
    "roi_name",
    "role",
    "prescription_gy",
    "fractions",
    *DVH_METRIC_NAMES,
    "paddick_ci",
    "gradient_index",
    "bed10_rx_gy",
    "bed10_d98_gy",
)
_TARGET = re.compile(r"^(PTV|GTV|CTV|ITV)", re.IGNORECASE)


def find_dose_objects(
    folder: str | os.PathLike[str],
) -> tuple[list[str], list[str], dict[str, str], list[CaseFailure]]:
    """RTDOSE paths, RTPLAN paths, RTSTRUCT SOP UID -> path, and unreadable files, under ``folder``."""
    import pydicom

    doses: list[str] = []
    plans: list[str] = []
    structs: dict[str, str] = {}
    failures: list[CaseFailure] = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(
                path, stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID"]
            )
        except (pydicom.errors.InvalidDicomError, OSError):
            continue
        sop = str(ds.get("SOPClassUID", ""))
        if sop == "1.2.840.10008.5.1.4.1.1.481.2":
            doses.append(str(path))
        elif sop == "1.2.840.10008.5.1.4.1.1.481.5":
            plans.append(str(path))
        elif sop == RTSTRUCT_SOP_CLASS:
            structs[str(ds.SOPInstanceUID)] = str(path)
    return doses, plans, structs, failures


def plan_dvh(
    dose_path: str,
    plan_path: str,
    rtstruct_path: str,
    table: ConstraintTable | None = None,
    study_id_of: Callable[[str], str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DVH metrics of every ROI in the dose's frame of reference, and the OAR constraint checks.

    ROIs named PTV/GTV/CTV/ITV... are ``target`` rows (with V100%, BED10 of the prescription and
    of the BED10 map's D98%, and Paddick CI and gradient index for the plan's own target ROI);
    other ROIs are ``oar`` rows, checked against ``table``. ``study_id_of`` turns the DICOM
    PatientID into the study ID (default: :meth:`sabrkit.imaging.IngestConfig.study_id_of`, which
    accepts pseudonyms only: de-identify first or pass a key table's mapping).

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        :data:`DVH_COLUMNS` and the constraint checks (:data:`~sabrkit.dose.constraints.CHECK_COLUMNS`
        plus study_id, plan_label, rtplan_uid, roi_number).
    """
    import SimpleITK as sitk

    from sabrkit.imaging.ingest import IngestConfig
    from sabrkit.imaging.rtdose import read_rtdose, read_rtplan
    from sabrkit.imaging.rtstruct import ON_CONTOUR_TOLERANCE_MM, rasterize_contours, read_rtstruct

    dose_image, facts = read_rtdose(dose_path)
    plan = read_rtplan(plan_path)
    structures = read_rtstruct(rtstruct_path)
    study_id = (study_id_of or IngestConfig().study_id_of)(structures.patient_id)
    dose = sitk.GetArrayFromImage(dose_image)
    voxel_cc = float(np.prod(dose_image.GetSpacing())) / 1000.0
    rows, oars, numbers = [], {}, {}
    for roi in structures.rois:
        if roi.frame_of_reference_uid != facts["frame_of_reference_uid"] or not roi.contours:
            continue
        # a dose-grid point on the contour counts as inside (rtstruct's module docstring): DICOM
        # leaves it open, and matplotlib's contains_points (dicompyler-core) decides it by edge
        # direction; the closed contour is the convention that does not depend on how it was drawn
        filled: Any = rasterize_contours(
            roi.contours, dose_image, roi=roi.name, on_contour_mm=ON_CONTOUR_TOLERANCE_MM
        )
        mask = sitk.GetArrayFromImage(filled)
        structure = StructureDose(dose, mask, voxel_cc, roi.name)
        target = bool(_TARGET.match(roi.name))
        metrics = dvh_metrics(structure, plan.total_dose_gy if target else None)
        extra = (
            conformity_indices(dose, mask, plan.total_dose_gy)
            if roi.number in plan.target_roi_numbers
            else {"paddick_ci": np.nan, "gradient_index": np.nan}
        )
        bed10 = {"bed10_rx_gy": np.nan, "bed10_d98_gy": np.nan}
        if target:  # BED10 of the prescription (as the registry computes it) and of the map's D98%
            bed10["bed10_rx_gy"] = registry_bed(plan.total_dose_gy, plan.fractions, TUMOUR_ALPHA_BETA_GY)
            bed10["bed10_d98_gy"] = StructureDose(
                bed_map(dose, plan.fractions, TUMOUR_ALPHA_BETA_GY), mask, voxel_cc, roi.name
            ).dose_to_percent(98.0)
        rows.append(
            {
                "study_id": study_id,
                "plan_label": plan.label,
                "rtplan_uid": plan.sop_instance_uid,
                "roi_number": roi.number,
                "roi_name": roi.name,
                "role": "target" if target else "oar",
                "prescription_gy": plan.total_dose_gy,
                "fractions": plan.fractions,
                **metrics,
                **extra,
                **bed10,
            }
        )
        if not target:
            oars[roi.name] = structure
            numbers[roi.name] = roi.number
    checks = check_constraints(oars, plan.fractions, table)
    checks.insert(0, "roi_number", checks["oar"].map(numbers).astype("Int64"))
    checks.insert(0, "rtplan_uid", plan.sop_instance_uid)
    checks.insert(0, "plan_label", plan.label)
    checks.insert(0, "study_id", study_id)
    return pd.DataFrame(rows, columns=list(DVH_COLUMNS)), checks


@dataclass
class FolderCheck:
    """What :func:`check_folder` found: DVH rows, constraint checks and failures."""

    dvh: pd.DataFrame
    checks: pd.DataFrame
    failures: list[CaseFailure] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        """``n_patients, n_plans, n_checks, n_violations, n_not_tabulated, n_failures``."""
        status = self.checks["status"] if len(self.checks) else pd.Series(dtype=str)
        return {
            "n_patients": int(self.dvh["study_id"].nunique()) if len(self.dvh) else 0,
            "n_plans": int(self.dvh["rtplan_uid"].nunique()) if len(self.dvh) else 0,
            "n_checks": int(status.isin(["pass", "fail"]).sum()),
            "n_violations": int((status == "fail").sum()),
            "n_not_tabulated": int((status == "not_tabulated").sum()),
            "n_failures": len(self.failures),
        }


def check_folder(
    folder: str | os.PathLike[str],
    table: ConstraintTable | None = None,
    study_id_of: Callable[[str], str] | None = None,
) -> FolderCheck:
    """DVH tables and constraint checks of every linked RTDOSE under ``folder``.

    Each dose object that cannot be linked (missing plan or structure set) or read (units,
    geometry) becomes a failure naming it; the others complete.
    """
    import pydicom

    from sabrkit.imaging.rtdose import link_dose_objects

    table = table or load_constraint_table()
    doses, plans, structs, failures = find_dose_objects(folder)
    frames = {}
    for path in doses:  # the CT is not needed for the check: every dose frame counts as linked
        try:
            frames[str(pydicom.dcmread(path, stop_before_pixels=True).get("FrameOfReferenceUID", ""))] = ""
        except (OSError, pydicom.errors.InvalidDicomError):
            continue
    links, link_failures = link_dose_objects(doses, plans, structs, frames)
    failures.extend(link_failures)
    dvh_parts, check_parts = [], []
    for link in links:
        try:
            dvh, checks = plan_dvh(link.dose_path, link.plan_path, link.rtstruct_path, table, study_id_of)
        except SabrkitError as exc:
            failures.append(CaseFailure(f"RTDOSE {link.dose_path}", "dose", f"{type(exc).__name__}: {exc}"))
            continue
        dvh_parts.append(dvh)
        if len(checks):
            check_parts.append(checks)
    dvh_all = (
        pd.concat(dvh_parts, ignore_index=True) if dvh_parts else pd.DataFrame(columns=list(DVH_COLUMNS))
    )
    check_cols = ["study_id", "plan_label", "rtplan_uid", "roi_number", *CHECK_COLUMNS]
    checks_all = pd.DataFrame(
        [r for part in check_parts for r in part.to_dict("records")], columns=check_cols
    )
    logger.info(
        "dose check %s: %d plan(s), %d check(s), %d violation(s), %d failure(s)",
        folder,
        len(dvh_parts),
        len(checks_all),
        int((checks_all["status"] == "fail").sum()),
        len(failures),
    )
    return FolderCheck(dvh_all, checks_all, failures)
