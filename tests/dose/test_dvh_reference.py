"""DVH metrics against dicompyler-core (same DICOM files) and against analytic answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq

from sabrkit.dose import StructureDose, dvh_metrics
from sabrkit.dose.plans import plan_dvh
from sabrkit.synthetic.dicom import _rtstruct, derived_uid
from sabrkit.synthetic.dicom_rt import write_rtdose, write_rtplan


def _study_id_of(cohort: Path):
    import pandas as pd

    from sabrkit.imaging import IngestConfig

    keys = pd.read_csv(cohort / "registry" / "identifiers.csv", dtype=str)
    return IngestConfig(patient_key=dict(zip(keys["hospital_number"], keys["study_id"]))).study_id_of


METRICS = ("D98%", "D95%", "D50%", "D2%", "Dmean", "Dmax")


def _theirs(dvhcalc, rtstruct: Path, rtdose: Path, roi_number: int) -> tuple[dict[str, float], object]:
    # dose-grid sampling (no interpolation) and the volume of the counted dose-grid points, as plan_dvh
    dvh = dvhcalc.get_dvh(str(rtstruct), str(rtdose), roi_number, calculate_full_volume=False)
    values = {
        "D98%": dvh.D98.value,
        "D95%": dvh.D95.value,
        "D50%": dvh.D50.value,
        "D2%": dvh.D2.value,
        "Dmean": dvh.mean,
        "Dmax": dvh.statistic("D0.03cc").value,
    }
    return values, dvh


def _agrees(
    ours: float, theirs: float, structure_doses: np.ndarray, voxel_cc: float, metric: str, volume_cc: float
) -> bool:
    """Within 1 % or 0.1 Gy; for a D_x metric also accepted when dicompyler's value is the dose of
    a neighbouring voxel (its D_x is the 0.01 Gy bin whose cumulative volume is *nearest* x,
    sabrkit's the lowest dose of the hottest x: the two differ by at most one voxel)."""
    if abs(ours - theirs) <= max(0.01 * abs(theirs), 0.1):
        return True
    if metric == "Dmean":
        return False
    volume = 0.03 if metric == "Dmax" else float(metric[1:-1]) / 100 * volume_cc
    k = max(1, int(np.ceil(volume / voxel_cc - 1e-9)))
    lo = structure_doses[min(k, structure_doses.size - 1)]
    hi = structure_doses[max(k - 2, 0)]
    return lo - 0.011 <= theirs <= hi + 0.011


@pytest.mark.parametrize("role", ["target", "oar"])
def test_dvh_equals_dicompyler_on_synthetic_plans(planned_export, dicompyler_dvhcalc, role: str) -> None:
    import SimpleITK as sitk

    from sabrkit.imaging.rtdose import read_rtdose
    from sabrkit.imaging.rtstruct import ON_CONTOUR_TOLERANCE_MM, rasterize_contours, read_rtstruct

    cohort, export, _ = planned_export
    study_id_of = _study_id_of(cohort)
    n_compared = n_strict = 0
    misses: list[str] = []
    for patient in sorted(export.iterdir())[:6]:
        study = patient / "ST000001"
        rtstruct = study / "SE000900" / "RS000001.dcm"
        structures = read_rtstruct(rtstruct)
        for dose_file in sorted(study.glob("SE00092*/RD*.dcm")):
            plan_file = next(study.glob(f"SE00091{dose_file.parent.name[-1]}/RP*.dcm"))
            ours, _ = plan_dvh(str(dose_file), str(plan_file), str(rtstruct), study_id_of=study_id_of)
            dose_image, _ = read_rtdose(dose_file)
            dose = sitk.GetArrayFromImage(dose_image)
            voxel_cc = float(np.prod(dose_image.GetSpacing())) / 1000
            for row in ours[ours["role"] == role].itertuples(index=False):
                roi = next(r for r in structures.rois if r.number == row.roi_number)
                mask = sitk.GetArrayFromImage(
                    rasterize_contours(roi.contours, dose_image, on_contour_mm=ON_CONTOUR_TOLERANCE_MM)
                )
                doses = StructureDose(dose, mask, voxel_cc).doses
                theirs, _ = _theirs(dicompyler_dvhcalc, rtstruct, dose_file, row.roi_number)
                for metric in METRICS:
                    value = getattr(
                        row, {"D98%": "_8", "D95%": "_9", "D50%": "_10", "D2%": "_11"}.get(metric, metric)
                    )
                    if theirs[metric] == 0.0 and metric in ("D98%", "D95%"):
                        continue  # dicompyler returns 0 when its relative volume tops out below x (its rule)
                    if not _agrees(value, theirs[metric], doses, voxel_cc, metric, row.volume_cc):
                        misses.append(
                            f"{patient.name} {row.roi_name} {metric}: sabrkit {value:.3f} Gy, "
                            f"dicompyler {theirs[metric]:.3f} Gy"
                        )
                    n_compared += 1
                    n_strict += abs(value - theirs[metric]) <= max(0.01 * abs(theirs[metric]), 0.1)
    assert not misses, misses
    assert n_compared >= 40
    assert n_strict >= 0.9 * n_compared  # the one-voxel definitional difference stays the exception


def _sphere_plan(
    tmp_path: Path, dose_fn, radius_mm: float = 15.0, spacing: float = 1.0
) -> tuple[Path, Path, Path]:
    """A hand-made plan: a sphere contour (90-gon per plane) at the centre of a dose grid given by ``dose_fn``."""
    from sabrkit.synthetic.dicom import mask_contours  # noqa: F401  (same package; contours drawn analytically here)

    n = int(2 * (radius_mm + 10) / spacing) + 1
    origin = (-(n - 1) * spacing / 2 + 0.25 * spacing,) * 2 + (-(n - 1) * spacing / 2,)
    z = origin[2] + np.arange(n) * spacing
    y = origin[1] + np.arange(n) * spacing
    x = origin[0] + np.arange(n) * spacing
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    grid = dose_fn(xx, yy, zz)
    patient = {
        "name": "Phantom^Sphere",
        "hospital_number": "SABR-RCC-999",
        "birth_date": "19000101",
        "sex": "O",
        "age": "000Y",
    }
    import datetime as dt

    study = {
        "date": dt.date(2024, 1, 1),
        "time": "090000",
        "uid": derived_uid("sphere-study"),
        "accession": "A1",
        "study_id": "1",
        "description": "sphere",
    }
    frame = derived_uid("sphere-frame")
    contours = []
    angles = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    for k, zk in enumerate(z):
        r2 = radius_mm**2 - zk**2
        if r2 <= (0.5 * spacing) ** 2:
            continue
        r = np.sqrt(r2)
        contours.append(
            (k, np.column_stack([r * np.cos(angles), r * np.sin(angles), np.full(angles.size, zk)]))
        )
    rois = [
        {
            "number": 1,
            "name": "PTV_sphere",
            "series_uid": derived_uid("sphere-ct"),
            "frame_uid": frame,
            "sop_uids": [derived_uid("sphere-ct", k) for k in range(n)],
            "contours": contours,
            "type": "PTV",
            "description": "sphere",
        }
    ]
    rs = tmp_path / "RS.dcm"
    _rtstruct(rs, patient, study, rois)
    import pydicom

    struct_uid = str(pydicom.dcmread(rs).SOPInstanceUID)
    rp, rd = tmp_path / "RP.dcm", tmp_path / "RD.dcm"
    plan_uid = derived_uid("sphere-plan")
    write_rtplan(
        rp,
        patient,
        study,
        {
            "uid": plan_uid,
            "label": "sphere",
            "frame_uid": frame,
            "rtstruct_uid": struct_uid,
            "ptv_roi_number": 1,
            "ptv_name": "PTV_sphere",
            "total_dose_gy": 20.0,
            "fractions": 1,
            "lesion_number": 1,
        },
    )
    write_rtdose(
        rd,
        patient,
        study,
        {
            "uid": derived_uid("sphere-dose"),
            "plan_uid": plan_uid,
            "frame_uid": frame,
            "grid": grid,
            "spacing": (spacing, spacing, spacing),
            "origin": origin,
            "lesion_number": 1,
        },
    )
    return rs, rp, rd


def test_uniform_dose_sphere_has_the_analytic_dvh(tmp_path: Path, dicompyler_dvhcalc) -> None:
    rs, rp, rd = _sphere_plan(tmp_path, lambda x, y, z: np.full(x.shape, 20.0))
    ours, _ = plan_dvh(str(rd), str(rp), str(rs))
    row = ours.iloc[0]
    for metric in ("D98%", "D95%", "D50%", "D2%", "Dmean", "Dmax", "Dmin"):
        assert row[metric] == pytest.approx(20.0, abs=1e-4)
    assert row["V100%"] == pytest.approx(100.0)
    assert row["volume_cc"] == pytest.approx(4 / 3 * np.pi * 1.5**3, rel=0.03)  # 14.14 cc, voxelised at 1 mm
    theirs, _ = _theirs(dicompyler_dvhcalc, rs, rd, 1)
    # dicompyler-core 0.5.6 returns 0 Gy for every D_x of a perfectly uniform dose (its histogram
    # drops the bin at the maximum); its mean is the reference here
    assert theirs["Dmean"] == pytest.approx(row["Dmean"], abs=0.1)


def test_linear_gradient_sphere_matches_the_spherical_cap_formula(tmp_path: Path, dicompyler_dvhcalc) -> None:
    """Dose 20 + 0.5 x Gy (x in mm) in a sphere of R = 15 mm: the volume above x = t is the cap
    fraction f(t) = (R - t)^2 (2R + t) / (4 R^3), so D_v% = 20 + 0.5 t with f(t) = v / 100 and Dmean = 20 Gy."""
    radius = 15.0
    rs, rp, rd = _sphere_plan(tmp_path, lambda x, y, z: 20.0 + 0.5 * x, radius_mm=radius, spacing=0.5)
    ours, _ = plan_dvh(str(rd), str(rp), str(rs))
    row = ours.iloc[0]
    theirs, _ = _theirs(dicompyler_dvhcalc, rs, rd, 1)

    def analytic(percent: float) -> float:
        t = brentq(
            lambda s: (radius - s) ** 2 * (2 * radius + s) / (4 * radius**3) - percent / 100, -radius, radius
        )
        return 20.0 + 0.5 * t

    for metric, percent in (("D98%", 98), ("D95%", 95), ("D50%", 50), ("D2%", 2)):
        assert row[metric] == pytest.approx(analytic(percent), abs=0.1), metric
    # dicompyler-core is within 1 % of the analytic answer on D50, D2 and Dmean (sabrkit within
    # 0.1 Gy); its D95/D98 (14.32 / 13.57 Gy) lie 1.4 % below the analytic 14.53 / 13.76 Gy
    assert theirs["D50%"] == pytest.approx(analytic(50), rel=0.01)
    assert theirs["D2%"] == pytest.approx(analytic(2), rel=0.01)
    assert theirs["Dmean"] == pytest.approx(20.0, rel=0.01)
    assert row["Dmean"] == pytest.approx(20.0, abs=0.05)
    assert theirs["Dmean"] == pytest.approx(row["Dmean"], abs=0.1)


def test_structure_dose_metrics_by_hand() -> None:
    dose = np.arange(1.0, 101.0).reshape(1, 10, 10)  # 100 voxels of 1..100 Gy, 0.01 cc each
    structure = StructureDose(dose, np.ones_like(dose), 0.01)
    m = dvh_metrics(structure, prescription_gy=50.0)
    assert m["D98%"] == 3.0 and m["D2%"] == 99.0 and m["D50%"] == 51.0  # hottest 98 voxels reach 3 Gy
    assert m["Dmax"] == 98.0  # 0.03 cc = the 3 hottest voxels
    assert (
        m["Dmean"] == pytest.approx(50.5)
        and m["V100%"] == pytest.approx(51.0)
        and m["volume_cc"] == pytest.approx(1.0)
    )
