"""Benchmark: biobank import, barcode lookup and placement on SQLite and PostgreSQL.

Measures, ``--repeats`` times (default 3) per database, each repeat on a fresh empty database,
against the plain alternative a user would write in the same repeat:

1. **import** of 100,000 samples from CSV with ``load_samples`` (every row validated, SPREC
   derived, accession IDs, 2 custody events per sample, every row in the hash-chained audit
   log, one transaction) vs a **naive ORM row-by-row import** (one ``Sample`` and two
   ``CustodyEvent`` objects per row, a flush per row to get the sample's id, one transaction),
   timed on the first 5,000 rows and extrapolated per row (the naive import of all 100,000
   rows would take minutes). Target (SQLite): under 30 s.
2. **barcode lookup** with 1,000,000 samples in the table: ``get_sample`` (a session, one
   indexed query) for random accession IDs, p50/p95 vs a plain pandas filter over the same
   1,000,000 IDs held in memory. Target (SQLite): p95 under 5 ms. The extra 900,000 samples
   are bulk-loaded without the audit log (bench data only; never do this to a real database).
3. **placement** of a sample into a free box position with ``place_sample`` (row lock, position
   check, unique constraint, custody event, audit entries, commit) p50/p95 vs a naive ORM
   check-then-insert with no lock, event or audit. Target (SQLite): p95 under 20 ms.

Every figure is reported per repeat (``runs``) and as median, min and max over the repeats; the
load average is recorded before and after each repeat (the machine is shared).

Run: ``.venv/bin/python benchmarks/biobank.py [--postgres-url URL] [--repeats 3] [--quick]`` ->
``benchmarks/results/biobank.json``. PostgreSQL runs when ``--postgres-url`` or
``SABRKIT_TEST_POSTGRES_URL`` is set (in a throw-away schema).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from measure import DEFAULT_REPEATS, check_repeats, load_average, spread

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "biobank.json"
SPECIMENS = ("plasma", "serum", "whole_blood", "buffy_coat", "urine")
TIMEPOINTS = ("baseline", "end_of_sabr", "month_1", "month_3", "month_6", "month_12", "month_24")


def _percentiles(values: list[float]) -> dict[str, float]:
    ms = np.array(values) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "n": len(values),
    }


def _patients(db, n: int) -> list[str]:
    from sabrkit.registry import Patient

    ids = [f"SABR-RCC-{i:03d}" for i in range(1, n + 1)]
    with db.transaction(actor="bench") as session:
        session.add_all(
            [
                Patient(
                    study_id=s,
                    mdt_date=dt.date(2024, 1, 1),
                    enrolment_date=dt.date(2024, 1, 8),
                    age_years=60,
                    sex="F",
                    ecog=0,
                    histology="clear_cell",
                    imdc_risk="favourable",
                    prior_nephrectomy=True,
                    disease_state="oligometastatic",
                    systemic_therapy="none",
                    last_contact_date=dt.date(2026, 1, 1),
                )
                for s in ids
            ]
        )
    return ids


def _write_csv(path: Path, n_rows: int, study_ids: list[str], rng: np.random.Generator) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "study_id",
                "timepoint",
                "specimen_type",
                "collected_at",
                "volume_ml",
                "primary_container",
                "processed_at",
                "pre_centrifugation_temperature",
                "storage_container",
                "storage_temperature_c",
            ]
        )
        for i in range(n_rows):
            day = dt.date(2024, 2, 1) + dt.timedelta(days=int(rng.integers(0, 700)))
            minute = int(rng.integers(0, 240))
            collected = dt.datetime.combine(day, dt.time(8, 0)) + dt.timedelta(minutes=minute)
            processed = collected + dt.timedelta(minutes=int(rng.integers(20, 300)))
            writer.writerow(
                [
                    study_ids[i % len(study_ids)],
                    TIMEPOINTS[i % len(TIMEPOINTS)],
                    SPECIMENS[i % 5],
                    collected.strftime("%Y-%m-%dT%H:%M"),
                    "1.5",
                    "PED",
                    processed.strftime("%Y-%m-%dT%H:%M"),
                    "room_temperature",
                    "pp_tube_0.5_2ml",
                    "-80",
                ]
            )
    return path


def _naive_import(db, csv_path: Path, limit: int) -> float:
    """What a user writes without sabrkit's bulk path: one ORM object per row, a flush per row."""
    from sabrkit.biobank.accession import make_accession_id
    from sabrkit.biobank.tables import CustodyEvent, Sample

    started = time.perf_counter()
    with csv_path.open() as handle, db.session() as session:
        session.info["audit_actor"] = "naive"
        for index, row in enumerate(csv.DictReader(handle)):
            if index >= limit:
                break
            collected = dt.datetime.fromisoformat(row["collected_at"])
            sample = Sample(
                accession_id=make_accession_id(row["specimen_type"], 500000 + index),
                study_id=row["study_id"],
                timepoint=row["timepoint"],
                specimen_type=row["specimen_type"],
                collected_at=collected,
                processed_at=dt.datetime.fromisoformat(row["processed_at"]),
                quantity=float(row["volume_ml"]),
                remaining_quantity=float(row["volume_ml"]),
                quantity_unit="mL",
                status="received",
                kind="primary",
            )
            session.add(sample)
            session.flush()
            session.add_all(
                [
                    CustodyEvent(
                        sample_id=sample.id,
                        event_type="collected",
                        occurred_at=collected,
                        operator="naive",
                        location="collection site",
                    ),
                    CustodyEvent(
                        sample_id=sample.id,
                        event_type="received",
                        occurred_at=collected,
                        operator="naive",
                        location="reception",
                    ),
                ]
            )
            session.flush()
        elapsed = time.perf_counter() - started
        session.rollback()  # leave the database as the platform import left it
    return elapsed


def _bulk_fill(db, target: int, rng: np.random.Generator, study_ids: list[str]) -> int:
    """Top the samples table up to ``target`` rows (bench data, bypasses the audit log)."""
    from sqlalchemy import func, select

    from sabrkit.biobank.accession import make_accession_id
    from sabrkit.biobank.tables import Sample

    with db.session() as session:
        present = session.scalar(select(func.count()).select_from(Sample))
    missing = target - present
    per_type = -(-missing // len(SPECIMENS))
    table = Sample.__table__
    start = 600_000  # serials above those the import used
    rows = []
    collected = dt.datetime(2024, 3, 1, 9, 0)
    for specimen in SPECIMENS:
        for k in range(per_type):
            if len(rows) >= missing:
                break
            rows.append(
                {
                    "accession_id": make_accession_id(specimen, start + k),
                    "study_id": study_ids[k % len(study_ids)],
                    "timepoint": "month_6",
                    "specimen_type": specimen,
                    "kind": "primary",
                    "collected_at": collected,
                    "quantity": 1.0,
                    "remaining_quantity": 1.0,
                    "quantity_unit": "mL",
                    "status": "received",
                }
            )
    if db.dialect_name == "postgresql":
        columns = list(rows[0])
        raw = db.engine.raw_connection()
        try:
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY samples ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row([row[c] for c in columns])
            raw.commit()
        finally:
            raw.close()
    else:
        with db.engine.begin() as connection:
            for i in range(0, len(rows), 50_000):
                connection.execute(table.insert(), rows[i : i + 50_000])
    return len(rows)


def _lookups(db, accession_ids: list[str], rng: np.random.Generator, n: int) -> list[float]:
    from sabrkit.biobank.samples import get_sample

    times = []
    for accession_id in rng.choice(accession_ids, size=n):
        started = time.perf_counter()
        with db.session() as session:
            get_sample(session, str(accession_id))
        times.append(time.perf_counter() - started)
    return times


def _pandas_lookups(accession_ids: list[str], rng: np.random.Generator, n: int) -> list[float]:
    import pandas as pd

    frame = pd.DataFrame({"accession_id": accession_ids, "status": "received"})
    times = []
    for accession_id in rng.choice(accession_ids, size=n):
        started = time.perf_counter()
        found = frame[frame["accession_id"] == accession_id]
        assert len(found) == 1
        times.append(time.perf_counter() - started)
    return times


def _placements(db, accession_ids: list[str], n: int) -> tuple[list[float], list[float]]:
    from sqlalchemy import select

    from sabrkit.biobank import create_storage, place_sample
    from sabrkit.biobank.samples import get_sample
    from sabrkit.biobank.tables import SamplePosition, StorageUnit

    n_boxes = -(-n // 100)
    for b in range(2 * n_boxes):
        create_storage(db, f"BF1/S1/R1/B{b:03d}", geometry="10x10", temperature_c=-80, operator="bench")
    platform, naive = [], []
    for i in range(n):
        box, cell = divmod(i, 100)
        started = time.perf_counter()
        place_sample(
            db,
            accession_ids[i],
            f"BF1/S1/R1/B{box:03d}",
            f"{'ABCDEFGHIJ'[cell // 10]}{cell % 10 + 1}",
            operator="bench",
        )
        platform.append(time.perf_counter() - started)
    for i in range(n):  # naive: check then insert, default transaction, no lock, no event, no audit trail
        box, cell = divmod(i, 100)
        started = time.perf_counter()
        with db.session() as session:
            target = session.execute(
                select(StorageUnit).where(StorageUnit.path == f"BF1/S1/R1/B{n_boxes + box:03d}")
            ).scalar_one()
            sample = get_sample(session, accession_ids[n + i])
            taken = session.execute(
                select(SamplePosition).where(
                    SamplePosition.box_id == target.id,
                    SamplePosition.row == cell // 10 + 1,
                    SamplePosition.col == cell % 10 + 1,
                )
            ).first()
            assert taken is None
            session.connection().execute(
                SamplePosition.__table__.insert(),
                {
                    "sample_id": sample.id,
                    "box_id": target.id,
                    "row": cell // 10 + 1,
                    "col": cell % 10 + 1,
                    "placed_at": dt.datetime.now(),
                },
            )
            session.commit()
        naive.append(time.perf_counter() - started)
    return platform, naive


def run_database(
    url: str, *, n_import: int, n_naive: int, n_total: int, n_lookups: int, n_place: int, workdir: Path
) -> dict[str, object]:
    """All three measurements on one empty database."""
    from sabrkit.audit import open_database
    from sabrkit.biobank import load_samples

    load_before = load_average()
    rng = np.random.default_rng(20240501)
    db = open_database(url, actor="bench")
    db.upgrade()
    study_ids = _patients(db, 999)
    csv_path = _write_csv(workdir / f"samples_{db.dialect_name}.csv", n_import, study_ids, rng)
    started = time.perf_counter()
    summary = load_samples(db, csv_path, operator="bench")
    import_s = time.perf_counter() - started
    naive_s = _naive_import(db, csv_path, n_naive)
    naive_rate = naive_s / n_naive
    result: dict[str, object] = {
        "import": {
            "rows": n_import,
            "seconds": round(import_s, 2),
            "rows_per_s": round(n_import / import_s),
            "naive_orm_row_by_row": {
                "rows_timed": n_naive,
                "seconds": round(naive_s, 2),
                "extrapolated_seconds_for_all_rows": round(naive_rate * n_import, 1),
            },
            "speedup_vs_naive": round(naive_rate * n_import / import_s, 2),
        },
    }
    imported = list(summary.accession_ids)
    platform_place, naive_place = _placements(db, imported, n_place)
    result["placement"] = {
        "platform": _percentiles(platform_place),
        "naive_check_then_insert": _percentiles(naive_place),
        "p95_ratio_platform_over_naive": round(
            float(np.percentile(platform_place, 95) / np.percentile(naive_place, 95)), 2
        ),
        "samples_in_table": n_import,
    }
    filled = _bulk_fill(db, n_total, rng, study_ids)
    from sqlalchemy import func, select

    from sabrkit.biobank.tables import Sample

    with db.session() as session:
        all_ids = list(session.execute(select(Sample.accession_id)).scalars())
        count = session.scalar(select(func.count()).select_from(Sample))
    _lookups(db, all_ids, rng, 50)  # warm-up: connection pool, statement cache
    platform_lookup = _lookups(db, all_ids, rng, n_lookups)
    pandas_lookup = _pandas_lookups(all_ids, rng, max(50, n_lookups // 10))
    result["lookup"] = {
        "samples_in_table": count,
        "bulk_filled_without_audit": filled,
        "platform_get_sample": _percentiles(platform_lookup),
        "plain_pandas_filter_in_memory": _percentiles(pandas_lookup),
        "p50_ratio_pandas_over_platform": round(
            float(np.percentile(pandas_lookup, 50) / np.percentile(platform_lookup, 50)), 1
        ),
    }
    db.dispose()
    result["load_average_before_after"] = [load_before, load_average()]
    return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, object]:
    """Median, min and max over the repeats of every headline figure, beside the runs themselves."""
    return {
        "import_seconds": spread((r["import"]["seconds"] for r in runs), 2),
        "naive_import_extrapolated_seconds": spread(
            (r["import"]["naive_orm_row_by_row"]["extrapolated_seconds_for_all_rows"] for r in runs), 1
        ),
        "speedup_vs_naive": spread((r["import"]["speedup_vs_naive"] for r in runs), 2),
        "placement_p95_ms": spread(r["placement"]["platform"]["p95_ms"] for r in runs),
        "naive_placement_p95_ms": spread(r["placement"]["naive_check_then_insert"]["p95_ms"] for r in runs),
        "lookup_p95_ms": spread(r["lookup"]["platform_get_sample"]["p95_ms"] for r in runs),
        "pandas_lookup_p95_ms": spread(r["lookup"]["plain_pandas_filter_in_memory"]["p95_ms"] for r in runs),
        "runs": runs,
    }


def _repeat(url_factory, repeats: int, workdir: Path, sizes: dict[str, int]) -> dict[str, object]:
    runs = []
    for _ in range(repeats):
        with url_factory() as url:
            runs.append(run_database(url, workdir=workdir, **sizes))
        print(f"  import {runs[-1]['import']['seconds']} s", flush=True)
    return summarise(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("SABRKIT_TEST_POSTGRES_URL"))
    parser.add_argument("--repeats", type=lambda text: check_repeats(int(text)), default=DEFAULT_REPEATS)
    parser.add_argument(
        "--quick", action="store_true", help="10x smaller sizes (a smoke run, not the targets)"
    )
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    sizes = dict(
        n_import=100_000 // scale,
        n_naive=5_000 // scale,
        n_total=1_000_000 // scale,
        n_lookups=2000 // scale,
        n_place=500 // scale,
    )
    results: dict[str, object] = {
        "benchmark": "biobank",
        "date": dt.date.today().isoformat(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "gpu": "none (no GPU used or needed; CPU only)",
        "sizes": sizes,
        "targets_sqlite": {"import_s": 30, "lookup_p95_ms": 5, "placement_p95_ms": 20},
        "repeats": args.repeats,
        "note": "import seconds = load_samples of the CSV (validation, SPREC, accession IDs, custody "
        "events, audit entries, one transaction), CSV writing excluded; naive import = the first "
        "n_naive rows ORM row by row, extrapolated per row to n_import; placement p95 over n_place "
        "place_sample calls on a table of n_import samples; lookup p95 over n_lookups get_sample calls "
        "on n_total samples (900,000 of them bulk-filled without audit), pandas filter over the same IDs "
        "in memory. Each repeat is a fresh database; figures give median, min and max over repeats. "
        "Wall time depends on other load on the shared machine (load_average_*).",
        "load_average_at_start": load_average(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        serial = iter(range(1000))

        @contextmanager
        def sqlite_url():
            yield f"sqlite:///{workdir / f'bench{next(serial)}.db'}"

        results["sqlite"] = _repeat(sqlite_url, args.repeats, workdir, sizes)
        if args.postgres_url:
            from sabrkit.db.testing import temporary_postgres_schema

            results["postgresql"] = _repeat(
                lambda: temporary_postgres_schema(args.postgres_url), args.repeats, workdir, sizes
            )
        else:
            results["postgresql"] = "skipped: no --postgres-url / SABRKIT_TEST_POSTGRES_URL"
    results["load_average_at_end"] = load_average()
    sqlite: Any = results["sqlite"]
    results["targets_met_sqlite"] = (
        {
            "import": sqlite["import_seconds"]["median"] < 30,
            "lookup_p95": sqlite["lookup_p95_ms"]["median"] < 5,
            "placement_p95": sqlite["placement_p95_ms"]["median"] < 20,
        }
        if not args.quick
        else "not judged (--quick)"
    )
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    out = RESULT if not args.quick else RESULT.with_name("biobank_quick.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
