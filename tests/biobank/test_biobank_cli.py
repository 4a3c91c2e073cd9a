"""`sabrkit biobank ...` end to end on a SQLite file: import (dry run, errors), store, box map,
aliquot, events, consent withdrawal, labels, export, audit verify (and its failure after an
edit behind the platform's back)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
from biobank_helpers import STUDY_IDS, make_patient
from sqlalchemy import text
from typer.testing import CliRunner

from sabrkit.audit import open_database
from sabrkit.cli import app

runner = CliRunner()


def _invoke(url: str, *args: str) -> tuple[int, str]:
    command = ["biobank", *args] if args[0] == "check-id" else ["biobank", *args, "--database-url", url]
    result = runner.invoke(app, command, env={"COLUMNS": "250"})
    return result.exit_code, " ".join(result.output.split()) if result.exit_code else result.output


def test_biobank_commands_end_to_end(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'bb.db'}"
    with open_database(url) as db:
        db.upgrade()
        with db.transaction(actor="coordinator") as session:
            session.add_all([make_patient(s) for s in STUDY_IDS])
    samples = tmp_path / "samples.csv"
    with samples.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["study_id", "timepoint", "specimen_type", "collected_at", "volume_ml"])
        writer.writerow(["SABR-RCC-001", "baseline", "plasma", "2024-05-27T08:15", "4.0"])
        writer.writerow(["SABR-RCC-003", "month_3", "serum", "2024-09-01T09:00", "2.0"])
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "study_id,timepoint,specimen_type,collected_at,volume_ml\n"
        "SABR-RCC-009,baseline,plasma,2024-05-27T08:15,4\nSABR-RCC-001,week_9,plasma,2024-05-27T08:15,4\n"
    )

    code, out = _invoke(url, "import", str(bad), "--operator", "lab1")
    assert code == 1 and "row 2" in out and "row 3" in out and "nothing was imported" in out
    code, out = _invoke(url, "import", str(samples), "--dry-run")
    assert code == 0 and "dry run, all 2 row(s) valid" in out
    code, out = _invoke(url, "import", str(samples), "--operator", "lab1")
    assert code == 0 and "accessioned 2 sample(s)" in out
    plasma, serum = "SABR-PL-000001-C", "SABR-SE-000001-" + out.split("SABR-SE-000001-")[1][0]
    assert _invoke(url, "check-id", plasma)[0] == 0
    assert _invoke(url, "storage", "add", "F1/S1/R1/B01", "--geometry", "9x9", "--temperature", "-80")[0] == 0
    assert _invoke(url, "storage", "place", plasma, "F1/S1/R1/B01", "A1", "--operator", "lab1")[0] == 0
    code, out = _invoke(url, "storage", "place", serum, "F1/S1/R1/B01", "A1", "--operator", "lab1")
    assert code == 1 and "position occupied" in out and "F1/S1/R1/B01" in out
    code, out = _invoke(url, "storage", "box-map", "F1/S1/R1/B01", "--json")
    assert json.loads(out)["occupied"] == 1
    code, out = _invoke(url, "aliquot", plasma, "-q", "1", "-q", "1", "--operator", "lab1")
    assert code == 0 and out.count("SABR-PL-") == 2
    code, out = _invoke(url, "aliquot", plasma, "-q", "5", "--operator", "lab1")
    assert code == 1 and "never takes more than the parent has left" in out
    code, out = _invoke(url, "show", plasma)
    assert "2 of 4 mL" in out and "F1/S1/R1/B01:A1" in out
    code, out = _invoke(url, "events", plasma)
    # the event types in order (tolerant of how the console wraps lines)
    kinds = re.findall(
        r"\b(collected|received|processed|frozen|thawed|moved|aliquoted|shipped|consumed|disposed)\b", out
    )
    assert kinds == ["collected", "received", "frozen", "aliquoted"], out
    assert (
        _invoke(url, "consent", "form-add", "1.0", "--title", "Biobank consent", "--from", "2024-01-01")[0]
        == 0
    )
    for study_id in ("SABR-RCC-001", "SABR-RCC-003"):
        code, out = _invoke(
            url,
            "consent",
            "record",
            study_id,
            "--form",
            "1.0",
            "--signed",
            "2024-05-06",
            "--scope",
            "storage",
            "--scope",
            "future_research",
        )
        assert code == 0, out
    code, out = _invoke(
        url,
        "consent",
        "withdraw",
        "SABR-RCC-003",
        "--reason",
        "participant request",
        "--operator",
        "coordinator",
    )
    assert code == 0 and "1 disposal task(s)" in out
    assert serum in _invoke(url, "consent", "tasks")[1]
    code, out = _invoke(url, "shipment", "create", "--to", "Cytokine lab")
    shipment = out.strip()
    code, out = _invoke(url, "shipment", "add", shipment, serum)
    assert code == 1 and "ConsentError" in out and "consent 1.0 of SABR-RCC-003" in out
    code, out = _invoke(
        url, "labels", plasma, "--pdf", str(tmp_path / "l.pdf"), "--zpl", str(tmp_path / "l.zpl")
    )
    assert code == 0 and (tmp_path / "l.pdf").read_bytes().startswith(b"%PDF")
    assert _invoke(url, "export", str(tmp_path / "export"), "--format", "csv")[0] == 0
    exported = pd.read_csv(tmp_path / "export" / "samples.csv")
    assert serum not in set(exported["sample_id"]) and plasma in set(exported["sample_id"])
    code, out = _invoke(url, "audit", "verify")
    assert code == 0 and "OK" in out
    with open_database(url) as db, db.engine.begin() as connection:  # an edit behind the platform's back
        connection.execute(
            text("UPDATE samples SET remaining_quantity = 4.0 WHERE accession_id = :a"), {"a": plasma}
        )
    code, out = _invoke(url, "audit", "verify")
    assert code == 1 and "samples" in out
