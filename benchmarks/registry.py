"""Benchmark: registry import and analysis tables at 10,000 patients x 24 visits (SQLite and PostgreSQL).

Measures, on one generated registry folder (valid rows only, written to a temporary folder):

1. **import**: ``load_registry_folder`` (every row validated, cross-checked, inserted in one
   transaction with one audit entry per row) vs the plain alternative a user would write,
   ``pandas.read_csv`` + ``DataFrame.to_sql`` into bare tables (no validation, no audit);
   targets on SQLite: < 60 s;
2. **analysis tables**: ``registry_frames`` + ``build_analysis_tables`` (ADSL, ADTTE with PFS,
   OS and local control per lesion, AE, VRS, TESS) vs the plain floor ``pandas.read_sql_table``
   of the same tables; target on SQLite: < 10 s. The same worker then computes every table of
   the study report (KM landmarks, cumulative incidence, toxicity, VRS/TESS by month, log-rank
   and Cox by therapy, subgroup Cox models, data-quality list, completeness; no figures),
   reported as ``report_tables_seconds`` (no target; lifelines' import and Cox fits dominate);
3. **audit verify**: the chain and every row against its last logged state.

Each measurement runs in a fresh subprocess, so the peak resident memory (``ru_maxrss``) is its
own. Wall and CPU seconds are reported (CPU time is less sensitive to other load on the machine).

Run: ``.venv/bin/python benchmarks/registry.py [--patients 10000] [--repeats 3]``
-> ``benchmarks/results/registry.json``. PostgreSQL runs when ``SABRKIT_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform as stdlib_platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from measure import DEFAULT_REPEATS, check_repeats, load_average, spread

from sabrkit.timescale import DAYS_PER_MONTH

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "registry.json"
N_VISITS = 24
SITES = ("lung", "bone", "lymph_node", "adrenal", "liver", "brain", "pancreas")
TERMS = (("Fatigue", 3), ("Nausea", 3), ("Cough", 3), ("Pneumonitis", 5), ("Pain", 3), ("Diarrhea", 5))


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def generate(folder: Path, n_patients: int, seed: int = 20240501) -> dict[str, int]:
    """A valid registry folder: n patients, 1-3 lesions each, visits 1-24, AEs, events."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    # Early enough that the last dates (2 years of enrolment + 24 monthly visits) lie before today:
    # the importer rejects dates after the data cut-off.
    day0 = dt.date(2022, 1, 1)
    tables: dict[str, list[list[object]]] = {
        k: []
        for k in (
            "patients",
            "identifiers",
            "eligibility",
            "lesions",
            "courses",
            "therapy",
            "visits",
            "aes",
            "tumour",
            "lesion_checks",
            "progression",
            "deaths",
        )
    }
    for i in range(1, n_patients + 1):
        sid = f"SABR-RCC-{i:05d}"
        mdt = day0 + dt.timedelta(days=int(rng.integers(0, 730)))
        enrol = mdt + dt.timedelta(days=int(rng.integers(0, 10)))
        index = enrol + dt.timedelta(days=7)
        last_visit = index + dt.timedelta(days=round(N_VISITS * DAYS_PER_MONTH))
        last_contact = last_visit + dt.timedelta(days=5)
        therapy = str(rng.choice(["none", "tki", "ici", "tki_ici"]))
        tables["patients"].append(
            [
                sid,
                mdt,
                enrol,
                int(rng.integers(40, 85)),
                str(rng.choice(["F", "M"])),
                int(rng.integers(0, 3)),
                90,
                str(rng.choice(["clear_cell", "non_clear_cell"])),
                str(rng.choice(["favourable", "intermediate", "poor"])),
                "true",
                str(rng.choice(["oligometastatic", "oligoprogressive"])),
                therapy,
                last_contact,
                int(rng.integers(0, 3)),
                3,
            ]
        )
        tables["identifiers"].append([sid, f"H{i:08d}", "Fakename", "Test", dt.date(1950, 1, 1)])
        tables["eligibility"].append([sid, mdt, "true", "true", "true", "true", "true", "sabr_all_lesions"])
        if therapy != "none":
            tables["therapy"].append([sid, 1, "agent", therapy, mdt])
        n_lesions = int(rng.integers(1, 4))
        for n in range(1, n_lesions + 1):
            lesion = f"{sid}-L{n}"
            start = index + dt.timedelta(days=7 * (n - 1))
            tables["lesions"].append([lesion, sid, n, str(rng.choice(SITES)), 20.0, "1.2.3", f"GTV_L{n}"])
            tables["courses"].append([lesion, sid, 50.0, 5, start, start + dt.timedelta(days=6), "vmat"])
            for month in (6, 12):
                tables["lesion_checks"].append(
                    [lesion, start + dt.timedelta(days=round(month * DAYS_PER_MONTH)), "controlled"]
                )
        for v in range(1, N_VISITS + 1):
            day = index + dt.timedelta(days=round(v * DAYS_PER_MONTH) + int(rng.integers(-3, 4)))
            tables["visits"].append([sid, v, day, int(rng.integers(0, 5)), int(rng.integers(20, 61))])
        for month in (3, 6, 12, 24):
            tables["tumour"].append(
                [sid, index + dt.timedelta(days=round(month * DAYS_PER_MONTH) + 2), "ct", "SD"]
            )
        for _ in range(int(rng.integers(0, 3))):
            term, top = TERMS[int(rng.integers(0, len(TERMS)))]
            tables["aes"].append(
                [
                    sid,
                    term,
                    int(rng.integers(1, min(top, 3) + 1)),
                    "5.0",
                    index + dt.timedelta(days=int(rng.integers(0, 400))),
                    "possible",
                ]
            )
        if rng.random() < 0.45:
            tables["progression"].append(
                [
                    sid,
                    index + dt.timedelta(days=int(rng.integers(30, 700))),
                    str(rng.choice(["local", "distant", "both"])),
                ]
            )
        if rng.random() < 0.12:
            tables["deaths"].append([sid, last_contact + dt.timedelta(days=int(rng.integers(1, 60))), "rcc"])
    files = {
        "patients.csv": (
            [
                "study_id",
                "mdt_date",
                "enrolment_date",
                "age_years",
                "sex",
                "ecog",
                "kps",
                "histology",
                "imdc_risk",
                "prior_nephrectomy",
                "disease_state",
                "systemic_therapy",
                "last_contact_date",
                "prior_systemic_lines",
                "n_metastases",
            ],
            "patients",
        ),
        "identifiers.csv": (
            ["study_id", "hospital_number", "family_name", "given_name", "date_of_birth"],
            "identifiers",
        ),
        "eligibility.csv": (
            [
                "study_id",
                "assessed_on",
                "rcc_confirmed",
                "one_to_five_metastases",
                "all_lesions_treatable",
                "ecog_0_to_2",
                "informed_consent",
                "mdt_decision",
            ],
            "eligibility",
        ),
        "lesions.csv": (
            [
                "lesion_id",
                "study_id",
                "lesion_number",
                "site",
                "longest_diameter_mm",
                "series_uid",
                "roi_name",
            ],
            "lesions",
        ),
        "sabr_courses.csv": (
            ["lesion_id", "study_id", "total_dose_gy", "fractions", "start_date", "end_date", "technique"],
            "courses",
        ),
        "systemic_therapy_lines.csv": (
            ["study_id", "line_number", "agent", "therapy_class", "start_date"],
            "therapy",
        ),
        "visits.csv": (["study_id", "visit_number", "visit_date", "vrs_pain", "tess_score"], "visits"),
        "adverse_events.csv": (
            ["study_id", "term", "grade", "ctcae_version", "onset_date", "attribution_sabr"],
            "aes",
        ),
        "tumour_assessments.csv": (["study_id", "assessment_date", "modality", "overall_response"], "tumour"),
        "lesion_assessments.csv": (["lesion_id", "assessment_date", "local_status"], "lesion_checks"),
        "progression_events.csv": (["study_id", "event_date", "progression_type"], "progression"),
        "deaths.csv": (["study_id", "death_date", "cause"], "deaths"),
    }
    counts = {}
    for name, (header, key) in files.items():
        _write(folder / name, header, tables[key])
        counts[name] = len(tables[key])
    return counts


# ---- workers (run in a fresh process each) ---------------------------------------------------


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _worker(task: str, url: str, folder: str) -> dict[str, float]:
    import resource

    from sabrkit.audit import open_database

    db = open_database(url, actor="benchmark")
    result: dict[str, float] = {}
    if task == "import":
        db.upgrade()
        from sabrkit.registry import load_registry_folder

        cpu, start = _cpu(), time.perf_counter()
        summary = load_registry_folder(db, Path(folder))
        result = {"seconds": time.perf_counter() - start, "cpu_seconds": _cpu() - cpu, "rows": summary.total}
    elif task == "plain_import":
        import pandas as pd
        from sqlalchemy import create_engine

        engine = create_engine(url)
        cpu, start = _cpu(), time.perf_counter()
        rows = 0
        with engine.begin() as connection:
            for path in sorted(Path(folder).glob("*.csv")):
                frame = pd.read_csv(path)
                frame.to_sql(
                    f"plain_{path.stem}", connection, index=False, if_exists="replace", chunksize=10_000
                )
                rows += len(frame)
        result = {"seconds": time.perf_counter() - start, "cpu_seconds": _cpu() - cpu, "rows": rows}
        engine.dispose()
    elif task == "analysis":
        result = _analysis(db)
    elif task == "plain_analysis":
        import pandas as pd

        from sabrkit.registry.frames import REGISTRY_TABLES

        cpu, start = _cpu(), time.perf_counter()
        with db.engine.connect() as connection:
            n = sum(len(pd.read_sql_table(name, connection)) for name in REGISTRY_TABLES)
        result = {"seconds": time.perf_counter() - start, "cpu_seconds": _cpu() - cpu, "rows": n}
    elif task == "verify":
        from sabrkit.audit import verify_audit

        cpu, start = _cpu(), time.perf_counter()
        report = verify_audit(db)
        result = {
            "seconds": time.perf_counter() - start,
            "cpu_seconds": _cpu() - cpu,
            "entries": report.n_entries,
            "ok": float(report.ok),
        }
    db.dispose()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _analysis(db: object) -> dict[str, float]:
    from sabrkit.registry.analyses import (
        cox_by,
        endpoint_frame,
        grade3plus,
        km_landmarks,
        local_failure_incidence,
        logrank_by,
        score_by_month,
        subgroup_hazard_ratios,
        toxicity_summary,
    )
    from sabrkit.registry.exports import build_analysis_tables
    from sabrkit.registry.frames import registry_frames
    from sabrkit.registry.quality import data_quality, followup_completeness
    from sabrkit.registry.survival import median_followup

    cpu, start = _cpu(), time.perf_counter()
    frames = registry_frames(db)
    read = time.perf_counter() - start
    tables = build_analysis_tables(frames)
    tables_seconds, tables_cpu = time.perf_counter() - start, _cpu() - cpu
    pfs = endpoint_frame(tables.adtte, "PFS", tables.adsl)
    os_ = endpoint_frame(tables.adtte, "OS")
    km_landmarks(pfs["AVAL"], pfs["EVENT"])
    km_landmarks(os_["AVAL"], os_["EVENT"])
    median_followup(tables.adsl["OSMO"], tables.adsl["OSEVNT"])
    local_failure_incidence(tables.adtte[tables.adtte["PARAMCD"] == "LC"])
    toxicity_summary(tables.ae, len(tables.adsl))
    grade3plus(tables.ae, tables.adsl["USUBJID"])
    score_by_month(tables.vrs)
    score_by_month(tables.tess)
    logrank_by(pfs, "TRT01A")
    cox_by(pfs, "TRT01A", reference="SABR alone")
    subgroup_hazard_ratios(pfs)
    data_quality(tables.adsl, frames["visits"], frames["adverse_events"], frames["eligibility"])
    followup_completeness(tables.adsl, frames["visits"])
    return {
        "seconds": tables_seconds,
        "cpu_seconds": tables_cpu,
        "read_seconds": read,
        "report_tables_seconds": time.perf_counter() - start,
        "report_tables_cpu_seconds": _cpu() - cpu,
        "patients": len(tables.adsl),
        "adtte_rows": len(tables.adtte),
        "ae_rows": len(tables.ae),
        "vrs_rows": len(tables.vrs),
    }


def _run(task: str, url: str, folder: Path) -> dict[str, object]:
    before = load_average()
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", task, url, str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{task} on {url} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["load_average_before_after"] = [before, load_average()]
    return result


def _summary(runs: list[dict[str, Any]]) -> dict[str, object]:
    return {
        "median_seconds": statistics.median(r["seconds"] for r in runs),
        "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "seconds": spread(r["seconds"] for r in runs),
        "cpu_seconds": spread(r["cpu_seconds"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "runs": runs,
    }


def _backend(name: str, url_factory, folder: Path, repeats: int) -> dict[str, object]:
    """Per repeat: a fresh database, then import, plain import, analysis, plain read and verify."""
    imports, plain_imports, analyses, plain_analyses, verifies = [], [], [], [], []
    for _ in range(repeats):
        with url_factory() as url:
            imports.append(_run("import", url, folder))
            plain_imports.append(_run("plain_import", url, folder))
            analyses.append(_run("analysis", url, folder))
            plain_analyses.append(_run("plain_analysis", url, folder))
            verifies.append(_run("verify", url, folder))
        print(
            f"  {name}: import {imports[-1]['seconds']:.1f} s, analysis {analyses[-1]['seconds']:.1f} s",
            flush=True,
        )
    out = {
        "import": _summary(imports),
        "plain_import": _summary(plain_imports),
        "analysis_tables": _summary(analyses),
        "plain_read_tables": _summary(plain_analyses),
        "audit_verify": _summary(verifies),
    }
    out["report_tables_median_seconds"] = statistics.median(r["report_tables_seconds"] for r in analyses)
    out["report_tables_seconds"] = spread(r["report_tables_seconds"] for r in analyses)
    out["import_ratio_to_plain"] = out["import"]["median_seconds"] / out["plain_import"]["median_seconds"]
    out["analysis_ratio_to_plain_read"] = (
        out["analysis_tables"]["median_seconds"] / out["plain_read_tables"]["median_seconds"]
    )
    return out


def check_repeats_arg(text: str) -> int:
    return check_repeats(int(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--repeats", type=check_repeats_arg, default=DEFAULT_REPEATS)
    parser.add_argument("--worker", nargs=3, metavar=("TASK", "URL", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(*args.worker)))
        return
    from contextlib import contextmanager

    load_before = load_average()

    from sabrkit.db.testing import postgres_test_url, temporary_postgres_schema

    with tempfile.TemporaryDirectory(prefix="sabrkit-bench-registry-") as tmp:
        folder = Path(tmp) / "registry"
        started = time.perf_counter()
        counts = generate(folder, args.patients)
        print(f"generated {sum(counts.values())} rows in {time.perf_counter() - started:.1f} s", flush=True)
        serial = iter(range(1000))

        @contextmanager
        def sqlite_url():
            yield f"sqlite:///{Path(tmp) / f'bench{next(serial)}.db'}"

        backends = {"sqlite": _backend("sqlite", sqlite_url, folder, args.repeats)}
        server = postgres_test_url()
        if server:
            backends["postgresql"] = _backend(
                "postgresql", lambda: temporary_postgres_schema(server), folder, args.repeats
            )
    sqlite = backends["sqlite"]
    result = {
        "benchmark": "registry import and analysis tables",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "load_average_1m_at_end": os.getloadavg()[0],
        "gpu": "none: no GPU is available in this session (CPU-only benchmark; the registry needs none)",
        "python": stdlib_platform.python_version(),
        "n_patients": args.patients,
        "visits_per_patient": N_VISITS,
        "rows_per_file": counts,
        "total_rows": sum(counts.values()),
        "repeats": args.repeats,
        "backends": backends,
        "postgresql": "measured" if "postgresql" in backends else "skipped: SABRKIT_TEST_POSTGRES_URL unset",
        "targets_sqlite": {
            "import_under_60_s": sqlite["import"]["median_seconds"] < 60,
            "analysis_tables_under_10_s": sqlite["analysis_tables"]["median_seconds"] < 10,
        },
        "notes": "import = validate every row + cross-checks + one transaction + one hash-chained audit entry per "
        "row; plain import = pandas read_csv + to_sql without validation or audit. analysis_tables "
        "seconds = read the registry + build ADSL/ADTTE/AE/VRS/TESS only; report_tables_seconds (in each "
        "run, median in report_tables_median_seconds) = that plus every report table (KM, log-rank, Cox, "
        "toxicity, scores, subgroups, data quality; no figures). Wall time depends on other load on the "
        "machine (load_average_*, also per run in load_average_before_after); cpu seconds are the "
        "process's own. Each repeat imports into a fresh database and runs every measurement on it; "
        "`seconds` / `cpu_seconds` give median, min and max over the repeats.",
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("backends", "rows_per_file")}, indent=2))
    for name, numbers in backends.items():
        print(
            name,
            {
                k: round(v["median_seconds"], 2)
                for k, v in numbers.items()
                if isinstance(v, dict) and "median_seconds" in v
            },
        )


if __name__ == "__main__":
    main()
