"""The synthetic cohort (sabrkit.synthetic, tiny, no images) loads into registry and biobank."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from sabrkit.biobank import load_samples, validate_accession_id
from sabrkit.db import Database
from sabrkit.registry import (
    REGISTRY_FILES,
    REQUIRED_FILES,
    clinical_covariates_from_db,
    endpoints_from_db,
    load_registry_folder,
)
from sabrkit.synthetic import SynthConfig, synthesize


def _n_rows(path: Path) -> int:
    with path.open(newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def test_tiny_synthetic_cohort_loads_end_to_end(db: Database, tmp_path: Path):
    cohort = synthesize(tmp_path / "cohort", SynthConfig.tiny(write_images=False))

    summary = load_registry_folder(db, cohort)
    for name in REQUIRED_FILES:
        model = REGISTRY_FILES[name][1]
        assert summary.counts[model.__tablename__] == _n_rows(cohort / "registry" / name), name
    samples = load_samples(db, cohort / "biobank" / "samples.csv")
    assert samples.n_samples == _n_rows(cohort / "biobank" / "samples.csv")
    assert all(validate_accession_id(a) for a in samples.accession_ids)

    endpoints = endpoints_from_db(db)
    covariates = clinical_covariates_from_db(db)
    patients = pd.read_csv(cohort / "registry" / "patients.csv")
    assert endpoints["study_id"].tolist() == covariates["study_id"].tolist() == sorted(patients["study_id"])
    assert (endpoints["pfs_months"] <= endpoints["os_months"] + 1e-9).all()
    # registry-derived PFS agrees with the generator's latent progression times (date rounding only)
    truth = pd.read_csv(cohort / "ground_truth_patients.csv")
    progressed = set(pd.read_csv(cohort / "registry" / "progression_events.csv")["study_id"])
    both = endpoints.merge(truth, on="study_id")
    both = both[both["study_id"].isin(progressed)]
    if "latent_progression_months" in both and len(both):
        assert (both["pfs_months"] - both["latent_progression_months"]).abs().max() < 0.1


def test_lesion_outcomes_follow_the_generators_local_failures(db: Database, tmp_path: Path):
    """Local control per lesion from the loaded registry: a lesion assessed ``local_failure`` fails at
    its patient's progression; the death of a patient is the competing event of every lesion that did
    not fail (the registry's rule; the generator has no local failure after a first progression); the
    rest are censored (independent reading of the cohort's CSV files)."""
    from sabrkit.registry import lesion_outcomes_from_db

    cohort = synthesize(tmp_path / "cohort", SynthConfig.tiny(n_patients=40, write_images=False))
    load_registry_folder(db, cohort)
    outcomes = lesion_outcomes_from_db(db).set_index("lesion_id")
    registry = cohort / "registry"
    lesions = pd.read_csv(registry / "lesions.csv").set_index("lesion_id")
    assessed = pd.read_csv(registry / "lesion_assessments.csv").set_index("lesion_id")
    progression = pd.read_csv(registry / "progression_events.csv").set_index("study_id")
    deaths = pd.read_csv(registry / "deaths.csv").set_index("study_id")
    courses = pd.read_csv(registry / "sabr_courses.csv", parse_dates=["start_date"]).set_index("lesion_id")
    assert sorted(outcomes.index) == sorted(lesions.index)
    failed = assessed.index[assessed["local_status"] == "local_failure"]
    assert set(outcomes.index[outcomes["local_failure"]]) == set(failed) and len(failed) >= 1
    study = lesions["study_id"]
    competing = study[study.isin(deaths.index) & ~study.index.isin(failed)].index
    assert set(outcomes.index[outcomes["competing_death"]]) == set(competing)
    for lesion_id in failed:
        date = pd.Timestamp(progression.loc[study[lesion_id], "event_date"])
        months = (date - courses.loc[lesion_id, "start_date"]).days / 30.4375
        assert outcomes.loc[lesion_id, "local_control_months"] == pytest.approx(months)
