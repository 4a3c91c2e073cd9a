"""The study report's dose and OAR constraints section: added when the dose outputs exist, absent otherwise."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sabrkit.dose.report import dose_study_section, patient_constraint_table, read_dose_outputs

CHECKS = pd.DataFrame(
    {
        "study_id": ["SABR-RCC-001", "SABR-RCC-001", "SABR-RCC-002", "SABR-RCC-003"],
        "plan_label": ["L1", "L1", "L1", "L1"],
        "oar": ["SpinalCord", "SpinalCord", "Esophagus", "Stomach"],
        "metric": ["Dmax", "D0.35cc", "Dmax", "Dmax"],
        "fractions": [3, 3, 8, 4],
        "value_gy": [25.1, 12.0, 20.0, 10.0],
        "limit_gy": [21.9, 18.0, 25.0, None],
        "status": ["fail", "pass", "pass", "not_tabulated"],
        "table_version": "TG-101 (2010)",
    }
)
LESIONS = pd.DataFrame(
    {
        "lesion_id": ["SABR-RCC-001-L1", "SABR-RCC-002-L1", "SABR-RCC-003-L1"],
        "study_id": ["SABR-RCC-001", "SABR-RCC-002", "SABR-RCC-003"],
        "prescription_gy": [30.0, 60.0, 48.0],
        "fractions": [3, 8, 4],
        "bed10_rx_gy": [60.0, 105.0, 105.6],
        "D98%": [34.0, 70.0, 55.0],
        "D95%": [35.0, 71.0, 56.0],
        "D50%": [37.0, 75.0, 60.0],
        "D2%": [39.0, 78.0, 62.0],
        "Dmean": [37.0, 75.0, 60.0],
        "V100%": [100.0, 100.0, 100.0],
        "bed10_d98_gy": [72.5, 131.25, 130.6],
    }
)


def test_patient_table_passes_and_fails_each_patient() -> None:
    table = patient_constraint_table(CHECKS).set_index("study_id")
    assert table.loc["SABR-RCC-001", "result"] == "FAIL" and table.loc["SABR-RCC-001", "failed"] == 1
    assert table.loc["SABR-RCC-001", "violations"] == "SpinalCord Dmax 25.1 >= 21.9 Gy"
    assert table.loc["SABR-RCC-002", "result"] == "pass"
    # a fractionation the table does not list is counted apart and fails nobody
    assert table.loc["SABR-RCC-003", "result"] == "pass" and table.loc["SABR-RCC-003", "not_tabulated"] == 1


def test_section_holds_the_constraint_and_dvh_tables() -> None:
    section = dose_study_section(CHECKS, LESIONS, table_version="TG-101 (2010)")
    assert section.title == "Dose and OAR constraints" and len(section.tables) == 2
    text = " ".join(section.paragraphs)
    assert "2 patient(s) pass every tabulated constraint, 1 fail" in text
    assert "median 105.0 Gy" in text and "2 of 3 lesions at BED10 >= 100 Gy" in text
    html = "".join(t["html"] for t in section.tables)
    assert "SABR-RCC-002-L1" in html and "FAIL" in html


def test_outputs_are_read_only_when_the_dose_stage_ran(tmp_path: Path) -> None:
    assert read_dose_outputs(tmp_path / "dose") is None
    (tmp_path / "dose").mkdir()
    CHECKS.to_csv(tmp_path / "dose" / "constraints.csv", index=False)
    assert read_dose_outputs(tmp_path / "dose") is None  # no lesion table: no section
    LESIONS.to_csv(tmp_path / "dose" / "lesion_dose.csv", index=False)
    checks, lesions, version = read_dose_outputs(tmp_path / "dose")
    assert len(checks) == 4 and len(lesions) == 3 and version == "constraint table"


@pytest.mark.slow
def test_study_report_adds_the_section_only_when_given(tmp_path: Path) -> None:
    from sabrkit.audit import open_database
    from sabrkit.registry import (
        build_analysis_tables,
        build_study_report,
        load_registry_folder,
        registry_frames,
    )
    from sabrkit.synthetic import SynthConfig, synthesize

    cohort = synthesize(tmp_path / "cohort", SynthConfig.tiny(write_images=False))
    with open_database(f"sqlite:///{tmp_path / 'registry.db'}") as db:
        db.upgrade()
        load_registry_folder(db, cohort)
        frames = registry_frames(db)
    tables = build_analysis_tables(frames)
    plain = build_study_report(tables, frames)
    with_dose = build_study_report(
        tables, frames, extra_sections=[dose_study_section(CHECKS, LESIONS, table_version="TG-101 (2010)")]
    )
    assert "Dose and OAR constraints" not in plain.section_titles
    titles = list(with_dose.section_titles)
    assert titles[titles.index("Dose and OAR constraints") + 1 :] == ["Data quality", "Definitions"]
    assert [t for t in titles if t != "Dose and OAR constraints"] == list(plain.section_titles)
    assert "Dose and OAR constraints</h2>" in with_dose.html and "SpinalCord Dmax 25.1" in with_dose.html


@pytest.mark.slow
def test_report_command_takes_the_dose_folder(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sabrkit.audit import open_database
    from sabrkit.cli import app
    from sabrkit.registry import load_registry_folder
    from sabrkit.synthetic import SynthConfig, synthesize

    cohort = synthesize(tmp_path / "cohort", SynthConfig.tiny(write_images=False))
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with open_database(url) as db:
        db.upgrade()
        load_registry_folder(db, cohort)
    dose = tmp_path / "data" / "dose"
    args = ["report", "--out", str(tmp_path / "study.html"), "--metrics", str(tmp_path / "m.json")]
    args += ["--database-url", url, "--dose", str(dose)]
    missing = CliRunner().invoke(app, args)
    assert missing.exit_code != 0 and "constraints.csv and lesion_dose.csv" in " ".join(
        missing.output.split()
    )
    dose.mkdir(parents=True)
    CHECKS.to_csv(dose / "constraints.csv", index=False)
    LESIONS.to_csv(dose / "lesion_dose.csv", index=False)
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "Dose and OAR constraints</h2>" in (tmp_path / "study.html").read_text()
