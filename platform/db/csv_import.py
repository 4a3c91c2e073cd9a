"""Validate CSV import files row by row with pydantic models, collecting every problem.

Imports in sabrkit validate every row of every file before writing anything (all-or-nothing).
:func:`read_csv_rows` does the per-file part: it checks the header, parses each row with a
pydantic model and turns each failure into a :class:`sabrkit.errors.RowError` instead of
stopping at the first. Cross-row and cross-file rules (duplicates, references) are the
caller's, reported the same way.

Row numbers are line numbers of the file as a spreadsheet shows them: the header is row 1, the
first record row 2.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, NaiveDatetime
from pydantic import ValidationError as PydanticValidationError

from sabrkit.errors import RowError, ValidationError, format_problem

__all__ = [
    "ImportRow",
    "ParsedRow",
    "RawRow",
    "IsoDate",
    "IsoDateTime",
    "read_csv_rows",
    "read_raw_rows",
    "parse_rows",
    "row_error",
    "HIDDEN_VALUE",
]

logger = logging.getLogger(__name__)

#: Shown instead of the value of a column whose values must not appear in messages or logs.
HIDDEN_VALUE = "<hidden: direct identifier>"

RowModel = TypeVar("RowModel", bound=BaseModel)

_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_ISO_DATETIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?$")


def _iso_date_text(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("dates are written YYYY-MM-DD (ISO 8601)")
    return value


def _iso_datetime_text(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATETIME.match(value):
        raise ValueError("date-times are written YYYY-MM-DDTHH:MM (ISO 8601, local time, no zone)")
    return value


#: A date cell: exactly ``YYYY-MM-DD`` (pydantic alone would also take a Unix timestamp).
IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]
#: A date-time cell: ``YYYY-MM-DDTHH:MM`` (optionally ``:SS``), local time without a zone.
IsoDateTime = Annotated[NaiveDatetime, BeforeValidator(_iso_datetime_text)]


class ImportRow(BaseModel):
    """Base of the row models: strips whitespace, refuses NaN and infinity, is immutable."""

    model_config = ConfigDict(str_strip_whitespace=True, allow_inf_nan=False, frozen=True, extra="ignore")


@dataclass(frozen=True)
class ParsedRow(Generic[RowModel]):
    """A row that passed its model: the file's row number and the parsed record."""

    row: int
    record: RowModel


def row_error(label: str, row: int, column: str, value: object, rule: str) -> RowError:
    """A :class:`RowError` whose column names the file too (``"lesions.csv:site"``)."""
    return RowError(row=row, column=f"{label}:{column}", value=value, rule=rule)


def _rule_text(error: dict[str, object]) -> str:
    if error.get("type") == "missing":
        return "a value is required (the cell is empty)"
    return str(error.get("msg", "invalid value"))


@dataclass(frozen=True)
class RawRow:
    """One record as read: its row number in the source and its non-empty cells as text."""

    row: int
    values: dict[str, str]


#: Encoding of CSV files unless told otherwise (a byte-order mark is accepted).
DEFAULT_ENCODING = "utf-8-sig"


def encoding_problem(path: Path, encoding: str) -> ValidationError:
    """The house error for a file that is not text in ``encoding``: names the file, the line and the fix."""
    line = 0
    column = 0
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as exc:
                line, column = number, exc.start + 1
                break
    where = f"line {line}, byte {column}" if line else "somewhere in the file"
    name = "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8-sig", "utf-8", "utf8") else encoding
    return ValidationError(
        format_problem(
            f"{path}: {where} is not {name} text",
            "CSV files are UTF-8 unless an encoding is given",
            "save the file as UTF-8 (Excel: 'CSV UTF-8'), or pass --encoding latin-1 (or the file's real encoding); "
            "nothing was imported",
        ),
        field="encoding",
    )


def read_raw_rows(path: Path, encoding: str | None = None) -> tuple[list[str], list[RawRow], list[RowError]]:
    """Read a CSV file as text cells: header, rows (empty cells dropped) and rows with extra cells.

    Raises
    ------
    ValidationError
        The file is not text in ``encoding`` (default UTF-8): the message names the line and the fix.
    """
    encoding = encoding or DEFAULT_ENCODING
    try:
        return _read_raw_rows(path, encoding)
    except UnicodeDecodeError:
        raise encoding_problem(path, encoding) from None
    except LookupError:
        raise ValidationError(
            format_problem(
                f"encoding {encoding!r}",
                "a Python codec name (utf-8, latin-1, cp1252 ...)",
                "pass a known encoding",
            ),
            field="encoding",
        ) from None


def _read_raw_rows(path: Path, encoding: str) -> tuple[list[str], list[RawRow], list[RowError]]:
    rows: list[RawRow] = []
    errors: list[RowError] = []
    with path.open(newline="", encoding=encoding) as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        for raw in reader:
            if None in raw:
                errors.append(
                    row_error(
                        path.name, reader.line_num, "(row)", raw[None], "more cells than header columns"
                    )
                )
                continue
            rows.append(
                RawRow(
                    reader.line_num,
                    {key: value.strip() for key, value in raw.items() if value is not None and value.strip()},
                )
            )
    return header, rows, errors


def parse_rows(
    rows: Iterable[RawRow], model: type[RowModel], *, label: str, hidden_columns: Iterable[str] = ()
) -> tuple[list[ParsedRow[RowModel]], list[RowError]]:
    """Validate raw rows with ``model``; every failing cell becomes a :class:`RowError` of ``label``."""
    hidden = set(hidden_columns)
    parsed: list[ParsedRow[RowModel]] = []
    errors: list[RowError] = []
    validate = model.model_validate
    for raw in rows:
        try:
            parsed.append(ParsedRow(raw.row, validate(raw.values)))
        except PydanticValidationError as exc:
            for problem in exc.errors():
                loc = problem.get("loc") or ("(row)",)
                column = str(loc[0])
                value = HIDDEN_VALUE if column in hidden else raw.values.get(column)
                errors.append(row_error(label, raw.row, column, value, _rule_text(dict(problem))))
    return parsed, errors


def check_header(header: list[str], model: type[BaseModel], label: str) -> list[RowError]:
    """Header problems (row 1): required columns missing, unknown or repeated columns."""
    fields = model.model_fields
    errors = [
        row_error(label, 1, name, None, "required column is missing from the header")
        for name, info in fields.items()
        if info.is_required() and name not in header
    ]
    errors += [
        row_error(label, 1, column, column, "unknown column; expected " + ", ".join(fields))
        for column in header
        if column not in fields
    ]
    if len(set(header)) != len(header):
        errors.append(row_error(label, 1, "header", ",".join(header), "a column name appears twice"))
    return errors


def read_csv_rows(
    path: Path,
    model: type[RowModel],
    *,
    label: str | None = None,
    hidden_columns: Iterable[str] = (),
    encoding: str | None = None,
) -> tuple[list[ParsedRow[RowModel]], list[RowError]]:
    """Parse every row of a CSV file with ``model``; collect problems instead of raising.

    Parameters
    ----------
    path : Path
        UTF-8 CSV file (a byte-order mark is accepted) with a header row.
    model : type of pydantic.BaseModel
        Row model; its required fields are the required columns, fields with a default are
        optional columns. Empty cells are passed as missing values.
    label : str, optional
        Name used in the errors' column (default: the file name).
    hidden_columns : iterable of str
        Columns whose values are replaced by :data:`HIDDEN_VALUE` in errors (direct identifiers).
    encoding : str, optional
        The file's text encoding (default UTF-8, with or without a byte-order mark).

    Returns
    -------
    rows : list of ParsedRow
        Rows that passed the model, in file order.
    errors : list of RowError
        Header problems (row 1) and every failed cell; when the header is wrong the rows are
        not checked (every row would fail the same way).
    """
    label = label or path.name
    header, raw_rows, errors = read_raw_rows(path, encoding)
    errors = check_header(header, model, label) + [
        row_error(label, e.row, e.column.split(":", 1)[1], e.value, e.rule) for e in errors
    ]
    if any(error.row == 1 for error in errors):
        return [], errors
    rows, row_errors = parse_rows(raw_rows, model, label=label, hidden_columns=hidden_columns)
    errors.extend(row_errors)
    logger.debug("%s: %d valid row(s), %d problem(s)", label, len(rows), len(errors))
    return rows, errors
