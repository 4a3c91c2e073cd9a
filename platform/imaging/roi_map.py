"""``--roi-map FILE.csv``: ROI names -> lesion numbers or organs at risk, for names no pattern covers.

The file is a CSV with a header line:

=============  =========  ==================================================================
column         required   content
=============  =========  ==================================================================
``roi_name``   yes        the ROI / segment name as exported (compared case-insensitively)
``maps_to``    yes        ``L<n>`` or ``<n>`` (lesion number n), a TG-263 OAR name from
                          :data:`sabrkit.imaging.oars.OAR_SYNONYMS` (``SpinalCord``), or
                          ``ignore`` (not a lesion, not an OAR: e.g. ``GTV_old``)
``study_id``   no         restrict the row to one patient (a pseudonymous study ID); empty =
                          every patient
=============  =========  ==================================================================

A row for one patient wins over a row for every patient; the map wins over
``lesion_pattern`` and the OAR synonym table. Every problem is reported by line number.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sabrkit.errors import ValidationError, format_problem
from sabrkit.imaging.oars import OAR_SYNONYMS, normalise_roi_name

__all__ = ["RoiMapError", "RoiTarget", "RoiMap", "read_roi_map", "parse_roi_map", "ROI_MAP_COLUMNS"]

ROI_MAP_COLUMNS: tuple[str, ...] = ("roi_name", "maps_to")
_LESION = re.compile(r"L?(?P<n>[1-9]\d{0,3})", re.IGNORECASE)
_SAFE_COLUMN = re.compile(r"[A-Za-z_][A-Za-z_ ]{0,40}")


class RoiMapError(ValidationError):
    """The ROI map file is malformed."""


@dataclass(frozen=True)
class RoiTarget:
    """What one ROI becomes: a lesion number, an OAR (TG-263 name), or nothing (``ignore``)."""

    lesion_number: int | None = None
    oar: str | None = None

    @property
    def ignored(self) -> bool:
        return self.lesion_number is None and self.oar is None


@dataclass(frozen=True)
class RoiMap:
    """Validated ROI map: ``(study_id or "", normalised roi name) -> RoiTarget``."""

    entries: Mapping[tuple[str, str], RoiTarget]

    def target(self, study_id: str, roi_name: str) -> RoiTarget | None:
        key = normalise_roi_name(roi_name)
        return self.entries.get((study_id, key)) or self.entries.get(("", key))

    def __len__(self) -> int:
        return len(self.entries)


def parse_roi_map(
    columns: Iterable[str],
    rows: Iterable[Mapping[str, str]],
    *,
    source: str = "ROI map",
    pseudonym_pattern: str = r"SABR-RCC-\d{3,6}",
) -> RoiMap:
    """Validate an ROI map given as header and rows (see the module docstring).

    Raises
    ------
    RoiMapError
        Missing columns, an unknown ``maps_to``, a ``study_id`` that is not a pseudonym, or one
        ROI mapped twice; every bad line is listed.
    """
    header = [str(c).strip() for c in columns]
    missing = [c for c in ROI_MAP_COLUMNS if c not in header]
    if missing:
        shown = [c if _SAFE_COLUMN.fullmatch(c) else "<not shown>" for c in header]
        raise RoiMapError(
            format_problem(
                f"{source}: header has columns {shown}, missing {missing}",
                "an ROI map is a CSV with the columns roi_name, maps_to (optional study_id)",
                "add or rename the header line; see docs/imaging.md, 'Naming conventions'",
            )
        )
    entries: dict[tuple[str, str], RoiTarget] = {}
    problems: list[str] = []
    oar_of = {name.casefold(): name for name in OAR_SYNONYMS}
    for line, row in enumerate(rows, start=2):
        roi = str(row.get("roi_name", "") or "").strip()
        target = str(row.get("maps_to", "") or "").strip()
        study = str(row.get("study_id", "") or "").strip()
        if study.lower() == "nan":
            study = ""
        if not roi or not target:
            problems.append(f"line {line}: empty roi_name or maps_to")
            continue
        if study and not re.fullmatch(pseudonym_pattern, study):
            problems.append(
                f"line {line}: study_id is not a pseudonymous study ID ('{pseudonym_pattern}'; value "
                "not shown)"
            )
            continue
        lesion = _LESION.fullmatch(target)
        if lesion is not None:
            value = RoiTarget(lesion_number=int(lesion["n"]))
        elif target.casefold() in oar_of:
            value = RoiTarget(oar=oar_of[target.casefold()])
        elif target.casefold() == "ignore":
            value = RoiTarget()
        else:
            problems.append(
                f"line {line}: maps_to is neither L<n>, a TG-263 OAR name nor 'ignore' (value not shown)"
            )
            continue
        key = (study, normalise_roi_name(roi))
        if key in entries and entries[key] != value:
            problems.append(f"line {line}: this ROI name is mapped twice for the same patient(s)")
            continue
        entries[key] = value
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise RoiMapError(
            format_problem(
                f"{source}: {len(problems)} bad line(s):\n{listed}{more}\n",
                f"maps_to is L<n>, <n>, ignore or one of the TG-263 names {sorted(OAR_SYNONYMS)}",
                "correct those lines",
            )
        )
    return RoiMap(entries)


def read_roi_map(path: str | os.PathLike[str], *, pseudonym_pattern: str = r"SABR-RCC-\d{3,6}") -> RoiMap:
    """Read and validate an ROI map CSV file (see the module docstring)."""
    import pandas as pd

    file = Path(path)
    try:
        table = pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, ValueError) as exc:
        raise RoiMapError(
            format_problem(
                f"ROI map {str(file)!r} could not be read ({type(exc).__name__})",
                "an ROI map is a readable CSV file",
                "check the path",
            )
        ) from exc
    table.columns = [str(c).strip() for c in table.columns]
    return parse_roi_map(
        table.columns, table.to_dict("records"), source=str(file), pseudonym_pattern=pseudonym_pattern
    )
