"""The :class:`Database` object: owns the engine, hands out sessions, wraps writes in transactions.

As in datasette's ``Database``, one object owns the connections of one database; services,
the CLI and the web views receive it and never open connections of their own. Create it in an
entry point (``Database.from_url(settings.database_url)``) and pass it down; there is no
module-level engine.

The audit log (:mod:`sabrkit.audit`) is attached by whoever builds the Database, through
``session_hooks``: :func:`sabrkit.audit.open_database` is the constructor every entry point
uses, so every session then logs changes to the models marked :class:`~sabrkit.audit.Audited`
(:meth:`Database.transaction` says who makes the change and why). This package imports
nothing from :mod:`sabrkit.audit`, which builds on it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine
from sqlalchemy.orm import Session, sessionmaker

from sabrkit.db.engine import SQLITE_BEGIN_OPTION, make_engine

__all__ = ["Database", "DEFAULT_ACTOR", "SessionHook"]

_UNREAD = object()

logger = logging.getLogger(__name__)

#: Who makes a change when neither the Database nor the transaction is told.
DEFAULT_ACTOR = "unknown"

#: Called once with each of the Database's ``sessionmaker`` objects (e.g. to attach listeners).
SessionHook = Callable[[sessionmaker[Session]], None]


class Database:
    """One relational database (registry and biobank) reached through one engine.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        Usually made by :func:`sabrkit.db.make_engine`; use :meth:`from_url` instead of
        building one yourself.
    actor : str, optional
        Who makes the changes when :meth:`transaction` is not told (recorded in the audit
        log); default: ``"unknown"``. The CLI passes ``--actor`` or the operating-system user.
    session_hooks : sequence of callables, optional
        Each is called with every ``sessionmaker`` this Database uses (the audit log's
        listeners: :func:`sabrkit.audit.open_database` passes them).

    Examples
    --------
    >>> from sabrkit.audit import open_database
    >>> db = open_database("sqlite://")
    >>> db.upgrade()
    >>> with db.transaction(actor="coordinator1") as session:
    ...     session.add(some_record)     # committed when the block ends without error
    >>> with db.transaction(actor="coordinator1", reason="query 12: visit date typo") as session:
    ...     some_record.visit_date = corrected   # updates and deletes need a reason
    """

    def __init__(
        self,
        engine: Engine,
        *,
        actor: str | None = None,
        session_hooks: Sequence[SessionHook] = (),
        audit_key_file: str | Path | None = None,
    ):
        self.engine = engine
        self.actor = actor or DEFAULT_ACTOR
        # the audit key file (sabrkit.audit.keys): this path, else SABRKIT_AUDIT_KEY_FILE, else the
        # default; read at the first write, never at construction
        self.audit_key_file = audit_key_file
        self._keyring: Any = _UNREAD
        # SQLite takes one writer at a time and makes the others poll (sleeping between tries);
        # threads of one process (the web app's worker threads) queue here instead, first come
        # first served. Other processes still meet SQLite's own lock and busy timeout.
        self._sqlite_writer = threading.RLock() if engine.dialect.name == "sqlite" else None
        self._sessionmaker = sessionmaker(bind=engine, expire_on_commit=False)
        # writes on SQLite begin with BEGIN IMMEDIATE: the write lock is taken up front, so a
        # transaction that reads before it writes cannot fail half-way on a concurrent writer
        self._write_sessionmaker = sessionmaker(
            bind=engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"}), expire_on_commit=False
        )
        for hook in session_hooks:
            hook(self._sessionmaker)
            hook(self._write_sessionmaker)

    @classmethod
    def from_url(
        cls,
        url: str | URL,
        *,
        actor: str | None = None,
        session_hooks: Sequence[SessionHook] = (),
        audit_key_file: str | Path | None = None,
        **engine_kwargs: Any,
    ) -> Database:
        """Open the database at ``url`` (see :func:`sabrkit.db.make_engine` for the options)."""
        return cls(
            make_engine(url, **engine_kwargs),
            actor=actor,
            session_hooks=session_hooks,
            audit_key_file=audit_key_file,
        )

    @property
    def url(self) -> URL:
        """The engine's URL (render with ``url.render_as_string(hide_password=True)`` for logs)."""
        return self.engine.url

    @property
    def label(self) -> str:
        """The URL without password, for messages."""
        return self.url.render_as_string(hide_password=True)

    @property
    def dialect_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def session(self) -> Session:
        """A new session for reading; use it as a context manager (``with db.session() as s:``).

        Writes belong in :meth:`transaction`, which commits or rolls back for you.
        """
        session = self._sessionmaker()
        session.info["audit_actor"] = self.actor
        return session

    @contextmanager
    def transaction(self, *, actor: str | None = None, reason: str | None = None) -> Iterator[Session]:
        """Yield a session inside one transaction: commit on success, roll back on any error.

        Objects stay readable after the block (``expire_on_commit=False``). Changes to audited
        models are logged in the same transaction (a rollback loses both).

        Parameters
        ----------
        actor : str, optional
            Who makes the changes (default: the Database's ``actor``).
        reason : str, optional
            Why; required as soon as an audited row is updated or deleted (first entry needs none).

        Raises
        ------
        sabrkit.audit.AuditError
            An audited row is updated or deleted without a reason (nothing is committed).
        sabrkit.db.errors.DatabaseError
            Any database exception (a constraint, a lost connection, a read-only file ...), as a
            named error without SQL parameters (:func:`sabrkit.db.errors.translate_db_error`).
        Exception
            Whatever else the block raised, after the rollback.
        """
        from sabrkit.audit.listeners import AUDIT_KEYRING
        from sabrkit.db.errors import is_database_error, translate_db_error

        keyring = self.audit_keyring()
        try:
            with self._writer_turn(), self._write_sessionmaker.begin() as session:
                session.info["audit_actor"] = actor or self.actor
                session.info[AUDIT_KEYRING] = keyring
                if reason is not None:
                    session.info["audit_reason"] = reason
                yield session
        except Exception as exc:
            if not is_database_error(exc):
                raise
            # the driver's exception carries the statement's parameters (identifiers): never chained
            error = translate_db_error(exc, self.label)
            logger.info("transaction refused: %s", type(error).__name__)
            raise error from None

    def audit_keyring(self) -> Any:
        """The :class:`~sabrkit.audit.keys.AuditKeyring` that keys this database's audit entries, or None.

        Read from the key file once (see :func:`sabrkit.audit.keys.key_file_path`); None when no key
        file exists (entries are then written unkeyed while the chain has no keyed entry).
        """
        if self._keyring is _UNREAD:
            from sabrkit.audit.keys import load_keyring

            self._keyring = load_keyring(self.audit_key_file)
        return self._keyring

    def forget_audit_keyring(self) -> None:
        """Read the key file again at the next write (after ``sabrkit audit init-key`` or ``rotate-key``)."""
        self._keyring = _UNREAD

    #: Seconds a write transaction waits for another thread's (SQLite) before it gives up.
    WRITER_WAIT_SECONDS = 60.0

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        lock = self._sqlite_writer
        if lock is None:
            yield
            return
        if not lock.acquire(timeout=self.WRITER_WAIT_SECONDS):
            from sabrkit.errors import SabrkitError, format_problem

            raise SabrkitError(
                format_problem(
                    f"a write to {self!r} waited {self.WRITER_WAIT_SECONDS:g} s for another thread's transaction",
                    "SQLite takes one writer at a time",
                    "retry; if it persists, a transaction is left open",
                )
            )
        try:
            yield
        finally:
            lock.release()

    def upgrade(self, revision: str = "head") -> None:
        """Migrate this database's schema to ``revision`` (see :func:`sabrkit.db.migrate.upgrade`)."""
        from sabrkit.db.migrate import upgrade

        upgrade(self.engine, revision)

    def current_revision(self) -> str | None:
        """The Alembic revision this database is at, or None for an empty database."""
        from sabrkit.db.migrate import current_revision

        return current_revision(self.engine)

    def require_current_schema(self) -> None:
        """Raise unless the schema is at the revision this version of sabrkit ships.

        Read-only and writing commands call this instead of migrating: only
        ``sabrkit registry migrate`` (alias ``sabrkit db migrate``) changes the schema.

        Raises
        ------
        sabrkit.errors.SchemaVersionError
            The database is empty, behind, or ahead of this version's newest revision.
        """
        from sabrkit.db.migrate import head_revision
        from sabrkit.errors import SchemaVersionError, format_problem

        current, head = self.current_revision(), head_revision()
        if current == head:
            return
        where = self.url.render_as_string(hide_password=True)
        if current is None:
            what = f"database {where} has no sabrkit schema (no Alembic revision)"
        else:
            what = f"database {where} has schema revision {current}, this sabrkit uses {head}"
        from sabrkit.db.migrate import revision_is_known

        fix = (
            f"install the sabrkit version that wrote revision {current}"
            if current is not None and not revision_is_known(current)
            else f"back up the database, then run `sabrkit registry migrate --database-url '{where}'`"
        )
        raise SchemaVersionError(
            format_problem(
                what, "commands other than `sabrkit registry migrate` never change the schema", fix
            )
        )

    def dispose(self) -> None:
        """Close every pooled connection (call at the end of a CLI command or test)."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"
