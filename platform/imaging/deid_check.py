"""Check that DICOM files hold none of the PHI attributes of PS3.15 Table E.1-1.

:func:`phi_findings` inspects one data set at every nesting level and reports

* any attribute whose (resolved) action is X that is still present;
* Z attributes with a value, D attributes with a value other than the dummy (``PatientID`` /
  ``PatientName`` may hold the pseudonym; structured labels matching the kept pattern pass);
* dates present without ``LongitudinalTemporalInformationModified = MODIFIED``;
* private attributes, a missing ``PatientIdentityRemoved = YES``;
* optionally, any UID of the original files (``original_uids``) and any direct identifier
  string of the key table (``identifiers``: names, hospital numbers, birth dates) anywhere.

:func:`check_deidentified_folder` runs it over a folder; :func:`assert_no_phi` fails with
the list, so a release script stops before PHI leaves the clinical side.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sabrkit.errors import ValidationError, format_problem
from sabrkit.imaging.deid import DUMMY_BY_VR, DUMMY_TEXT
from sabrkit.imaging.deid_profile import CLEANABLE_LABELS, profile_entry, resolved_action

__all__ = ["PhiFinding", "phi_findings", "check_deidentified_folder", "assert_no_phi"]

logger = logging.getLogger(__name__)

_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)


@dataclass(frozen=True)
class PhiFinding:
    """One attribute that should not be in a de-identified file."""

    path: str
    tag: str
    keyword: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.tag} {self.keyword}: {self.reason}"


def _walk(ds: Any) -> Iterator[Any]:
    for element in ds:
        yield element
        if element.VR == "SQ":
            for item in element.value:
                yield from _walk(item)


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == b"" or (hasattr(value, "__len__") and len(value) == 0)


def phi_findings(
    ds: Any,
    *,
    path: str = "",
    pseudonym_pattern: str = r"SABR-RCC-\d{3,}",
    keep_label_pattern: str = r"(GTV|CTV|ITV|PTV|IGTV)[A-Za-z0-9_\-]{0,12}",
    original_uids: frozenset[str] | None = None,
    identifiers: Iterable[str] = (),
) -> list[PhiFinding]:
    """PHI left in one pydicom data set (see the module docstring); empty list = clean."""
    found: list[PhiFinding] = []
    pseudonym = str(ds.get("PatientID", ""))
    label = re.compile(keep_label_pattern)
    needles = [n for n in identifiers if n and len(n) >= 3]
    needle_pattern = re.compile("|".join(map(re.escape, needles)), re.IGNORECASE) if needles else None
    dates_modified = str(ds.get("LongitudinalTemporalInformationModified", "")) == "MODIFIED"

    def add(element: Any, reason: str) -> None:
        found.append(
            PhiFinding(
                path, f"({element.tag.group:04X},{element.tag.element:04X})", element.keyword or "", reason
            )
        )

    if str(ds.get("PatientIdentityRemoved", "")) != "YES":
        found.append(PhiFinding(path, "(0012,0062)", "PatientIdentityRemoved", "missing or not YES"))
    if not re.fullmatch(pseudonym_pattern, pseudonym):
        found.append(PhiFinding(path, "(0010,0020)", "PatientID", "is not a pseudonymous study ID"))
    for element in _walk(ds):
        if element.tag.is_private:
            add(element, "private attribute (Basic Profile: remove)")
            continue
        group = element.tag.group
        if group % 2 == 0 and (0x5000 <= group <= 0x501E or 0x6000 <= group <= 0x601E):
            add(element, "curve or overlay attribute (removed by sabrkit)")
            continue
        value = element.value
        if element.VR in _TEXT_VRS and needle_pattern is not None and not _is_empty(value):
            if needle_pattern.search(str(value)):
                add(element, "holds a direct identifier of the key table")
                continue
        if element.VR == "UI" and original_uids and not _is_empty(value):
            values = [value] if isinstance(value, str) else list(value)
            if any(str(v) in original_uids for v in values):
                add(element, "original UID kept (must be replaced)")
                continue
        entry = profile_entry(int(element.tag))
        if entry is None or (element.VR == "SQ" and resolved_action(entry, "SQ") == "KU"):
            continue
        action = resolved_action(entry, element.VR)
        if entry.keyword in CLEANABLE_LABELS and label.fullmatch(str(value or "")):
            continue
        if action == "X":
            add(element, f"listed with action {entry.basic_profile} (removed by sabrkit) but present")
        elif action == "SHIFT" and not dates_modified and not _is_empty(value):
            add(element, "date kept without LongitudinalTemporalInformationModified = MODIFIED")
        elif action in ("Z", "D") and not _is_empty(value):
            if element.keyword in ("PatientID", "PatientName") and str(value) == pseudonym:
                continue
            if action == "D" and (
                value == DUMMY_BY_VR.get(element.VR, DUMMY_TEXT) or str(value) == DUMMY_TEXT
            ):
                continue
            add(element, f"listed with action {entry.basic_profile} but holds a value")
    return found


def check_deidentified_folder(
    folder: str | os.PathLike[str],
    *,
    original_uids: frozenset[str] | None = None,
    identifiers: Iterable[str] = (),
    pseudonym_pattern: str = r"SABR-RCC-\d{3,}",
    keep_label_pattern: str = r"(GTV|CTV|ITV|PTV|IGTV)[A-Za-z0-9_\-]{0,12}",
) -> list[PhiFinding]:
    """:func:`phi_findings` over every DICOM file under ``folder`` (headers only)."""
    import pydicom

    from sabrkit.imaging.dicom_index import looks_like_dicom

    needles = list(identifiers)
    findings: list[PhiFinding] = []
    n_files = 0
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith(".")):
        if not looks_like_dicom(path):
            continue
        n_files += 1
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        findings += phi_findings(
            ds,
            path=str(path),
            pseudonym_pattern=pseudonym_pattern,
            keep_label_pattern=keep_label_pattern,
            original_uids=original_uids,
            identifiers=needles,
        )
        if (
            ds.file_meta.get("MediaStorageSOPInstanceUID")
            and original_uids
            and str(ds.file_meta.MediaStorageSOPInstanceUID) in original_uids
        ):
            findings.append(
                PhiFinding(str(path), "(0002,0003)", "MediaStorageSOPInstanceUID", "original UID kept")
            )
    logger.info("PHI check of %s: %d file(s), %d finding(s)", folder, n_files, len(findings))
    return findings


def assert_no_phi(findings: list[PhiFinding], *, shown: int = 20) -> None:
    """Raise :class:`ValidationError` listing the findings (the first ``shown``) unless empty."""
    if not findings:
        return
    lines = "\n".join(f"  - {f}" for f in findings[:shown])
    more = f"\n  ... and {len(findings) - shown} more" if len(findings) > shown else ""
    raise ValidationError(
        format_problem(
            f"{len(findings)} PHI attribute(s) remain:\n{lines}{more}\n",
            "released DICOM files hold none of the PS3.15 Table E.1-1 attributes (Basic Profile)",
            "run sabrkit imaging deidentify on the original files and check again",
        )
    )
