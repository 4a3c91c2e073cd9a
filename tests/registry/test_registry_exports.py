"""Exported analysis tables: event and censoring rules, acute/late toxicity, no identifiers."""

from __future__ import annotations

import pandas as pd
import pytest

from sabrkit.registry import load_registry_folder
from sabrkit.registry.capture import record
from sabrkit.registry.exports import build_analysis_tables, write_analysis_tables
from sabrkit.registry.frames import registry_frames


@pytest.fixture
def tables(db, registry_tables, write_registry, tmp_path):
    load_registry_folder(db, write_registry(tmp_path / "registry", registry_tables))
    record(
        db,
        {
            "lesion-assessment": [
                dict(lesion_id="SABR-RCC-003-L1", assessment_date="2024-11-01", local_status="controlled"),
                dict(lesion_id="SABR-RCC-003-L1", assessment_date="2025-02-01", local_status="local_failure"),
            ],
            "ae": dict(
                study_id="SABR-RCC-003",
                term="Pulmonary fibrosis",
                grade="1",
                ctcae_version="5.0",
                onset_date="2025-03-01",
                attribution_sabr="probable",
            ),
        },
    )
    return build_analysis_tables(registry_frames(db))


def _row(adtte: pd.DataFrame, code: str, key: str) -> pd.Series:
    column = "LESIONID" if code == "LC" else "USUBJID"
    return adtte[(adtte["PARAMCD"] == code) & (adtte[column] == key)].iloc[0]


def test_pfs_and_os_follow_the_written_rules(tables):
    adtte = tables.adtte
    # SABR-RCC-001: first fraction 2024-06-01, distant progression 2024-12-01 (183 days), death 2025-03-01 (273 days)
    pfs, os_ = _row(adtte, "PFS", "SABR-RCC-001"), _row(adtte, "OS", "SABR-RCC-001")
    assert (pfs["AVAL"], pfs["CNSR"], pfs["ADT"]) == (
        pytest.approx(183 / 30.4375),
        0,
        pd.Timestamp("2024-12-01"),
    )
    assert (os_["AVAL"], os_["CNSR"]) == (pytest.approx(273 / 30.4375), 0)
    # SABR-RCC-002: no progression, death 2025-07-01 -> PFS event is the death
    assert _row(adtte, "PFS", "SABR-RCC-002")["CNSR"] == 0
    # SABR-RCC-003: alive, censored at last contact 2026-08-01 (730 days after 2024-08-01)
    censored = _row(adtte, "OS", "SABR-RCC-003")
    assert (censored["CNSR"], censored["AVAL"]) == (1, pytest.approx(730 / 30.4375))


def test_local_control_per_lesion_with_competing_death(tables):
    adtte = tables.adtte
    assert (adtte["PARAMCD"] == "LC").sum() == 4
    failed = _row(
        adtte, "LC", "SABR-RCC-003-L1"
    )  # assessed local failure 2025-02-01 (184 days after 2024-08-01)
    assert (failed["EVNTCD"], failed["CNSR"], failed["AVAL"]) == (1, 0, pytest.approx(184 / 30.4375))
    # SABR-RCC-001 died (distant progression only): death competes for both lesions, from each lesion's first fraction
    l1, l2 = _row(adtte, "LC", "SABR-RCC-001-L1"), _row(adtte, "LC", "SABR-RCC-001-L2")
    assert (l1["EVNTCD"], l1["CNSR"], l1["AVAL"]) == (2, 1, pytest.approx(273 / 30.4375))
    assert l2["AVAL"] == pytest.approx(264 / 30.4375)


def test_unattributed_local_progression_counts_against_every_treated_lesion(
    db, registry_tables, write_registry, tmp_path
):
    registry_tables["progression_events.csv"][0]["progression_type"] = "both"
    load_registry_folder(db, write_registry(tmp_path / "registry", registry_tables))
    adtte = build_analysis_tables(registry_frames(db)).adtte
    for lesion in ("SABR-RCC-001-L1", "SABR-RCC-001-L2"):
        row = _row(adtte, "LC", lesion)
        assert (row["EVNTCD"], row["ADT"]) == (1, pd.Timestamp("2024-12-01"))


def test_adverse_events_are_acute_or_late_from_the_last_fraction(tables):
    ae = tables.ae.set_index("AETERM")
    # Fatigue 2024-06-20: 4 days after SABR-RCC-001's last fraction (2024-06-16)
    assert (ae.loc["Fatigue", "AEPHASE"], ae.loc["Fatigue", "DAYSLFX"]) == ("ACUTE", 4)
    assert ae.loc["Pneumonitis", "AEPHASE"] == "ACUTE"  # 53 days after 2024-08-09
    assert (ae.loc["Pulmonary fibrosis", "AEPHASE"], ae.loc["Pulmonary fibrosis", "DAYSLFX"]) == ("LATE", 204)
    assert (
        ae.loc["Pneumonitis", "AEBODSYS"] == "Respiratory, thoracic and mediastinal disorders"
    )  # the MedDRA SOC name
    assert ae["AETOXGR"].tolist() == [1, 2, 1]


def test_scores_have_baseline_and_change(db, registry_tables, write_registry, tmp_path):
    registry_tables["visits.csv"].append(
        dict(
            study_id="SABR-RCC-001", visit_number="0", visit_date="2024-06-01", vrs_pain="3", tess_score="40"
        )
    )
    load_registry_folder(db, write_registry(tmp_path / "registry", registry_tables))
    tables = build_analysis_tables(registry_frames(db))
    vrs = tables.vrs[tables.vrs["USUBJID"] == "SABR-RCC-001"].set_index("VISITNUM")
    assert vrs.loc[2, ["AVAL", "BASE", "CHG"]].tolist() == [2.0, 3.0, -1.0]
    assert bool(vrs.loc[0, "ABLFL"]) and vrs["INWINDOW"].all()


def test_exports_hold_no_direct_identifier(tables, registry_tables, tmp_path):
    paths = write_analysis_tables(tables, tmp_path / "exports")
    assert {p.name for p in paths} == {
        f"{n}.{s}" for n in ("adsl", "adtte", "ae", "vrs", "tess") for s in ("parquet", "csv")
    }
    text = " ".join(p.read_text(errors="ignore") for p in paths if p.suffix == ".csv")
    for row in registry_tables["identifiers.csv"]:
        for column in ("hospital_number", "family_name", "given_name", "date_of_birth"):
            assert row[column] not in text
    assert pd.read_parquet(tmp_path / "exports" / "adsl.parquet")["USUBJID"].tolist() == [
        "SABR-RCC-001",
        "SABR-RCC-002",
        "SABR-RCC-003",
    ]
