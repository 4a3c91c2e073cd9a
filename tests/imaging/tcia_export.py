"""A TCIA-style planning CT + RTSTRUCT written with pydicom (NSCLC-Radiomics naming), and an
independent rasterisation of its contours (matplotlib's Path), for the imaging tests."""

from __future__ import annotations

TCIA_SPACING = (0.9765625, 0.9765625, 3.0)  # x, y, z (mm)
TCIA_ORIGIN = (-46.8828125, -51.3671875, -99.0)
TCIA_SHAPE = (24, 96, 96)  # z, y, x


def _circle(cx: float, cy: float, rx: float, ry: float, z: float, n: int = 48, phase: float = 0.1):
    import numpy as np

    t = phase + np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([cx + rx * np.cos(t), cy + ry * np.sin(t), np.full(n, z)])


def tcia_rois() -> dict[str, dict[int, list]]:
    """ROI name -> slice index -> closed contours (n x 3, patient mm), the shapes of a chest CT."""
    _ox, _oy, oz = TCIA_ORIGIN
    sz = TCIA_SPACING[2]
    rois: dict[str, dict[int, list]] = {
        "GTV-1": {},
        "Spinal-Cord": {},
        "Lung-Left": {},
        "Lung-Right": {},
        "Esophagus": {},
        "BODY": {},
    }
    for k in range(TCIA_SHAPE[0]):
        z = oz + k * sz
        if 8 <= k <= 15:
            r = 13.0 - 1.6 * abs(k - 11.5)
            rois["GTV-1"][k] = [_circle(18.3, -6.1, r, 0.8 * r, z)]
        rois["Spinal-Cord"][k] = [_circle(0.4, 28.7, 5.3, 4.6, z, n=24)]
        if 2 <= k <= 21:
            lung = 1.0 - abs(k - 11.5) / 14
            rois["Lung-Left"][k] = [_circle(22.6, -2.3, 17.2 * lung, 30.1 * lung, z)]
            rois["Lung-Right"][k] = [_circle(-23.9, -2.9, 16.4 * lung, 29.3 * lung, z)]
            if k % 5 == 0:  # a second island on some slices (apex)
                rois["Lung-Right"][k].append(_circle(-30.2, 33.4, 4.1, 3.3, z, n=20))
        rois["Esophagus"][k] = [_circle(-1.7, 14.9, 4.4, 3.9, z, n=20)]
        rois["BODY"][k] = [_circle(0.0, 0.0, 45.0, 48.0, z, n=64)]
    return rois


def write_tcia_export(root, patient_id: str = "LUNG1-001", rois: dict | None = None, *, seed: int = 5):
    """A TCIA-style export: ``<patient_id>/<study>/<series>/1-NN.dcm`` CT slices and one RTSTRUCT.

    PatientID and folder names are the hospital-style ID (as in TCIA's NSCLC-Radiomics);
    names, birth date and the institution are in the headers, as in a real export.
    Returns the folder of the patient and the CT SOP instance UIDs in slice order.
    """
    from pathlib import Path

    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    rois = tcia_rois() if rois is None else rois
    rng = np.random.default_rng(seed)
    base = Path(root) / patient_id / "09-18-2008-StudyID-69331"
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    sop_uids = [generate_uid() for _ in range(TCIA_SHAPE[0])]

    def dataset(sop_class: str, modality: str, series: str) -> Dataset:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID = sop_class, ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.Modality = sop_class, modality
        ds.PatientID, ds.PatientName, ds.PatientBirthDate = patient_id, "Lung1^Patient", "19500101"
        ds.PatientSex, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "M", "69331", "A69331", ""
        ds.SeriesNumber = 1 if modality == "CT" else 2
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series, frame_uid
        ds.StudyDate, ds.StudyTime, ds.InstitutionName = "20080918", "101500", "Example Clinic"
        ds.Manufacturer, ds.ManufacturerModelName = "SIEMENS", "Biograph 40"
        return ds

    ct_dir = base / "0.000000-NA-82046"
    ct_dir.mkdir(parents=True)
    hu = rng.normal(-800, 30, TCIA_SHAPE).astype(np.int16)
    for k in range(TCIA_SHAPE[0]):
        ds = dataset("1.2.840.10008.5.1.4.1.1.2", "CT", series_uid)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop_uids[k]
        ds.ImagePositionPatient = [TCIA_ORIGIN[0], TCIA_ORIGIN[1], TCIA_ORIGIN[2] + k * TCIA_SPACING[2]]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [TCIA_SPACING[1], TCIA_SPACING[0]]
        ds.SliceThickness, ds.InstanceNumber = TCIA_SPACING[2], k + 1
        ds.Rows, ds.Columns = TCIA_SHAPE[1], TCIA_SHAPE[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = (hu[k].astype(np.int32) + 1024).astype("<u2").tobytes()
        ds.save_as(ct_dir / f"1-{k + 1:02d}.dcm", enforce_file_format=True)
    rs = dataset("1.2.840.10008.5.1.4.1.1.481.3", "RTSTRUCT", generate_uid())
    rs.SOPInstanceUID = rs.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    rs.StructureSetLabel = "RTstruct"
    contour_images = []
    for sop in sop_uids:
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", sop
        contour_images.append(ref)
    series_ref = Dataset()
    series_ref.SeriesInstanceUID, series_ref.ContourImageSequence = series_uid, Sequence(contour_images)
    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID, study_ref.ReferencedSOPInstanceUID = "1.2.840.10008.3.1.2.3.1", study_uid
    study_ref.RTReferencedSeriesSequence = Sequence([series_ref])
    frame = Dataset()
    frame.FrameOfReferenceUID, frame.RTReferencedStudySequence = frame_uid, Sequence([study_ref])
    rs.ReferencedFrameOfReferenceSequence = Sequence([frame])
    roi_items, contour_items = [], []
    for number, (name, slices) in enumerate(rois.items(), start=1):
        item = Dataset()
        item.ROINumber, item.ReferencedFrameOfReferenceUID, item.ROIName = number, frame_uid, name
        roi_items.append(item)
        contours = []
        for k, polygons in sorted(slices.items()):
            for points in polygons:
                contour = Dataset()
                image = Dataset()
                image.ReferencedSOPClassUID, image.ReferencedSOPInstanceUID = (
                    "1.2.840.10008.5.1.4.1.1.2",
                    sop_uids[k],
                )
                contour.ContourImageSequence = Sequence([image])
                contour.ContourGeometricType, contour.NumberOfContourPoints = "CLOSED_PLANAR", len(points)
                contour.ContourData = [round(float(v), 4) for v in points.reshape(-1)]
                contours.append(contour)
        roi_contour = Dataset()
        roi_contour.ReferencedROINumber, roi_contour.ContourSequence = number, Sequence(contours)
        contour_items.append(roi_contour)
    rs.StructureSetROISequence, rs.ROIContourSequence = Sequence(roi_items), Sequence(contour_items)
    rs_dir = base / "1.000000-NA-61228"
    rs_dir.mkdir(parents=True)
    rs.save_as(rs_dir / "1-1.dcm", enforce_file_format=True)
    return base.parent, sop_uids


def independent_mask(contours_by_slice: dict[int, list]):
    """Voxel-centre inside test with matplotlib's Path (not sabrkit's code): the union of each slice's polygons."""
    import numpy as np
    from matplotlib.path import Path as PolygonPath

    _nz, ny, nx = TCIA_SHAPE
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny))
    centres = np.column_stack(
        [TCIA_ORIGIN[0] + ii.ravel() * TCIA_SPACING[0], TCIA_ORIGIN[1] + jj.ravel() * TCIA_SPACING[1]]
    )
    mask = np.zeros(TCIA_SHAPE, dtype=bool)
    for k, polygons in contours_by_slice.items():
        for points in polygons:
            mask[k] |= PolygonPath(points[:, :2]).contains_points(centres).reshape(ny, nx)
    return mask
