"""Alembic environment for sabrkit (run through :mod:`sabrkit.db.migrate`, not a cwd alembic.ini).

:func:`sabrkit.db.migrate.upgrade` passes an open connection in
``config.attributes["connection"]``. Run from the ``alembic`` command line instead, the URL comes
from the ``sqlalchemy.url`` option. SQLite migrations use batch mode (SQLite cannot ALTER most
things in place).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from sabrkit.db.engine import make_engine
from sabrkit.db.migrate import target_metadata
from sabrkit.errors import ConfigError, format_problem


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Write the SQL to standard output (``alembic upgrade --sql``) instead of running it."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata(),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate on the connection handed over by sabrkit, else on one opened from the URL."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise ConfigError(
            format_problem(
                "no database to migrate",
                "migrations need a connection or the sqlalchemy.url option",
                "run sabrkit.db.migrate.upgrade(url) instead of alembic directly",
            )
        )
    engine = make_engine(url)
    try:
        with engine.begin() as new_connection:
            _run(new_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
