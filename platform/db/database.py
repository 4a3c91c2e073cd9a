"""The :class:`Database` object: owns the engine, hands out sessions, wraps writes in transactions.

As in datasette's ``Database``, one object owns the connections of one database; services,
the CLI and the web views receive it and never open connections of their own. Create it in an
entry point (``Database.from_url(settings.database_url)``) and pass it down; there is no
module-level engine.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import URL, Engine
from sqlalchemy.orm import Session, sessionmaker

from sabrkit.db.engine import make_engine

__all__ = ["Database"]

logger = logging.getLogger(__name__)


class Database:
    """One relational database (registry and biobank) reached through one engine.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        Usually made by :func:`sabrkit.db.make_engine`; use :meth:`from_url` instead of
        building one yourself.

    Examples
    --------
    >>> db = Database.from_url("sqlite://")
    >>> db.upgrade()
    >>> with db.transaction() as session:
    ...     session.add(some_record)     # committed when the block ends without error
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessionmaker = sessionmaker(bind=engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str | URL, **engine_kwargs: Any) -> Database:
        """Open the database at ``url`` (see :func:`sabrkit.db.make_engine` for the options)."""
        return cls(make_engine(url, **engine_kwargs))

    @property
    def url(self) -> URL:
        """The engine's URL (render with ``url.render_as_string(hide_password=True)`` for logs)."""
        return self.engine.url

    @property
    def dialect_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def session(self) -> Session:
        """A new session for reading; use it as a context manager (``with db.session() as s:``).

        Writes belong in :meth:`transaction`, which commits or rolls back for you.
        """
        return self._sessionmaker()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Yield a session inside one transaction: commit on success, roll back on any error.

        Objects stay readable after the block (``expire_on_commit=False``).

        Raises
        ------
        Exception
            Whatever the block raised, after the rollback.
        """
        with self._sessionmaker.begin() as session:
            yield session

    def upgrade(self, revision: str = "head") -> None:
        """Migrate this database's schema to ``revision`` (see :func:`sabrkit.db.migrate.upgrade`)."""
        from sabrkit.db.migrate import upgrade

        upgrade(self.engine, revision)

    def current_revision(self) -> str | None:
        """The Alembic revision this database is at, or None for an empty database."""
        from sabrkit.db.migrate import current_revision

        return current_revision(self.engine)

    def dispose(self) -> None:
        """Close every pooled connection (call at the end of a CLI command or test)."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"
