"""BED/EQD2 maps, BED10 per lesion against the registry, and the TG-101 constraint check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sabrkit.dose import (
    StructureDose,
    alpha_beta_map,
    bed_map,
    check_constraints,
    eqd2_map,
    load_constraint_table,
)
from sabrkit.dose.plans import check_folder
from sabrkit.errors import ConfigError, ValidationError


def _study_id_of(cohort):
    from sabrkit.imaging import IngestConfig

    keys = pd.read_csv(cohort / "registry" / "identifiers.csv", dtype=str)
    return IngestConfig(patient_key=dict(zip(keys["hospital_number"], keys["study_id"]))).study_id_of


def test_bed_and_eqd2_maps_follow_the_linear_quadratic_model() -> None:
    # 54 Gy in 3 fractions, alpha/beta 10: BED = 54 (1 + 18/10) = 151.2 Gy, EQD2 = 151.2 / 1.2 = 126 Gy
    dose = np.array([[[54.0, 0.0, 27.0]]])
    assert bed_map(dose, 3)[0, 0].tolist() == pytest.approx([151.2, 0.0, 27 * (1 + 9 / 10)])
    assert eqd2_map(dose, 3)[0, 0, 0] == pytest.approx(126.0)
    # late-responding tissue (alpha/beta 3) around a tumour voxel (alpha/beta 10)
    ab = alpha_beta_map(dose.shape, {"GTV": (np.array([[[1, 0, 0]]]), 10.0)})
    assert ab[0, 0].tolist() == [10.0, 3.0, 3.0]
    assert bed_map(dose, 3, ab)[0, 0, 2] == pytest.approx(27 * (1 + 9 / 3))
    with pytest.raises(ValidationError, match="fractions"):
        bed_map(dose, 0)
    with pytest.raises(ValidationError, match="alpha/beta"):
        bed_map(dose, 3, -1.0)


def test_constraint_table_is_versioned_and_cites_its_source(tmp_path) -> None:
    table = load_constraint_table()
    assert table.version == "tg101-2010.1" and "Med Phys 2010;37(8):4078" in table.source
    assert table.limit("SpinalCord", "Dmax", 3) == 21.9 and table.limit("SpinalCord", "Dmax", 8) is None
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nversion: 1\nsource: y\npoint_volume_cc: 0.035\norgans: {A: {constraints: [{metric: Dmax}]}}\n"
    )
    with pytest.raises(ConfigError, match="exactly metric and limits"):
        load_constraint_table(bad)


def test_untabulated_fractionation_is_never_passed() -> None:
    cord = StructureDose(np.full((2, 10, 10), 5.0), np.ones((2, 10, 10)), 0.01)
    checks = check_constraints({"SpinalCord": cord, "NotAnOrgan": cord}, fractions=8)
    assert set(checks["status"]) == {"not_tabulated"} and set(checks["oar"]) == {"SpinalCord"}
    checks = check_constraints({"SpinalCord": cord}, fractions=3)
    assert set(checks["status"]) == {"pass"}


def test_planted_violations_are_found_and_nothing_else(planned_export) -> None:
    cohort, export, truth = planned_export
    result = check_folder(export, study_id_of=_study_id_of(cohort))
    assert result.failures == []
    planted = truth[truth["planted_violation"]]
    assert len(planted) >= 2  # the fixture's cohort plants some (3 asked)
    failed = result.checks[result.checks["status"] == "fail"]
    assert set(zip(failed["rtplan_uid"], failed["oar"])) == set(zip(planted["rtplan_uid"], planted["oar"]))
    dmax = failed[failed["metric"] == "Dmax"]
    assert set(dmax["rtplan_uid"]) == set(planted["rtplan_uid"])  # each planted OAR breaks its Dmax limit
    with_oar = truth[truth["oar"].notna()]
    checked = result.checks[result.checks["status"] != "not_tabulated"]
    assert set(checked["rtplan_uid"]) == set(with_oar.loc[with_oar["oar_limit_gy"].notna(), "rtplan_uid"])
    summary = result.summary()
    assert summary["n_violations"] == len(failed) and summary["n_patients"] == truth["study_id"].nunique()


def test_bed10_per_lesion_equals_the_registry(planned_export) -> None:
    from sabrkit.registry.dose import bed10

    cohort, export, truth = planned_export
    courses = pd.read_csv(cohort / "registry" / "sabr_courses.csv")
    registry = {
        row.lesion_id: bed10(float(row.total_dose_gy), int(row.fractions)) for row in courses.itertuples()
    }
    dvh = check_folder(export, study_id_of=_study_id_of(cohort)).dvh
    ptv = dvh[dvh["roi_name"].str.startswith("PTV")].merge(
        truth[["rtplan_uid", "lesion_id", "ptv_roi"]], on="rtplan_uid"
    )
    ptv = ptv[ptv["roi_name"] == ptv["ptv_roi"]]
    assert len(ptv) == len(courses)
    for row in ptv.itertuples(index=False):
        assert row.bed10_rx_gy == pytest.approx(registry[row.lesion_id], abs=1e-9)
        # the prescription isodose covers the PTV: the BED10 map's D98% is the registry's BED10 or a little more
        assert registry[row.lesion_id] * 0.99 <= row.bed10_d98_gy <= registry[row.lesion_id] * 1.1


def test_dose_report_lists_the_violations(planned_export, tmp_path) -> None:
    from sabrkit.dose.lesions import LESION_DOSE_COLUMNS
    from sabrkit.dose.report import build_dose_report

    cohort, export, truth = planned_export
    checks = check_folder(export, study_id_of=_study_id_of(cohort)).checks
    lesions = pd.DataFrame(
        [
            dict.fromkeys(LESION_DOSE_COLUMNS, 1.0)
            | {"lesion_id": "SABR-RCC-001-L1", "study_id": "SABR-RCC-001"}
        ]
    )
    html = build_dose_report(checks, lesions, table_version="tg101-2010.1")
    assert "OAR dose constraints" in html and "Dose per lesion" in html
    n_fail = int((checks["status"] == "fail").sum())
    assert f"{n_fail} violation(s)" in html
    for oar in truth.loc[truth["planted_violation"], "oar"]:
        assert oar in html
