"""RTDOSE and RTPLAN objects: read, check, link to their structure set and CT, resample the dose.

* :func:`read_rtdose` turns an RT Dose grid into a SimpleITK image in Gy: the stored integers
  times ``DoseGridScaling``, frames placed by ``ImagePositionPatient`` and
  ``GridFrameOffsetVector`` (relative offsets, or absolute ones when the first equals the
  position's z, as PS3.3 C.8.8.3.2 allows); it refuses a dose whose ``DoseUnits`` is not ``GY``
  (``RELATIVE`` doses cannot be joined to prescriptions) and reports ``DoseType``
  (``PHYSICAL``; an ``EFFECTIVE`` dose is already biologically weighted and is refused unless
  ``allow_effective``);
* :func:`read_rtplan` reads the prescription (``TargetPrescriptionDose`` of the target dose
  references, ``NumberOfFractionsPlanned`` of the first fraction group) and the referenced
  structure set;
* :func:`link_dose_objects` links each RTDOSE to its RTPLAN (``ReferencedRTPlanSequence``), the
  plan to its RTSTRUCT (``ReferencedStructureSetSequence``) and the dose to the CT series sharing
  its frame of reference; each object that cannot be linked becomes a :class:`CaseFailure`;
* :func:`resample_dose` puts the dose on a CT/mask grid (trilinear) and :func:`dose_coverage`
  says which share of a mask lies inside the dose grid.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sabrkit.errors import CaseFailure, ImageGeometryError, SabrkitError, ValidationError, format_problem

__all__ = [
    "RT_DOSE_SOP_CLASS",
    "RT_PLAN_SOP_CLASS",
    "DoseLink",
    "PlanInfo",
    "dose_coverage",
    "link_dose_objects",
    "read_rtdose",
    "read_rtplan",
    "resample_dose",
]

logger = logging.getLogger(__name__)

RT_DOSE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"
RT_PLAN_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.5"


@dataclass(frozen=True)
class PlanInfo:
    """What an RTPLAN says about the prescription."""

    sop_instance_uid: str
    frame_of_reference_uid: str
    label: str
    total_dose_gy: float
    fractions: int
    target_roi_numbers: tuple[int, ...]
    rtstruct_uid: str


def read_rtdose(path: str | os.PathLike[str], *, allow_effective: bool = False) -> tuple[Any, dict[str, str]]:
    """Read an RT Dose grid as a SimpleITK float32 image in Gy.

    Returns
    -------
    (SimpleITK.Image, dict)
        The dose and its header facts: ``sop_instance_uid``, ``frame_of_reference_uid``,
        ``plan_uid`` (empty when not referenced), ``dose_type``, ``summation_type``.

    Raises
    ------
    ValidationError
        Not an RT Dose, units not Gy, an effective dose (unless allowed), no DoseGridScaling.
    ImageGeometryError
        Oblique grids, frame offsets that are not equally spaced.
    """
    import pydicom
    import SimpleITK as sitk

    ds = pydicom.dcmread(path)
    what = f"RTDOSE {str(path)!r}"
    if ds.get("SOPClassUID") != RT_DOSE_SOP_CLASS:
        raise ValidationError(
            format_problem(
                f"{what} has SOP class {ds.get('SOPClassUID')}",
                f"an RT Dose has SOP class {RT_DOSE_SOP_CLASS}",
                "pass an RTDOSE file",
            )
        )
    units = str(ds.get("DoseUnits", "")).upper()
    if units != "GY":
        raise ValidationError(
            format_problem(
                f"{what} has DoseUnits {units or '(missing)'!r}",
                "doses are joined to prescriptions in Gy (DoseUnits GY)",
                "export the dose in absolute Gy from the planning system",
            )
        )
    dose_type = str(ds.get("DoseType", "")).upper()
    if dose_type == "EFFECTIVE" and not allow_effective:
        raise ValidationError(
            format_problem(
                f"{what} has DoseType EFFECTIVE",
                "BED/EQD2 maps start from physical dose (DoseType PHYSICAL)",
                "export the physical dose, or pass allow_effective=True to use it as is",
            )
        )
    if "DoseGridScaling" not in ds:
        raise ValidationError(
            format_problem(
                f"{what} has no DoseGridScaling",
                "stored values are scaled to Gy by DoseGridScaling",
                "export it again",
            )
        )
    orientation = np.asarray([float(v) for v in ds.ImageOrientationPatient])
    if not np.allclose(np.abs(orientation), [1, 0, 0, 0, 1, 0], atol=1e-4):
        raise ImageGeometryError(
            format_problem(
                f"{what} has ImageOrientationPatient {list(orientation)}",
                "axial dose grids only",
                "export an axial dose grid",
            )
        )
    pixels = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
    if pixels.ndim == 2:
        pixels = pixels[None]
    position = [float(v) for v in ds.ImagePositionPatient]
    offsets = np.asarray([float(v) for v in ds.get("GridFrameOffsetVector", [0.0])], dtype=float)
    if len(offsets) != pixels.shape[0]:
        raise ImageGeometryError(
            format_problem(
                f"{what}: {len(offsets)} frame offsets for {pixels.shape[0]} frames",
                "GridFrameOffsetVector has one offset per frame",
                "export it again",
            )
        )
    if offsets[0] != 0.0 and np.isclose(offsets[0], position[2]):
        offsets = offsets - position[2]  # absolute offsets (PS3.3 C.8.8.3.2)
    steps = np.diff(offsets)
    if len(steps) and (not np.allclose(steps, steps[0], rtol=1e-3, atol=1e-3) or steps[0] == 0):
        raise ImageGeometryError(
            format_problem(
                f"{what}: frame offsets {offsets[:4]}... are not equally spaced",
                "sabrkit reads regular dose grids",
                "resample the dose in the planning system",
            )
        )
    z_step = float(steps[0]) if len(steps) else float(ds.get("SliceThickness", 1.0) or 1.0)
    if z_step < 0:
        pixels, z_step = pixels[::-1], -z_step
        position[2] += float(offsets[-1])
    row, col = (float(v) for v in ds.PixelSpacing)
    image = sitk.GetImageFromArray(pixels.astype(np.float32))
    image.SetSpacing((col, row, z_step))
    image.SetOrigin(tuple(position))
    image.SetDirection(
        (float(np.sign(orientation[0])), 0.0, 0.0, 0.0, float(np.sign(orientation[4])), 0.0, 0.0, 0.0, 1.0)
    )
    plans = ds.get("ReferencedRTPlanSequence") or []
    facts = {
        "sop_instance_uid": str(ds.SOPInstanceUID),
        "frame_of_reference_uid": str(ds.get("FrameOfReferenceUID", "")),
        "plan_uid": str(plans[0].ReferencedSOPInstanceUID) if plans else "",
        "dose_type": dose_type,
        "summation_type": str(ds.get("DoseSummationType", "")),
    }
    return image, facts


def read_rtplan(path: str | os.PathLike[str]) -> PlanInfo:
    """Read an RTPLAN's prescription and structure-set reference.

    Raises
    ------
    ValidationError
        Not an RT Plan, no target prescription dose, no fraction group.
    """
    import pydicom

    ds = pydicom.dcmread(path)
    what = f"RTPLAN {str(path)!r}"
    if ds.get("SOPClassUID") != RT_PLAN_SOP_CLASS:
        raise ValidationError(
            format_problem(
                f"{what} has SOP class {ds.get('SOPClassUID')}",
                f"an RT Plan has SOP class {RT_PLAN_SOP_CLASS}",
                "pass an RTPLAN file",
            )
        )
    targets = [
        r
        for r in ds.get("DoseReferenceSequence", [])
        if str(r.get("DoseReferenceType", "")) == "TARGET" and "TargetPrescriptionDose" in r
    ]
    if not targets:
        raise ValidationError(
            format_problem(
                f"{what} has no target dose reference with TargetPrescriptionDose",
                "the prescription comes from the plan's target dose reference",
                "export the plan with its prescription",
            )
        )
    groups = ds.get("FractionGroupSequence", [])
    if not groups or "NumberOfFractionsPlanned" not in groups[0]:
        raise ValidationError(
            format_problem(
                f"{what} has no NumberOfFractionsPlanned",
                "BED needs the number of fractions",
                "export the plan's fraction group",
            )
        )
    structure_sets = ds.get("ReferencedStructureSetSequence", [])
    return PlanInfo(
        sop_instance_uid=str(ds.SOPInstanceUID),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        label=str(ds.get("RTPlanLabel", "")),
        total_dose_gy=max(float(r.TargetPrescriptionDose) for r in targets),
        fractions=int(groups[0].NumberOfFractionsPlanned),
        target_roi_numbers=tuple(int(r.ReferencedROINumber) for r in targets if "ReferencedROINumber" in r),
        rtstruct_uid=str(structure_sets[0].ReferencedSOPInstanceUID) if structure_sets else "",
    )


@dataclass
class DoseLink:
    """One RTDOSE linked to its plan, structure set and CT series (paths, UIDs)."""

    dose_path: str
    dose_uid: str
    frame_of_reference_uid: str
    plan: PlanInfo
    plan_path: str
    rtstruct_path: str
    series_uid: str
    facts: dict[str, str] = field(default_factory=dict)


def link_dose_objects(
    dose_paths: list[str],
    plan_paths: list[str],
    rtstruct_uids: dict[str, str],
    series_of_frame: dict[str, str],
) -> tuple[list[DoseLink], list[CaseFailure]]:
    """Link RTDOSE -> RTPLAN -> RTSTRUCT and RTDOSE -> CT series (by frame of reference).

    Parameters
    ----------
    dose_paths, plan_paths : list of str
        The RTDOSE and RTPLAN files found.
    rtstruct_uids : dict
        SOP instance UID -> path of each RTSTRUCT found.
    series_of_frame : dict
        Frame of reference UID -> CT series UID of the ingested series.

    Returns
    -------
    (list of DoseLink, list of CaseFailure)
        Every dose object that cannot be read or linked is one failure naming it and why.
    """
    failures: list[CaseFailure] = []
    plans: dict[str, tuple[PlanInfo, str]] = {}
    for path in plan_paths:
        try:
            info = read_rtplan(path)
        except (SabrkitError, OSError, AttributeError, ValueError) as exc:
            failures.append(CaseFailure(f"RTPLAN {path}", "dose", f"{type(exc).__name__}: {exc}"))
            continue
        plans[info.sop_instance_uid] = (info, path)
    links: list[DoseLink] = []
    for path in dose_paths:
        try:
            import pydicom

            ds = pydicom.dcmread(path, stop_before_pixels=True)
            dose_uid, frame = str(ds.SOPInstanceUID), str(ds.get("FrameOfReferenceUID", ""))
            refs = ds.get("ReferencedRTPlanSequence") or []
            plan_uid = str(refs[0].ReferencedSOPInstanceUID) if refs else ""
            if plan_uid not in plans:
                raise ValidationError(
                    format_problem(
                        f"RTDOSE {path!r} references RTPLAN {plan_uid or '(none)'}, which is not in the folder",
                        "a dose is joined to a lesion through its plan's prescription and structure set",
                        "export the plan together with the dose",
                    )
                )
            plan, plan_path = plans[plan_uid]
            if plan.rtstruct_uid not in rtstruct_uids:
                raise ValidationError(
                    format_problem(
                        f"RTPLAN {plan_path!r} references structure set {plan.rtstruct_uid or '(none)'}, not in the folder",
                        "the plan's ROIs come from its structure set",
                        "export the RTSTRUCT together with the plan",
                    )
                )
            if frame not in series_of_frame:
                raise ValidationError(
                    format_problem(
                        f"RTDOSE {path!r} has frame of reference {frame or '(none)'}, shared by no ingested CT series",
                        "the dose is resampled onto the CT it was planned on",
                        "export the planning CT with the dose",
                    )
                )
        except SabrkitError as exc:
            failures.append(CaseFailure(f"RTDOSE {path}", "dose", f"{type(exc).__name__}: {exc}"))
            continue
        except (OSError, AttributeError, ValueError) as exc:
            failures.append(CaseFailure(f"RTDOSE {path}", "dose", f"unreadable: {type(exc).__name__}: {exc}"))
            continue
        links.append(
            DoseLink(
                path,
                dose_uid,
                frame,
                plan,
                plan_path,
                rtstruct_uids[plan.rtstruct_uid],
                series_of_frame[frame],
            )
        )
    return links, failures


def resample_dose(dose: Any, reference: Any) -> Any:
    """The dose on ``reference``'s grid (trilinear; 0 Gy outside the dose grid), float32."""
    import SimpleITK as sitk

    return sitk.Resample(dose, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def dose_coverage(dose: Any, mask: Any) -> float:
    """Share (0-1) of the mask's voxels whose centres lie inside the dose grid's extent."""
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(mask)
    if not arr.any():
        raise ImageGeometryError(format_problem("empty mask", "coverage needs a mask", "check the contour"))
    idx = np.argwhere(arr != 0)[:, ::-1].astype(float)  # x, y, z indices
    m = np.asarray(mask.GetDirection()).reshape(3, 3) * np.asarray(mask.GetSpacing())
    points = idx @ m.T + np.asarray(mask.GetOrigin())
    d = np.asarray(dose.GetDirection()).reshape(3, 3) * np.asarray(dose.GetSpacing())
    cont = (points - np.asarray(dose.GetOrigin())) @ np.linalg.inv(d).T
    size = np.asarray(dose.GetSize(), dtype=np.float64)
    inside = ((cont >= -1e-6) & (cont <= size - 1 + 1e-6)).all(axis=1)
    return float(inside.mean())
