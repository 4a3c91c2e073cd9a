"""The lesion-level local-control experiment end to end on a small generated cohort.

The shipped ``experiments/lesion_local_control_dose.yaml``, run on the registry's lesion outcomes
(loaded from the generator's CSVs) and dose tables from the generator's analytic plans
(``sabrkit.synthetic.rtplan`` + ``sabrkit.dose`` DVH and BED, as the DICOM path's ``dose`` stage
computes them; the dosiomic block, which needs the DICOM path, is left out here and run by the
pipeline test). Checks: lesion rows and events, the BED10-only comparator on the same folds, folds
grouped by patient, and the Aalen-Johansen incidence against a hand-written estimator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sabrkit.audit import open_database
from sabrkit.dose.bed import bed_map, eqd2_map
from sabrkit.dose.dvh import StructureDose, dvh_metrics
from sabrkit.models.experiment import run_experiment_file
from sabrkit.registry import (
    clinical_covariates_from_db,
    endpoints_from_db,
    lesion_outcomes_from_db,
    load_registry_folder,
)
from sabrkit.registry.dose import bed10
from sabrkit.synthetic import SynthConfig, synthesize
from sabrkit.synthetic.cohort import generate_cohort
from sabrkit.synthetic.rtplan import plan_lesion

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # about a minute on 2 shared cores


def _lesion_dose(config: SynthConfig) -> pd.DataFrame:
    cohort = generate_cohort(config, np.random.default_rng(config.seed))
    courses = cohort.table("sabr_courses").set_index("lesion_id")
    voxel_cc = float(np.prod(config.spacing_mm)) / 1000.0
    rows = []
    for spec in cohort.phantoms:
        _, mask = cohort.render(spec.lesion_id)
        course = courses.loc[spec.lesion_id]
        rx, n = float(course.total_dose_gy), int(course.fractions)
        dose = plan_lesion(mask, config.spacing_mm, rx, None, None, None, False).dose_gy
        bed = StructureDose(bed_map(dose, n, 10.0), mask, voxel_cc)
        rows.append(
            {
                "lesion_id": spec.lesion_id,
                "study_id": course.study_id,
                "prescription_gy": rx,
                "fractions": n,
                "bed10_rx_gy": bed10(rx, n),
                **dvh_metrics(StructureDose(dose, mask, voxel_cc), rx),
                "bed10_d98_gy": bed.dose_to_percent(98.0),
                "bed10_mean_gy": float(bed.doses.mean()),
                "eqd2_mean_gy": float(StructureDose(eqd2_map(dose, n, 10.0), mask, voxel_cc).doses.mean()),
            }
        )
    return pd.DataFrame(rows)


def _aalen_johansen(time: np.ndarray, code: np.ndarray, horizon: float) -> float:
    """Hand-written Aalen-Johansen CIF of cause 1: sum over event times of S(t-) d1 / n."""
    surv, cif = 1.0, 0.0
    for t in np.unique(time[(code > 0) & (time <= horizon)]):
        at_risk = (time >= t).sum()
        d1, d_all = ((time == t) & (code == 1)).sum(), ((time == t) & (code > 0)).sum()
        cif += surv * d1 / at_risk
        surv *= 1.0 - d_all / at_risk
    return cif


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lesion_lc")
    config = SynthConfig.tiny(n_patients=60, seed=20240501, write_images=False)  # the study's seed rule
    cohort = synthesize(root / "cohort", config)
    with open_database(f"sqlite:///{root / 'registry.db'}") as db:
        db.upgrade()
        load_registry_folder(db, cohort)
        tables = {
            "lesion_outcomes": lesion_outcomes_from_db(db),
            "endpoints": endpoints_from_db(db),
            "clinical": clinical_covariates_from_db(db),
        }
    (root / "data" / "registry").mkdir(parents=True)
    (root / "data" / "dose").mkdir(parents=True)
    for name, table in tables.items():
        table.to_parquet(root / "data" / "registry" / f"{name}.parquet", index=False)
    _lesion_dose(config).to_csv(root / "data" / "dose" / "lesion_dose.csv", index=False)
    spec = yaml.safe_load((ROOT / "experiments" / "lesion_local_control_dose.yaml").read_text())
    spec["inputs"].update(
        lesion_features=None, consent="not_required", consent_reason="generated cohort test"
    )
    spec["data"]["feature_set"] = "dose+dvh"
    spec["validation"].update(n_splits=3, n_repeats=2)
    spec["analysis"].update(permutations=0, interval_bootstrap=0, importance_repeats=0, decision_curve=False)
    (root / "experiments").mkdir()
    (root / "experiments" / "lesion_local_control_dose.yaml").write_text(yaml.safe_dump(spec))
    return root


def test_lesion_experiment_runs_against_the_bed10_comparator(project: Path) -> None:
    result = run_experiment_file(
        project / "experiments" / "lesion_local_control_dose.yaml", project, tracking_uri=None
    )
    metrics = result.metrics
    outcomes = pd.read_parquet(project / "data" / "registry" / "lesion_outcomes.parquet")
    assert metrics["unit"] == "lesion" and metrics["endpoint"] == "local_control"
    assert metrics["n_rows"] == len(outcomes) and metrics["n_events"] == int(outcomes["local_failure"].sum())
    assert metrics["clinical_reference"]["feature_set"] == "dose"
    assert result.reference_cv is not None and result.comparison is not None
    assert (
        "bed10_rx_gy" in result.dataset.feature_names and "dvh_d98_rx_ratio" in result.dataset.feature_names
    )
    # the comparator is BED10 alone, on the same folds
    assert tuple(result.reference_cv.oof["lesion_id"]) == tuple(result.cv.oof["lesion_id"])
    # a patient's lesions are never split between a training and a test fold
    oof = result.cv.oof.assign(study_id=lambda t: t["lesion_id"].str.rsplit("-L", n=1).str[0])
    assert (oof.groupby(["repeat", "study_id"])["fold"].nunique() == 1).all()
    # Aalen-Johansen incidence of local failure, death competing, against the hand-written estimator
    competing = pd.DataFrame(metrics["competing_risk"]["groups"]).set_index("risk_group")
    code = np.where(outcomes["local_failure"], 1, np.where(outcomes["competing_death"], 2, 0))
    expected = _aalen_johansen(outcomes["local_control_months"].to_numpy(), code, 24.0)
    assert competing.loc["all", "cif_aalen_johansen"] == pytest.approx(expected, abs=1e-9)
    assert competing.loc["all", "n_local_failures"] == metrics["n_events"]
    assert competing.loc["all", "cif_aalen_johansen"] <= competing.loc["all", "one_minus_km"] + 1e-12
    assert (project / "models" / "experiments" / "lesion_local_control_dose" / "competing_risk.csv").is_file()
