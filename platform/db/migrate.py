"""Run sabrkit's Alembic migrations from code.

The migration scripts ship inside the package (``sabrkit/db/migrations``), and the Alembic
:class:`~alembic.config.Config` is built here, so migrating needs no ``alembic.ini`` and no
particular working directory::

    from sabrkit.db.migrate import upgrade
    upgrade("sqlite:///data/sabrkit.db")

Every function accepts a URL or an :class:`~sqlalchemy.Engine` (an engine is needed for an
in-memory SQLite database, which lives only as long as its connections).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, MetaData

from sabrkit.db.engine import make_engine

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "target_metadata",
    "upgrade",
    "downgrade",
    "current_revision",
    "head_revision",
    "revision_is_known",
    "schema_differences",
]

logger = logging.getLogger(__name__)

#: Folder of the Alembic environment shipped in the package.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


#: Modules whose import registers the tables of a room on :class:`sabrkit.db.Base`.
MODEL_MODULES = (
    "sabrkit.audit.tables",
    "sabrkit.registry.tables",
    "sabrkit.biobank.tables",
    "sabrkit.web.tables",
)


def target_metadata() -> MetaData:
    """The MetaData of every sabrkit table (importing each room's models fills it).

    A room listed in :data:`MODEL_MODULES` that is not installed is skipped.
    """
    import importlib
    import importlib.util

    from sabrkit.db.base import Base

    for module in MODEL_MODULES:
        if importlib.util.find_spec(module.rsplit(".", 1)[0]) is not None:
            importlib.import_module(module)
    return Base.metadata


def alembic_config(connection: Connection | None = None) -> Config:
    """Build the Alembic configuration in code.

    Parameters
    ----------
    connection : sqlalchemy.Connection, optional
        Handed to ``migrations/env.py`` through ``config.attributes["connection"]``; the
        migration then runs on it (and inside its transaction).

    Returns
    -------
    alembic.config.Config
        ``script_location`` points at the packaged migrations; no ini file is read.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def _connection(url_or_engine: str | URL | Engine) -> Iterator[Connection]:
    """A connection in a transaction that commits on success; disposes engines it created."""
    if isinstance(url_or_engine, Engine):
        with url_or_engine.begin() as connection:
            yield connection
        return
    engine = make_engine(url_or_engine)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def _describe(url_or_engine: str | URL | Engine) -> str:
    url: Any = url_or_engine.url if isinstance(url_or_engine, Engine) else url_or_engine
    return url.render_as_string(hide_password=True) if isinstance(url, URL) else str(url)


def upgrade(url: str | URL | Engine, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: the newest).

    Parameters
    ----------
    url : str, sqlalchemy.URL or sqlalchemy.Engine
        The database; an empty database gets every table.
    revision : str
        Alembic revision identifier (``"head"``, ``"0001"``, ``"+1"``).
    """
    logger.info("migrating %s to %s", _describe(url), revision)
    with _connection(url) as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(url: str | URL | Engine, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"`` drops every table)."""
    logger.info("downgrading %s to %s", _describe(url), revision)
    with _connection(url) as connection:
        command.downgrade(alembic_config(connection), revision)


def current_revision(url: str | URL | Engine) -> str | None:
    """The revision the database at ``url`` is at, or None when it was never migrated."""
    with _connection(url) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of sabrkit."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def revision_is_known(revision: str) -> bool:
    """Whether ``revision`` is one of the migrations shipped with this version of sabrkit."""
    from alembic.util.exc import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def schema_differences(url: str | URL | Engine) -> list[Any]:
    """Differences between the database's schema and the ORM models (empty when they agree).

    Uses :func:`alembic.autogenerate.compare_metadata` (tables, columns, types, nullability,
    indexes, unique and foreign-key constraints); the ``alembic_version`` table is ignored.
    """
    metadata = target_metadata()

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        return not (type_ == "table" and name == "alembic_version")

    with _connection(url) as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "include_object": include_object, "target_metadata": metadata},
        )
        return list(compare_metadata(context, metadata))
