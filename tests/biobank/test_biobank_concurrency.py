"""Concurrent placement and aliquoting from several processes (SQLite and PostgreSQL).

Done-when: 8 processes each try to place 200 samples into the same 100 free positions; exactly
100 placements succeed, the rest get a clear "position occupied" error, no position holds two
samples, and no event is lost. Also: concurrent aliquots never take more than the parent has.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from biobank_helpers import add_samples
from sqlalchemy import func, select

from sabrkit.audit import verify_audit
from sabrkit.biobank import create_storage
from sabrkit.biobank.storage import position_label
from sabrkit.biobank.tables import CustodyEvent, Sample, SampleDerivation, SamplePosition
from sabrkit.db import Database

pytestmark = pytest.mark.slow  # 8 processes contend for one lock: 30-60 s on a 2-core machine

N_WORKERS = 8
N_ATTEMPTS = 200
BOX = "F1/S1/R1/B01"

_PLACE_WORKER = """
import json, sys
from sabrkit.audit import open_database
from sabrkit.biobank import place_sample, PositionOccupiedError
url, box, worker = sys.argv[1], sys.argv[2], sys.argv[3]
attempts = json.loads(sys.stdin.readline())
db = open_database(url)
print("ready", flush=True)
sys.stdin.readline()
placed, occupied, other = [], [], []
for accession_id, position in attempts:
    try:
        place_sample(db, accession_id, box, position, operator=worker)
        placed.append([accession_id, position])
    except PositionOccupiedError as exc:
        occupied.append([position, str(exc), exc.box, exc.position])
    except Exception as exc:
        other.append(repr(exc))
db.dispose()
print(json.dumps({"placed": placed, "occupied": occupied, "other": other}), flush=True)
"""

_ALIQUOT_WORKER = """
import json, sys
from sabrkit.audit import open_database
from sabrkit.biobank import aliquot_sample, QuantityError, SampleStateError
url, parent, worker = sys.argv[1], sys.argv[2], sys.argv[3]
db = open_database(url)
print("ready", flush=True)
sys.stdin.readline()
made, refused, other = [], [], []
for _ in range(3):
    try:
        made += aliquot_sample(db, parent, [1.0], operator=worker)
    except (QuantityError, SampleStateError) as exc:
        refused.append(str(exc))
    except Exception as exc:
        other.append(repr(exc))
db.dispose()
print(json.dumps({"made": made, "refused": refused, "other": other}), flush=True)
"""


def _run_workers(script: str, args: list[list[str]], stdin_first: list[str] | None = None) -> list[dict]:
    """Start one process per args list, wait until all are ready, release them together."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, *a],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a in args
    ]
    try:
        for index, process in enumerate(processes):
            if stdin_first is not None:
                process.stdin.write(stdin_first[index] + "\n")
                process.stdin.flush()
        for process in processes:
            line = process.stdout.readline()
            assert line.strip() == "ready", process.stderr.read()
        for process in processes:  # go
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            out, err = process.communicate(timeout=240)
            assert process.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


def test_eight_processes_compete_for_one_hundred_positions(enrolled_db: Database, db_url: str):
    db = enrolled_db
    create_storage(db, BOX, geometry="10x10", temperature_c=-80, operator="lab1")
    accession_ids = add_samples(db, N_WORKERS * N_ATTEMPTS)
    positions = [position_label(r, c) for r in range(1, 11) for c in range(1, 11)]
    rng = np.random.default_rng(20240501)
    stdin, args = [], []
    for worker in range(N_WORKERS):
        order = [positions[i] for i in rng.permutation(100)] * 2
        mine = accession_ids[worker * N_ATTEMPTS : (worker + 1) * N_ATTEMPTS]
        stdin.append(json.dumps(list(zip(mine, order))))
        args.append([db_url, BOX, f"worker{worker}"])
    results = _run_workers(_PLACE_WORKER, args, stdin)

    placed = [p for r in results for p in r["placed"]]
    occupied = [o for r in results for o in r["occupied"]]
    assert [r["other"] for r in results] == [[]] * N_WORKERS
    assert len(placed) == 100
    assert len(occupied) == N_WORKERS * N_ATTEMPTS - 100
    for position, message, box, label in occupied:
        assert "position occupied" in message and BOX in message and f"position {position}" in message
        assert (box, label) == (BOX, position)
    assert sorted(position for _, position in placed) == sorted(positions)
    with db.session() as session:
        per_position = session.execute(
            select(SamplePosition.row, SamplePosition.col, func.count()).group_by(
                SamplePosition.row, SamplePosition.col
            )
        ).all()
        assert len(per_position) == 100 and {n for _, _, n in per_position} == {1}
        stored = dict(
            session.execute(
                select(Sample.accession_id, Sample.status).join(
                    SamplePosition, SamplePosition.sample_id == Sample.id
                )
            ).all()
        )
        assert stored == {accession_id: "stored" for accession_id, _ in placed}
        frozen = session.execute(
            select(Sample.accession_id, CustodyEvent.location)
            .join(CustodyEvent, CustodyEvent.sample_id == Sample.id)
            .where(CustodyEvent.event_type == "frozen")
        ).all()
        # exactly one "frozen" event per successful placement, at the position it got; none for refusals
        assert sorted(frozen) == sorted((a, f"{BOX}:{p}") for a, p in placed)
    assert verify_audit(db).ok


def test_concurrent_aliquots_never_oversubscribe_the_parent(enrolled_db: Database, db_url: str):
    db = enrolled_db
    [parent] = add_samples(db, 1, volume_ml=5.0)
    results = _run_workers(_ALIQUOT_WORKER, [[db_url, parent, f"worker{w}"] for w in range(N_WORKERS)])
    assert [r["other"] for r in results] == [[]] * N_WORKERS
    made = [a for r in results for a in r["made"]]
    assert len(made) == 5 and len(set(made)) == 5
    assert sum(len(r["refused"]) for r in results) == N_WORKERS * 3 - 5
    with db.session() as session:
        sample = session.execute(select(Sample).where(Sample.accession_id == parent)).scalar_one()
        assert (sample.remaining_quantity, sample.status) == (0.0, "depleted")
        taken = session.execute(
            select(func.sum(SampleDerivation.quantity_taken)).where(SampleDerivation.parent_id == sample.id)
        ).scalar_one()
        assert taken == 5.0
    assert verify_audit(db).ok
