"""The DICOM PS3.15 Table E.1-1 attribute list and how sabrkit resolves its actions.

The table (621 attributes, DICOM 2024e) ships as ``deid_profile_ps315_e1_1.csv`` beside this
module; its header names the source. Actions of the Basic Application Level Confidentiality
Profile (PS3.15 E.1.1):

==  ==========================================================================
X   remove the attribute
Z   replace with a zero-length value
D   replace with a non-zero-length dummy value
U   replace the UID with a different one, consistently within the data set
C   clean: keep what is not identifying (used for the options below)
K   keep
==  ==========================================================================

Where the table allows a choice (``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``) sabrkit takes the one
that keeps the attribute present (``Z`` or ``D``), which satisfies the IOD whether the
attribute is Type 1, 2 or 3; ``X/Z/U*`` sequences are kept and their UIDs replaced.
Two options are applied on top:

* *Retain Longitudinal Temporal Information with Modified Dates* (``C`` in that column):
  dates (``DA``) and date-times (``DT``) are shifted by the patient's offset in whole days
  instead of being removed; times of day are kept.
* *Clean Descriptors*, restricted to structured labels (ROI name, segment label, ROI
  observation label): a label that fully matches a configured pattern such as ``GTV_L2``
  is kept, anything else gets the Basic Profile action. Free-text descriptions
  (study/series/ROI descriptions, comments) are removed as in the Basic Profile.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "ProfileEntry",
    "PROFILE_FILE",
    "profile_entries",
    "profile_entry",
    "resolved_action",
    "CLEANABLE_LABELS",
]

PROFILE_FILE = "deid_profile_ps315_e1_1.csv"
#: Attributes whose values the Clean Descriptors option may keep when they match the pattern.
CLEANABLE_LABELS: frozenset[str] = frozenset({"ROIName", "SegmentLabel", "ROIObservationLabel"})


@dataclass(frozen=True)
class ProfileEntry:
    """One row of PS3.15 Table E.1-1."""

    tag: str
    keyword: str
    name: str
    basic_profile: str
    modified_dates_option: str
    clean_descriptors_option: str

    @property
    def is_private_rule(self) -> bool:
        return self.tag == "GGGG,EEEE"


@functools.lru_cache(maxsize=1)
def profile_entries() -> tuple[ProfileEntry, ...]:
    """Every row of the packaged table, in tag order."""
    text = resources.files("sabrkit.imaging").joinpath(PROFILE_FILE).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return tuple(ProfileEntry(**row) for row in csv.DictReader(lines))


@functools.lru_cache(maxsize=1)
def _index() -> tuple[dict[int, ProfileEntry], list[tuple[re.Pattern[str], ProfileEntry]]]:
    exact: dict[int, ProfileEntry] = {}
    patterns: list[tuple[re.Pattern[str], ProfileEntry]] = []
    for entry in profile_entries():
        if entry.is_private_rule:
            continue
        if "X" in entry.tag:
            patterns.append((re.compile(entry.tag.replace("X", "[0-9A-F]")), entry))
        else:
            exact[int(entry.tag.replace(",", ""), 16)] = entry
    return exact, patterns


def profile_entry(tag: int) -> ProfileEntry | None:
    """The table row for ``tag`` (repeating groups such as ``60xx,3000`` included), or None."""
    exact, patterns = _index()
    entry = exact.get(int(tag))
    if entry is not None:
        return entry
    text = f"{int(tag) >> 16:04X},{int(tag) & 0xFFFF:04X}"
    for pattern, candidate in patterns:
        if pattern.fullmatch(text):
            return candidate
    return None


def resolved_action(entry: ProfileEntry, vr: str) -> str:
    """The action sabrkit applies: ``X``, ``Z``, ``D``, ``U``, ``KU`` (keep, replace UIDs inside) or ``SHIFT``."""
    if entry.modified_dates_option == "C" and vr in ("DA", "DT"):
        return "SHIFT"
    if entry.modified_dates_option == "C" and vr == "TM":
        return "K"
    choices = entry.basic_profile.split("/")
    if "U*" in choices or (vr == "SQ" and "U" in choices):
        return "KU"
    if choices == ["U"]:
        return "U"
    for preferred in ("D", "Z"):
        if preferred in choices and len(choices) > 1:
            return preferred
    return choices[0]
