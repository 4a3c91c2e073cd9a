"""The house error format on every failure path of the CLI (issue 18): one screen, named, no traceback.

Each case runs the real command and asserts: exit status 1, an ``error: <Type>:`` line, no
``Traceback``, at most one screen of output, and a database unchanged by the failed command.
The concurrent-import case races two real processes with planted identifiers and greps their
stdout and stderr (the log) for them.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from sabrkit.cli import app
from sabrkit.db import Database

runner = CliRunner()
SCREEN_LINES = 25


def _invoke(*args: str):
    return runner.invoke(app, list(args), terminal_width=80)


def _snapshot(db_url: str) -> dict[str, int]:
    """Row counts of the tables the commands below could touch, and the audit log's length."""
    with Database.from_url(db_url) as db, db.engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in (
                "patients",
                "patient_identifiers",
                "visits",
                "samples",
                "consent_forms",
                "audit_log",
            )
        }


def _assert_one_screen_error(result, kind: str, *expected: str) -> None:
    output = result.output
    assert result.exit_code == 1, output
    assert "Traceback" not in output, output
    assert f"error: {kind}:" in output, output
    assert len(output.splitlines()) <= SCREEN_LINES, output
    for text_part in expected:
        assert text_part in output, output
    # never hard-wrapped when not a terminal (CliRunner is not one; its width is 80): what, rule
    # and fix of the message stay on the "error:" line even when it is far longer than 80 columns
    error_line = next(line for line in output.splitlines() if line.startswith("error: "))
    assert "; rule: " in error_line or "bad row value(s)" in error_line, output


@pytest.fixture
def loaded(db_url, registry_tables, write_registry, tmp_path) -> str:
    assert (
        _invoke("registry", "migrate", "--database-url", db_url).exit_code == 0
    )  # only `migrate` makes the schema
    result = _invoke(
        "registry",
        "import",
        str(write_registry(tmp_path / "registry", registry_tables)),
        "--database-url",
        db_url,
    )
    assert result.exit_code == 0, result.output
    return db_url


def test_latin1_csv_names_file_line_and_encoding_fix(loaded, registry_tables, write_registry, tmp_path):
    before = _snapshot(loaded)
    samples = tmp_path / "samples.csv"
    samples.write_bytes(
        "study_id,timepoint,specimen_type,collected_at,volume_ml\n"
        "SABR-RCC-001,baseline,plasma,2024-05-27T08:15,4.0 # Müller\n".encode("latin-1")
    )
    result = _invoke("biobank", "import", str(samples), "--database-url", loaded)
    _assert_one_screen_error(
        result, "ValidationError", "samples.csv: line 2", "not UTF-8", "--encoding latin-1"
    )
    folder = write_registry(
        tmp_path / "latin",
        {
            "patients.csv": [],
            "visits.csv": [
                {
                    "study_id": "SABR-RCC-001",
                    "visit_number": "3",
                    "visit_date": "2024-09-01",
                    "vrs_pain": "1",
                    "tess_score": "",
                }
            ],
        },
    )
    (folder / "identifiers.csv").write_bytes(
        b"study_id,hospital_number,family_name,given_name,date_of_birth\n"
        b"SABR-RCC-009,H9,M\xfcller,Jo,1960-01-01\n"
    )
    result = _invoke("registry", "import", str(folder), "--database-url", loaded)
    _assert_one_screen_error(result, "ValidationError", "identifiers.csv: line 2", "--encoding latin-1")
    assert "M\xfcller" not in result.output and "Müller" not in result.output
    with_encoding = _invoke(
        "registry", "import", str(folder), "--encoding", "latin-1", "--dry-run", "--database-url", loaded
    )
    assert (
        with_encoding.exit_code == 1 and "not UTF-8" not in with_encoding.output
    )  # decoded; other rules speak
    assert _snapshot(loaded) == before


def test_unreachable_postgresql_is_one_named_error():
    result = _invoke(
        "registry",
        "audit",
        "history",
        "visits",
        "--database-url",
        "postgresql+psycopg://sabr:secret@127.0.0.1:9/nowhere",
    )
    _assert_one_screen_error(result, "DatabaseUnavailableError", "cannot connect", "127.0.0.1:9/nowhere")
    assert "secret" not in result.output


@pytest.mark.parametrize("case", ["missing", "not-a-database", "unmigrated"])
def test_missing_broken_or_unmigrated_sqlite_file_is_one_named_error(tmp_path, case):
    path = tmp_path / "folder" / "registry.db"
    if case != "missing":
        path.parent.mkdir()
        path.write_bytes(b"" if case == "unmigrated" else b"study_id,visit_number\nSABR-RCC-001,1\n" * 50)
    content = path.read_bytes() if path.exists() else None
    result = _invoke("registry", "audit", "history", "visits", "--database-url", f"sqlite:///{path}")
    kind = "DatabaseUnavailableError" if case == "not-a-database" else "SchemaVersionError"
    fix = "not a SQLite database" if case == "not-a-database" else "sabrkit registry migrate"
    _assert_one_screen_error(result, kind, fix)
    if case == "not-a-database":
        assert path.read_bytes() == content
    else:  # SQLite may write its header (journal mode) into the empty file; no table was created
        import sqlite3

        with sqlite3.connect(path) as connection:
            assert connection.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


def test_read_only_database_is_one_named_error(loaded):
    if not loaded.startswith("sqlite"):
        pytest.skip("a read-only SQLite file (PostgreSQL: a read-only role gives the same error class)")
    before = _snapshot(loaded)
    path = loaded.removeprefix("sqlite:///")
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    result = _invoke(
        "registry",
        "visit",
        "--study-id",
        "SABR-RCC-003",
        "--visit-number",
        "2",
        "--visit-date",
        "2024-10-01",
        "--database-url",
        read_only,
    )
    _assert_one_screen_error(result, "ReadOnlyDatabaseError", "read-only", "permissions")
    assert _snapshot(loaded) == before


def test_bad_arguments_give_named_errors_and_change_nothing(loaded):
    before = _snapshot(loaded)
    cases = [
        (
            ("registry", "correct", "visits", "abc", "--set", "visit_date=2020-01-01", "--reason", "typo"),
            "ValidationError",
            "rows are numbered",
        ),
        (
            ("registry", "correct", "visits", "1", "--set", "visit_date=2020-01-01", "--reason", "typo"),
            "ImportValidationError",
            "must be on or after enrolment",
        ),
        (
            ("registry", "delete", "patients", "SABR-RCC-001", "--reason", "test"),
            "ValidationError",
            "is referred to by",
        ),
        (("registry", "delete", "patients", "X", "--reason", "test"), "NotFoundError", "patients row X"),
        (
            ("biobank", "consent", "form-add", "2.0", "--title", "Main", "--from", "2024-02-30"),
            "ValidationError",
            "--from '2024-02-30'",
        ),
        (
            (
                "biobank",
                "consent",
                "record",
                "SABR-RCC-001",
                "--form",
                "2.0",
                "--signed",
                "14/03/2024",
                "--scope",
                "storage",
            ),
            "ValidationError",
            "--signed '14/03/2024'",
        ),
        (("biobank", "pool", "--part", "X"), "ValidationError", "--part 'X'"),
        (("biobank", "pool", "--part", "SABR-PL-000001-C=abc"), "ValidationError", "ACCESSION=AMOUNT"),
    ]
    for args, kind, expected in cases:
        result = _invoke(*args, "--database-url", loaded)
        _assert_one_screen_error(result, kind, expected)
    assert _snapshot(loaded) == before


def test_long_error_lists_go_to_a_csv_with_a_short_summary(loaded, tmp_path):
    samples = tmp_path / "many.csv"
    rows = "".join(
        f"SABR-RCC-{900 + i % 50:03d},baseline,plasma,2024-05-27T08:{i % 60:02d},4.0\n" for i in range(150)
    )
    samples.write_text("study_id,timepoint,specimen_type,collected_at,volume_ml\n" + rows)
    result = _invoke("biobank", "import", str(samples), "--database-url", loaded)
    _assert_one_screen_error(result, "ImportValidationError", "150 bad row value(s)", "many.csv.errors.csv")
    listed = (tmp_path / "many.csv.errors.csv").read_text().splitlines()
    assert listed[0] == "file,row,column,value,rule" and len(listed) == 151
    out = tmp_path / "elsewhere" / "errors.csv"
    result = _invoke("biobank", "import", str(samples), "--errors-out", str(out), "--database-url", loaded)
    assert result.exit_code == 1 and str(out) in result.output and len(out.read_text().splitlines()) == 151


_RACE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import sabrkit.registry.load as load
    from sabrkit.cli.main import app

    me, other = Path(sys.argv[1]), Path(sys.argv[2])
    validate = load.validate_source

    def validate_then_wait(*args, **kwargs):
        parsed = validate(*args, **kwargs)   # both processes validate against the same (empty) registry,
        me.touch()                           # then write at the same time: one must lose on the keys
        deadline = time.monotonic() + 60
        while not other.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return parsed

    import sabrkit.cli.registry  # noqa: F401  (imports validate_source inside the command)
    load.validate_source = validate_then_wait
    app(sys.argv[3:], standalone_mode=True)
""")


def test_concurrent_import_loser_prints_no_identifier(db_url, registry_tables, write_registry, tmp_path):
    planted = {
        "hospital_number": ["HPLANT0001", "HPLANT0002", "HPLANT0003"],
        "family_name": ["Zzyzxplanted", "Qwertyplanted", "Xylophplanted"],
        "given_name": ["Ottoplanted", "Bertaplanted", "Carlplanted"],
        "date_of_birth": ["1951-07-23", "1949-02-11", "1962-12-30"],
    }
    tables = copy.deepcopy(registry_tables)
    for index, row in enumerate(tables["identifiers.csv"]):
        for column, values in planted.items():
            row[column] = values[index]
    folder = write_registry(tmp_path / "registry", tables)
    with Database.from_url(db_url) as db:
        db.upgrade()
    env = {**os.environ, "COLUMNS": "200"}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _RACE,
                str(tmp_path / f"ready-{me}"),
                str(tmp_path / f"ready-{1 - me}"),
                "--log-level",
                "DEBUG",
                "registry",
                "import",
                str(folder),
                "--database-url",
                db_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for me in (0, 1)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    codes = sorted(process.returncode for process in processes)
    everything = "\n".join(out + err for out, err in outputs)
    assert codes == [0, 1], everything
    loser = next(out + err for (out, err), process in zip(outputs, processes) if process.returncode == 1)
    assert "error: WriteConflictError:" in loser and "nothing was written" in loser, loser
    assert "Traceback" not in everything
    assert len(loser.splitlines()) <= SCREEN_LINES, loser
    for values in planted.values():
        for value in values:
            assert value not in everything, value
    assert _snapshot(db_url)["patients"] == 3


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="permissions do not bind root: the command runs as user nobody through setpriv (util-linux), "
    "which needs root",
)
@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_file_or_folder_is_one_named_error_for_an_ordinary_user(
    what, registry_tables, write_registry, monkeypatch
):
    """A database file (or its folder) the user may not write: one named screen, nothing written."""
    base = Path(tempfile.mkdtemp(prefix="sabrkit-read-only-"))
    try:
        base.chmod(0o755)  # pytest's own tmp_path is private to root
        folder = base / "db"
        folder.mkdir()
        database = folder / "sabrkit.db"
        url = f"sqlite:///{database}"
        monkeypatch.setenv("SABRKIT_AUDIT_KEY_FILE", str(base / "no-key" / "audit-key.json"))
        monkeypatch.setenv("SABRKIT_AUDIT_CHECKPOINT_DIR", str(base / "checkpoints"))
        assert _invoke("registry", "migrate", "--database-url", url).exit_code == 0
        loaded = _invoke(
            "registry",
            "import",
            str(write_registry(base / "registry", registry_tables)),
            "--database-url",
            url,
        )
        assert loaded.exit_code == 0, loaded.output
        before = _snapshot(url)
        if what == "file":
            folder.chmod(0o777)
            for file in folder.iterdir():
                file.chmod(0o444)
        else:
            for file in folder.iterdir():
                file.chmod(0o666)
            folder.chmod(0o555)
        scratch = base / "home"
        scratch.mkdir(mode=0o777)
        scratch.chmod(0o777)
        env = {**os.environ, "HOME": str(scratch), "MPLCONFIGDIR": str(scratch)}
        command = [
            "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            sys.executable, "-c", "from sabrkit.cli import app; app()",
            "registry", "visit", "--study-id", "SABR-RCC-003", "--visit-number", "2", "--visit-date", "2024-10-01",
            "--database-url", url,
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        output = run.stdout + run.stderr
        assert run.returncode == 1, output
        assert "Traceback" not in output, output
        assert "error: ReadOnlyDatabaseError:" in output or "error: DatabaseUnavailableError:" in output, (
            output
        )
        assert "permission" in output, output
        assert len(output.splitlines()) <= SCREEN_LINES, output
        folder.chmod(0o755)
        assert _snapshot(url) == before
    finally:
        for path in (base / "db", base):
            if path.exists():
                path.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
