"""A pseudo-PHI corpus: DICOM data sets with names, IDs and dates planted where exports hide them.

Planted in: standard patient/study attributes, private tags (and a private sequence), nested
sequences (RequestAttributesSequence, ReferencedPatientSequence, OtherPatientIDsSequence,
ProcedureCodeSequence, a PN deep inside an RT ROI observation), overlays (group 60xx, with
text in the overlay description and label) and curves (group 50xx), free-text comments, and UIDs
that embed the acquisition date. ``NEEDLES`` lists every planted string; after
de-identification none of them may remain anywhere in the data set (file meta included).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HOSPITAL_NUMBER = "MRN-4471902"
OTHER_HOSPITAL_NUMBER = "RX-0093318"
FAMILY, GIVEN = "Okonkwo-Lindqvist", "Beatrix"
BIRTH_DATE = "19480317"
SCAN_DATE = "20250214"
PHONE = "555-0199-88"
ADDRESS = "12 Quarry Lane, Hollowfield"
#: every planted identifying string (names, numbers, birth date, scan date, phone, address, institution)
NEEDLES: tuple[str, ...] = (
    HOSPITAL_NUMBER,
    OTHER_HOSPITAL_NUMBER,
    FAMILY,
    GIVEN,
    BIRTH_DATE,
    SCAN_DATE,
    PHONE,
    "Quarry Lane",
    "Hollowfield",
    "St Wystan",
    "Dr Pemberton-Ayre",
    "Pemberton",
)
KEY_TABLE = {HOSPITAL_NUMBER: "SABR-RCC-042"}
_DATE_UID_ROOT = "1.2.826.0.1.3680043.9.7431"


def _date_uid(kind: int, n: int) -> str:
    """A UID that embeds the scan date and time, as some scanners build them."""
    return f"{_DATE_UID_ROOT}.{kind}.{SCAN_DATE}093012.{n}"


def corpus_datasets() -> list:
    """Two CT slices and an RTSTRUCT of one patient, each carrying the planted identifiers."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    study, series, frame = _date_uid(1, 1), _date_uid(2, 1), _date_uid(4, 1)

    def base(sop_class: str, modality: str, series_uid: str, sop_uid: str) -> Dataset:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop_class, sop_uid, modality
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series_uid, frame
        ds.PatientID, ds.PatientName = HOSPITAL_NUMBER, f"{FAMILY}^{GIVEN}"
        ds.PatientBirthDate, ds.PatientSex, ds.PatientAge = BIRTH_DATE, "F", "076Y"
        ds.PatientAddress, ds.PatientTelephoneNumbers = ADDRESS, PHONE
        ds.PatientBirthName, ds.PatientMotherBirthName = f"{FAMILY}^{GIVEN}", f"{FAMILY}^Mother"
        ds.OtherPatientIDs = OTHER_HOSPITAL_NUMBER
        ds.IssuerOfPatientID = "St Wystan Hospital"
        other = Dataset()
        other.PatientID, other.IssuerOfPatientID, other.TypeOfPatientID = (
            OTHER_HOSPITAL_NUMBER,
            "St Wystan Hospital",
            "TEXT",
        )
        ds.OtherPatientIDsSequence = Sequence([other])
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = SCAN_DATE
        ds.AcquisitionDateTime = f"{SCAN_DATE}093012.000000"
        ds.StudyTime = ds.SeriesTime = "093012"
        ds.AccessionNumber, ds.StudyID = f"ACC{HOSPITAL_NUMBER}", f"S-{HOSPITAL_NUMBER}"
        ds.InstitutionName, ds.InstitutionAddress = "St Wystan Hospital", ADDRESS
        ds.ReferringPhysicianName, ds.PerformingPhysicianName = "Pemberton-Ayre^Dr", "Pemberton-Ayre^Dr"
        ds.OperatorsName, ds.PhysiciansOfRecord = "Pemberton^Tech", "Pemberton-Ayre^Dr"
        ds.StudyDescription = f"CT chest for {FAMILY} {GIVEN}"
        ds.ImageComments = f"patient {HOSPITAL_NUMBER}, Dr Pemberton-Ayre, phone {PHONE}"
        ds.AdditionalPatientHistory = f"{GIVEN} {FAMILY} born {BIRTH_DATE}"
        ds.AdmittingDiagnosesDescription = f"RCC, see St Wystan file {OTHER_HOSPITAL_NUMBER}"
        ds.StationName, ds.DeviceSerialNumber = "StWystanCT1", "SN-Pemberton"
        request = Dataset()
        request.RequestedProcedureID, request.ScheduledProcedureStepID = (
            HOSPITAL_NUMBER,
            f"SPS-{HOSPITAL_NUMBER}",
        )
        request.AccessionNumber = f"ACC{HOSPITAL_NUMBER}"
        request.RequestedProcedureDescription = f"CT for {FAMILY}"
        ds.RequestAttributesSequence = Sequence([request])
        patient_ref = Dataset()
        patient_ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.1.1"
        patient_ref.ReferencedSOPInstanceUID = _date_uid(9, 1)
        ds.ReferencedPatientSequence = Sequence([patient_ref])
        procedure = Dataset()
        procedure.CodeValue, procedure.CodingSchemeDesignator = "CTCHEST", "99LOCAL"
        procedure.CodeMeaning = f"CT chest {FAMILY}"
        ds.ProcedureCodeSequence = Sequence([procedure])
        ds.add_new(0x00090010, "LO", "STWYSTAN PRIVATE")
        ds.add_new(0x00091001, "LO", f"{FAMILY}^{GIVEN} {HOSPITAL_NUMBER}")
        ds.add_new(0x00091002, "DA", BIRTH_DATE)
        hidden = Dataset()
        hidden.add_new(0x00091010, "PN", f"{FAMILY}^{GIVEN}")
        ds.add_new(0x00091003, "SQ", Sequence([hidden]))
        ds.BurnedInAnnotation = "NO"
        return ds

    datasets = []
    for k in range(2):
        ds = base("1.2.840.10008.5.1.4.1.1.2", "CT", series, _date_uid(3, k + 1))
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 16, 16, 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 2.0 * k], [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.RescaleIntercept, ds.RescaleSlope = [1, 1], -1024, 1
        ds.PixelData = np.full((16, 16), 1000 + k, dtype="<u2").tobytes()
        # overlay plane (group 6000) with text, and a curve (group 5000), both retired/identifying
        ds.add_new(0x60000010, "US", 16)
        ds.add_new(0x60000011, "US", 16)
        ds.add_new(0x60000022, "LO", f"{FAMILY} ROI note")
        ds.add_new(0x60001500, "LO", f"label {HOSPITAL_NUMBER}")
        ds.add_new(0x60003000, "OW", np.packbits(np.eye(16, dtype=np.uint8)).tobytes())
        ds.add_new(0x50000005, "US", 2)
        ds.add_new(0x50002500, "LO", f"curve of {FAMILY}")
        datasets.append(ds)
    rt = base("1.2.840.10008.5.1.4.1.1.481.3", "RTSTRUCT", _date_uid(2, 2), _date_uid(3, 9))
    rt.StructureSetLabel, rt.StructureSetName = "GTV", f"GTVs of {FAMILY}"
    rt.StructureSetDate = SCAN_DATE
    roi = Dataset()
    roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = 1, "GTV_L1", frame
    roi.ROIDescription = f"drawn by Dr Pemberton-Ayre for {HOSPITAL_NUMBER}"
    rt.StructureSetROISequence = Sequence([roi])
    observation = Dataset()
    observation.ObservationNumber, observation.ReferencedROINumber = 1, 1
    observation.ROIInterpreter, observation.RTROIInterpretedType = "Pemberton-Ayre^Dr", "GTV"
    observation.ROIObservationDescription = f"{GIVEN} {FAMILY}"
    rt.RTROIObservationsSequence = Sequence([observation])
    datasets.append(rt)
    return datasets


def burned_in_dataset():
    """A CT slice that declares text burned into its pixels."""
    ds = corpus_datasets()[0]
    ds.BurnedInAnnotation = "YES"
    return ds


def write_corpus(folder: Path) -> list[Path]:
    """The corpus as files (``burned_in.dcm`` last)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, ds in enumerate([*corpus_datasets(), burned_in_dataset()]):
        path = folder / (f"file{n}.dcm" if n < 3 else "burned_in.dcm")
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def all_text(ds) -> str:
    """Every value of a data set (nested items and file meta included) as text, bytes decoded latin-1."""
    parts = []

    def visit(dataset) -> None:
        for element in dataset:
            value = element.value
            parts.append(f"{element.tag} {element.keyword}")
            if element.VR == "SQ":
                for item in value:
                    visit(item)
            elif isinstance(value, bytes):
                parts.append(value.decode("latin-1"))
            else:
                parts.append(str(value))

    visit(ds)
    if getattr(ds, "file_meta", None) is not None:
        visit(ds.file_meta)
    return "\n".join(parts)
