"""Benchmark: the web app under load, 20 concurrent clients on loopback (issue 8).

A demo site (synthetic cohort of 200 patients, ~3,700 accessioned samples; :func:`sabrkit.web.demo.build_demo`)
plus 40 empty 10x10 boxes is served by uvicorn in its own process (one worker, SQLite in WAL
mode, the app exactly as ``sabrkit serve`` runs it). Twenty clients (``httpx.AsyncClient``, each
with its own API token) loop for 60 s without think time; each request is, at random,

* a **lookup** (70 %): ``GET /api/samples/{accession_id}`` of a random sample (type, study ID,
  timepoint, status, amount left, location): what a bench scanner needs after a scan;
* a **full lookup** (10 %): ``GET /api/samples/{accession_id}/detail`` (also lineage, freeze-thaw
  count and the custody chain: what the sample page shows), reported apart; or
* a **placement** (20 %): ``POST /api/samples/{id}/place`` of one of the client's own unstored
  samples into a random position of the shared boxes; clients collide on purpose, so some
  placements get 409 "position occupied" (an expected answer, counted apart from errors).

Reported: requests, errors (5xx, transport errors, any other unexpected status), conflicts,
lookup and placement p50/p95/p99, throughput, and **double-booked positions** checked in the
database afterwards (a position holding two samples, or a 200 placement whose sample is not
where the response said). The plain alternative, measured in the same run: the same lookups as
direct calls of the service functions (:func:`sabrkit.web.queries.sample_summary`,
:func:`~sabrkit.web.queries.sample_detail`) in one process, sequentially, without HTTP. Target: no errors, no double booking, lookup p95 < 100 ms.

Every measurement is repeated (``--repeats``, default 3; each repeat a new server on a fresh copy of
the same prepared database, so placements start from the same free positions); the JSON keeps each
repeat and, per figure, the median and spread (min-max), with the load average around each.

Run: ``.venv/bin/python benchmarks/web.py [--seconds 60] [--clients 20] [--repeats 3]`` ->
``benchmarks/results/web.json``.

**Reports** (issue 16; ``--reports-only`` runs just this part and merges it into the JSON): the
60-patient demo site behind uvicorn, the study report and dashboard built off the request path.
Each repeat changes the data (an audited write), lets a second user's dashboard catch up, then
asks for the study report (cold: a data version never built) and polls until it is fresh:
**cold study report seconds** (target <= 5 s on 2 cores). Meanwhile the second user loads the
dashboard page in a closed loop: its p95 while the report builds is compared with its p95 when
idle (measured before each repeat; target: within 1.5x, judged on the median ratio). Both worker modes run in the same session: ``process`` (the default,
``SABRKIT_WEB_REPORT_WORKER=process``) and ``thread``, the plain alternative (a background thread
in the web process, which shares its interpreter). The report built by a direct function call
(no HTTP, warm imports) is measured too. Load average recorded before and after each repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "web.json"
BOXES = [f"F2/S{1 + n // 10}/R1/B{n % 10 + 1:02d}" for n in range(40)]


def _percentiles(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"n": 0}
    ms = np.array(seconds) * 1000
    return {
        "n": len(seconds),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def _stat(values: list[float], digits: int = 2) -> dict[str, object]:
    """Runs, their median and spread (min-max)."""
    runs = [round(float(v), digits) for v in values]
    return {
        "runs": runs,
        "median": round(float(np.median(runs)), digits),
        "min": min(runs),
        "max": max(runs),
    }


def _copy_database(url: str, folder: Path) -> str:
    """A copy of the SQLite file behind ``url`` in ``folder`` (the backup API: WAL content included)."""
    import sqlite3

    source = url.removeprefix("sqlite:///")
    target = folder / Path(source).name
    folder.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return f"sqlite:///{target}"


def _start_server(
    url: str, folder: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """uvicorn serving the app exactly as ``sabrkit serve`` does, on a free port; waits for /healthz."""
    import httpx

    port = _free_port()
    env = {**os.environ, "SABRKIT_DATABASE_URL": url, **(extra_env or {})}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "sabrkit.web.app:app_from_environment",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=folder,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.terminate()
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_stack() -> str:
    """What uvicorn runs on here: its 'auto' choice is httptools and uvloop when they are installed."""
    import importlib.util

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"({http} HTTP parser, {loop} event loop)"


def prepare(folder: Path, n_clients: int) -> tuple[str, list[str], list[str], list[str]]:
    """Demo site + bench boxes; returns the URL, one API token per client, all and unstored sample IDs."""
    from sqlalchemy import select

    from sabrkit.audit import open_database
    from sabrkit.biobank import create_storage
    from sabrkit.biobank.tables import Sample
    from sabrkit.web import create_api_token
    from sabrkit.web.demo import build_demo

    site = build_demo(folder, n_patients=200)
    db = open_database(site.database_url, actor="bench")
    try:
        for box in BOXES:
            create_storage(db, box, geometry="10x10", temperature_c=-80, operator="bench")
        tokens = [
            create_api_token(db, "lab", label=f"bench client {i}", days=1, actor="bench")
            for i in range(n_clients)
        ]
        with db.session() as session:
            every = list(session.scalars(select(Sample.accession_id)))
            unstored = list(session.scalars(select(Sample.accession_id).where(Sample.status == "received")))
    finally:
        db.dispose()
    return site.database_url, tokens, every, unstored


def plain_lookups(url: str, accession_ids: list[str], n: int, rng: random.Random) -> dict[str, list[float]]:
    """The same lookups as direct, sequential service calls in this process (no HTTP, no server)."""
    from sabrkit.audit import open_database
    from sabrkit.web.queries import sample_detail, sample_summary

    db = open_database(url, actor="bench")
    times: dict[str, list[float]] = {"lookup": [], "full_lookup": []}
    try:
        for name, call in (("lookup", sample_summary), ("full_lookup", sample_detail)):
            call(db, accession_ids[0])
            for _ in range(n):
                start = time.perf_counter()
                call(db, rng.choice(accession_ids))
                times[name].append(time.perf_counter() - start)
    finally:
        db.dispose()
    return times


async def client_loop(
    base: str,
    token: str,
    every: list[str],
    mine: list[str],
    until: float,
    seed: int,
    log: dict[str, list],
    think_s: float,
) -> None:
    import httpx

    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30.0) as client:
        while time.perf_counter() < until:
            if think_s > 0:  # a person at the bench: exponential pauses between scans
                await asyncio.sleep(rng.expovariate(1.0 / think_s))
            draw = rng.random()
            place, full = bool(mine) and draw < 0.2, 0.2 <= draw < 0.3
            start = time.perf_counter()
            try:
                if place:
                    accession_id = mine[-1]
                    box, position = (
                        rng.choice(BOXES),
                        f"{'ABCDEFGHIJ'[rng.randrange(10)]}{rng.randrange(1, 11)}",
                    )
                    response = await client.post(
                        f"/api/samples/{accession_id}/place", json={"box": box, "position": position}
                    )
                else:
                    response = await client.get(
                        f"/api/samples/{rng.choice(every)}" + ("/detail" if full else "")
                    )
            except httpx.HTTPError as exc:
                log["errors"].append(f"{type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - start
            if place:
                if response.status_code == 200:
                    log["placement"].append(elapsed)
                    log["placed"].append((accession_id, response.json()["location"]))
                    mine.pop()
                elif response.status_code == 409 and "position occupied" in response.text:
                    log["conflict"].append(elapsed)
                else:
                    log["errors"].append(f"place {response.status_code}: {response.text[:200]}")
            elif response.status_code == 200:
                log["full_lookup" if full else "lookup"].append(elapsed)
            else:
                log["errors"].append(f"lookup {response.status_code}: {response.text[:200]}")


def double_bookings(url: str, placed: list[tuple[str, str]]) -> dict[str, int]:
    """Positions holding two samples, and 200 placements whose sample is not where the reply said."""
    from sqlalchemy import func, select

    from sabrkit.audit import open_database
    from sabrkit.biobank import locate
    from sabrkit.biobank.tables import SamplePosition

    db = open_database(url, actor="bench")
    try:
        with db.session() as session:
            shared = session.execute(
                select(SamplePosition.box_id, SamplePosition.row, SamplePosition.col)
                .group_by(SamplePosition.box_id, SamplePosition.row, SamplePosition.col)
                .having(func.count() > 1)
            ).all()
        wrong = sum(locate(db, accession_id) != location for accession_id, location in placed)
        claimed = [location for _, location in placed]
        return {
            "positions_with_two_samples": len(shared),
            "placements_not_where_reported": wrong,
            "positions_reported_twice": len(claimed) - len(set(claimed)),
        }
    finally:
        db.dispose()


def _scenario(
    base: str,
    url: str,
    tokens: list[str],
    every: list[str],
    shares: list[list[str]],
    seconds: float,
    seed: int,
    think_s: float,
) -> dict[str, object]:
    log: dict[str, list] = {
        "lookup": [],
        "full_lookup": [],
        "placement": [],
        "conflict": [],
        "placed": [],
        "errors": [],
    }

    async def main() -> float:
        start = time.perf_counter()
        until = start + seconds
        await asyncio.gather(
            *(
                client_loop(base, tokens[i], every, shares[i], until, seed + i, log, think_s)
                for i in range(len(tokens))
            )
        )
        return time.perf_counter() - start

    load_before = os.getloadavg()[0]
    wall = asyncio.run(main())
    checks = double_bookings(url, log["placed"])
    n_requests = sum(len(log[k]) for k in ("lookup", "full_lookup", "placement", "conflict", "errors"))
    lookup = _percentiles(log["lookup"])
    return {
        "think_time_mean_s": think_s,
        "seconds": round(wall, 1),
        "requests": n_requests,
        "throughput_rps": round(n_requests / wall, 1),
        "errors": len(log["errors"]),
        "error_examples": log["errors"][:5],
        "placements_ok": len(log["placement"]),
        "placement_conflicts_409": len(log["conflict"]),
        "double_booking": checks,
        "double_booked_positions": checks["positions_with_two_samples"] + checks["positions_reported_twice"],
        "lookup": lookup,
        "full_lookup": _percentiles(log["full_lookup"]),
        "placement": _percentiles(log["placement"]),
        "conflict": _percentiles(log["conflict"]),
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "targets": {
            "no_errors": not log["errors"],
            "no_double_booking": not any(checks.values()),
            "lookup_p95_under_100ms": bool(lookup.get("n")) and lookup["p95_ms"] < 100,
        },
    }


SCENARIO_NOTES = {
    "saturation": "one repeat: a fresh copy of the prepared site served by a new uvicorn process, {clients} "
    "clients for {seconds:g} s without think time (closed loop); latency = one HTTP request as the client "
    "sees it (loopback, client and server on the same cores)",
    "bench_pace": "right after the saturation scenario of the same repeat, on the same server and data: "
    "{clients} clients with exponential think time of mean {think:g} s between requests (a person scanning)",
}


def _summary(runs: list[dict[str, object]]) -> dict[str, object]:
    """Median and spread over the repeats of one scenario's headline figures."""
    return {
        "lookup_p95_ms": _stat([r["lookup"]["p95_ms"] for r in runs]),
        "lookup_p50_ms": _stat([r["lookup"]["p50_ms"] for r in runs]),
        "full_lookup_p95_ms": _stat([r["full_lookup"]["p95_ms"] for r in runs]),
        "placement_p95_ms": _stat([r["placement"]["p95_ms"] for r in runs if r["placement"].get("n")]),
        "throughput_rps": _stat([r["throughput_rps"] for r in runs], 1),
        "requests": [r["requests"] for r in runs],
        "errors": [r["errors"] for r in runs],
        "double_booked_positions": [r["double_booked_positions"] for r in runs],
    }


def run(seconds: float, n_clients: int, seed: int, think_s: float, repeats: int = 3) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="sabrkit-web-bench-"))
    url, tokens, every, unstored = prepare(folder / "prepared", n_clients)
    per_scenario: dict[str, list[dict[str, object]]] = {"saturation": []}
    if think_s > 0:
        per_scenario["bench_pace"] = []
    plain_runs: list[dict[str, object]] = []
    for repeat in range(repeats):
        rng = random.Random(seed + repeat)
        copy = _copy_database(url, folder / f"repeat-{repeat}")  # the same starting state every repeat
        load_before = os.getloadavg()[0]
        plain = plain_lookups(copy, every, 500, rng)
        plain_runs.append(
            {
                "lookup": _percentiles(plain["lookup"]),
                "full_lookup": _percentiles(plain["full_lookup"]),
                "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
            }
        )
        server, base = _start_server(copy, folder / f"repeat-{repeat}")
        try:
            mine = list(unstored)
            rng.shuffle(mine)
            shares = [mine[i::n_clients] for i in range(n_clients)]
            per_scenario["saturation"].append(
                _scenario(base, copy, tokens, every, shares, seconds, seed + 100 * repeat, 0.0)
            )
            if think_s > 0:
                per_scenario["bench_pace"].append(
                    _scenario(base, copy, tokens, every, shares, seconds, seed + 100 * repeat + 1000, think_s)
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(
            f"web repeat {repeat}: " + json.dumps({k: v[-1]["lookup"] for k, v in per_scenario.items()}),
            file=sys.stderr,
        )
    scenarios: dict[str, object] = {}
    for name, runs in per_scenario.items():
        scenarios[name] = {
            "note": SCENARIO_NOTES[name].format(clients=n_clients, seconds=seconds, think=think_s),
            "think_time_mean_s": runs[0]["think_time_mean_s"],
            "summary": _summary(runs),
            "load_average_1min": {
                "before": runs[0]["load_average_1min"]["before"],
                "after": runs[-1]["load_average_1min"]["after"],
            },
            "targets": {key: all(r["targets"][key] for r in runs) for key in runs[0]["targets"]},
            "repeats": runs,
        }
    ratios = [
        s["lookup"]["p50_ms"] / p["lookup"]["p50_ms"]
        for s, p in zip(per_scenario["saturation"], plain_runs, strict=True)
        if s["lookup"].get("n")
    ]
    return {
        "benchmark": "web",
        "date": dt.date.today().isoformat(),
        "cpu_count": os.cpu_count(),
        "gpu": "none (no GPU in this session; none needed)",
        "python": sys.version.split()[0],
        "machine_note": "server and clients share the same 2 cores with other people's work; see "
        "load_average_1min in each scenario and repeat",
        "setup": {
            "server": f"uvicorn {_server_stack()}, 1 worker, SQLite (WAL) file",
            "clients": n_clients,
            "repeats": repeats,
            "seconds_per_scenario": seconds,
            "client": "httpx.AsyncClient, one API token each, on the same machine as the server",
            "mix": "70% lookups GET /api/samples/{id}, 10% full lookups GET /api/samples/{id}/detail, "
            "20% placements POST /api/samples/{id}/place (random position of the shared boxes)",
            "scenarios": "saturation: no think time (closed loop); bench_pace: exponential think time "
            f"of mean {think_s:g} s between requests (a person scanning)",
            "samples": len(every),
            "free_positions_at_start": len(BOXES) * 100,
        },
        "scenarios": scenarios,
        "plain_alternative": {
            "note": "per repeat, before its server starts: the service calls behind each lookup "
            "(sample_summary, sample_detail), 500 each, called directly and sequentially in one process "
            "on the repeat's copy of the database (no HTTP, no concurrency)",
            "lookup_p50_ms": _stat([p["lookup"]["p50_ms"] for p in plain_runs], 3),
            "lookup_p95_ms": _stat([p["lookup"]["p95_ms"] for p in plain_runs], 3),
            "full_lookup_p50_ms": _stat([p["full_lookup"]["p50_ms"] for p in plain_runs], 3),
            "full_lookup_p95_ms": _stat([p["full_lookup"]["p95_ms"] for p in plain_runs], 3),
            "repeats": plain_runs,
        },
        "ratio_http_saturation_to_plain_lookup_p50": {
            "note": "per repeat: saturation lookup p50 over HTTP / direct-call lookup p50",
            **_stat(ratios, 1),
        },
        "targets": {name: scenario["targets"] for name, scenario in scenarios.items()},
    }


def _report_repeat(base: str, url: str, headers: dict[str, str], repeat: int) -> dict[str, object]:
    """One cold report build while another user loads the dashboard; returns seconds and latencies."""
    import threading

    import httpx

    from sabrkit.audit import open_database
    from sabrkit.registry.capture import correct
    from sabrkit.registry.followup_tables import Visit
    from sabrkit.web.queries import data_version

    db = open_database(url, actor="bench")  # audited, as the CLI and the web app write
    try:  # an audited registry correction: a new data version, never built
        before = data_version(db)
        with db.session() as session:
            visit = session.get(Visit, 1)
            old = visit.tess_score if visit is not None else None
        correct(
            db,
            "visits",
            "1",
            {"tess_score": str(40 + repeat if old != 40 + repeat else 41 + repeat)},  # always a change
            reason=f"benchmark repeat {repeat}",
            actor="bench",
        )
        after = data_version(db)
    finally:
        db.dispose()
    if after == before:
        raise RuntimeError("the write did not change the data version")
    with httpx.Client(base_url=base, headers=headers, timeout=600) as other:
        for _ in range(600):  # the other user's dashboard catches up with the new data first
            if (
                other.get("/dashboard").status_code == 200
                and "being built" not in other.get("/dashboard").text
            ):
                break
            time.sleep(0.5)
    loads = [os.getloadavg()[0]]
    latencies: list[float] = []
    stop = threading.Event()

    def dashboard_user() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=600) as other:
            while not stop.is_set():
                started = time.perf_counter()
                response = other.get("/dashboard")
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    latencies.append(float("inf"))

    user = threading.Thread(target=dashboard_user)
    with httpx.Client(base_url=base, headers=headers, timeout=600) as reader:
        user.start()
        started = time.perf_counter()
        polls = 0
        while True:
            response = reader.get("/reports/study")
            polls += 1
            if response.status_code == 200 and response.headers.get("x-fresh") == "true":
                break
            time.sleep(0.1)
        seconds = time.perf_counter() - started
    stop.set()
    user.join()
    loads.append(os.getloadavg()[0])
    print(
        f"repeat {repeat}: cold report {seconds:.1f} s after {polls} polls, {len(latencies)} dashboard requests "
        f"meanwhile, load {loads}",
        file=sys.stderr,
        flush=True,
    )
    return {
        "cold_report_seconds": round(seconds, 2),
        "polls": polls,
        "dashboard_while_building": latencies,
        "load_average_1min": [round(v, 2) for v in loads],
        "report_bytes": len(response.content),
    }


def _idle_dashboard(base: str, headers: dict[str, str], seconds: float) -> list[float]:
    import httpx

    latencies = []
    with httpx.Client(base_url=base, headers=headers, timeout=600) as other:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            started = time.perf_counter()
            other.get("/dashboard")
            latencies.append(time.perf_counter() - started)
    return latencies


def _direct_builds(url: str, repeats: int) -> dict[str, object]:
    """The study report built by a direct function call in this process (warm imports, no HTTP)."""
    from sabrkit.db import Database
    from sabrkit.web.dashboard import _build_report_html

    db = Database.from_url(url, actor="bench")
    try:
        _build_report_html(db, 60)  # imports warm
        wall, cpu, loads = [], [], []
        for _ in range(repeats):
            load_before = os.getloadavg()[0]
            started, cpu_started = time.perf_counter(), time.process_time()
            _build_report_html(db, 60)
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            loads.append([round(load_before, 2), round(os.getloadavg()[0], 2)])
    finally:
        db.dispose()
    return {
        "note": "build_study_report with its registry reads (_build_report_html), called directly in the "
        "benchmark process after one warm-up call: wall seconds, and the CPU seconds of this process "
        "(less sensitive to other load on the machine)",
        "wall_seconds": _stat(wall),
        "cpu_seconds": _stat(cpu),
        "load_average_1min": loads,
    }


def run_reports(repeats: int, idle_seconds: float) -> dict[str, object]:
    """Cold study report and other users' dashboard latency, process vs thread worker (see the docstring)."""
    import httpx

    from sabrkit.db import Database
    from sabrkit.web import create_api_token
    from sabrkit.web.demo import build_demo

    folder = Path(tempfile.mkdtemp(prefix="sabrkit-web-reports-"))
    site = build_demo(folder, n_patients=60)
    db = Database.from_url(site.database_url, actor="bench")
    try:
        token = create_api_token(db, "researcher", label="bench reports", days=1, actor="bench")
    finally:
        db.dispose()
    headers = {"Authorization": f"Bearer {token}"}
    modes: dict[str, object] = {"direct_call": _direct_builds(site.database_url, repeats)}
    for mode in ("process", "thread"):
        server, base = _start_server(
            site.database_url,
            folder,
            {"SABRKIT_WEB_REPORT_WORKER": mode, "SABRKIT_WEB_SESSION_CACHE_SECONDS": "5"},
        )
        try:
            with httpx.Client(
                base_url=base, headers=headers, timeout=600
            ) as warm:  # start the workers, warm caches
                for path in ("/dashboard", "/reports/study"):
                    for _ in range(600):
                        response = warm.get(path)
                        if (
                            response.status_code == 200
                            and response.headers.get("x-fresh", "true") == "true"
                            and "being built" not in response.text
                        ):
                            break
                        time.sleep(0.5)
            runs = []
            for repeat in range(repeats):
                idle_load = os.getloadavg()[0]
                idle = _idle_dashboard(base, headers, idle_seconds)
                run = _report_repeat(base, site.database_url, headers, repeat)
                busy = run.pop("dashboard_while_building")
                idle_stats = _percentiles(idle)
                busy_stats = _percentiles([v for v in busy if v != float("inf")])
                if not busy_stats.get("n"):
                    raise RuntimeError(f"no dashboard request finished while the {mode} report was built")
                run.update(
                    dashboard_idle=idle_stats,
                    dashboard_idle_load_average_1min=round(idle_load, 2),
                    dashboard_while_report_builds=busy_stats,
                    dashboard_non_200_while_building=sum(1 for v in busy if v == float("inf")),
                    ratio_dashboard_p95_building_to_idle=round(
                        busy_stats["p95_ms"] / idle_stats["p95_ms"], 2
                    ),
                )
                runs.append(run)
        finally:
            server.terminate()
            server.wait(timeout=30)
        cold = [run["cold_report_seconds"] for run in runs]
        ratios = [run["ratio_dashboard_p95_building_to_idle"] for run in runs]
        modes[mode] = {
            "cold_report_seconds": _stat(cold),
            "dashboard_idle_p95_ms": _stat([run["dashboard_idle"]["p95_ms"] for run in runs]),
            "dashboard_while_building_p95_ms": _stat(
                [run["dashboard_while_report_builds"]["p95_ms"] for run in runs]
            ),
            "ratio_dashboard_p95_building_to_idle": _stat(ratios),
            "dashboard_non_200_while_building": sum(run["dashboard_non_200_while_building"] for run in runs),
            "repeats": runs,
            "targets": {
                "cold_report_le_5_s": bool(np.median(cold) <= 5.0),
                "dashboard_p95_within_1.5x_idle": bool(np.median(ratios) <= 1.5),
            },
        }
    return {
        "date": dt.date.today().isoformat(),
        "cpu_count": os.cpu_count(),
        "patients": 60,
        "repeats": repeats,
        "idle_seconds": idle_seconds,
        "note": "per repeat: the other user's GET /dashboard in a closed loop for idle_seconds (idle), then an "
        "audited correction makes a data version never built, the other user's dashboard catches up, and "
        "a researcher asks for /reports/study until the fresh report is served (cold_report_seconds: first "
        "request to fresh report, through HTTP, polling every 0.1 s) while the other user keeps loading "
        "GET /dashboard (while_building). Ratio = while-building p95 / idle p95 of the same repeat; the "
        "target is judged on the median ratio and the median cold seconds. Worker process (the default, "
        "niced by SABRKIT_WEB_REPORT_WORKER_NICENESS=10) vs worker thread (plain alternative). "
        "direct_call: the same build called in the benchmark process.",
        **modes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20240502)
    parser.add_argument(
        "--think",
        type=float,
        default=0.5,
        help="mean think time (s) of the bench_pace scenario; 0 runs only the saturation scenario",
    )
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument(
        "--reports-only", action="store_true", help="run only the reports part; merge it into --out"
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the load scenarios")
    parser.add_argument("--report-repeats", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    if args.reports_only:
        result = json.loads(args.out.read_text()) if args.out.is_file() else {"benchmark": "web"}
        result["reports"] = run_reports(args.report_repeats, args.idle_seconds)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(
            json.dumps({k: v for k, v in result["reports"].items() if k != "note"}, indent=1, default=str)[
                :4000
            ]
        )
        return
    result = run(args.seconds, args.clients, args.seed, args.think, args.repeats)
    result["reports"] = run_reports(args.report_repeats, args.idle_seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, scenario in result["scenarios"].items():
        print(name, json.dumps(scenario["summary"], indent=1))
    print(
        json.dumps({k: v for k, v in result["reports"].items() if k != "note"}, indent=1, default=str)[:4000]
    )


if __name__ == "__main__":
    main()
