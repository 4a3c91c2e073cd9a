"""One CLI context: read-only commands never touch the schema; only `registry migrate` migrates."""

from __future__ import annotations

import getpass

import pytest
from sqlalchemy import inspect
from typer.testing import CliRunner

from sabrkit.cli import app
from sabrkit.cli.context import open_cli_database, resolve_actor
from sabrkit.db import current_revision, head_revision, make_engine, upgrade
from sabrkit.errors import SchemaVersionError
from sabrkit.settings import Settings

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    """Exit code and output with rich's line wrapping undone."""
    result = runner.invoke(app, list(args), env={"COLUMNS": "1000"})
    return result.exit_code, " ".join(result.output.split())


#: The revision before the biobank tables (0003): an old schema for the current code.
OLD_REVISION = "0002"


def _schema(url: str) -> tuple[str | None, list[str]]:
    engine = make_engine(url)
    try:
        return current_revision(engine), sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()


READ_ONLY_COMMANDS = [
    ("biobank", "storage", "find", "X"),
    ("biobank", "show", "SABR-PL-000001-X"),
    ("registry", "audit", "verify"),
    ("biobank", "audit", "verify"),
    ("audit", "verify"),
    ("users", "list"),
]


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS, ids=lambda c: " ".join(c[:3]))
def test_read_only_command_on_an_old_schema_names_the_fix_and_changes_nothing(
    db_url: str, command: tuple[str, ...]
):
    upgrade(db_url, OLD_REVISION)
    before = _schema(db_url)
    assert before[0] == OLD_REVISION != head_revision()
    code, output = _invoke(*command, "--database-url", db_url)
    assert code == 1, output
    assert "SchemaVersionError" in output
    assert f"revision {OLD_REVISION}" in output
    assert "sabrkit registry migrate" in output
    assert _schema(db_url) == before, "a read-only command changed the schema"


def test_empty_database_is_refused_and_left_empty(db_url: str):
    code, output = _invoke("biobank", "storage", "find", "X", "--database-url", db_url)
    assert code == 1
    assert "has no sabrkit schema" in output and "sabrkit registry migrate" in output
    assert _schema(db_url) == (None, [])


@pytest.mark.parametrize("command", [("registry", "migrate"), ("db", "migrate")])
def test_migrate_and_its_alias_bring_the_schema_to_head(db_url: str, command: tuple[str, ...]):
    upgrade(db_url, OLD_REVISION)
    code, output = _invoke(*command, "--database-url", db_url)
    assert code == 0, output
    assert _schema(db_url)[0] == head_revision()
    code, output = _invoke("biobank", "storage", "find", "F1", "--database-url", db_url)
    assert "SchemaVersionError" not in output


def test_open_cli_database_refuses_then_accepts_after_migrate(db_url: str):
    with pytest.raises(SchemaVersionError, match="registry migrate"):
        open_cli_database(db_url)
    with open_cli_database(db_url, migrate=True) as db:
        assert db.current_revision() == head_revision()
    with open_cli_database(db_url, "nurse7") as db:
        assert db.actor == "nurse7"


def test_actor_comes_from_the_option_then_the_setting_then_the_os_user(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SABRKIT_ACTOR", raising=False)
    assert resolve_actor("lab1") == "lab1"
    assert resolve_actor(None, Settings(actor="coordinator2")) == "coordinator2"
    monkeypatch.setenv("SABRKIT_ACTOR", "from-env")
    assert resolve_actor(None) == "from-env"
    monkeypatch.delenv("SABRKIT_ACTOR")
    assert resolve_actor(None) == getpass.getuser()

    def no_user() -> str:
        raise OSError("no user name for uid 12345")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert resolve_actor(None) == "unknown"
