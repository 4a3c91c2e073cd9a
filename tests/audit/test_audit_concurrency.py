"""Several processes writing at once never fork the chain (SQLite write lock, PostgreSQL advisory lock)."""

from __future__ import annotations

import multiprocessing
from datetime import date

from sabrkit.audit import open_database, verify_audit
from sabrkit.db import Database
from sabrkit.registry import Patient

N_PROCESSES = 4
N_TRANSACTIONS = 8


def _patient(study_id: str) -> Patient:
    return Patient(
        study_id=study_id,
        mdt_date=date(2024, 5, 2),
        enrolment_date=date(2024, 5, 6),
        age_years=64,
        sex="M",
        ecog=1,
        histology="clear_cell",
        imdc_risk="intermediate",
        prior_nephrectomy=True,
        disease_state="oligometastatic",
        systemic_therapy="tki",
        last_contact_date=date(2025, 5, 6),
    )


def _writer(url: str, worker: int) -> None:
    with open_database(url, actor=f"worker-{worker}") as db:
        for n in range(N_TRANSACTIONS):
            number = 100 + worker * N_TRANSACTIONS + n
            with db.transaction() as session:
                session.add(_patient(f"SABR-RCC-{number:03d}"))
            with db.transaction(reason=f"worker {worker} correction {n}") as session:
                session.get(Patient, f"SABR-RCC-{number:03d}").ecog = 2


def test_concurrent_writers_keep_one_intact_chain(db: Database, db_url: str):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(db_url, worker)) for worker in range(N_PROCESSES)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [process.exitcode for process in workers] == [0] * N_PROCESSES
    report = verify_audit(db)
    assert report.ok, str(report)
    assert report.n_entries == 2 * N_PROCESSES * N_TRANSACTIONS
