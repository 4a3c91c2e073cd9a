"""What every CLI command that touches the database shares: settings, the acting user, the database.

One behaviour for every room's commands:

- settings come from ``SABRKIT_*`` (:class:`~sabrkit.settings.Settings`), built here per command;
- the actor (audit log, custody events) is ``--actor``/``--operator``, else ``SABRKIT_ACTOR``,
  else the operating-system user, else ``"unknown"`` (containers without a user name);
- the database is opened with the audit log attached and its schema **checked, never
  migrated**: an outdated or empty schema raises :class:`~sabrkit.errors.SchemaVersionError`
  naming the fix. Only ``sabrkit registry migrate`` (alias ``sabrkit db migrate``) migrates.
"""

from __future__ import annotations

import getpass
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sabrkit.settings import Settings

if TYPE_CHECKING:  # the database stack (SQLAlchemy, Alembic) is imported only by commands that use it
    from sabrkit.db import Database

__all__ = ["DATABASE_URL_OPTION", "ACTOR_OPTION", "resolve_actor", "open_cli_database"]

logger = logging.getLogger(__name__)

DATABASE_URL_OPTION = typer.Option(
    None, "--database-url", help="SQLAlchemy URL (default: SABRKIT_DATABASE_URL)."
)
ACTOR_OPTION = typer.Option(
    None, "--actor", help="Who makes the change (audit log; default: SABRKIT_ACTOR, else the OS user)."
)


def resolve_actor(actor: str | None = None, settings: Settings | None = None) -> str:
    """The acting user: ``actor``, else ``SABRKIT_ACTOR``, else the OS user, else ``"unknown"``."""
    if actor:
        return actor
    configured = (settings or Settings()).actor
    if configured:
        return configured
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return "unknown"


def open_cli_database(
    database_url: str | None = None,
    actor: str | None = None,
    *,
    settings: Settings | None = None,
    migrate: bool = False,
    audit_key_file: str | Path | None = None,
) -> Database:
    """Open the configured database for one command, audit log attached.

    Parameters
    ----------
    database_url : str, optional
        ``--database-url``; default: ``SABRKIT_DATABASE_URL``.
    actor : str, optional
        ``--actor``/``--operator``; default: see :func:`resolve_actor`.
    settings : Settings, optional
        Default: read from the environment.
    migrate : bool, default False
        Upgrade the schema to the newest revision (``sabrkit registry migrate`` only); otherwise
        the schema must already be current.
    audit_key_file : path, optional
        ``--key-file`` of the audit commands; default: ``SABRKIT_AUDIT_KEY_FILE``, else the
        default location (:mod:`sabrkit.audit.keys`).

    Raises
    ------
    sabrkit.errors.SchemaVersionError
        ``migrate`` is false and the schema is empty, behind or ahead.
    """
    from sabrkit.audit import open_database

    settings = settings or Settings()
    db = open_database(
        database_url or settings.database_url,
        actor=resolve_actor(actor, settings),
        audit_key_file=audit_key_file,
    )
    try:
        if migrate:
            db.upgrade()
        else:
            db.require_current_schema()
    except BaseException:
        db.dispose()
        raise
    return db
