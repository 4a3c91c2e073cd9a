"""The key table (hospital number -> pseudonymous study ID), read so that it cannot leak.

The key table is the one file that links a DICOM export's ``PatientID`` (a hospital number)
to the registry's study ID. It is a CSV (or Parquet) file with a header line:

===================  =========  ===================================================
column               required   content
===================  =========  ===================================================
``hospital_number``  yes        the DICOM ``PatientID`` of the export
``study_id``         yes        the pseudonym, e.g. ``SABR-RCC-017``
``family_name``      no         searched for by ``phi-check`` (with ``given_name``)
``given_name``       no
``date_of_birth``    no         ``YYYY-MM-DD``; searched for by ``phi-check``
===================  =========  ===================================================

:func:`read_key_table` refuses, with one short message that never repeats a cell value:

* a missing header or missing required columns (the column names are shown only when they
  cannot be identifiers: a header-less file would otherwise print its first hospital number);
* empty cells, a hospital number listed twice;
* a study ID that does not satisfy the study's pseudonym rule (``SABR-RCC-\\d{3,6}``), so a
  table mapping ``LUNG1-001 -> LUNG1-001`` (or to any other non-pseudonym) never ingests;
* a study ID equal to any hospital number of the table, and a hospital number that itself
  satisfies the pseudonym rule (it could pass as a study ID).

:class:`Redactor` then replaces every hospital number of the table (and any other source
``PatientID`` that is not a pseudonym) by a neutral text in anything ingest writes or logs
(failure rows, log lines, the state file's copy of source paths).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sabrkit.errors import ValidationError, format_problem

__all__ = [
    "KeyTableError",
    "KEY_TABLE_COLUMNS",
    "OPTIONAL_KEY_COLUMNS",
    "KeyTable",
    "read_key_table",
    "validate_key_table",
    "Redactor",
]

logger = logging.getLogger(__name__)

#: Required columns of the key table.
KEY_TABLE_COLUMNS: tuple[str, ...] = ("hospital_number", "study_id")
#: Optional columns (direct identifiers searched for by ``phi-check``).
OPTIONAL_KEY_COLUMNS: tuple[str, ...] = ("family_name", "given_name", "date_of_birth")
#: The study's pseudonym rule (registry ``STUDY_ID_PATTERN``).
DEFAULT_PSEUDONYM_PATTERN = r"SABR-RCC-\d{3,6}"
_SHOWN_ROWS = 8
_SAFE_COLUMN = re.compile(r"[A-Za-z_][A-Za-z_ ]{0,40}")


class KeyTableError(ValidationError):
    """The key table is malformed or would let a hospital number into the research data."""


@dataclass(frozen=True)
class KeyTable:
    """A validated key table: hospital number -> study ID, plus the other direct identifiers."""

    study_id_of: Mapping[str, str] = field(repr=False)
    #: strings ``phi-check`` searches for: hospital numbers, ``family^given`` names, birth dates ``YYYYMMDD``
    identifiers: tuple[str, ...] = field(default=(), repr=False)

    @property
    def hospital_numbers(self) -> tuple[str, ...]:
        return tuple(self.study_id_of)

    def __len__(self) -> int:
        return len(self.study_id_of)


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:_SHOWN_ROWS])
    return shown + (f" and {len(rows) - _SHOWN_ROWS} more" if len(rows) > _SHOWN_ROWS else "")


def validate_key_table(
    columns: Iterable[str],
    rows: Iterable[Mapping[str, str]],
    *,
    source: str = "key table",
    pseudonym_pattern: str = DEFAULT_PSEUDONYM_PATTERN,
) -> KeyTable:
    """Check a key table given as its header and rows (see the module docstring).

    Parameters
    ----------
    columns : iterable of str
        The header line.
    rows : iterable of mappings
        One mapping per data row (column -> text).
    source : str
        Name used in messages (the file path).
    pseudonym_pattern : str
        Every study ID must fully match it.

    Returns
    -------
    KeyTable

    Raises
    ------
    KeyTableError
        Listing every problem by row number (file line) and rule, never by value.
    """
    header = [str(c).strip() for c in columns]
    missing = [c for c in KEY_TABLE_COLUMNS if c not in header]
    if missing:
        shown = [c if _SAFE_COLUMN.fullmatch(c) else "<not shown: holds digits or symbols>" for c in header]
        hint = (
            " (a column name that is not shown may be a data value: does the file lack its header line?)"
            if any(not _SAFE_COLUMN.fullmatch(c) for c in header)
            else ""
        )
        raise KeyTableError(
            format_problem(
                f"{source}: header has columns {shown}, missing {missing}{hint}",
                f"a key table is a CSV whose first line names the columns {list(KEY_TABLE_COLUMNS)} "
                f"(optional: {list(OPTIONAL_KEY_COLUMNS)})",
                "rename the columns (e.g. patient_id -> hospital_number) or add the header line; "
                "see docs/imaging.md, 'The key table'",
            )
        )
    pattern = re.compile(pseudonym_pattern)
    mapping: dict[str, str] = {}
    identifiers: list[str] = []
    empty: list[int] = []
    not_pseudonym: list[int] = []
    self_map: list[int] = []
    hospital_like_pseudonym: list[int] = []
    duplicate: list[int] = []
    line_of: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        hospital = str(row.get("hospital_number", "") or "").strip()
        study = str(row.get("study_id", "") or "").strip()
        if not hospital or not study or hospital.lower() == "nan" or study.lower() == "nan":
            empty.append(line)
            continue
        if hospital == study:
            self_map.append(line)
        elif not pattern.fullmatch(study):
            not_pseudonym.append(line)
        if pattern.fullmatch(hospital):
            hospital_like_pseudonym.append(line)
        if hospital in mapping and mapping[hospital] != study:
            duplicate.append(line)
        mapping[hospital] = study
        line_of.setdefault(hospital, line)
        extra = {c: str(row.get(c, "") or "").strip() for c in OPTIONAL_KEY_COLUMNS}
        extra = {c: v for c, v in extra.items() if v and v.lower() != "nan"}
        identifiers.append(hospital)
        if "family_name" in extra and "given_name" in extra:
            identifiers.append(f"{extra['family_name']}^{extra['given_name']}")
        if "date_of_birth" in extra:
            identifiers.append(extra["date_of_birth"].replace("-", ""))
    studies = set(mapping.values())
    crossed = sorted(line_of[h] for h in mapping if h in studies and mapping[h] != h)
    problems = [
        (empty, "empty hospital_number or study_id"),
        (self_map, "maps a hospital number to itself (the hospital number would become the study ID)"),
        (not_pseudonym, f"study_id does not satisfy the pseudonym rule '{pseudonym_pattern}'"),
        (crossed, "a hospital number of this row is also used as a study_id"),
        (
            hospital_like_pseudonym,
            f"hospital_number satisfies the pseudonym rule '{pseudonym_pattern}' "
            "(it could pass as a study ID)",
        ),
        (duplicate, "hospital_number listed before with another study_id"),
    ]
    found = [f"  - line(s) {_rows_text(lines)}: {rule}" for lines, rule in problems if lines]
    if found:
        raise KeyTableError(
            format_problem(
                f"{source}: {sum(len(lines) for lines, _ in problems)} bad row(s) (values not shown):\n"
                + "\n".join(found)
                + "\n",
                "every row maps one hospital number to one pseudonymous study ID, and no hospital number can "
                "reach the research data",
                "correct those lines (study IDs come from the registry's patients table)",
            )
        )
    if not mapping:
        raise KeyTableError(
            format_problem(
                f"{source}: no rows",
                "a key table lists at least one patient",
                "export the registry identifiers table",
            )
        )
    return KeyTable(mapping, tuple(identifiers))


def read_key_table(
    path: str | os.PathLike[str], *, pseudonym_pattern: str = DEFAULT_PSEUDONYM_PATTERN
) -> KeyTable:
    """Read and validate a key table file (``.csv`` or ``.parquet``).

    Raises
    ------
    KeyTableError
        Unreadable file, bad header or bad rows (see :func:`validate_key_table`).
    """
    import pandas as pd

    file = Path(path)
    try:
        if file.suffix.lower() == ".parquet":
            table = pd.read_parquet(file)
        else:
            table = pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, ValueError, ImportError) as exc:
        raise KeyTableError(
            format_problem(
                f"key table {str(file)!r} could not be read ({type(exc).__name__})",
                "a key table is a readable CSV (or Parquet) file",
                "check the path and the file format",
            )
        ) from exc
    table.columns = [str(c).strip() for c in table.columns]
    rows = table.astype(str).to_dict("records")
    return validate_key_table(table.columns, rows, source=str(file), pseudonym_pattern=pseudonym_pattern)


class Redactor:
    """Replace hospital numbers (and other non-pseudonym patient IDs) in text written or logged.

    Parameters
    ----------
    replacements : mapping
        Identifier -> replacement text (e.g. hospital number -> its study ID). Matching is
        case-insensitive; longer identifiers are replaced first.
    """

    def __init__(self, replacements: Mapping[str, str] | None = None) -> None:
        self._replacements: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        for key, value in (replacements or {}).items():
            self.add(key, value)

    def add(self, identifier: str, replacement: str) -> None:
        """Also redact ``identifier`` (ignored when shorter than 3 characters or already known)."""
        identifier = str(identifier).strip()
        if len(identifier) < 3 or identifier.casefold() in self._replacements:
            return
        self._replacements[identifier.casefold()] = replacement
        ordered = sorted(self._replacements, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(k) for k in ordered), re.IGNORECASE)

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: self._replacements[m.group(0).casefold()], text)

    def contains_identifier(self, text: str) -> bool:
        """True when ``text`` holds any identifier this redactor knows."""
        return bool(self._pattern is not None and text and self._pattern.search(text))
