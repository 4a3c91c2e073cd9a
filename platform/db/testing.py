"""Helpers for tests that need a throw-away database (SQLite in a temp folder or a PostgreSQL
schema), in the spirit of datasette's fixture databases made in temp dirs.

PostgreSQL tests run when ``SABRKIT_TEST_POSTGRES_URL`` names a server
(``postgresql+psycopg://postgres@127.0.0.1:5432/test``); each test gets its own schema, dropped
afterwards, so tests do not see each other's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import make_url, text

from sabrkit.db.engine import make_engine

__all__ = ["POSTGRES_URL_ENV", "postgres_test_url", "sqlite_test_url", "temporary_postgres_schema"]

#: Environment variable naming the PostgreSQL server used by the optional tests.
POSTGRES_URL_ENV = "SABRKIT_TEST_POSTGRES_URL"


def postgres_test_url() -> str | None:
    """The PostgreSQL URL for tests, or None when ``SABRKIT_TEST_POSTGRES_URL`` is unset."""
    return os.environ.get(POSTGRES_URL_ENV) or None


def sqlite_test_url(folder: Path) -> str:
    """URL of a new SQLite file inside ``folder`` (a sub-folder, to exercise folder creation)."""
    return f"sqlite:///{Path(folder) / 'db' / 'sabrkit.db'}"


@contextmanager
def temporary_postgres_schema(server_url: str) -> Iterator[str]:
    """Create a fresh schema, yield a URL whose connections use it, then drop it with its tables.

    Parameters
    ----------
    server_url : str
        ``postgresql+psycopg://user@host:port/database``.

    Yields
    ------
    str
        The same URL with ``options=-csearch_path=<schema>``, so unqualified table names
        (and Alembic's version table) live in the new schema.
    """
    schema = f"sabrkit_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        # application_name tags every connection of this test, so teardown can find the ones a
        # test left open (an unfinished transaction would otherwise make DROP SCHEMA wait forever)
        url = make_url(server_url).update_query_dict(
            {"options": f"-csearch_path={schema}", "application_name": schema}
        )
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :schema AND pid <> pg_backend_pid()"
                ),
                {"schema": schema},
            )
            connection.execute(text("SET LOCAL lock_timeout = '60s'"))
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
