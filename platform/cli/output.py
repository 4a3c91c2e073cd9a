"""Console output, logging set-up and error reporting shared by every CLI command.

Library code only logs; this module is the one place that configures logging handlers and
turns an error into a readable message and a non-zero exit. :func:`handle_errors` gives every
failure the house format (``error: <Type>: <what>; rule: ...; fix: ...``) on one screen and
never prints a traceback: database exceptions become named errors without SQL parameters
(:func:`sabrkit.db.errors.translate_db_error`), undecodable CSV files name the file, line and
``--encoding``, file-system errors name the path, anything unexpected prints its type only
(``SABRKIT_DEBUG=1`` shows the traceback to a developer; it may hold identifiers).

Output is never hard-wrapped (``soft_wrap``): piped into a file, a long line stays one line.
An import with more row errors than :data:`MAX_ERRORS_ON_SCREEN` writes them all to a CSV
(``--errors-out``, default beside the input) and prints a short summary.
"""

from __future__ import annotations

import csv
import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

from sabrkit.errors import ImportValidationError, SabrkitError, ValidationError, format_problem

__all__ = [
    "console",
    "err_console",
    "configure_logging",
    "handle_errors",
    "MAX_ERRORS_ON_SCREEN",
    "DEBUG_ENV",
    "write_error_csv",
    "default_errors_path",
]

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

#: Row errors printed on screen; above this many they all go to a CSV file and the screen gets a summary.
MAX_ERRORS_ON_SCREEN = 100
#: Rows shown in the on-screen summary of a long error list.
SUMMARY_ROWS = 10
#: Environment variable that makes unexpected errors print their traceback (developers only).
DEBUG_ENV = "SABRKIT_DEBUG"

F = TypeVar("F", bound=Callable[..., Any])


def configure_logging(level: str = "INFO") -> None:
    """Send sabrkit's log records to stderr once: through rich on a terminal, as plain lines otherwise."""
    root = logging.getLogger()
    if any(getattr(h, "_sabrkit", False) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler: logging.Handler
    if err_console.is_terminal:
        handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:  # piped or redirected: one line per record, never wrapped
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    setattr(handler, "_sabrkit", True)  # noqa: B010 - marks the handler this module installed
    logging.basicConfig(level=level.upper(), handlers=[handler])
    for noisy in ("radiomics", "alembic", "mlflow", "urllib3", "matplotlib", "distributed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def default_errors_path(source: str) -> Path:
    """Where a long error list goes by default: beside the input (``<file>.errors.csv``, ``<folder>/import-errors.csv``)."""
    path = Path(source)
    if path.is_dir():
        return path / "import-errors.csv"
    return path.with_name(f"{path.name}.errors.csv")


def write_error_csv(error: ImportValidationError, path: Path) -> Path:
    """Write every row error of ``error`` to ``path`` (columns: file, row, column, value, rule)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "row", "column", "value", "rule"])
        for row_error in error.errors:
            file, _, column = row_error.column.rpartition(":")
            writer.writerow(
                [
                    file,
                    row_error.row,
                    column,
                    "" if row_error.value is None else row_error.value,
                    row_error.rule,
                ]
            )
    return path


def _print_error(message: str, kind: str) -> None:
    err_console.print(
        Text.assemble(("error: ", "bold red"), f"{kind}: {message}"), highlight=False, soft_wrap=True
    )


def _report_import_errors(exc: ImportValidationError) -> None:
    errors_out = getattr(exc, "errors_out", None)
    if errors_out is None and len(exc.errors) <= MAX_ERRORS_ON_SCREEN:
        _print_error(str(exc), type(exc).__name__)
        return
    target = Path(errors_out) if errors_out is not None else default_errors_path(exc.source)
    try:
        written: Path | None = write_error_csv(exc, target)
    except OSError as problem:
        written = None
        where = f"{target} could not be written ({problem.strerror}); pass --errors-out FILE"
    lines = "\n".join(f"  - {e}" for e in exc.errors[:SUMMARY_ROWS])
    more = len(exc.errors) - SUMMARY_ROWS
    where = f"all {len(exc.errors)} are listed in {written}" if written is not None else where
    summary = (
        f"{exc.source}: {len(exc.errors)} bad row value(s); nothing was imported. {where}. "
        f"The first {min(SUMMARY_ROWS, len(exc.errors))}:\n{lines}"
        + (f"\n  ... and {more} more" if more > 0 else "")
    )
    _print_error(summary, type(exc).__name__)


def _database_label(database_url: str | None) -> str | None:
    """The URL a command used (its option, else the setting), without password."""
    from sqlalchemy import make_url

    from sabrkit.settings import Settings

    try:
        url = make_url(database_url or Settings().database_url)
        return url.render_as_string(hide_password=True)
    except Exception:
        return None


def explain(exc: BaseException, database_url: str | None = None) -> tuple[str, str]:
    """(type name, house message) for any exception a command raised; never a value from the database."""
    from sabrkit.db.errors import is_database_error, translate_db_error

    if is_database_error(exc):
        exc = translate_db_error(exc, _database_label(database_url))
    if isinstance(exc, SabrkitError):
        return type(exc).__name__, str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return "EncodingError", format_problem(
            f"a file is not UTF-8 text ({exc.encoding} cannot decode byte {exc.object[exc.start : exc.start + 1]!r})",
            "CSV files are read as UTF-8",
            "save the file as UTF-8 (CSV UTF-8 in Excel), or pass --encoding latin-1 "
            "(or the file's encoding) where the command offers it",
        )
    if isinstance(exc, PermissionError):
        return "PermissionError", format_problem(
            f"permission denied: {exc.filename or 'a file'}",
            "sabrkit reads its inputs and writes its outputs",
            "fix the file's or folder's permissions, or choose another path",
        )
    if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError):
        return type(exc).__name__, format_problem(
            f"{exc.strerror or 'not found'}: {exc.filename}",
            "the path must exist and be of the expected kind",
            "check the path",
        )
    if isinstance(exc, OSError):
        return "OSError", format_problem(
            f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}".rstrip(": "),
            "the file system must allow the operation",
            "check the disk, the path and its permissions",
        )
    return "InternalError", format_problem(
        f"unexpected {type(exc).__name__} (details are not printed: they may hold identifiers)",
        "sabrkit turns every foreseen problem into a named error",
        f"report the command and this type; set {DEBUG_ENV}=1 to see the traceback (on a safe screen)",
    )


def handle_errors(func: F) -> F:
    """Print any failure as 'error: <Type>: <message>' on one screen and exit with status 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            import click

            if isinstance(exc, click.exceptions.ClickException):
                raise
            if isinstance(exc, ImportValidationError):
                _report_import_errors(exc)
            else:
                kind, message = explain(exc, kwargs.get("database_url"))
                _print_error(message, kind)
                if os.environ.get(DEBUG_ENV) == "1" and not isinstance(exc, SabrkitError):
                    traceback.print_exception(exc, file=sys.stderr)
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


def parse_date(text: str, option: str) -> Any:
    """A ``YYYY-MM-DD`` command-line value as a date, or a ValidationError naming the option."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValidationError(
            format_problem(
                f"{option} {text!r}", "dates are written YYYY-MM-DD", f"give {option} as e.g. 2025-03-14"
            ),
            field=option,
        ) from None


def parse_datetime(text: str | None, option: str) -> Any:
    """A ``YYYY-MM-DDTHH:MM`` command-line value (None passes), or a ValidationError naming the option."""
    import datetime as dt

    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValidationError(
            format_problem(
                f"{option} {text!r}",
                "date-times are written YYYY-MM-DDTHH:MM",
                f"give {option} as e.g. 2025-03-14T09:30",
            ),
            field=option,
        ) from None
