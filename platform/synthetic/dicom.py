"""Write a synthetic cohort folder as a hospital-style DICOM export.

For every patient of a cohort folder written by :func:`sabrkit.synthetic.write_cohort`:

* a **planning CT study** (a week before the first SABR fraction) with one CT series per
  lesion region (the lesion's ``images/<lesion_id>_ct.nii.gz``; Series Instance UID =
  the registry's ``series_uid``; each region its own frame of reference, since two regions of
  one patient may occupy the same coordinates), stored as CT Image Storage slices with
  unsigned pixels and ``RescaleIntercept -1024``/``RescaleSlope 1``;
* one **RTSTRUCT** in that study holding every lesion's contour (ROI ``GTV_L<n>``, the
  registry's ``roi_name``), each ROI referencing its own series and frame of reference;
* with ``dose=True`` (default), per lesion (one SABR course row) an **RTPLAN** (prescription =
  the course's total dose and fractions, target = the lesion's PTV) and an **RTDOSE** grid in
  the planning study, from the analytic dose model of :mod:`sabrkit.synthetic.rtplan`; the
  RTSTRUCT then also holds each lesion's PTV (``PTV_L<n>``) and, where the site has one nearby,
  an OAR with its TG-263 name (``SpinalCord``, ``Esophagus`` ...); ``n_violations`` of the
  OARs are placed to break their TG-101 ``Dmax`` limit (see ``dose_truth_path``);
* a **follow-up CT study** (three months after the last fraction, unless after last contact)
  with one uncontoured CT series per lesion region: the baseline region with the lesion shrunk
  by a smooth radial warp (response factor 0.55-0.95; lesions only shrink and the factor is drawn
  independently of the outcome model, so it carries no planted signal), fresh noise, and a small
  rigid set-up difference (:func:`setup_motion`, up to 2 degrees and 4 mm, recorded in the
  follow-up truth so that registration can be checked).

The export carries the fake direct identifiers of ``registry/identifiers.csv`` (name,
hospital number, birth date) and the usual free text, as a real export would; run
:func:`sabrkit.imaging.deidentify_folder` before the data leave the clinical side. Folder
names are opaque (``PA000001/ST000001/SE000001/IM000001.dcm``).

Contours are the iso-0.5 lines of each mask slice (``contourpy``, marching squares); they
pass half-way between inside and outside voxel centres, so filling them back by the even-odd
rule at voxel centres (:func:`sabrkit.imaging.rasterize_contours`) returns the mask exactly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sabrkit.errors import ConfigError, format_problem

if TYPE_CHECKING:  # pydicom is imported by the functions that write files
    from pydicom.dataset import Dataset

__all__ = [
    "FOLLOW_UP_TRUTH_COLUMNS",
    "DicomExportSummary",
    "derived_uid",
    "mask_contours",
    "setup_motion",
    "write_cohort_dicom",
]

logger = logging.getLogger(__name__)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
STUDY_COMPONENT_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (RTSTRUCT references)
INSTITUTION = "Synthetic University Hospital"
_HU_OFFSET = 1024
_FOLLOW_UP_DAYS = 91
#: Columns of ``follow_up_truth.csv``: the lesion's true shrink factor and the set-up motion ``K``
#: of :func:`setup_motion` (Euler angles in radians about x, y, z; translation in mm).
FOLLOW_UP_TRUTH_COLUMNS: tuple[str, ...] = (
    "lesion_id", "study_id", "series_uid", "response", "study_date",
    "setup_angle_x_rad", "setup_angle_y_rad", "setup_angle_z_rad",
    "setup_shift_x_mm", "setup_shift_y_mm", "setup_shift_z_mm",
)  # fmt: skip
_PLANNING_LEAD_DAYS = 7


@dataclass(frozen=True)
class DicomExportSummary:
    """What :func:`write_cohort_dicom` wrote."""

    out_dir: Path
    n_patients: int
    n_image_series: int
    n_rtstruct: int
    n_files: int
    n_bytes: int
    n_rtplan: int = 0
    n_rtdose: int = 0


def derived_uid(*parts: object) -> str:
    """A deterministic DICOM UID under the UUID root ``2.25`` from a SHA-256 of ``parts``."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def mask_contours(mask_slice: np.ndarray) -> list[np.ndarray]:
    """Closed iso-0.5 contours of one 2-D mask slice, as ``(n, 2)`` arrays of (column, row) indices."""
    import contourpy

    if not mask_slice.any():
        return []
    padded = np.pad(mask_slice.astype(np.float64), 1)
    lines = contourpy.contour_generator(z=padded, line_type=contourpy.LineType.Separate).lines(0.5)
    out = []
    for line in lines:
        points = np.asarray(line, dtype=float) - 1.0  # undo the padding
        if len(points) > 1 and np.allclose(points[0], points[-1]):
            points = points[:-1]
        if len(points) >= 3:
            out.append(points)
    return out


def _ds(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _date(value: dt.date) -> str:
    return value.strftime("%Y%m%d")


def _base_dataset(sop_class: str, patient: dict, study: dict, series_uid: str, modality: str) -> Dataset:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = _date(study["date"])
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = study["time"]
    ds.AccessionNumber = study["accession"]
    ds.Modality = modality
    ds.InstitutionName = INSTITUTION
    ds.InstitutionAddress = "1 Example Road, Springfield"
    ds.ReferringPhysicianName = "Oncologist^Example"
    ds.StudyDescription = study["description"]
    ds.OperatorsName = "Radiographer^Example"
    ds.PatientName = patient["name"]
    ds.PatientID = patient["hospital_number"]
    ds.PatientBirthDate = patient["birth_date"]
    ds.PatientSex = patient["sex"]
    ds.PatientAge = patient["age"]
    ds.StudyInstanceUID = study["uid"]
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = study["study_id"]
    return ds


def _ct_series(
    folder: Path, hu: np.ndarray, spacing: tuple, origin: tuple, patient: dict, study: dict, series: dict
) -> int:
    """Write one CT series (``hu`` indexed [z, y, x]); return the bytes written."""
    ds = _base_dataset(CT_IMAGE_STORAGE, patient, study, series["uid"], "CT")
    ds.Manufacturer, ds.ManufacturerModelName = series["manufacturer"], series["model"]
    ds.StationName, ds.DeviceSerialNumber = "CTSIM01", "SN-0042"
    ds.SeriesDescription, ds.SeriesNumber = series["description"], series["number"]
    ds.ProtocolName = "SABR planning" if "lanning" in study["description"] else "Follow-up chest/abdomen"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = series["frame_uid"], ""
    ds.PatientPosition, ds.KVP, ds.SliceThickness = "HFS", "120", _ds(spacing[2])
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]  # row spacing (y), column spacing (x)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = int(hu.shape[1]), int(hu.shape[2])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = str(-_HU_OFFSET), "1", "HU"
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.BurnedInAnnotation = "NO"
    stored = (hu.astype(np.int32) + _HU_OFFSET).clip(0, 65535).astype("<u2")
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for k in range(hu.shape[0]):
        z = origin[2] + k * spacing[2]
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = series["sop_uids"][k]
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(origin[0]), _ds(origin[1]), _ds(z)]
        ds.SliceLocation = _ds(z)
        ds.PixelData = stored[k].tobytes()
        path = folder / f"IM{k + 1:06d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        total += path.stat().st_size
    return total


def _rtstruct(path: Path, patient: dict, study: dict, rois: list[dict]) -> int:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import UID

    uid = derived_uid(study["uid"], "rtstruct")
    ds = _base_dataset(RT_STRUCTURE_SET_STORAGE, patient, study, derived_uid(uid, "series"), "RTSTRUCT")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(uid)
    ds.Manufacturer, ds.SeriesNumber, ds.InstanceNumber = "sabrkit synthetic", 900, 1
    ds.SeriesDescription = "GTVs for SABR"
    ds.StructureSetLabel, ds.StructureSetName = "SABR_GTV", "GTVs drawn by Dr Example"
    ds.StructureSetDate, ds.StructureSetTime = _date(study["date"]), study["time"]
    frames, roi_items, contour_items, observations = [], [], [], []
    for roi in rois:
        image_refs = []
        for sop in roi["sop_uids"]:
            ref = Dataset()
            ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = CT_IMAGE_STORAGE, sop
            image_refs.append(ref)
        series_ref = Dataset()
        series_ref.SeriesInstanceUID, series_ref.ContourImageSequence = (
            roi["series_uid"],
            Sequence(image_refs),
        )
        study_ref = Dataset()
        study_ref.ReferencedSOPClassUID, study_ref.ReferencedSOPInstanceUID = (
            STUDY_COMPONENT_SOP_CLASS,
            study["uid"],
        )
        study_ref.RTReferencedSeriesSequence = Sequence([series_ref])
        frame = Dataset()
        frame.FrameOfReferenceUID, frame.RTReferencedStudySequence = roi["frame_uid"], Sequence([study_ref])
        frames.append(frame)
        item = Dataset()
        item.ROINumber, item.ReferencedFrameOfReferenceUID = roi["number"], roi["frame_uid"]
        item.ROIName, item.ROIGenerationAlgorithm = roi["name"], "MANUAL"
        item.ROIDescription = roi.get("description", f"GTV drawn by Dr Example for {patient['name']}")
        roi_items.append(item)
        contours = []
        for k, points in roi["contours"]:
            contour = Dataset()
            ref = Dataset()
            ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = CT_IMAGE_STORAGE, roi["sop_uids"][k]
            contour.ContourImageSequence = Sequence([ref])
            contour.ContourGeometricType, contour.NumberOfContourPoints = "CLOSED_PLANAR", len(points)
            contour.ContourData = [_ds(v) for v in points.reshape(-1)]
            contours.append(contour)
        roi_contour = Dataset()
        roi_contour.ReferencedROINumber = roi["number"]
        roi_contour.ROIDisplayColor = roi.get("color", ["255", "0", "0"])
        roi_contour.ContourSequence = Sequence(contours)
        contour_items.append(roi_contour)
        observation = Dataset()
        observation.ObservationNumber, observation.ReferencedROINumber = roi["number"], roi["number"]
        observation.RTROIInterpretedType = roi.get("type", "GTV")
        observation.ROIInterpreter = "Example^Doctor"
        observations.append(observation)
    ds.ReferencedFrameOfReferenceSequence = Sequence(frames)
    ds.StructureSetROISequence = Sequence(roi_items)
    ds.ROIContourSequence = Sequence(contour_items)
    ds.RTROIObservationsSequence = Sequence(observations)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path.stat().st_size


def _contours_mm(mask: np.ndarray, spacing: tuple, origin: tuple) -> list[tuple[int, np.ndarray]]:
    out = []
    for k in np.flatnonzero(mask.any(axis=(1, 2))):
        for xy in mask_contours(mask[k]):
            z = np.full((len(xy), 1), origin[2] + k * spacing[2])
            mm = np.hstack([origin[0] + xy[:, :1] * spacing[0], origin[1] + xy[:, 1:] * spacing[1], z])
            out.append((int(k), mm))
    return out


def follow_up_region(
    hu: np.ndarray,
    mask: np.ndarray,
    spacing: tuple,
    response: float,
    noise_sd_hu: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """A follow-up scan of one region: the lesion shrunk by ``response`` and fresh noise.

    Output voxel ``p`` samples the baseline at ``c + (p - c)(1 + a w(r))`` with ``c`` the
    lesion centroid, ``r = |p - c|`` (mm), ``a = 1/response - 1`` and ``w(r) = exp(-(r/2R)^2)``
    (``R`` the lesion's equivalent radius): near the lesion the content shrinks by ``response``,
    far away nothing moves; for ``response >= 0.5`` the map is monotone (no folding).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        int16 HU image and uint8 mask (the true follow-up lesion), indexed [z, y, x].
    """
    from scipy import ndimage as ndi

    if not 0.5 <= response <= 1.0:
        raise ConfigError(format_problem(f"response={response!r}", "must lie in [0.5, 1]", "use e.g. 0.8"))
    step = np.array([spacing[2], spacing[1], spacing[0]], dtype=np.float32)
    centre = np.array(ndi.center_of_mass(mask), dtype=np.float32)
    radius = max(float((mask.sum() * np.prod(step) * 3 / (4 * np.pi)) ** (1 / 3)), 1.0)
    grid = np.indices(hu.shape, dtype=np.float32)
    offset = [(g - c) * s for g, c, s in zip(grid, centre, step)]
    r = np.sqrt(sum(o**2 for o in offset))
    gain = 1.0 + (1.0 / response - 1.0) * np.exp(-((r / (2 * radius)) ** 2))
    coords = [c + o * gain / s for c, o, s in zip(centre, offset, step)]
    image = ndi.map_coordinates(hu.astype(np.float32), coords, order=1, mode="nearest")
    new_mask = ndi.map_coordinates(mask.astype(np.float32), coords, order=1, mode="constant") >= 0.5
    noise = ndi.gaussian_filter(rng.standard_normal(hu.shape).astype(np.float32), (0.3, 0.6, 0.6))
    image += noise * (0.6 * noise_sd_hu / max(float(noise.std()), 1e-6))
    return np.clip(np.rint(image), -1024, 3071).astype(np.int16), new_mask.astype(np.uint8)


def setup_motion(
    hu: np.ndarray,
    mask: np.ndarray,
    spacing: tuple,
    origin: tuple,
    angles_rad: tuple[float, ...],
    translation_mm: tuple[float, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """The follow-up region as seen after a rigid patient set-up difference.

    The set-up motion is the Euler 3-D transform ``K`` (SimpleITK convention: rotation about the
    region's centre by ``angles_rad`` = (x, y, z), then ``translation_mm``): the returned image at
    physical point ``p`` shows the unmoved follow-up at ``K(p)``, so registering the planning CT
    (fixed) to the returned follow-up (moving) should find ``K^-1`` (fixed -> moving points).
    Linear interpolation for the image and nearest neighbour for the mask, edge values continued
    (``mode="nearest"``) so no air appears at the border. Identity direction cosines assumed.
    """
    import SimpleITK as sitk
    from scipy import ndimage as ndi

    motion = sitk.Euler3DTransform()
    step = np.array(spacing, dtype=float)  # x, y, z
    size = np.array(hu.shape[::-1], dtype=float)
    motion.SetCenter(tuple(np.asarray(origin, float) + step * (size - 1) / 2))
    motion.SetRotation(*angles_rad)
    motion.SetTranslation(translation_mm)
    # index (x, y, z) -> physical -> K -> index of the unmoved image; arrays are [z, y, x]
    matrix = np.asarray(motion.GetMatrix()).reshape(3, 3)
    centre, shift = np.asarray(motion.GetCenter()), np.asarray(motion.GetTranslation())
    linear = np.diag(1 / step) @ matrix @ np.diag(step)
    offset = (
        matrix @ (np.asarray(origin, float) - centre) + centre + shift - np.asarray(origin, float)
    ) / step
    flip = np.eye(3)[::-1]  # (x, y, z) <-> (z, y, x)
    image = ndi.affine_transform(
        hu.astype(np.float32), flip @ linear @ flip, offset=flip @ offset, order=1, mode="nearest"
    )
    moved = ndi.affine_transform(mask, flip @ linear @ flip, offset=flip @ offset, order=0, mode="constant")
    return np.clip(np.rint(image), -1024, 3071).astype(np.int16), moved.astype(np.uint8)


def _patients(cohort: Path) -> dict[str, dict]:
    registry = cohort / "registry"
    patients = pd.read_csv(registry / "patients.csv", dtype=str).set_index("study_id")
    keys = pd.read_csv(registry / "identifiers.csv", dtype=str).set_index("study_id")
    out = {}
    for study_id, row in patients.iterrows():
        key = keys.loc[study_id]
        out[study_id] = {
            "name": f"{key.family_name}^{key.given_name}",
            "hospital_number": key.hospital_number,
            "birth_date": key.date_of_birth.replace("-", ""),
            "sex": row.sex,
            "age": f"{int(row.age_years):03d}Y",
            "last_contact": dt.date.fromisoformat(row.last_contact_date),
        }
    return out


def write_cohort_dicom(
    cohort_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    follow_up: bool = True,
    follow_up_truth_dir: str | os.PathLike[str] | None = None,
    dose: bool = True,
    n_violations: int = 3,
    dose_truth_path: str | os.PathLike[str] | None = None,
) -> DicomExportSummary:
    """Write the cohort folder's CT regions and lesion masks as a DICOM export (module docstring).

    Parameters
    ----------
    cohort_dir : path-like
        A folder written by :func:`sabrkit.synthetic.write_cohort` with images.
    out_dir : path-like
        Target folder (created; must not hold files).
    follow_up : bool, default True
        Also write the uncontoured follow-up CT studies.
    follow_up_truth_dir : path-like, optional
        Where to write the true follow-up lesion masks (``<lesion_id>_followup_mask.nii.gz``,
        on the follow-up series' grid) and ``follow_up_truth.csv`` (lesion ID, follow-up series UID,
        response); not written when None. Keep it outside ``out_dir``.
    dose : bool, default True
        Also write PTV and OAR contours, one RTPLAN and one RTDOSE per lesion.
    n_violations : int, default 3
        How many OARs are placed to violate their ``Dmax`` constraint (chosen among the lesions
        with an OAR and a tabulated fractionation, in the order of a hash of their series UID).
    dose_truth_path : path-like, optional
        Where to write the dose ground truth CSV (:data:`sabrkit.synthetic.dicom_rt.DOSE_TRUTH_COLUMNS`);
        keep it outside ``out_dir``.

    Returns
    -------
    DicomExportSummary

    Raises
    ------
    ConfigError
        ``out_dir`` is not empty or the cohort has no images.
    """
    import SimpleITK as sitk

    from sabrkit.synthetic.cohort import SCANNERS
    from sabrkit.synthetic.dicom_rt import DosePlanner

    cohort, out = Path(cohort_dir), Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(
            format_problem(
                f"DICOM output folder {str(out)!r} is not empty",
                "a DICOM export is written into a new folder",
                "remove it or choose another",
            )
        )
    images = pd.read_csv(cohort / "images.csv", dtype=str)
    if images.empty:
        raise ConfigError(
            format_problem(
                f"cohort {str(cohort)!r} has no images",
                "DICOM needs the CT regions",
                "write the cohort with images (write_images=True)",
            )
        )
    lesions = pd.read_csv(cohort / "registry" / "lesions.csv", dtype={"series_uid": str}).set_index(
        "lesion_id"
    )
    courses = pd.read_csv(cohort / "registry" / "sabr_courses.csv", parse_dates=["start_date", "end_date"])
    noise_of = {label: sd for label, sd, _ in SCANNERS}
    patients = _patients(cohort)
    planner = DosePlanner(lesions, courses, n_violations) if dose else None
    truth_rows: list[tuple] = []
    n_series = n_struct = n_files = n_bytes = 0
    for p_index, (study_id, rows) in enumerate(images.groupby("study_id", sort=True), start=1):
        patient = patients[study_id]
        mine = courses[courses["study_id"] == study_id]
        root = out / f"PA{p_index:06d}"
        base_uid = lesions.loc[rows["lesion_id"].iloc[0], "series_uid"]
        planning = {
            "date": mine["start_date"].min().date() - dt.timedelta(days=_PLANNING_LEAD_DAYS),
            "time": "090000",
            "uid": derived_uid(base_uid, "planning"),
            "accession": f"A{p_index:07d}1",
            "study_id": "1",
            "description": "CT SABR planning",
        }
        follow = {
            "date": mine["end_date"].max().date() + dt.timedelta(days=_FOLLOW_UP_DAYS),
            "time": "103000",
            "uid": derived_uid(base_uid, "follow-up"),
            "accession": f"A{p_index:07d}2",
            "study_id": "2",
            "description": "CT chest abdomen follow-up",
        }
        do_follow = follow_up and follow["date"] <= patient["last_contact"]
        rois = []
        for s_index, row in enumerate(rows.sort_values("lesion_id").itertuples(index=False), start=1):
            lesion = lesions.loc[row.lesion_id]
            image = sitk.ReadImage(str(cohort / row.image_path))
            mask = sitk.GetArrayFromImage(sitk.ReadImage(str(cohort / row.mask_path)))
            hu = sitk.GetArrayFromImage(image)
            spacing, origin = image.GetSpacing(), image.GetOrigin()
            manufacturer, _, model = row.scanner.partition(" ")
            uid = str(lesion.series_uid)
            series = {
                "uid": uid,
                "frame_uid": derived_uid(uid, "frame"),
                "number": int(lesion.lesion_number),
                "description": f"Planning CT region {lesion.site}",
                "manufacturer": manufacturer,
                "model": model,
                "sop_uids": [derived_uid(uid, k) for k in range(hu.shape[0])],
            }
            n_bytes += _ct_series(
                root / "ST000001" / f"SE{s_index:06d}", hu, spacing, origin, patient, planning, series
            )
            n_series, n_files = n_series + 1, n_files + hu.shape[0]
            rois.append(
                {
                    "number": int(lesion.lesion_number),
                    "name": str(lesion.roi_name),
                    "series_uid": uid,
                    "frame_uid": series["frame_uid"],
                    "sop_uids": series["sop_uids"],
                    "contours": _contours_mm(mask, spacing, origin),
                }
            )
            if planner is not None:
                rois.extend(
                    planner.plan(
                        row.lesion_id,
                        mask,
                        spacing,
                        origin,
                        series,
                        root / "ST000001",
                        patient,
                        planning,
                        derived_uid(planning["uid"], "rtstruct"),
                        _contours_mm,
                    )
                )
            if do_follow:
                rng = np.random.default_rng(int(uid.rsplit(".", 1)[-1]) % 2**63)
                response = float(rng.uniform(0.55, 0.95))
                fu_hu, fu_mask = follow_up_region(
                    hu, mask, spacing, response, noise_of.get(row.scanner, 15.0), rng
                )
                # set-up difference between the two scans (drawn after the response and noise,
                # so those are unchanged): up to 2 degrees about each axis and 4 mm along each
                angles = tuple(float(a) for a in np.deg2rad(rng.uniform(-2.0, 2.0, 3)))
                shift = tuple(float(t) for t in rng.uniform(-4.0, 4.0, 3))
                fu_hu, fu_mask = setup_motion(fu_hu, fu_mask, spacing, origin, angles, shift)
                fu_uid = derived_uid(uid, "follow-up-series")
                fu_series = dict(
                    series,
                    uid=fu_uid,
                    frame_uid=derived_uid(fu_uid, "frame"),
                    description=f"Follow-up CT region {lesion.site}",
                    sop_uids=[derived_uid(fu_uid, k) for k in range(hu.shape[0])],
                )
                n_bytes += _ct_series(
                    root / "ST000002" / f"SE{s_index:06d}", fu_hu, spacing, origin, patient, follow, fu_series
                )
                n_series, n_files = n_series + 1, n_files + hu.shape[0]
                if follow_up_truth_dir is not None:
                    truth = sitk.GetImageFromArray(fu_mask)
                    truth.CopyInformation(image)
                    Path(follow_up_truth_dir).mkdir(parents=True, exist_ok=True)
                    sitk.WriteImage(
                        truth, str(Path(follow_up_truth_dir) / f"{row.lesion_id}_followup_mask.nii.gz"), True
                    )
                    truth_rows.append(
                        (
                            row.lesion_id,
                            study_id,
                            fu_uid,
                            round(response, 4),
                            _date(follow["date"]),
                            *(round(a, 6) for a in angles),
                            *(round(t, 4) for t in shift),
                        )
                    )
        n_bytes += _rtstruct(root / "ST000001" / "SE000900" / "RS000001.dcm", patient, planning, rois)
        if planner is not None:
            n_bytes += planner.take_bytes()
        n_struct, n_files = n_struct + 1, n_files + 1
    if follow_up_truth_dir is not None:
        pd.DataFrame(truth_rows, columns=list(FOLLOW_UP_TRUTH_COLUMNS)).to_csv(
            Path(follow_up_truth_dir) / "follow_up_truth.csv", index=False, lineterminator="\n"
        )
    n_plans = 0
    if planner is not None:
        n_plans = planner.n_plans
        n_files += 2 * n_plans
        if dose_truth_path is not None:
            planner.truth().to_csv(dose_truth_path, index=False, lineterminator="\n")
    logger.info(
        "wrote DICOM export of %d patients to %s: %d CT series, %d RTSTRUCT, %d files, %.0f MB",
        len(patients),
        out,
        n_series,
        n_struct,
        n_files,
        n_bytes / 1e6,
    )
    return DicomExportSummary(
        out, images["study_id"].nunique(), n_series, n_struct, n_files, n_bytes, n_plans, n_plans
    )
