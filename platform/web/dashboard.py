"""The researchers' cohort dashboard and the study report page, built from the registry's services.

Everything shown is computed by the registry room's functions (:func:`registry_frames`,
:func:`build_analysis_tables`, :func:`followup_completeness`, :func:`survival_at`,
:func:`toxicity_summary`, :func:`grade3plus`, :func:`data_quality`, :func:`plot_km`,
:func:`build_study_report`); this module only assembles their results for one page and caches
them. The cache key is the newest audit-log entry (:func:`sabrkit.web.queries.data_version`):
every audited write changes it, so a page is never stale and an unchanged database is never
recomputed. Both are built off the request path (:class:`DashboardCache`): in a worker process
by default, so a cold study report never holds up another user's page. Only pseudonymous study
IDs appear.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from sabrkit.db.database import Database
from sabrkit.web.queries import data_version

__all__ = ["CohortDashboard", "build_dashboard", "DashboardCache", "BuildResult"]

logger = logging.getLogger(__name__)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class CohortDashboard:
    """What the dashboard shows (plain values, ready for a template or JSON)."""

    version: int
    target: int
    n_patients: int
    n_treated: int
    completeness: dict[str, float | None] = field(default_factory=dict)
    median_followup_months: float | None = None
    landmarks: dict[str, dict[str, float | None]] = field(default_factory=dict)
    grade3plus: dict[str, float | None] = field(default_factory=dict)
    toxicity: list[dict[str, Any]] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    km_png: bytes | None = None
    #: Samples by timepoint, type and status (:func:`sabrkit.web.queries.inventory`) for the same data version.
    inventory: dict[str, Any] = field(default_factory=dict)

    @property
    def enrolment_fraction(self) -> float:
        return self.n_patients / self.target if self.target else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the figure and the query list)."""
        return {
            "data_version": self.version,
            "target": self.target,
            "n_patients": self.n_patients,
            "n_treated": self.n_treated,
            "enrolment_fraction": self.enrolment_fraction,
            "completeness": self.completeness,
            "median_followup_months": self.median_followup_months,
            "landmarks": self.landmarks,
            "grade3plus": self.grade3plus,
            "toxicity": self.toxicity,
            "n_queries": len(self.queries),
        }


def build_dashboard(db: Database, *, target: int = 60, version: int | None = None) -> CohortDashboard:
    """Compute the dashboard from the registry (no cache)."""
    import pandas as pd

    from sabrkit.registry.analyses import endpoint_frame, grade3plus, plot_km, toxicity_summary
    from sabrkit.registry.analyses.plotting import figure_png
    from sabrkit.registry.exports import build_analysis_tables
    from sabrkit.registry.frames import registry_frames
    from sabrkit.registry.quality import data_quality, followup_completeness
    from sabrkit.registry.survival import median_followup, survival_at
    from sabrkit.web.queries import inventory

    version = data_version(db) if version is None else version
    frames = registry_frames(db)
    n_patients = len(frames["patients"])
    samples = inventory(db)
    if frames["sabr_courses"].empty:
        return CohortDashboard(version, target, n_patients, 0, inventory=samples)
    tables = build_analysis_tables(frames)
    adsl = tables.adsl
    completeness = {k: _finite(v) for k, v in followup_completeness(adsl, frames["visits"]).items()}
    pfs = endpoint_frame(tables.adtte, "PFS")
    os_ = endpoint_frame(tables.adtte, "OS")
    landmarks = {}
    for name, frame in (("PFS", pfs), ("OS", os_)):
        for months in (12.0, 24.0):
            at = survival_at(frame["AVAL"], frame["EVENT"], months, name=name)
            landmarks[f"{name} {months:g} months"] = {
                k: v if isinstance(v, int) else _finite(v) for k, v in at.as_dict().items()
            }
    severe = grade3plus(tables.ae, adsl["USUBJID"])
    toxicity = toxicity_summary(tables.ae, len(adsl)) if len(tables.ae) else pd.DataFrame()
    queries = data_quality(adsl, frames["visits"], frames["adverse_events"], frames["eligibility"])
    figure = plot_km(
        {"PFS": (pfs["AVAL"], pfs["EVENT"]), "OS": (os_["AVAL"], os_["EVENT"])},
        title="Progression-free and overall survival (Kaplan-Meier, 95% CI)",
        colours={"PFS": "#1b6fb5", "OS": "#b2182b"},
    )
    return CohortDashboard(
        version=version,
        target=target,
        n_patients=n_patients,
        n_treated=len(adsl),
        completeness=completeness,
        median_followup_months=_finite(median_followup(adsl["OSMO"], adsl["OSEVNT"])),
        landmarks=landmarks,
        grade3plus={
            "k": severe.k,
            "n": severe.n,
            "proportion": _finite(severe.estimate),
            "ci_low": _finite(severe.ci_low),
            "ci_high": _finite(severe.ci_high),
        },
        toxicity=[
            {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in toxicity.to_dict("records")
        ],
        queries=[{k: str(v) for k, v in row.items()} for row in queries.to_dict("records")],
        km_png=figure_png(figure),
        inventory=samples,
    )


def _build_report_html(db: Database, target: int) -> str:
    from sabrkit.registry.exports import build_analysis_tables
    from sabrkit.registry.frames import registry_frames
    from sabrkit.registry.report import build_study_report
    from sabrkit.version import __version__

    frames = registry_frames(db)
    tables = build_analysis_tables(frames)
    return build_study_report(tables, frames, target_patients=target, version=__version__).html


_WORKER_DATABASES: dict[str, Database] = {}


def _worker_build(kind: str, url: str, target: int, version: int) -> Any:
    """Run in the worker process: open (once) the database at ``url`` and build ``kind`` for ``version``."""
    db = _WORKER_DATABASES.get(url)
    if db is None:
        db = _WORKER_DATABASES[url] = Database.from_url(url, actor="web-reports")
    if kind == "dashboard":
        return build_dashboard(db, target=target, version=version)
    return _build_report_html(db, target)


def _exit_with_parent(parent: int, every_seconds: float = 1.0) -> None:
    """End this worker process once the web server that started it is gone (its parent changes).

    ``ProcessPoolExecutor.shutdown(wait=False)`` at server stop leaves a worker that is idle or in
    the middle of a build running as an orphan; a killed server never shuts it down at all.
    """
    import os
    import time

    while os.getppid() == parent:
        time.sleep(every_seconds)
    os._exit(0)


def _warm_up(niceness: int = 0) -> None:
    """Lower the worker process's CPU priority by ``niceness``; import the analysis stack before the first build.

    On a machine with few cores a build competes with the web process for CPU even though it holds
    no lock of it; a niced worker gets the CPU only when requests do not need it.
    """
    import os

    if niceness > 0 and hasattr(os, "nice"):
        os.nice(niceness)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    import lifelines  # noqa: F401
    import matplotlib.figure  # noqa: F401

    import sabrkit.registry.report  # noqa: F401


@dataclass
class _Build:
    version: int
    future: Future[Any]


@dataclass(frozen=True)
class BuildResult:
    """What a page shows: the value built (None while the first build runs) and whether it is the newest."""

    value: Any
    version: int | None
    fresh: bool


class DashboardCache:
    """The dashboard and the study report, built off the request path and cached by data version.

    Each kind (``"dashboard"``, ``"report"``) has at most one build running, in its own worker process
    (``worker="process"``: a build never holds the web process's interpreter, so other users' pages
    stay as fast as when idle) or a worker thread (``worker="thread"``, for in-memory databases).
    A page asks :meth:`get`: the newest data version already built comes back at once; otherwise a
    build of the newest version is started (or joined) and waited for at most ``wait_seconds``, after
    which the last result built (marked not fresh) or None is returned. The cache key is the newest
    audit-log entry (:func:`sabrkit.web.queries.data_version`), so an unchanged database is never
    rebuilt and a page is never silently stale.
    """

    def __init__(
        self,
        target: int = 60,
        *,
        database_url: str | None = None,
        worker: str = "thread",
        wait_seconds: float = 3.0,
        worker_niceness: int = 10,
    ):
        self.target = target
        self.worker_niceness = worker_niceness
        self.wait_seconds = wait_seconds
        self._url = database_url
        self._use_process = (
            worker == "process"
            and database_url is not None
            and ":memory:" not in database_url
            and database_url not in ("sqlite://", "sqlite:///")
        )
        self._lock = threading.Lock()
        self._executors: dict[str, Executor] = {}
        self._done: dict[str, tuple[int, Any]] = {}
        self._running: dict[str, _Build] = {}

    def _pool(self, kind: str) -> Executor:
        """One worker per kind: a study report being built never delays a dashboard build."""
        if kind not in self._executors:
            if self._use_process:
                import multiprocessing

                self._executors[kind] = ProcessPoolExecutor(
                    max_workers=1,
                    initializer=_warm_up,
                    initargs=(self.worker_niceness,),
                    mp_context=multiprocessing.get_context("spawn"),
                )
            else:
                self._executors[kind] = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"sabrkit-{kind}"
                )
        return self._executors[kind]

    def _submit(self, kind: str, db: Database, version: int) -> _Build:
        future: Future[Any]
        if self._use_process and self._url is not None:
            future = self._pool(kind).submit(_worker_build, kind, self._url, self.target, version)
        elif kind == "dashboard":
            future = self._pool(kind).submit(build_dashboard, db, target=self.target, version=version)
        else:
            future = self._pool(kind).submit(_build_report_html, db, self.target)
        build = _Build(version, future)
        future.add_done_callback(functools.partial(self._finished, kind, version))
        return build

    def _finished(self, kind: str, version: int, future: Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            if not future.cancelled():
                logger.error(
                    "building the %s (data version %d) failed", kind, version, exc_info=future.exception()
                )
            return
        with self._lock:
            if kind not in self._done or self._done[kind][0] <= version:
                self._done[kind] = (version, future.result())

    def get(self, kind: str, db: Database, *, wait: float | None = None) -> BuildResult:
        """The newest ``kind`` built, starting (or joining) a build of the current data when needed."""
        version = data_version(db)
        with self._lock:
            done = self._done.get(kind)
            if done is not None and done[0] == version:
                return BuildResult(done[1], version, True)
            running = self._running.get(kind)
            failed = (
                running is not None
                and running.future.done()
                and (running.future.cancelled() or running.future.exception() is not None)
            )
            if running is None or failed or (running.future.done() and running.version != version):
                running = self._running[kind] = self._submit(kind, db, version)
            # else: a build is running (for this or an older version): join it; the next request after it
            # finishes starts one for newer data
        timeout = self.wait_seconds if wait is None else wait
        try:
            value = running.future.result(timeout=timeout)
            if running.version == version:
                return BuildResult(value, version, True)
        except FutureTimeout:
            pass
        except Exception:
            logger.warning(
                "showing the last %s built: the build of data version %d failed", kind, running.version
            )
        with self._lock:
            done = self._done.get(kind)
        return BuildResult(done[1], done[0], False) if done else BuildResult(None, None, False)

    def dashboard(self, db: Database, *, wait: float | None = None) -> CohortDashboard:
        """The dashboard for the data as they are now (waits for the build; for the API and the queue)."""
        result = self.get("dashboard", db, wait=max(self.wait_seconds, 600.0) if wait is None else wait)
        if result.value is None:
            raise TimeoutError("the cohort dashboard is still being built; try again in a minute")
        return result.value

    def study_report(self, db: Database) -> str:
        """The study report's HTML (:func:`sabrkit.registry.report.build_study_report`), waiting for it."""
        result = self.get("report", db, wait=600.0)
        if result.value is None:
            raise TimeoutError("the study report is still being built; try again in a minute")
        return result.value

    def close(self) -> None:
        """Stop the workers (a build still running is abandoned)."""
        for executor in self._executors.values():
            executor.shutdown(wait=False, cancel_futures=True)
        self._executors.clear()
