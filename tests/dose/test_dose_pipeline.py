"""`sabrkit imaging constraints` and the DICOM path's dose steps: de-identify, ingest, per-lesion tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from sabrkit.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_constraints_command_writes_tables_and_the_summary(planned_export, tmp_path: Path) -> None:
    cohort, export, truth = planned_export
    out = tmp_path / "constraints"
    metrics = tmp_path / "metrics" / "constraints.json"
    args = ["imaging", "constraints", str(export), "--out", str(out), "--metrics", str(metrics)]
    refused = runner.invoke(app, args)  # hospital numbers, no key table: every plan is a failure
    assert refused.exit_code == 1 and "pseudonymous study ID" in " ".join(refused.output.split())
    done = runner.invoke(app, [*args, "--key-table", str(cohort / "registry" / "identifiers.csv")])
    assert done.exit_code == 0, done.output
    summary = json.loads(metrics.read_text())
    checks = pd.read_csv(out / "constraints.csv")
    assert summary["n_patients"] == truth["study_id"].nunique() and summary["n_plans"] == len(truth)
    assert (
        summary["n_violations"]
        == int((checks["status"] == "fail").sum())
        >= int(truth["planted_violation"].sum())
    )
    assert summary["n_checks"] == int(checks["status"].isin(["pass", "fail"]).sum())
    assert set(pd.read_csv(out / "plan_dvh.csv")["study_id"]) == set(
        truth["study_id"]
    )  # pseudonyms, not hospital IDs
    assert "FAIL" in done.output
    strict = runner.invoke(
        app, [*args, "--key-table", str(cohort / "registry" / "identifiers.csv"), "--fail-on-violation"]
    )
    assert strict.exit_code == 1


def test_deidentified_ingested_plans_keep_oar_names_and_give_lesion_bed_maps(
    planned_export, tmp_path: Path
) -> None:
    """The pipeline's order: de-identify (params.yaml keep pattern), ingest, constraint check, lesion tables."""
    from sabrkit.dose.lesions import lesion_dose_tables
    from sabrkit.dose.plans import check_folder
    from sabrkit.imaging import DeidConfig, IngestConfig, deidentify_folder, ingest_folder
    from sabrkit.registry.dose import bed10

    cohort, export, truth = planned_export
    keys = pd.read_csv(cohort / "registry" / "identifiers.csv", dtype=str)
    pattern = yaml.safe_load((ROOT / "params.yaml").read_text())["deidentify"]["keep_label_pattern"]
    deidentify_folder(
        export,
        tmp_path / "deid",
        DeidConfig(
            secret="dose-pipeline-test-secret-0123",
            pseudonym_of=dict(zip(keys["hospital_number"], keys["study_id"])),
            keep_label_pattern=pattern,
        ),
    )
    checked = check_folder(tmp_path / "deid")
    failed = checked.checks[checked.checks["status"] == "fail"]
    planted = truth[truth["planted_violation"]]
    assert set(zip(failed["study_id"], failed["oar"])) == set(zip(planted["study_id"], planted["oar"]))
    result = ingest_folder(tmp_path / "deid", tmp_path / "imaging", IngestConfig())
    assert result.failures == []
    lesions, curves, failures = lesion_dose_tables(tmp_path / "imaging", tmp_path / "dose")
    assert failures == [] and len(lesions) == len(truth)
    courses = pd.read_csv(cohort / "registry" / "sabr_courses.csv").set_index("lesion_id")
    for row in lesions.itertuples(index=False):
        course = courses.loc[row.lesion_id]
        assert row.bed10_rx_gy == bed10(float(course.total_dose_gy), int(course.fractions))
        assert row.bed10_d98_gy >= row.bed10_rx_gy  # the GTV sits inside the prescription isodose
        assert (tmp_path / "dose" / row.bed_path).is_file() and (tmp_path / "dose" / row.eqd2_path).is_file()
    assert set(curves["lesion_id"]) == set(lesions["lesion_id"]) and (curves["volume_pct"] <= 100).all()


def test_dosiomics_of_the_dose_map_agree_with_the_dvh(planned_export, tmp_path: Path) -> None:
    """pyradiomics' first-order statistics of the dose map equal the DVH metrics of the same voxels."""
    import numpy as np

    from sabrkit.dose.dosiomics import extract_dosiomics
    from sabrkit.dose.lesions import lesion_dose_tables
    from sabrkit.features.io import feature_columns
    from sabrkit.imaging import IngestConfig, ingest_folder

    cohort, export, _ = planned_export
    keys = pd.read_csv(cohort / "registry" / "identifiers.csv", dtype=str)
    ingest_folder(
        export,
        tmp_path / "imaging",
        IngestConfig(patient_key=dict(zip(keys["hospital_number"], keys["study_id"]))),
    )
    lesions, _, _ = lesion_dose_tables(tmp_path / "imaging", tmp_path / "dose")
    lesions = lesions.head(6)
    features, failures = extract_dosiomics(tmp_path / "imaging", lesions, tmp_path / "dose")
    assert failures == [] and list(features["lesion_id"]) == sorted(lesions["lesion_id"])
    columns = feature_columns(features)
    assert "dose_firstorder_Mean" in columns and "bed_glcm_Contrast" in columns
    assert not any(c.startswith("original_") for c in features.columns)
    assert set(features["prov_dose_params_version"]) == {"dose-v1"}
    merged = features.merge(lesions, on="lesion_id")
    np.testing.assert_allclose(merged["dose_firstorder_Mean"], merged["Dmean"], rtol=1e-5)
    np.testing.assert_allclose(merged["dose_firstorder_Maximum"], merged["Dmax_point"], rtol=1e-5)
    np.testing.assert_allclose(merged["dose_firstorder_Minimum"], merged["Dmin"], rtol=1e-5)
    np.testing.assert_allclose(merged["bed_firstorder_Mean"], merged["bed10_mean_gy"], rtol=1e-5)
