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
