"""Migration 0004 builds exactly the web tables of the ORM, and downgrades cleanly to 0003."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import CheckConstraint, inspect

WEB_TABLES = {"web_users", "web_sessions", "web_login_failures"}


def _web_differences(differences: list) -> list:
    def tables(diff: object) -> set[str]:
        items = diff if isinstance(diff, list) else [diff]
        names = set()
        for item in items:
            for part in item:
                name = getattr(part, "name", None) or getattr(getattr(part, "table", None), "name", None)
                if isinstance(name, str):
                    names.add(name)
                if isinstance(part, str):
                    names.add(part)
        return names

    return [d for d in differences if tables(d) & WEB_TABLES]


def test_migration_0004_matches_the_orm_and_downgrades(tmp_path: Path):
    import sabrkit.web.tables  # noqa: F401  (registers the web tables in the shared metadata)
    from sabrkit.db import current_revision, downgrade, schema_differences, upgrade
    from sabrkit.db.engine import make_engine
    from sabrkit.db.migrate import target_metadata

    url = f"sqlite:///{tmp_path / 'web.db'}"
    upgrade(url)
    assert current_revision(url) >= "0004"
    assert _web_differences(schema_differences(url)) == []
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        assert WEB_TABLES <= set(inspector.get_table_names())
        for table in target_metadata().sorted_tables:
            if table.name in WEB_TABLES:
                expected = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
                assert {c["name"] for c in inspector.get_check_constraints(table.name)} == expected
    finally:
        engine.dispose()
    downgrade(url, "0003")
    engine = make_engine(url)
    try:
        assert not WEB_TABLES & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    upgrade(url)
    assert current_revision(url) >= "0004"


def test_every_web_setting_is_documented(repo_root: Path):
    from sabrkit.web import WebSettings

    docs = (repo_root / "docs" / "web.md").read_text(encoding="utf-8")
    for name in WebSettings.model_fields:
        assert f"SABRKIT_WEB_{name.upper()}" in docs, name
