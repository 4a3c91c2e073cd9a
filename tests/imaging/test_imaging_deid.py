"""De-identification (PS3.15 Basic Profile) and the PHI check."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk

from sabrkit.errors import ConfigError, ValidationError
from sabrkit.imaging import (
    DeidConfig,
    Deidentifier,
    IngestConfig,
    assert_no_phi,
    check_deidentified_folder,
    deidentify_folder,
    ingest_folder,
    profile_entries,
)
from sabrkit.imaging.deid_profile import profile_entry, resolved_action

SECRET = "test-secret-0123456789"


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.dcm"))


def _identifiers(cohort: Path) -> list[str]:
    keys = pd.read_csv(cohort / "registry" / "identifiers.csv", dtype=str)
    return [
        *keys["hospital_number"],
        *(keys["family_name"] + "^" + keys["given_name"]),
        *keys["date_of_birth"].str.replace("-", ""),
    ]


def _original_uids(folder: Path) -> frozenset[str]:
    keep = {
        "SOPClassUID",
        "ReferencedSOPClassUID",
        "MediaStorageSOPClassUID",
        "TransferSyntaxUID",
        "ImplementationClassUID",
    }
    uids = set()
    for path in _dicom_files(folder):
        for element in pydicom.dcmread(path, stop_before_pixels=True).iterall():
            if element.VR == "UI" and element.keyword not in keep:
                uids.add(str(element.value))
    return frozenset(uids)


@pytest.fixture(scope="module")
def deidentified(
    tiny_dicom: Path, key_table: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("deid") / "deid"
    result = deidentify_folder(tiny_dicom, out, DeidConfig(secret=SECRET, pseudonym_of=key_table))
    assert result.failures == [] and result.n_written == len(_dicom_files(tiny_dicom))
    return out


def test_profile_table_is_ps315_table_e1_1() -> None:
    entries = profile_entries()
    assert len(entries) == 621  # DICOM 2024e
    assert profile_entry(0x00100010).basic_profile == "Z"  # Patient's Name
    assert profile_entry(0x00100020).basic_profile == "Z/D"  # Patient ID
    assert profile_entry(0x0020000E).basic_profile == "U"  # Series Instance UID
    assert profile_entry(0x60023000).name == "Overlay Data"  # repeating group 60xx
    assert resolved_action(profile_entry(0x00080020), "DA") == "SHIFT"  # Study Date, modified-dates option
    assert resolved_action(profile_entry(0x00081140), "SQ") == "KU"  # Referenced Image Sequence X/Z/U*


def test_no_listed_phi_tag_and_no_key_table_identifier_remains(
    deidentified: Path, tiny_dicom: Path, tiny_cohort: Path
) -> None:
    findings = check_deidentified_folder(
        deidentified, original_uids=_original_uids(tiny_dicom), identifiers=_identifiers(tiny_cohort)
    )
    assert findings == []
    assert_no_phi(findings)


def test_the_check_fails_on_the_original_export(tiny_dicom: Path, tiny_cohort: Path) -> None:
    findings = check_deidentified_folder(tiny_dicom, identifiers=_identifiers(tiny_cohort))
    keywords = {f.keyword for f in findings}
    assert {"PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "StudyDescription"} <= keywords
    with pytest.raises(ValidationError, match="PHI attribute"):
        assert_no_phi(findings)


def test_patient_id_is_the_pseudonym_and_identity_removed_is_recorded(deidentified: Path, key_table) -> None:
    for path in _dicom_files(deidentified)[:20]:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.PatientID in key_table.values() and ds.PatientName == ds.PatientID
        assert ds.PatientIdentityRemoved == "YES" and ds.LongitudinalTemporalInformationModified == "MODIFIED"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert path.parts[-3] == ds.PatientID


def test_dates_shift_by_one_offset_per_patient_across_studies(deidentified: Path, tiny_dicom: Path) -> None:
    def study_dates(folder: Path) -> dict[str, set[str]]:
        dates: dict[str, set[str]] = {}
        for path in _dicom_files(folder):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            dates.setdefault(ds.PatientID, set()).add(ds.StudyDate)
        return dates

    before = sorted(sorted(v) for v in study_dates(tiny_dicom).values())
    after = sorted(sorted(v) for v in study_dates(deidentified).values())
    for original, shifted in zip(before, after):
        assert len(original) == len(shifted) == 2  # planning and follow-up studies
        day = [dt.datetime.strptime(d, "%Y%m%d") for d in original + shifted]
        assert (day[2] - day[0]) == (day[3] - day[1])  # same offset for both studies
        assert -365 <= (day[2] - day[0]).days <= -1
        assert (day[1] - day[0]) == (day[3] - day[2])  # intervals kept


def test_uids_are_consistent_and_the_deidentified_export_ingests_to_the_same_masks(
    deidentified: Path, tiny_dicom: Path, key_table, tmp_path: Path
) -> None:
    series_of_patient: dict[str, set[str]] = {}
    for path in _dicom_files(deidentified):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        series_of_patient.setdefault(ds.PatientID, set()).add(ds.StudyInstanceUID)
    assert all(len(studies) == 2 for studies in series_of_patient.values())
    original = ingest_folder(tiny_dicom, tmp_path / "original", IngestConfig(patient_key=key_table))
    released = ingest_folder(deidentified, tmp_path / "released")  # PatientID is the pseudonym now
    assert released.failures == []
    a, b = original.lesions.set_index("lesion_id"), released.lesions.set_index("lesion_id")
    assert list(a.index) == list(b.index)
    mapper = Deidentifier(DeidConfig(secret=SECRET, pseudonym_of=key_table))
    for lesion_id in a.index:
        assert b.loc[lesion_id, "series_uid"] == mapper.new_uid(a.loc[lesion_id, "series_uid"])
        mask_a = sitk.GetArrayFromImage(
            sitk.ReadImage(str(tmp_path / "original" / a.loc[lesion_id, "mask_path"]))
        )
        mask_b = sitk.GetArrayFromImage(
            sitk.ReadImage(str(tmp_path / "released" / b.loc[lesion_id, "mask_path"]))
        )
        np.testing.assert_array_equal(mask_a, mask_b)
        assert (
            b.loc[lesion_id, "roi_name"] == a.loc[lesion_id, "roi_name"]
        )  # GTV labels kept (clean descriptors)


def test_rerun_writes_nothing_new_and_the_same_secret_gives_the_same_names(
    deidentified: Path, tiny_dicom: Path, key_table
) -> None:
    names = sorted(p.relative_to(deidentified) for p in _dicom_files(deidentified))
    again = deidentify_folder(tiny_dicom, deidentified, DeidConfig(secret=SECRET, pseudonym_of=key_table))
    assert again.n_written == 0 and again.n_skipped == len(names)
    assert sorted(p.relative_to(deidentified) for p in _dicom_files(deidentified)) == names


def test_unknown_patient_and_short_secret_are_refused(tiny_dicom: Path, tmp_path: Path) -> None:
    result = deidentify_folder(
        tiny_dicom / "PA000001" / "ST000001" / "SE000900",
        tmp_path,
        DeidConfig(secret=SECRET, pseudonym_of={}),
    )
    assert result.n_written == 0 and len(result.failures) == 1
    assert "not in the key table" in result.failures[0].reason
    with pytest.raises(ConfigError, match="16 characters"):
        DeidConfig(secret="short", pseudonym_of={})


def test_private_tags_and_nested_identifiers_are_cleaned(key_table) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    hospital_number, pseudonym = next(iter(key_table.items()))
    ds = Dataset()
    ds.PatientID, ds.PatientName, ds.StudyDate = hospital_number, "Doe^Jane", "20250102"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.add_new(0x00091010, "LO", "private note")
    item = Dataset()
    item.ReferencedSOPInstanceUID, item.OperatorsName = "1.2.3.5", "Smith^Ann"
    ds.ReferencedImageSequence = Sequence([item])
    Deidentifier(
        DeidConfig(secret=SECRET, pseudonym_of=key_table, date_offset_days={pseudonym: -10})
    ).deidentify(ds)
    assert 0x00091010 not in ds
    assert ds.StudyDate == "20241223" and ds.PatientID == pseudonym
    nested = ds.ReferencedImageSequence[0]
    assert nested.ReferencedSOPInstanceUID.startswith("2.25.") and nested.OperatorsName == "ANONYMIZED"
