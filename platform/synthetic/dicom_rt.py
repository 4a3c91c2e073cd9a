"""RTPLAN and RTDOSE objects of the synthetic DICOM export (one plan per SABR course row).

:func:`write_rtplan` writes an RT Plan (Storage) with the course's prescription: one target
dose reference (the lesion's PTV ROI, ``TargetPrescriptionDose`` = the registry's total dose)
and one fraction group (``NumberOfFractionsPlanned`` = the registry's fractions), referencing
the structure set. It has no beams: the dose comes from the analytic model of
:mod:`sabrkit.synthetic.rtplan`, not from a treatment planning system.

:func:`write_rtdose` writes an RT Dose (Storage) multi-frame grid: unsigned 32-bit pixels,
``DoseGridScaling`` 1e-5 Gy, ``DoseUnits GY``, ``DoseType PHYSICAL``, ``DoseSummationType PLAN``,
``GridFrameOffsetVector`` relative to the first frame, referencing its RTPLAN and sharing the
CT series' frame of reference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.synthetic.dicom import RT_STRUCTURE_SET_STORAGE, _base_dataset, _date, _ds, derived_uid

__all__ = [
    "DOSE_GRID_SCALING",
    "DOSE_TRUTH_COLUMNS",
    "RT_DOSE_STORAGE",
    "RT_PLAN_STORAGE",
    "DosePlanner",
    "write_rtdose",
    "write_rtplan",
]

logger = logging.getLogger(__name__)

RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
#: Gy per stored pixel unit of the synthetic RTDOSE grids.
DOSE_GRID_SCALING = 1e-5
#: Columns of the dose ground truth (``dose_truth_path`` of ``write_cohort_dicom``).
DOSE_TRUTH_COLUMNS: tuple[str, ...] = (
    "lesion_id",
    "study_id",
    "total_dose_gy",
    "fractions",
    "bed10_gy",
    "ptv_roi",
    "rtplan_uid",
    "rtdose_uid",
    "frame_of_reference_uid",
    "oar",
    "oar_dmax_gy",
    "oar_limit_gy",
    "planted_violation",
)


class DosePlanner:
    """Plans every lesion of an export and writes its RTPLAN and RTDOSE (used by ``write_cohort_dicom``).

    Parameters
    ----------
    lesions : pandas.DataFrame
        Registry ``lesions.csv`` indexed by ``lesion_id``.
    courses : pandas.DataFrame
        Registry ``sabr_courses.csv`` (one course per lesion).
    n_violations : int
        How many OARs to place in violation (module docstring of :mod:`sabrkit.synthetic.rtplan`).
    """

    def __init__(self, lesions: pd.DataFrame, courses: pd.DataFrame, n_violations: int) -> None:
        from sabrkit.dose.constraints import load_constraint_table
        from sabrkit.synthetic.rtplan import DoseModel, oar_for

        self.lesions = lesions
        self.courses = courses.set_index("lesion_id")
        self.table = load_constraint_table()
        self.model = DoseModel()
        candidates = []
        for lesion_id, lesion in lesions.iterrows():
            fractions = int(self.courses.loc[lesion_id, "fractions"])
            oar = oar_for(str(lesion.site), fractions)
            if oar is not None and self.table.limit(oar, "Dmax", fractions) is not None:
                candidates.append(str(lesion_id))
        candidates.sort(key=lambda lid: derived_uid(lesions.loc[lid, "series_uid"], "planted-violation"))
        self.planted = set(candidates[: max(int(n_violations), 0)])
        self.rows: list[tuple] = []
        self.n_plans = 0
        self._bytes = 0

    def _limits(self, oar: str, fractions: int) -> tuple[float | None, float | None]:
        tabulated = fractions if self.table.limit(oar, "Dmax", fractions) is not None else 5
        limits = [
            lim for _, by_fx in self.table.organs.get(oar, ()) for fx, lim in by_fx.items() if fx == tabulated
        ]
        return self.table.limit(oar, "Dmax", tabulated), (min(limits) if limits else None)

    def plan(
        self,
        lesion_id: str,
        gtv: np.ndarray,
        spacing: tuple,
        origin: tuple,
        series: dict,
        study_dir: Path,
        patient: dict,
        study: dict,
        rtstruct_uid: str,
        contours_mm: Callable[[np.ndarray, tuple, tuple], list],
    ) -> list[dict[str, Any]]:
        """Plan one lesion, write its RTPLAN and RTDOSE; return its PTV and OAR ROIs for the RTSTRUCT."""
        from sabrkit.registry.dose import bed10
        from sabrkit.synthetic.rtplan import dose_grid, oar_for, plan_lesion

        lesion = self.lesions.loc[lesion_id]
        course = self.courses.loc[lesion_id]
        n = int(lesion.lesion_number)
        total, fractions = float(course.total_dose_gy), int(course.fractions)
        oar = oar_for(str(lesion.site), fractions)
        dmax_limit, lowest = self._limits(oar, fractions) if oar else (None, None)
        result = plan_lesion(
            gtv, spacing, total, oar, dmax_limit, lowest, lesion_id in self.planted, self.model
        )
        ptv_name = f"PTV_L{n}"
        base = {"series_uid": series["uid"], "frame_uid": series["frame_uid"], "sop_uids": series["sop_uids"]}
        rois = [
            dict(
                base,
                number=100 + n,
                name=ptv_name,
                type="PTV",
                color=["255", "128", "0"],
                description=f"GTV_L{n} + {self.model.ptv_margin_mm:g} mm",
                contours=contours_mm(result.ptv, spacing, origin),
            )
        ]
        if result.oar is not None and result.oar_name is not None:
            rois.append(
                dict(
                    base,
                    number=200 + n,
                    name=result.oar_name,
                    type="ORGAN",
                    color=["0", "255", "0"],
                    description=f"{result.oar_name} near lesion {n}",
                    contours=contours_mm(result.oar, spacing, origin),
                )
            )
        plan_uid = derived_uid(series["uid"], "rtplan")
        dose_uid = derived_uid(series["uid"], "rtdose")
        self._bytes += write_rtplan(
            study_dir / f"SE{910 + n:06d}" / "RP000001.dcm",
            patient,
            study,
            {
                "uid": plan_uid,
                "label": f"SABR L{n}",
                "frame_uid": series["frame_uid"],
                "rtstruct_uid": rtstruct_uid,
                "ptv_roi_number": 100 + n,
                "ptv_name": ptv_name,
                "total_dose_gy": total,
                "fractions": fractions,
                "lesion_number": n,
            },
        )
        grid, grid_spacing, shift = dose_grid(result.dose_gy, spacing, self.model.grid_spacing_mm)
        self._bytes += write_rtdose(
            study_dir / f"SE{920 + n:06d}" / "RD000001.dcm",
            patient,
            study,
            {
                "uid": dose_uid,
                "plan_uid": plan_uid,
                "frame_uid": series["frame_uid"],
                "grid": grid,
                "spacing": grid_spacing,
                "origin": tuple(o + d for o, d in zip(origin, shift)),
                "lesion_number": n,
            },
        )
        self.n_plans += 1
        self.rows.append(
            (
                lesion_id,
                str(lesion.study_id),
                total,
                fractions,
                round(bed10(total, fractions), 4),
                ptv_name,
                plan_uid,
                dose_uid,
                series["frame_uid"],
                result.oar_name or "",
                None if result.oar_dmax_gy is None else round(result.oar_dmax_gy, 4),
                result.oar_limit_gy
                if result.oar_name and fractions == self._tabulated(result.oar_name, fractions)
                else None,
                bool(result.planted),
            )
        )
        return rois

    def _tabulated(self, oar: str, fractions: int) -> int | None:
        return fractions if self.table.limit(oar, "Dmax", fractions) is not None else None

    def take_bytes(self) -> int:
        """Bytes written since the last call."""
        out, self._bytes = self._bytes, 0
        return out

    def truth(self) -> pd.DataFrame:
        """The dose ground truth, one row per lesion (:data:`DOSE_TRUTH_COLUMNS`)."""
        return (
            pd.DataFrame(self.rows, columns=list(DOSE_TRUTH_COLUMNS))
            .sort_values("lesion_id")
            .reset_index(drop=True)
        )


def write_rtplan(path: Path, patient: dict, study: dict, plan: dict) -> int:
    """Write one RTPLAN; ``plan`` holds uid, label, frame_uid, rtstruct_uid, ptv_roi_number, ptv_name,
    total_dose_gy, fractions, lesion_number. Returns the bytes written."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds: Any = _base_dataset(RT_PLAN_STORAGE, patient, study, derived_uid(plan["uid"], "series"), "RTPLAN")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = plan["uid"]
    ds.Manufacturer, ds.SeriesNumber, ds.InstanceNumber = "sabrkit synthetic", 910 + plan["lesion_number"], 1
    ds.SeriesDescription = f"SABR plan lesion {plan['lesion_number']}"
    ds.FrameOfReferenceUID = plan["frame_uid"]
    ds.RTPlanLabel = plan["label"]
    ds.RTPlanName = plan["label"]
    ds.RTPlanDate, ds.RTPlanTime = _date(study["date"]), study["time"]
    ds.RTPlanGeometry = "PATIENT"
    ds.PlanIntent = "CURATIVE"
    ds.ApprovalStatus = "APPROVED"
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = RT_STRUCTURE_SET_STORAGE, plan["rtstruct_uid"]
    ds.ReferencedStructureSetSequence = Sequence([ref])
    target = Dataset()
    target.DoseReferenceNumber = 1
    target.DoseReferenceUID = derived_uid(plan["uid"], "dose-reference")
    target.DoseReferenceStructureType = "VOLUME"
    target.DoseReferenceDescription = plan["ptv_name"]
    target.ReferencedROINumber = plan["ptv_roi_number"]
    target.DoseReferenceType = "TARGET"
    target.TargetPrescriptionDose = _ds(plan["total_dose_gy"])
    ds.DoseReferenceSequence = Sequence([target])
    group = Dataset()
    group.FractionGroupNumber = 1
    group.NumberOfFractionsPlanned = int(plan["fractions"])
    group.NumberOfBeams = 0
    group.NumberOfBrachyApplicationSetups = 0
    ref_dose = Dataset()
    ref_dose.ReferencedDoseReferenceNumber = 1
    group.ReferencedDoseReferenceSequence = Sequence([ref_dose])
    ds.FractionGroupSequence = Sequence([group])
    ds.PrescriptionDescription = (
        f"{_ds(plan['total_dose_gy'])} Gy in {int(plan['fractions'])} fractions to {plan['ptv_name']}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path.stat().st_size


def write_rtdose(path: Path, patient: dict, study: dict, dose: dict) -> int:
    """Write one RTDOSE; ``dose`` holds uid, plan_uid, frame_uid, grid (``[z, y, x]`` Gy),
    spacing (x, y, z), origin (x, y, z), lesion_number. Returns the bytes written."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    grid = np.asarray(dose["grid"], dtype=np.float64)
    spacing, origin = dose["spacing"], dose["origin"]
    ds: Any = _base_dataset(RT_DOSE_STORAGE, patient, study, derived_uid(dose["uid"], "series"), "RTDOSE")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = dose["uid"]
    ds.Manufacturer, ds.SeriesNumber, ds.InstanceNumber = "sabrkit synthetic", 920 + dose["lesion_number"], 1
    ds.SeriesDescription = f"SABR dose lesion {dose['lesion_number']}"
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = dose["frame_uid"], ""
    ds.ImagePositionPatient = [_ds(origin[0]), _ds(origin[1]), _ds(origin[2])]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
    ds.SliceThickness = _ds(spacing[2])
    ds.GridFrameOffsetVector = [_ds(k * spacing[2]) for k in range(grid.shape[0])]
    ds.FrameIncrementPointer = 0x3004000C
    ds.NumberOfFrames = int(grid.shape[0])
    ds.Rows, ds.Columns = int(grid.shape[1]), int(grid.shape[2])
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 32, 32, 31, 0
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = "GY", "PHYSICAL", "PLAN"
    ds.DoseGridScaling = f"{DOSE_GRID_SCALING:.0e}"
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = RT_PLAN_STORAGE, dose["plan_uid"]
    ds.ReferencedRTPlanSequence = Sequence([ref])
    stored = np.rint(np.clip(grid, 0.0, None) / DOSE_GRID_SCALING).astype("<u4")
    ds.PixelData = stored.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path.stat().st_size
