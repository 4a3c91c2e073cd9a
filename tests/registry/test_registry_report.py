"""Done-when: on the synthetic cohort the study report renders every section and the generator's
true 2-year PFS lies inside the reported 95 % CI; `sabrkit report` writes the page and metrics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sabrkit.audit import open_database
from sabrkit.cli.registry import report_command
from sabrkit.registry import load_registry_folder
from sabrkit.registry.report import METRIC_KEYS
from sabrkit.synthetic import SynthConfig, synthesize

SECTIONS = (
    "Enrolment",
    "Follow-up and completeness",
    "Progression-free survival",
    "Overall survival",
    "Local control per treated lesion",
    "Toxicity (CTCAE)",
    "Pain (VRS) and quality of life (TESS)",
    "Comparison by systemic therapy",
    "Prespecified subgroups (PFS)",
    "Patient timelines (swimmer plot)",
    "Data quality",
    "Definitions",
)


@pytest.mark.slow
def test_synthetic_cohort_report_covers_every_section_and_the_true_pfs(tmp_path: Path):
    cohort = synthesize(tmp_path / "cohort", SynthConfig(write_images=False))
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with open_database(url) as db:
        db.upgrade()
        load_registry_folder(db, cohort)
    app = typer.Typer()
    app.command("report")(report_command)
    app.command("noop")(lambda: None)
    html, metrics_path = tmp_path / "reports" / "study.html", tmp_path / "metrics" / "study.json"
    result = CliRunner().invoke(
        app,
        [
            "report",
            "--out",
            str(html),
            "--metrics",
            str(metrics_path),
            "--database-url",
            url,
            "--tables",
            str(tmp_path / "tables"),
        ],
    )
    assert result.exit_code == 0, result.output
    page = html.read_text()
    for title in SECTIONS:
        assert f"{title}</h2>" in page, title
    assert page.count("data:image/png;base64,") >= 10
    assert "<script" not in page and "http" not in page.split("</nav>")[1][:2000]
    with (cohort / "registry" / "identifiers.csv").open() as handle:
        for row in csv.DictReader(handle):
            assert row["hospital_number"] not in page and row["date_of_birth"] not in page
    metrics = json.loads(metrics_path.read_text())
    assert set(METRIC_KEYS) <= set(metrics)
    truth = json.loads((cohort / "ground_truth.json").read_text())
    assert metrics["n_patients"] == truth["n_patients"] == 60
    assert metrics["pfs_2y_ci_low"] <= truth["true_pfs_2y"] <= metrics["pfs_2y_ci_high"]
    assert metrics["os_2y_ci_low"] <= truth["true_os_2y"] <= metrics["os_2y_ci_high"]
    assert 0.0 <= metrics["grade3plus_rate"] <= 0.1
    assert metrics["median_followup_months"] > 6
    assert (tmp_path / "tables" / "adsl.parquet").is_file()


def test_overflow_sees_a_label_cut_off_by_the_margin():
    """The layout check below can fail: a long tick label in a thin margin reaches past the canvas."""
    from sabrkit.registry.analyses.plotting import new_figure, overflow, text_width

    figure, ax = new_figure(5, 3, left=0.2)
    ax.set_yticks([0.5], ["a rather long subgroup label (p het 0.5)"])
    assert overflow(figure) > 1.0
    fitted, ax = new_figure(5, 3, left=text_width(["a rather long subgroup label (p het 0.5)"], 10) + 0.2)
    ax.set_yticks([0.5], ["a rather long subgroup label (p het 0.5)"])
    assert overflow(fitted) == 0.0


@pytest.mark.slow
def test_report_figures_are_drawn_once_and_fit_their_canvas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Fixed layouts: each figure is drawn once (no tight-bbox re-draw) and nothing falls off its edges;
    the swimmer plot (one artist per kind of mark) still shows every course, progression and death."""
    from matplotlib.figure import Figure

    from sabrkit.registry.analyses import plotting
    from sabrkit.registry.exports import build_analysis_tables
    from sabrkit.registry.frames import registry_frames
    from sabrkit.registry.report import build_study_report

    cohort = synthesize(tmp_path / "cohort", SynthConfig(write_images=False))
    with open_database(f"sqlite:///{tmp_path / 'registry.db'}") as db:
        db.upgrade()
        load_registry_folder(db, cohort)
        frames = registry_frames(db)
    tables = build_analysis_tables(frames)
    draws: dict[int, int] = {}
    figures: list[Figure] = []
    original_draw, original_png = Figure.draw, plotting.figure_png

    def counting_draw(self: Figure, renderer: object) -> None:
        draws[id(self)] = draws.get(id(self), 0) + 1
        original_draw(self, renderer)

    def keeping_png(figure: Figure) -> bytes:
        figures.append(figure)
        return original_png(figure)

    monkeypatch.setattr(Figure, "draw", counting_draw)
    monkeypatch.setattr("sabrkit.registry.report.figure_png", keeping_png)
    report = build_study_report(tables, frames)
    monkeypatch.setattr(Figure, "draw", original_draw)
    assert len(figures) == report.html.count("data:image/png;base64,") >= 10
    assert [draws.get(id(f)) for f in figures] == [1] * len(figures)
    titles = [(f.axes[0].get_title() or f.get_suptitle(), plotting.overflow(f)) for f in figures]
    assert all(spill == 0.0 for _, spill in titles), titles
    swimmer = figures[-1]
    assert swimmer.axes[0].get_title().startswith("Patient timelines")
    marks: dict[str, int] = {}
    for line in swimmer.axes[0].get_lines():
        marks[line.get_marker()] = marks.get(line.get_marker(), 0) + len(line.get_xdata())
    adsl = tables.adsl
    assert marks["o"] == adsl["PROGDT"].notna().sum()
    assert marks["x"] == adsl["DTHFL"].sum()
    assert marks[">"] == frames["sabr_courses"]["study_id"].isin(adsl["USUBJID"]).sum()
