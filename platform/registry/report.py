"""The study report: one self-contained HTML page (figures embedded) and ``metrics/study.json``.

:func:`build_study_report` is pure: the exported tables and the registry frames in, the HTML
text and the metrics out. Sections: enrolment against the target, follow-up (reverse-KM median,
completeness), PFS and OS (Kaplan-Meier, 2-year landmarks), local control (Aalen-Johansen),
toxicity (CTCAE, acute/late, grade >= 3 with an exact CI), VRS and TESS over time, comparison
by systemic therapy (KM, log-rank, Cox), prespecified subgroups (forest plot), swimmer plot,
data-quality queries, and the definitions used.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.io import atomic_write_text
from sabrkit.registry.analyses import (
    cox_by,
    endpoint_frame,
    grade3plus,
    km_landmarks,
    local_failure_incidence,
    logrank_by,
    plot_cumulative_incidence,
    plot_forest,
    plot_km,
    plot_score_by_month,
    plot_swimmer,
    score_by_month,
    subgroup_hazard_ratios,
    toxicity_summary,
)
from sabrkit.registry.analyses.plotting import THERAPY_COLOURS, figure_png, new_figure, png_data_uri
from sabrkit.registry.exports import ACUTE_DAYS, AnalysisTables
from sabrkit.registry.quality import data_quality, followup_completeness
from sabrkit.registry.survival import median_followup

__all__ = ["StudyReport", "build_study_report", "write_study_report", "METRIC_KEYS", "TARGET_PATIENTS"]

logger = logging.getLogger(__name__)

TARGET_PATIENTS = 60
#: Keys always present in ``metrics/study.json``.
METRIC_KEYS = (
    "n_patients",
    "pfs_2y",
    "pfs_2y_ci_low",
    "pfs_2y_ci_high",
    "os_2y",
    "os_2y_ci_low",
    "os_2y_ci_high",
    "median_followup_months",
    "grade3plus_rate",
)


@dataclass
class _Section:
    title: str
    anchor: str
    paragraphs: list[str] = field(default_factory=list)
    figures: list[dict[str, str]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)

    def figure(self, figure: Any, caption: str) -> None:
        self.figures.append({"uri": png_data_uri(figure_png(figure)), "caption": caption})

    def table(self, frame: pd.DataFrame, caption: str, *, scroll: bool = False, digits: int = 3) -> None:
        html = frame.to_html(
            index=False, escape=True, na_rep="", float_format=lambda v: f"{v:.{digits}g}", border=0
        )
        self.tables.append({"html": html, "caption": caption, "scroll": scroll})


@dataclass(frozen=True)
class StudyReport:
    """The rendered page, its metrics and the titles of its sections."""

    html: str
    metrics: dict[str, float | None]
    section_titles: tuple[str, ...]


def _pct(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def _enrolment(adsl: pd.DataFrame, target: int) -> _Section:
    section = _Section("Enrolment", "enrolment")
    n = len(adsl)
    section.paragraphs.append(
        f"{n} of the target {target} patients enrolled ({_pct(n / target)}), "
        f"from {adsl['ENRLDT'].min():%Y-%m-%d} to {adsl['ENRLDT'].max():%Y-%m-%d}."
    )
    figure, ax = new_figure(7, 3.5, bottom=0.75)
    dates = adsl["ENRLDT"].sort_values()
    ax.step(dates, np.arange(1, n + 1), where="post", label="enrolled")
    ax.axhline(target, color="#b2182b", ls="--", label=f"target {target}")
    ax.set(ylabel="Patients", title="Cumulative enrolment")
    ax.legend()
    figure.autofmt_xdate(bottom=0.75 / 3.5)  # rotated dates; keeps the fixed bottom margin
    section.figure(figure, "Cumulative enrolment against the target of the registration.")
    by_month = dates.dt.to_period("Q").value_counts().sort_index()
    section.table(
        pd.DataFrame({"quarter": by_month.index.astype(str), "patients": by_month.to_numpy()}),
        "Patients enrolled per quarter",
    )
    baseline = pd.DataFrame(
        {
            "characteristic": [
                "age, median (range)",
                "female",
                "ECOG 0 / 1 / 2",
                "clear-cell histology",
                "IMDC favourable / intermediate / poor",
                "prior nephrectomy",
                "oligoprogressive",
                "treated lesions, median (range)",
                "max BED10 Gy, median",
            ],
            "value": [
                f"{adsl['AGE'].median():.0f} ({adsl['AGE'].min()}-{adsl['AGE'].max()})",
                f"{(adsl['SEX'] == 'F').sum()}",
                " / ".join(str((adsl["ECOG"] == e).sum()) for e in (0, 1, 2)),
                f"{(adsl['HISTOL'] == 'clear_cell').sum()}",
                " / ".join(str((adsl["IMDC"] == r).sum()) for r in ("favourable", "intermediate", "poor")),
                f"{adsl['PRNEPH'].sum()}",
                f"{(adsl['DISSTATE'] == 'oligoprogressive').sum()}",
                f"{adsl['NLESIONS'].median():.0f} ({adsl['NLESIONS'].min()}-{adsl['NLESIONS'].max()})",
                f"{adsl['MAXBED10'].median():.1f}",
            ],
        }
    )
    section.table(baseline, "Baseline characteristics")
    return section


def _survival_section(
    title: str, anchor: str, frame: pd.DataFrame, code: str, landmark: float, metrics: dict[str, float]
) -> _Section:
    section = _Section(title, anchor)
    marks = km_landmarks(frame["AVAL"], frame["EVENT"], (12.0, landmark))
    key = f"{code.lower()}_{int(landmark // 12)}y"
    final = marks[-1]
    metrics.update(
        {
            key: final.estimate,
            f"{key}_ci_low": final.ci_low,
            f"{key}_ci_high": final.ci_high,
            f"{key}_n_at_risk": final.n_at_risk,
            f"n_{code.lower()}_events": int(frame["EVENT"].sum()),
        }
    )
    section.paragraphs.append(
        f"{int(frame['EVENT'].sum())} events in {len(frame)} patients. {landmark:g}-month {code}: "
        f"{_pct(final.estimate)} (95% CI {_pct(final.ci_low)}-{_pct(final.ci_high)}, log-log), "
        f"{final.n_at_risk} patients still at risk."
    )
    figure = plot_km(
        {"all patients": (frame["AVAL"], frame["EVENT"])},
        title=title,
        annotation=f"{landmark:g} mo: {_pct(final.estimate)} ({_pct(final.ci_low)}-{_pct(final.ci_high)})",
    )
    section.figure(figure, f"Kaplan-Meier estimate of {code} with 95% log-log band and numbers at risk.")
    section.table(
        pd.DataFrame([m.as_dict() for m in marks]).rename(columns={"time": "month"}), f"{code} at landmarks"
    )
    return section


def _local_control(adtte: pd.DataFrame, metrics: dict[str, float]) -> _Section:
    section = _Section("Local control per treated lesion", "local-control")
    lc = adtte[adtte["PARAMCD"] == "LC"]
    result = local_failure_incidence(lc)
    at24 = result.table.iloc[-1]
    metrics.update(
        {
            "local_control_2y": float(at24["local_control"]),
            "local_failure_2y": float(at24["cif"]),
            "local_failure_2y_ci_low": float(at24["ci_low"]),
            "local_failure_2y_ci_high": float(at24["ci_high"]),
            "n_lesions": int(result.n_lesions),
            "n_local_failures": int(result.n_local_failures),
        }
    )
    section.paragraphs.append(
        f"{result.n_lesions} treated lesions, {result.n_local_failures} local failures, {result.n_competing_deaths} "
        f"deaths before local failure (competing). 2-year cumulative incidence of local failure "
        f"{_pct(at24['cif'])} (95% CI {_pct(at24['ci_low'])}-{_pct(at24['ci_high'])}); local control {_pct(at24['local_control'])}."
    )
    section.figure(plot_cumulative_incidence(result), "Aalen-Johansen cumulative incidence of local failure.")
    section.table(result.table, "Cumulative incidence of local failure at landmarks")
    return section


def _toxicity(ae: pd.DataFrame, adsl: pd.DataFrame, metrics: dict[str, float]) -> _Section:
    section = _Section("Toxicity (CTCAE)", "toxicity")
    patients = adsl["USUBJID"]
    overall, acute, late = (
        grade3plus(ae, patients),
        grade3plus(ae, patients, phase="ACUTE"),
        grade3plus(ae, patients, phase="LATE"),
    )
    sabr_related = grade3plus(ae[ae["AESABRFL"]], patients)
    metrics.update(
        {
            "grade3plus_rate": overall.estimate,
            "grade3plus_ci_low": overall.ci_low,
            "grade3plus_ci_high": overall.ci_high,
            "grade3plus_n": overall.k,
            "grade3plus_sabr_related_rate": sabr_related.estimate,
            "n_adverse_events": int(len(ae)),
        }
    )
    section.paragraphs.append(
        f"{len(ae)} adverse events in {ae['USUBJID'].nunique()} of {len(patients)} patients. Grade >= 3: "
        f"{overall.k}/{overall.n} patients ({_pct(overall.estimate)}, exact 95% CI {_pct(overall.ci_low)}-"
        f"{_pct(overall.ci_high)}); attributed to SABR (definite/probable/possible): {sabr_related.k}. Acute "
        f"(onset <= {ACUTE_DAYS} days after the last fraction) grade >= 3: {acute.k}; late: {late.k}."
    )
    rates = pd.DataFrame(
        [
            {
                "events": label,
                "patients with grade >= 3": p.k,
                "of": p.n,
                "rate": p.estimate,
                "95% CI low": p.ci_low,
                "95% CI high": p.ci_high,
            }
            for label, p in (
                ("all", overall),
                ("acute", acute),
                ("late", late),
                ("SABR-related", sabr_related),
            )
        ]
    )
    section.table(rates, "Grade >= 3 toxicity (Clopper-Pearson exact intervals)")
    section.table(
        toxicity_summary(ae, len(patients)), "Worst grade per patient and term (patients)", scroll=True
    )
    return section


def _scores(tables: AnalysisTables) -> _Section:
    section = _Section("Pain (VRS) and quality of life (TESS)", "pro")
    for name, table, label, limits, note in (
        ("VRS", tables.vrs, "VRS pain (0-4, higher = worse)", (0, 4), "pain"),
        ("TESS", tables.tess, "TESS (0-60, higher = better)", (0, 60), "quality of life"),
    ):
        summary = score_by_month(table)
        if summary.empty:
            section.paragraphs.append(f"No {name} scores recorded.")
            continue
        section.figure(
            plot_score_by_month(summary, title=f"{name} by month", ylabel=label, limits=limits),
            f"Mean {note} per monthly visit and change from baseline, 95% t intervals.",
        )
        section.table(summary, f"{name} per month", scroll=True)
    return section


def _therapy(tables: AnalysisTables, metrics: dict[str, float]) -> _Section:
    section = _Section("Comparison by systemic therapy", "therapy")
    pfs = endpoint_frame(tables.adtte, "PFS", tables.adsl)
    groups = {label: (g["AVAL"], g["EVENT"]) for label, g in pfs.groupby("TRT01A")}
    section.paragraphs.append(
        "Non-randomised comparison: groups differ in prognosis (confounding by indication)."
    )
    try:
        test = logrank_by(pfs, "TRT01A")
        metrics["pfs_logrank_therapy_p"] = test.p_value
        annotation = f"log-rank chi2={test.chi2:.2f}, df={test.df}, p={test.p_value:.3g}"
        section.paragraphs.append(f"PFS by systemic therapy: {annotation}.")
        hr = cox_by(pfs, "TRT01A", reference="SABR alone")
        section.table(hr, "PFS hazard ratios against SABR alone (Cox, Wald 95% CI)")
    except Exception as exc:
        annotation = None
        section.paragraphs.append(f"No comparison possible: {exc}")
    section.figure(
        plot_km(groups, title="PFS by systemic therapy", colours=THERAPY_COLOURS, annotation=annotation),
        "Kaplan-Meier PFS per systemic-therapy group.",
    )
    os_frame = endpoint_frame(tables.adtte, "OS", tables.adsl)
    section.figure(
        plot_km(
            {label: (g["AVAL"], g["EVENT"]) for label, g in os_frame.groupby("TRT01A")},
            title="OS by systemic therapy",
            colours=THERAPY_COLOURS,
        ),
        "Kaplan-Meier OS per systemic-therapy group.",
    )
    return section


def _subgroups(tables: AnalysisTables) -> _Section:
    section = _Section("Prespecified subgroups (PFS)", "subgroups")
    pfs = endpoint_frame(tables.adtte, "PFS", tables.adsl)
    table = subgroup_hazard_ratios(pfs)
    section.paragraphs.append(
        "Prognostic hazard ratios of each level against the first (reference) level; "
        "p het: likelihood-ratio test across levels; p int: interaction with any "
        "concurrent systemic therapy. Exploratory."
    )
    section.figure(plot_forest(table, title="PFS hazard ratio by prespecified subgroup"), "Forest plot.")
    section.table(table, "Subgroup hazard ratios")
    return section


def _followup(adsl: pd.DataFrame, frames: dict[str, pd.DataFrame], metrics: dict[str, float]) -> _Section:
    section = _Section("Follow-up and completeness", "follow-up")
    median = median_followup(adsl["OSMO"], adsl["OSEVNT"])
    completeness = followup_completeness(adsl, frames["visits"])
    metrics.update(
        {"median_followup_months": median, **{f"followup_{k}": v for k, v in completeness.items()}}
    )
    section.paragraphs.append(
        f"Median follow-up {median:.1f} months (reverse Kaplan-Meier). {int(completeness['recorded_expected_visits'])} of "
        f"{int(completeness['expected_visits'])} expected monthly visits recorded ({_pct(completeness['visit_completeness'])}); "
        f"Clark's completeness index {_pct(completeness['clark_completeness'])}."
    )
    status = adsl["EOSSTT"].value_counts().rename_axis("status").reset_index(name="patients")
    section.table(status, "Disposition (off-study reason, or ongoing)")
    return section


def _quality(adsl: pd.DataFrame, frames: dict[str, pd.DataFrame], metrics: dict[str, float]) -> _Section:
    section = _Section("Data quality", "data-quality")
    queries = data_quality(adsl, frames["visits"], frames["adverse_events"], frames["eligibility"])
    metrics["n_data_queries"] = int(len(queries))
    counts = queries["issue"].value_counts().rename_axis("issue").reset_index(name="queries")
    section.paragraphs.append(
        f"{len(queries)} open data queries." if len(queries) else "No open data queries."
    )
    if len(queries):
        section.table(counts, "Queries by kind")
        section.table(queries.head(2000), "Query list (first 2000)", scroll=True)
    return section


def _definitions() -> _Section:
    section = _Section("Definitions", "definitions")
    section.paragraphs += [
        "Index date: the first SABR fraction. Months = days / 30.4375.",
        "PFS: first progression (RECIST 1.1; local, distant or both) or death, whichever first; censored at the last "
        "contact. OS: death from any cause; censored at the last contact.",
        "Local control per treated lesion: first assessment with local failure (or, for patients without lesion "
        "assessments, a local/both progression counts against every treated lesion); death before local failure "
        "is a competing event (Aalen-Johansen); otherwise censored at the last lesion assessment or contact.",
        f"Toxicity: CTCAE v5.0, worst grade per patient and term; acute = onset <= {ACUTE_DAYS} days after the last "
        "fraction, late = later. Confidence intervals: KM log-log; proportions Clopper-Pearson exact; means t.",
        "Median follow-up: reverse Kaplan-Meier (Schemper & Smith 1996).",
    ]
    return section


def build_study_report(
    tables: AnalysisTables,
    frames: dict[str, pd.DataFrame],
    *,
    target_patients: int = TARGET_PATIENTS,
    landmark_months: float = 24.0,
    title: str = "SABR for oligometastatic RCC: study report",
    version: str = "",
    extra_sections: Sequence[Any] = (),
) -> StudyReport:
    """Render the study report from the exported tables and the registry frames (no file I/O).

    ``extra_sections`` (e.g. :func:`sabrkit.dose.report.dose_study_section` when the DICOM path's
    dose outputs exist) go before the data-quality and definitions sections.
    """
    from jinja2 import Environment, PackageLoader, select_autoescape

    adsl = tables.adsl
    metrics: dict[str, float] = {
        "n_patients": int(len(adsl)),
        "target_patients": target_patients,
        "enrolment_fraction": len(adsl) / target_patients,
    }
    pfs = endpoint_frame(tables.adtte, "PFS")
    os_ = endpoint_frame(tables.adtte, "OS")
    sections = [
        _enrolment(adsl, target_patients),
        _followup(adsl, frames, metrics),
        _survival_section("Progression-free survival", "pfs", pfs, "PFS", landmark_months, metrics),
        _survival_section("Overall survival", "os", os_, "OS", landmark_months, metrics),
        _local_control(tables.adtte, metrics),
        _toxicity(tables.ae, adsl, metrics),
        _scores(tables),
        _therapy(tables, metrics),
        _subgroups(tables),
    ]
    swimmer = _Section("Patient timelines (swimmer plot)", "swimmer")
    swimmer.figure(
        plot_swimmer(adsl, frames["sabr_courses"]), "Follow-up per patient with SABR, progression and death."
    )
    sections += [swimmer, _quality(adsl, frames, metrics), _definitions()]
    sections[-2:-2] = list(extra_sections)
    env = Environment(loader=PackageLoader("sabrkit.registry", "templates"), autoescape=select_autoescape())
    html = env.get_template("study_report.html.j2").render(
        title=title,
        sections=sections,
        cutoff=f"{adsl['CUTOFFDT'].max():%Y-%m-%d}" if len(adsl) else "n/a",
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=version,
    )
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
    logger.info("study report: %d sections, %d patients", len(sections), len(adsl))
    return StudyReport(html, clean, tuple(section.title for section in sections))


def write_study_report(report: StudyReport, html_path: Path, metrics_path: Path) -> None:
    """Write the HTML page and the metrics JSON (atomic renames)."""
    for path, text in (
        (Path(html_path), report.html),
        (Path(metrics_path), json.dumps(report.metrics, indent=2) + "\n"),
    ):
        atomic_write_text(path, text)
