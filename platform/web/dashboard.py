"""The researchers' cohort dashboard and the study report page, built from the registry's services.

Everything shown is computed by the registry room's functions (:func:`registry_frames`,
:func:`build_analysis_tables`, :func:`followup_completeness`, :func:`survival_at`,
:func:`toxicity_summary`, :func:`grade3plus`, :func:`data_quality`, :func:`plot_km`,
:func:`build_study_report`); this module only assembles their results for one page and caches
them. The cache key is the newest audit-log entry (:func:`sabrkit.web.queries.data_version`):
every audited write changes it, so a page is never stale and an unchanged database is never
recomputed. Only pseudonymous study IDs appear.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any

from sabrkit.db.database import Database
from sabrkit.web.queries import data_version

__all__ = ["CohortDashboard", "build_dashboard", "DashboardCache"]

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

    @property
    def enrolment_fraction(self) -> float:
        return self.n_patients / self.target if self.target else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the figure and the query list)."""
        return {"data_version": self.version, "target": self.target, "n_patients": self.n_patients,
                "n_treated": self.n_treated, "enrolment_fraction": self.enrolment_fraction,
                "completeness": self.completeness, "median_followup_months": self.median_followup_months,
                "landmarks": self.landmarks, "grade3plus": self.grade3plus, "toxicity": self.toxicity,
                "n_queries": len(self.queries)}


def build_dashboard(db: Database, *, target: int = 60, version: int | None = None) -> CohortDashboard:
    """Compute the dashboard from the registry (no cache)."""
    import pandas as pd

    from sabrkit.registry.analyses import endpoint_frame, grade3plus, plot_km, toxicity_summary
    from sabrkit.registry.analyses.plotting import figure_png
    from sabrkit.registry.exports import build_analysis_tables
    from sabrkit.registry.frames import registry_frames
    from sabrkit.registry.quality import data_quality, followup_completeness
    from sabrkit.registry.survival import median_followup, survival_at

    version = data_version(db) if version is None else version
    frames = registry_frames(db)
    n_patients = len(frames["patients"])
    if frames["sabr_courses"].empty:
        return CohortDashboard(version, target, n_patients, 0)
    tables = build_analysis_tables(frames)
    adsl = tables.adsl
    completeness = {k: _finite(v) for k, v in followup_completeness(adsl, frames["visits"]).items()}
    pfs = endpoint_frame(tables.adtte, "PFS")
    os_ = endpoint_frame(tables.adtte, "OS")
    landmarks = {}
    for name, frame in (("PFS", pfs), ("OS", os_)):
        for months in (12.0, 24.0):
            at = survival_at(frame["AVAL"], frame["EVENT"], months, name=name)
            landmarks[f"{name} {months:g} months"] = {k: v if isinstance(v, int) else _finite(v)
                                                      for k, v in at.as_dict().items()}
    severe = grade3plus(tables.ae, adsl["USUBJID"])
    toxicity = toxicity_summary(tables.ae, len(adsl)) if len(tables.ae) else pd.DataFrame()
    queries = data_quality(adsl, frames["visits"], frames["adverse_events"], frames["eligibility"])
    figure = plot_km({"PFS": (pfs["AVAL"], pfs["EVENT"]), "OS": (os_["AVAL"], os_["EVENT"])},
                     title="Progression-free and overall survival (Kaplan-Meier, 95% CI)",
                     colours={"PFS": "#1b6fb5", "OS": "#b2182b"})
    return CohortDashboard(
        version=version, target=target, n_patients=n_patients, n_treated=len(adsl), completeness=completeness,
        median_followup_months=_finite(median_followup(adsl["OSMO"], adsl["OSEVNT"])), landmarks=landmarks,
        grade3plus={"k": severe.k, "n": severe.n, "proportion": _finite(severe.estimate),
                    "ci_low": _finite(severe.ci_low), "ci_high": _finite(severe.ci_high)},
        toxicity=[{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                  for row in toxicity.to_dict("records")],
        queries=[{k: str(v) for k, v in row.items()} for row in queries.to_dict("records")],
        km_png=figure_png(figure))


class DashboardCache:
    """The last dashboard and study report, recomputed only when the data version changes."""

    def __init__(self, target: int = 60):
        self.target = target
        self._lock = threading.Lock()
        self._dashboard: CohortDashboard | None = None
        self._report: tuple[int, str] | None = None

    def dashboard(self, db: Database) -> CohortDashboard:
        """The dashboard for the database as it is now."""
        version = data_version(db)
        with self._lock:
            if self._dashboard is None or self._dashboard.version != version:
                logger.info("building the cohort dashboard (data version %d)", version)
                self._dashboard = build_dashboard(db, target=self.target, version=version)
            return self._dashboard

    def study_report(self, db: Database) -> str:
        """The study report's HTML (:func:`sabrkit.registry.report.build_study_report`)."""
        from sabrkit.version import __version__
        from sabrkit.registry.exports import build_analysis_tables
        from sabrkit.registry.frames import registry_frames
        from sabrkit.registry.report import build_study_report

        version = data_version(db)
        with self._lock:
            if self._report is None or self._report[0] != version:
                frames = registry_frames(db)
                tables = build_analysis_tables(frames)
                report = build_study_report(tables, frames, target_patients=self.target, version=__version__)
                self._report = (version, report.html)
            return self._report[1]
