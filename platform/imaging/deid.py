"""De-identify DICOM files with the PS3.15 Basic Profile before they leave the clinical side.

pydicom offers the building blocks (data-set walking, ``remove_private_tags``) and highdicom
none for de-identification, and the dedicated ``deid`` package is not a sabrkit dependency,
so the profile is applied here from the packaged Table E.1-1 (see
:mod:`sabrkit.imaging.deid_profile` for the actions and the options used):

* every attribute of the table gets its action at every nesting level (X remove, Z empty,
  D dummy, U new UID); private attributes, curves (groups 50xx) and overlay planes (60xx, all
  their attributes, not only the data and comments the table lists) are removed;
* an identifier sweep then replaces any remaining text attribute that still holds the
  patient's own PatientID, other patient IDs, name parts or birth date (a name in a local
  code meaning, an ID in a kept label) by the dummy text;
* ``PatientID`` and ``PatientName`` become the registry pseudonym (``SABR-RCC-017``);
* dates and date-times are shifted by one offset per patient (whole days, from the
  patient's pseudonym and the secret, or given), the same in all of that patient's studies;
* UIDs are replaced by ``2.25.<HMAC-SHA256(secret, uid)>``: the same original UID always maps
  to the same new one, so RTSTRUCT and SEG references still resolve after de-identification,
  in this run and in later runs with the same secret;
* ``PatientIdentityRemoved = YES``, ``LongitudinalTemporalInformationModified = MODIFIED`` and
  the de-identification method (with DCM codes 113100, 113105, 113107) are recorded.

Burned-in text in pixels is not handled: files with ``BurnedInAnnotation = YES`` are refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sabrkit.errors import CaseFailure, ConfigError, ValidationError, format_problem
from sabrkit.imaging.deid_profile import CLEANABLE_LABELS, profile_entry, resolved_action
from sabrkit.io import atomic_write

__all__ = [
    "DeidConfig",
    "Deidentifier",
    "DeidResult",
    "deidentify_folder",
    "DUMMY_TEXT",
    "DUMMY_BY_VR",
    "DEID_METHOD",
]

logger = logging.getLogger(__name__)

DUMMY_TEXT = "ANONYMIZED"
DEID_METHOD = "PS3.15 Basic Profile; Modified Dates; Clean Descriptors (labels)"
DUMMY_BY_VR: dict[str, Any] = {
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "AS": "000Y",
    "IS": "0",
    "DS": "0",
    "US": 0,
    "SS": 0,
    "UL": 0,
    "SL": 0,
    "FL": 0.0,
    "FD": 0.0,
    "OB": b"",
    "OW": b"",
    "UN": b"",
}
_METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113105", "Clean Descriptors Option"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
)


@dataclass(frozen=True)
class DeidConfig:
    """Settings of :class:`Deidentifier`.

    Parameters
    ----------
    secret : str
        Key of the UID and date-offset HMACs; keep it on the clinical side (same secret ->
        same UIDs and offsets in every run). At least 16 characters.
    pseudonym_of : mapping
        Source PatientID (hospital number) -> registry pseudonym (the key table).
    date_offset_days : mapping, optional
        Pseudonym -> offset in days (any integer, 0 keeps dates); overrides the derived offset.
    max_shift_days : int, default 365
        Derived offsets are drawn from ``-max_shift_days .. -1`` (dates move back).
    keep_label_pattern : str
        Structured labels (ROI names, segment labels) kept when they fully match it.
    """

    secret: str = field(repr=False)
    pseudonym_of: Mapping[str, str] = field(repr=False)
    date_offset_days: Mapping[str, int] | None = None
    max_shift_days: int = 365
    keep_label_pattern: str = r"(GTV|CTV|ITV|PTV|IGTV)[A-Za-z0-9_\-]{0,12}"

    def __post_init__(self) -> None:
        if not isinstance(self.secret, str) or len(self.secret) < 16:
            raise ConfigError(
                format_problem(
                    "de-identification secret is shorter than 16 characters",
                    "the secret keys the UID and date maps; a short one can be guessed",
                    "set SABRKIT_DEID_SECRET to a long random string kept on the clinical side",
                )
            )
        if not (isinstance(self.max_shift_days, int) and self.max_shift_days >= 1):
            raise ConfigError(
                format_problem(
                    f"max_shift_days={self.max_shift_days!r}", "must be an integer >= 1", "use 365"
                )
            )
        re.compile(self.keep_label_pattern)


class Deidentifier:
    """Apply the profile to pydicom data sets, one patient mapping for all of them."""

    def __init__(self, config: DeidConfig) -> None:
        self.config = config
        self._key = config.secret.encode()
        self._label = re.compile(config.keep_label_pattern)

    def _digest(self, *parts: str) -> bytes:
        return hmac.new(self._key, "\x1f".join(parts).encode(), hashlib.sha256).digest()

    def new_uid(self, uid: str) -> str:
        """The consistent replacement of ``uid`` (``2.25.`` + 128 bits of its HMAC)."""
        return f"2.25.{int.from_bytes(self._digest('uid', str(uid))[:16], 'big')}"

    def offset_days(self, pseudonym: str) -> int:
        """The patient's date offset: given, or derived from the pseudonym and the secret."""
        given = self.config.date_offset_days
        if given is not None and pseudonym in given:
            return int(given[pseudonym])
        return -1 - int.from_bytes(self._digest("date", pseudonym)[:8], "big") % self.config.max_shift_days

    def pseudonym(self, patient_id: str) -> str:
        if patient_id in self.config.pseudonym_of:
            return str(self.config.pseudonym_of[patient_id])
        raise ValidationError(
            format_problem(
                "PatientID (not shown) is not in the key table",
                "every released file is linked to a registry pseudonym",
                "add the patient to the key table (registry identifiers) or leave the file out",
            )
        )

    def deidentify(self, ds: Any) -> Any:
        """De-identify ``ds`` in place and return it.

        Raises
        ------
        ValidationError
            Unknown PatientID, or burned-in annotation in the pixels.
        """
        from pydicom.dataset import Dataset
        from pydicom.sequence import Sequence

        if str(ds.get("BurnedInAnnotation", "NO")).upper() == "YES":
            raise ValidationError(
                format_problem(
                    "image has BurnedInAnnotation = YES",
                    "text burned into pixels cannot be removed by attribute rules",
                    "leave the file out or have it cleaned by pixel-level tools",
                )
            )
        pseudonym = self.pseudonym(str(ds.get("PatientID", "")))
        offset = self.offset_days(pseudonym)
        sweep = _patient_identifier_pattern(ds)
        self._clean(ds, offset)
        swept = _sweep(ds, sweep) if sweep is not None else 0
        if swept:
            logger.info("identifier sweep: %d text attribute(s) still naming the patient replaced", swept)
        ds.PatientID = pseudonym
        ds.PatientName = pseudonym
        ds.PatientIdentityRemoved = "YES"
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
        ds.DeidentificationMethod = DEID_METHOD
        codes = []
        for value, meaning in _METHOD_CODES:
            code = Dataset()
            code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
            codes.append(code)
        ds.DeidentificationMethodCodeSequence = Sequence(codes)
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def _clean(self, ds: Any, offset: int) -> None:
        from pydicom.sequence import Sequence

        for element in list(ds):
            if element.tag.is_private or _is_overlay_or_curve(element.tag.group):
                del ds[
                    element.tag
                ]  # Basic Profile: private attributes, curves (50xx) and overlays (60xx) removed
                continue
            entry = profile_entry(int(element.tag))
            if entry is None:  # not in the table: kept, but its items are cleaned
                if element.VR == "SQ":
                    for item in element.value:
                        self._clean(item, offset)
                continue
            action = resolved_action(entry, element.VR)
            if entry.keyword in CLEANABLE_LABELS and self._label.fullmatch(str(element.value or "")):
                continue  # Clean Descriptors: a structured label such as GTV_L2 is kept
            if action == "X":
                del ds[element.tag]
            elif action == "KU":
                for item in element.value:
                    self._clean(item, offset)
            elif action == "U":
                element.value = _map_values(element.value, self.new_uid)
            elif action == "SHIFT":
                element.value = _map_values(element.value, lambda v, vr=element.VR: _shift(v, vr, offset))
            elif action == "Z":
                element.value = Sequence([]) if element.VR == "SQ" else _empty(element.VR)
            elif action == "D":
                element.value = (
                    Sequence([]) if element.VR == "SQ" else DUMMY_BY_VR.get(element.VR, DUMMY_TEXT)
                )
            # "K": keep


_SWEPT_VRS = frozenset({"LO", "LT", "SH", "ST", "UT", "UC", "PN", "CS", "AE"})


def _is_overlay_or_curve(group: int) -> bool:
    """Repeating groups 5000-501E (curves, retired) and 6000-601E (overlay planes), even groups only."""
    return group % 2 == 0 and (0x5000 <= group <= 0x501E or 0x6000 <= group <= 0x601E)


def _patient_identifier_pattern(ds: Any) -> re.Pattern[str] | None:
    """The patient's own identifiers as found in the data set before cleaning, as one regex.

    PatientID, OtherPatientIDs (and those of OtherPatientIDsSequence), the parts of PatientName
    and PatientBirthName of three characters or more, and the birth date (``YYYYMMDD`` and
    ``YYYY-MM-DD``); whole words only, any case.
    """
    needles: set[str] = set()
    for element in ds.iterall():
        keyword, value = element.keyword, element.value
        if keyword in ("PatientID", "OtherPatientIDs") and value:
            values = [value] if isinstance(value, str) else list(value)
            needles.update(str(v).strip() for v in values)
        elif keyword in ("PatientName", "PatientBirthName") and value:
            needles.update(re.split(r"[\^=\s]+", str(value)))
        elif keyword == "PatientBirthDate" and value and len(str(value)) == 8:
            text = str(value)
            needles.update({text, f"{text[:4]}-{text[4:6]}-{text[6:]}"})
    needles = {n for n in needles if len(n) >= 3}
    if not needles:
        return None
    ordered = sorted(needles, key=len, reverse=True)
    return re.compile(
        r"(?<![A-Za-z0-9])(?:" + "|".join(map(re.escape, ordered)) + r")(?![A-Za-z0-9])", re.IGNORECASE
    )


def _sweep(ds: Any, pattern: re.Pattern[str]) -> int:
    """Replace every remaining text attribute holding a patient identifier by the dummy text (any depth).

    Catches what the attribute table cannot know about: a name in a local code meaning, a
    hospital number in a label of an attribute the profile keeps. PatientID/PatientName (now the
    pseudonym) are not touched.
    """
    swept = 0
    for element in list(ds.iterall()):
        if element.VR not in _SWEPT_VRS or element.keyword in ("PatientID", "PatientName"):
            continue
        value = element.value
        values = [value] if isinstance(value, str) else list(value) if value is not None else []
        if any(isinstance(v, str) and pattern.search(v) for v in values) or (
            element.VR == "PN" and value is not None and pattern.search(str(value))
        ):
            element.value = DUMMY_TEXT if element.VR != "CS" else ""
            swept += 1
    return swept


def _empty(vr: str) -> Any:
    return b"" if vr in ("OB", "OW", "UN") else None


def _map_values(value: Any, func: Any) -> Any:
    from pydicom.multival import MultiValue

    if isinstance(value, (list, MultiValue)):
        return [func(str(v)) for v in value if str(v)]
    return func(str(value)) if str(value) else value


def _shift(value: str, vr: str, offset: int) -> str:
    """Shift a DA (``YYYYMMDD``) or DT (``YYYYMMDDhhmmss...``) value by ``offset`` days."""
    text = value.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return DUMMY_BY_VR[vr]
    try:
        day = dt.datetime.strptime(text[:8], "%Y%m%d").date() + dt.timedelta(days=offset)
    except ValueError:
        return DUMMY_BY_VR[vr]
    return day.strftime("%Y%m%d") + (text[8:] if vr == "DT" else "")


@dataclass
class DeidResult:
    """Outcome of :func:`deidentify_folder`."""

    n_written: int
    n_skipped: int
    failures: list[CaseFailure]
    patients: dict[str, int]


def deidentify_folder(
    src: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: DeidConfig,
    *,
    overwrite: bool = False,
) -> DeidResult:
    """De-identify every DICOM file under ``src`` into ``out_dir``.

    Output files are ``<out>/<pseudonym>/<new series UID>/<new SOP instance UID>.dcm``.
    A file that cannot be read or whose patient is not in the key table is reported (path
    and reason) and left out; the others complete. Existing outputs are kept unless
    ``overwrite`` (same secret -> same names, so a re-run only writes new files).

    Returns
    -------
    DeidResult
        Files written and skipped, failures, and files per pseudonym.
    """
    import pydicom

    from sabrkit.imaging.dicom_index import looks_like_dicom

    deidentifier = Deidentifier(config)
    source, out = Path(src), Path(out_dir)
    written = skipped = 0
    failures: list[CaseFailure] = []
    patients: dict[str, int] = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if not looks_like_dicom(path):
            continue
        try:
            ds = pydicom.dcmread(path)
            pseudonym = deidentifier.pseudonym(str(ds.get("PatientID", "")))
            target = (
                out
                / pseudonym
                / deidentifier.new_uid(str(ds.SeriesInstanceUID))
                / (deidentifier.new_uid(str(ds.SOPInstanceUID)) + ".dcm")
            )
            if target.is_file() and not overwrite:
                skipped += 1
                patients[pseudonym] = patients.get(pseudonym, 0) + 1
                continue
            deidentifier.deidentify(ds)
        except Exception as exc:  # pydicom raises many types for broken files; each is one reported failure
            failures.append(CaseFailure(str(path), "deidentify", f"{type(exc).__name__}: {exc}"))
            continue
        with atomic_write(target) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        written += 1
        patients[pseudonym] = patients.get(pseudonym, 0) + 1
    logger.info(
        "de-identified %s -> %s: %d written, %d kept from before, %d failed",
        source,
        out,
        written,
        skipped,
        len(failures),
    )
    return DeidResult(written, skipped, failures, patients)
