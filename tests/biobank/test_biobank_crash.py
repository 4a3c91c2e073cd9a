"""Crash safety: SIGKILL in the middle of a 10,000-row import leaves none of the rows; the same
import run to the end commits all of them."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from sabrkit.audit import verify_audit
from sabrkit.biobank import load_samples
from sabrkit.biobank.tables import CustodyEvent, Sample
from sabrkit.db import Database

N_ROWS = 10_000

_IMPORT_UNTIL_HALF_THEN_WAIT = """
import sys, time
from pathlib import Path
from sabrkit.audit import open_database
from sabrkit.biobank import load_samples
url, csv_path, marker = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

def on_progress(written):
    if written >= 5000 and not marker.exists():
        # half the rows are written, uncommitted: kill me now. Written to a side file and renamed,
        # so the test never reads a marker that exists but is still empty.
        partial = marker.with_suffix(".partial")
        partial.write_text(str(written))
        partial.rename(marker)
        time.sleep(120)

load_samples(open_database(url), csv_path, operator="importer", on_progress=on_progress)
print("committed", flush=True)
"""


def _write_rows(path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["study_id", "timepoint", "specimen_type", "collected_at", "volume_ml", "source_id"])
        for i in range(N_ROWS):  # the tube barcode makes each row distinct (exact duplicate rows are refused)
            writer.writerow(
                [
                    f"SABR-RCC-00{1 + i % 3}",
                    "month_3",
                    ("plasma", "serum", "urine")[i % 3],
                    f"2024-09-{1 + i % 28:02d}T{8 + i % 4:02d}:{i % 60:02d}",
                    "1.5",
                    f"TUBE-{i:05d}",
                ]
            )
    return path


def _counts(db: Database) -> tuple[int, int]:
    with db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Sample)),
            session.scalar(select(func.count()).select_from(CustodyEvent)),
        )


@pytest.mark.slow  # a 10,000-row import twice and a killed process: 10-35 s
def test_sigkill_mid_import_leaves_none_then_a_full_run_commits_all(
    enrolled_db: Database, db_url: str, tmp_path: Path
):
    csv_path = _write_rows(tmp_path / "samples.csv")
    marker = tmp_path / "half-written"
    process = subprocess.Popen(
        [sys.executable, "-c", _IMPORT_UNTIL_HALF_THEN_WAIT, db_url, str(csv_path), str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "the import never reached half-way"
            time.sleep(0.05)
        assert int(marker.read_text()) >= 5000
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    enrolled_db.dispose()  # fresh connections, as after a restart
    assert _counts(enrolled_db) == (0, 0)
    if enrolled_db.dialect_name == "sqlite":
        with enrolled_db.engine.connect() as connection:
            assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    assert verify_audit(enrolled_db).ok

    summary = load_samples(enrolled_db, csv_path, operator="importer")
    assert summary.n_samples == N_ROWS
    assert _counts(enrolled_db) == (N_ROWS, 2 * N_ROWS)
    assert verify_audit(enrolled_db).ok


def test_dry_run_of_ten_thousand_rows_writes_nothing(enrolled_db: Database, tmp_path: Path):
    summary = load_samples(enrolled_db, _write_rows(tmp_path / "samples.csv"), dry_run=True)
    assert summary.dry_run and summary.n_samples == N_ROWS and summary.accession_ids == ()
    assert _counts(enrolled_db) == (0, 0)
