"""Database errors as named sabrkit errors, with no SQL parameters (no identifier) in the message.

SQLAlchemy's exceptions print the statement and its parameters, and PostgreSQL's ``DETAIL``
line repeats the conflicting key: both can hold hospital numbers, names and dates of birth.
:func:`translate_db_error` turns any database exception into one of the errors below, whose
message names what happened, the rule and the fix, and at most the table and constraint
names, never a value. :meth:`sabrkit.db.Database.transaction` applies it at the service
boundary (every write), the CLI's error handler applies it to anything that still escapes
(reads), and the original exception is never chained (``raise ... from None``) so no
traceback or log line carries it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from sabrkit.errors import SabrkitError, SchemaVersionError, format_problem

__all__ = [
    "DatabaseError",
    "DatabaseUnavailableError",
    "ReadOnlyDatabaseError",
    "WriteConflictError",
    "translate_db_error",
]

logger = logging.getLogger(__name__)


class DatabaseError(SabrkitError, RuntimeError):
    """A database operation failed; the message holds no value of any row."""


class DatabaseUnavailableError(DatabaseError, ConnectionError):
    """The database cannot be reached or opened (server down, file missing, not a database)."""


class ReadOnlyDatabaseError(DatabaseError, PermissionError):
    """The database (file, folder or account) does not allow writing."""


class WriteConflictError(DatabaseError):
    """A write broke a uniqueness or reference rule, usually a concurrent writer's same record."""


_MIGRATE = "run `sabrkit registry migrate` against this database (or check SABRKIT_DATABASE_URL)"


def _where(db_label: str | None) -> str:
    return f"database {db_label}" if db_label else "the database"


def _driver_text(exc: BaseException) -> str:
    """The driver's first message line, lower-cased, for classification only (never shown)."""
    original = getattr(exc, "orig", None) or exc
    return str(original).splitlines()[0].lower() if str(original) else type(original).__name__.lower()


def _constraint(exc: BaseException) -> str | None:
    original = getattr(exc, "orig", None)
    diag = getattr(original, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    match = re.search(r"constraint failed: ([a-z_]+)\.([a-z_]+)", _driver_text(exc))  # SQLite: table.column
    return f"{match.group(1)}.{match.group(2)}" if match else None


def translate_db_error(exc: BaseException, db_label: str | None = None) -> SabrkitError:
    """A named sabrkit error for a database exception (SQLAlchemy's or the driver's).

    Parameters
    ----------
    exc : BaseException
        Usually a :class:`sqlalchemy.exc.SQLAlchemyError`.
    db_label : str, optional
        How to name the database (its URL without password).

    Returns
    -------
    SabrkitError
        :class:`DatabaseUnavailableError`, :class:`~sabrkit.errors.SchemaVersionError` (tables or
        columns missing: the one error for an unmigrated schema, as ``sabrkit.cli.context`` raises),
        :class:`ReadOnlyDatabaseError`, :class:`WriteConflictError` or :class:`DatabaseError`.
        A :class:`SabrkitError` is returned unchanged.
    """
    if isinstance(exc, SabrkitError):
        return exc
    from sqlalchemy import exc as sa_exc

    where = _where(db_label)
    text = _driver_text(exc)
    kind = type(getattr(exc, "orig", None) or exc).__name__
    if isinstance(exc, sa_exc.IntegrityError):
        constraint = _constraint(exc)
        named = f" (constraint {constraint})" if constraint else ""
        return WriteConflictError(
            format_problem(
                f"a write to {where} was refused{named}; nothing was written",
                "each record is stored once and references existing records; another user or process may have "
                "written the same records at the same time",
                "check what is stored now (values are not shown here: they may identify a patient) and retry "
                "only what is missing",
            )
        )
    if "readonly" in text or "read-only" in text or "read only" in text:
        return ReadOnlyDatabaseError(
            format_problem(
                f"{where} is read-only",
                "writing needs write permission on the SQLite file and its folder "
                "(SQLite writes a journal beside it), or a database account allowed to write",
                "fix the permissions (chmod/chown) or connect as a user allowed to write; nothing was written",
            )
        )
    if (
        "no such table" in text
        or "no such column" in text
        or "undefinedtable" in kind.lower()
        or "undefinedcolumn" in kind.lower()
        or ("relation" in text and "does not exist" in text)
        or ("column" in text and "does not exist" in text)
    ):
        return SchemaVersionError(
            format_problem(
                f"{where} lacks sabrkit's tables or columns", "the schema is at the newest revision", _MIGRATE
            )
        )
    if "file is not a database" in text or "not a database" in text or "file is encrypted" in text:
        return DatabaseUnavailableError(
            format_problem(
                f"{where} is not a SQLite database",
                "SABRKIT_DATABASE_URL points at a sabrkit database",
                "check the path (a CSV or other file was given?), or migrate a new file with `sabrkit registry migrate`",
            )
        )
    if "unable to open database file" in text:
        return DatabaseUnavailableError(
            format_problem(
                f"{where} cannot be opened",
                "the SQLite file's folder exists and is readable and writable",
                "check the path and the folder's permissions; create the database with `sabrkit registry migrate`",
            )
        )
    if "database is locked" in text or "lock timeout" in text or "deadlock" in text:
        return DatabaseError(
            format_problem(
                f"{where} is busy: another writer held it too long",
                "one writer at a time",
                "retry when the other import or entry has finished; nothing was written",
            )
        )
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) and (
        "connect" in text
        or "connection" in text
        or "could not translate host" in text
        or "timeout" in text
        or "does not exist" in text
        or "password authentication" in text
    ):
        return DatabaseUnavailableError(
            format_problem(
                f"cannot connect to {where} ({kind})",
                "the database server is running and reachable, and the database and user in the URL exist",
                "start the server or correct SABRKIT_DATABASE_URL / "
                "--database-url (host, port, database name, user)",
            )
        )
    return DatabaseError(
        format_problem(
            f"a database operation on {where} failed ({kind}); details are not shown (they may hold identifiers)",
            "sabrkit's database operations succeed on a migrated, writable database",
            "run `sabrkit registry migrate`, check the database's health, and report the error type if it persists",
        )
    )


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from SQLAlchemy or a DBAPI driver (and must go through :func:`translate_db_error`)."""
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("sqlite3", "psycopg", "psycopg2"))


def database_label(url: Any) -> str:
    """A URL rendered without password, for messages."""
    try:
        return str(url.render_as_string(hide_password=True))
    except AttributeError:
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", str(url))
