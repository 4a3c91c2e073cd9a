"""Engines for sabrkit's database: SQLite (default, one file) or PostgreSQL (several users).

:func:`make_engine` is the one place where sabrkit turns a URL into an :class:`~sqlalchemy.Engine`.
For SQLite it creates the file's folder and, on every new DBAPI connection, turns on foreign
keys (SQLite leaves them off by default), write-ahead logging (readers do not block the writer)
and a busy timeout (a second writer waits instead of failing with ``database is locked``).
SQLAlchemy, not the ``sqlite3`` module, begins SQLite transactions (SQLAlchemy's documented
recipe), so DDL is transactional, savepoints work and a connection with the execution option
``sabrkit_sqlite_begin="IMMEDIATE"`` begins with ``BEGIN IMMEDIATE`` (takes the write lock
first; used by :meth:`sabrkit.db.Database.transaction`). PostgreSQL URLs (``postgresql+psycopg://user@host/db``) are used unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url

from sabrkit.errors import ConfigError, format_problem

__all__ = ["make_engine", "sqlite_file", "DEFAULT_BUSY_TIMEOUT_MS", "SQLITE_BEGIN_OPTION"]

logger = logging.getLogger(__name__)

#: How long (milliseconds) a SQLite connection waits for another writer before giving up.
DEFAULT_BUSY_TIMEOUT_MS = 60_000  # writers queue up to a minute on a busy SQLite file instead of failing
#: Execution option naming how a SQLite transaction begins: ``DEFERRED`` (default) or ``IMMEDIATE``.
SQLITE_BEGIN_OPTION = "sabrkit_sqlite_begin"
_BEGIN_MODES = {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"}


def sqlite_file(url: str | URL) -> Path | None:
    """Return the database file of a SQLite URL, or None for in-memory or non-SQLite URLs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _set_sqlite_pragmas(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # 64 MiB of page cache per connection (SQLite's default is 2 MiB): the audit log's unique
        # index of random entry hashes outgrows 2 MiB after ~25,000 entries, and a bulk import
        # then spends its time re-reading index pages
        cursor.execute("PRAGMA cache_size=-65536")
    finally:
        cursor.close()
    # let SQLAlchemy emit BEGIN (see the "begin" listener) instead of the sqlite3 module
    dbapi_connection.isolation_level = None


def make_engine(
    url: str | URL,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    echo: bool = False,
    **engine_kwargs: Any,
) -> Engine:
    """Create an engine for a sabrkit database URL.

    Parameters
    ----------
    url : str or sqlalchemy.URL
        ``sqlite:///data/sabrkit.db`` (relative to the process's working directory, as
        SQLAlchemy reads it), ``sqlite://`` (in memory) or ``postgresql+psycopg://user@host/db``.
    busy_timeout_ms : int
        SQLite only: how long a connection waits for a lock held by another writer.
    echo : bool
        Log every SQL statement (SQLAlchemy's own logger).
    **engine_kwargs
        Passed on to :func:`sqlalchemy.create_engine` (``pool_size``, ``connect_args`` ...).

    Returns
    -------
    sqlalchemy.Engine
        For SQLite, every connection has ``PRAGMA foreign_keys=ON``, ``journal_mode=WAL`` and
        ``busy_timeout`` set by a ``connect`` event listener.

    Raises
    ------
    ConfigError
        If the URL cannot be parsed.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError; keep the house message
        raise ConfigError(
            format_problem(
                f"database URL {str(url)!r} cannot be parsed ({exc})",
                "a SQLAlchemy URL such as sqlite:///data/sabrkit.db or postgresql+psycopg://user@host/db",
                "correct SABRKIT_DATABASE_URL or the --database-url option",
            )
        ) from exc
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, echo=echo, **engine_kwargs)

    path = sqlite_file(parsed)
    if path is not None and not path.parent.exists():
        logger.info("creating folder %s for SQLite database", path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, echo=echo, **engine_kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        _set_sqlite_pragmas(dbapi_connection, busy_timeout_ms)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = str(connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")).upper()
        connection.exec_driver_sql(f"BEGIN {mode if mode in _BEGIN_MODES else 'DEFERRED'}")

    return engine
