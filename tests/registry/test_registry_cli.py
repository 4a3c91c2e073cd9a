"""`sabrkit registry ...`: dry-run reports every bad row, import, audit verify catches SQL edits, export."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from sabrkit.audit import open_database
from sabrkit.cli.registry import app

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), terminal_width=200)


@pytest.fixture(autouse=True)
def _migrated(db_url: str) -> None:
    """Only `sabrkit registry migrate` creates the schema; every other command needs it current."""
    result = _invoke("migrate", "--database-url", db_url)
    assert result.exit_code == 0, result.output


def test_dry_run_lists_every_bad_row_and_writes_nothing(db_url, registry_tables, write_registry, tmp_path):
    bad = copy.deepcopy(registry_tables)
    bad["visits.csv"][0]["tess_score"] = "75"
    bad["adverse_events.csv"][0]["grade"] = "4"
    bad["lesions.csv"][0]["site"] = "kidney"
    folder = write_registry(tmp_path / "bad", bad)
    result = _invoke("import", str(folder), "--dry-run", "--database-url", db_url)
    assert result.exit_code == 1
    for expected in (
        "visits.csv:tess_score",
        "adverse_events.csv:grade",
        "lesions.csv:site",
        "nothing was imported",
    ):
        assert expected in result.output
    good = write_registry(tmp_path / "good", registry_tables)
    result = _invoke("import", str(good), "--dry-run", "--database-url", db_url)
    assert result.exit_code == 0 and "nothing written" in result.output
    with open_database(db_url) as db, db.session() as session:
        assert session.execute(text("SELECT count(*) FROM patients")).scalar() == 0


def test_audit_verify_passes_then_names_the_row_edited_behind_its_back(
    db_url, registry_tables, write_registry, tmp_path
):
    folder = write_registry(tmp_path / "good", registry_tables)
    assert _invoke("import", str(folder), "--database-url", db_url, "--actor", "importer").exit_code == 0
    result = _invoke("audit", "verify", "--database-url", db_url)
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    with open_database(db_url) as db, db.engine.begin() as connection:
        visit_id = connection.execute(
            text("SELECT id FROM visits WHERE study_id = 'SABR-RCC-002'")
        ).scalar_one()
        connection.execute(text("UPDATE visits SET tess_score = 59 WHERE id = :id"), {"id": visit_id})
    result = _invoke("audit", "verify", "--database-url", db_url)
    assert result.exit_code == 1
    assert f"visits row {visit_id} (study_id=SABR-RCC-002, visit_number=1)" in result.output
    assert "tess_score" in result.output
    history = _invoke("audit", "history", "visits", str(visit_id), "--database-url", db_url)
    assert "importer" in history.output and "1 entr" in history.output


def test_entry_commands_and_export(db_url, registry_tables, write_registry, tmp_path):
    assert (
        _invoke(
            "import", str(write_registry(tmp_path / "r", registry_tables)), "--database-url", db_url
        ).exit_code
        == 0
    )
    ok = _invoke(
        "visit",
        "--study-id",
        "SABR-RCC-003",
        "--visit-number",
        "2",
        "--visit-date",
        "2024-10-01",
        "--vrs-pain",
        "0",
        "--tess-score",
        "57",
        "--database-url",
        db_url,
        "--actor",
        "nurse",
    )
    assert ok.exit_code == 0, ok.output
    bad = _invoke(
        "ae",
        "--study-id",
        "SABR-RCC-003",
        "--term",
        "Edema cerebral",
        "--grade",
        "2",
        "--onset-date",
        "2024-10-01",
        "--attribution",
        "possible",
        "--database-url",
        db_url,
    )
    assert bad.exit_code == 1 and "grades 3, 4, 5" in bad.output
    assert (
        _invoke(
            "correct", "visits", "1", "--set", "vrs_pain=2", "--reason", "query 3", "--database-url", db_url
        ).exit_code
        == 0
    )
    out = tmp_path / "exports"
    result = _invoke("export", "--out", str(out), "--database-url", db_url)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n}.{s}" for n in ("adsl", "adtte", "ae", "tess", "vrs") for s in ("csv", "parquet")
    )
    assert _invoke("audit", "verify", "--database-url", db_url).exit_code == 0


def test_delete_list_and_restore_round_trip(db_url, registry_tables, write_registry, tmp_path):
    folder = write_registry(tmp_path / "r", registry_tables)
    assert _invoke("import", str(folder), "--database-url", db_url).exit_code == 0
    with open_database(db_url) as db, db.engine.begin() as connection:
        before = connection.execute(text("SELECT * FROM visits WHERE study_id = 'SABR-RCC-002'")).one()
    key = str(before.id)
    gone = _invoke(
        "delete", "visits", key, "--reason", "wrong patient", "--database-url", db_url, "--actor", "ann"
    )
    assert gone.exit_code == 0, gone.output
    listed = _invoke("deleted", "--database-url", db_url)
    assert listed.exit_code == 0 and f"visits {key} SABR-RCC-002  wrong patient" in listed.output
    assert "ann" in listed.output and "1 deleted record(s)" in listed.output
    done = _invoke("restore", "visits", key, "--reason", "right patient", "--database-url", db_url)
    assert done.exit_code == 0, done.output
    with open_database(db_url) as db, db.engine.begin() as connection:
        after = connection.execute(text("SELECT * FROM visits WHERE study_id = 'SABR-RCC-002'")).one()
    assert tuple(after) == tuple(before)
    assert "0 deleted record(s)" in _invoke("deleted", "--database-url", db_url).output
    again = _invoke("restore", "visits", key, "--reason", "again", "--database-url", db_url)
    assert again.exit_code == 1 and "exists again" in again.output
    assert _invoke("audit", "verify", "--database-url", db_url).exit_code == 0
