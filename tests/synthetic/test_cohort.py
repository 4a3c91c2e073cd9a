"""Tests of the synthetic cohort: contract, dates, doses, toxicity, calibration, determinism."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import concordance_index

from sabrkit.errors import ConfigError
from sabrkit.synthetic import (
    CONTRACT_COLUMNS,
    DOSE_TABLE,
    SynthConfig,
    generate_cohort,
    synthesize,
    write_cohort,
)

DAYS_PER_MONTH = 30.4375


@pytest.fixture(scope="module")
def clinical_cohort():
    """A 400-patient cohort without images (enough rows to exercise every branch)."""
    config = SynthConfig(n_patients=400, write_images=False)
    return generate_cohort(config, np.random.default_rng(11))


@pytest.fixture(scope="module")
def large_cohort():
    """5000 patients, clinical only: for calibration and discrimination checks."""
    config = SynthConfig(n_patients=5000, write_images=False)
    return generate_cohort(config, np.random.default_rng(2024))


def _dates(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series)


def _endpoints(cohort) -> pd.DataFrame:
    """PFS/OS as the registry defines them (index = first fraction, months = days / 30.4375)."""
    patients = cohort.table("patients").set_index("study_id")
    index = cohort.table("sabr_courses").groupby("study_id")["start_date"].min()
    prog = cohort.table("progression_events").set_index("study_id")["event_date"]
    death = cohort.table("deaths").set_index("study_id")["death_date"]
    out = pd.DataFrame(index=patients.index)
    out["index"] = _dates(index.reindex(out.index))
    out["last"] = _dates(patients["last_contact_date"])
    out["prog"] = _dates(prog.reindex(out.index))
    out["death"] = _dates(death.reindex(out.index))
    first = out[["prog", "death"]].min(axis=1)
    out["pfs_event"] = first.notna()
    out["pfs_months"] = (first.fillna(out["last"]) - out["index"]).dt.days / DAYS_PER_MONTH
    out["os_event"] = out["death"].notna()
    out["os_months"] = (out["death"].fillna(out["last"]) - out["index"]).dt.days / DAYS_PER_MONTH
    return out


def test_tables_have_exactly_the_contract_columns(clinical_cohort):
    assert set(clinical_cohort.tables) == set(CONTRACT_COLUMNS)
    for path, columns in CONTRACT_COLUMNS.items():
        assert tuple(clinical_cohort.tables[path].columns) == columns, path


def test_identifiers_and_categories(clinical_cohort):
    patients = clinical_cohort.table("patients")
    assert patients["study_id"].str.fullmatch(r"SABR-RCC-\d{3}").all()
    assert patients["study_id"].is_unique
    lesions = clinical_cohort.table("lesions")
    assert (lesions["lesion_id"] == lesions["study_id"] + "-L" + lesions["lesion_number"].astype(str)).all()
    assert lesions.groupby("study_id").size().between(1, 5).all()
    assert (lesions["roi_name"] == "GTV_L" + lesions["lesion_number"].astype(str)).all()
    assert lesions["series_uid"].str.fullmatch(r"2\.25\.[1-9]\d*").all() and lesions["series_uid"].is_unique
    assert (lesions["series_uid"].str.len() <= 64).all()
    assert set(patients["sex"]) <= {"F", "M"} and set(patients["ecog"]) <= {0, 1, 2}
    assert set(patients["histology"]) <= {"clear_cell", "non_clear_cell"}
    assert set(patients["imdc_risk"]) == {"favourable", "intermediate", "poor"}
    assert set(patients["disease_state"]) == {"oligometastatic", "oligoprogressive"}
    assert set(patients["systemic_therapy"]) == {"none", "tki", "ici", "tki_ici"}
    oligoprogressive = patients["disease_state"] == "oligoprogressive"
    assert (patients.loc[oligoprogressive, "systemic_therapy"] != "none").all()
    assert set(lesions["site"]) <= {"lung", "bone", "lymph_node", "adrenal", "liver", "brain", "pancreas"}
    assert lesions["site"].value_counts().index[0] == "lung"
    assert set(clinical_cohort.table("progression_events")["progression_type"]) <= {
        "local",
        "distant",
        "both",
    }
    assert set(clinical_cohort.table("deaths")["cause"]) <= {"rcc", "other"}
    visits = clinical_cohort.table("visits")
    assert visits["vrs_pain"].between(0, 4).all() and visits["tess_score"].between(0, 60).all()
    samples = clinical_cohort.table("samples")
    assert set(samples["timepoint"]) <= {
        "baseline",
        "end_of_sabr",
        "month_1",
        "month_3",
        "month_6",
        "month_12",
        "month_24",
        "progression",
    }
    assert set(samples["specimen_type"]) == {"plasma", "serum", "whole_blood", "pbmc", "urine"}
    assert samples["collected_at"].str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}").all()
    assert (samples["volume_ml"] > 0).all()
    images = clinical_cohort.table("images")
    assert (images["modality"] == "CT").all() and 2 <= images["scanner"].nunique() <= 3


def test_dates_are_ordered_and_within_the_study(clinical_cohort):
    config = clinical_cohort.config
    cutoff = pd.Timestamp(config.cutoff_date)
    patients = clinical_cohort.table("patients").set_index("study_id")
    courses = clinical_cohort.table("sabr_courses")
    mdt, enrol = _dates(patients["mdt_date"]), _dates(patients["enrolment_date"])
    assert (mdt <= enrol).all()
    assert enrol.between(pd.Timestamp(config.enrolment_start), pd.Timestamp(config.enrolment_end)).all()
    start, end = _dates(courses["start_date"]), _dates(courses["end_date"])
    first = start.groupby(courses["study_id"]).min().reindex(patients.index)
    assert (enrol < first).all() and ((first - enrol).dt.days <= 31).all()
    assert (start <= end).all()
    # fractions on consecutive weekdays: start/end are weekdays and the weekday count matches
    assert (start.dt.weekday < 5).all() and (end.dt.weekday < 5).all()
    weekdays = np.busday_count(start.values.astype("datetime64[D]"), end.values.astype("datetime64[D]")) + 1
    assert (weekdays == courses["fractions"].to_numpy()).all()
    last = _dates(patients["last_contact_date"])
    assert (last <= cutoff).all() and (last > first).all()
    ends = end.groupby(courses["study_id"]).max()
    for table, column in (("progression_events", "event_date"), ("deaths", "death_date")):
        events = clinical_cohort.table(table).set_index("study_id")[column]
        when = _dates(events)
        assert (when > first.reindex(when.index)).all() and (when > ends.reindex(when.index)).all()
        assert (when <= cutoff).all() and (when <= last.reindex(when.index)).all()
    deaths = _dates(clinical_cohort.table("deaths").set_index("study_id")["death_date"])
    assert (last.reindex(deaths.index) == deaths).all()
    progression = _dates(clinical_cohort.table("progression_events").set_index("study_id")["event_date"])
    both = progression.index.intersection(deaths.index)
    assert (deaths[both] >= progression[both]).all()
    visits = clinical_cohort.table("visits")
    vdate = _dates(visits["visit_date"])
    assert (vdate >= first.reindex(visits["study_id"]).to_numpy()).all()
    assert (vdate <= last.reindex(visits["study_id"]).to_numpy()).all()
    assert (vdate < deaths.reindex(visits["study_id"]).fillna(cutoff + pd.Timedelta(days=1)).to_numpy()).all()
    assert visits.groupby("study_id")["visit_number"].max().le(24).all()
    events = clinical_cohort.table("adverse_events")
    onset = _dates(events["onset_date"])
    assert (onset >= first.reindex(events["study_id"]).to_numpy()).all()
    assert (onset <= last.reindex(events["study_id"]).to_numpy()).all()
    samples = clinical_cohort.table("samples")
    when = pd.to_datetime(samples["collected_at"]).dt.normalize()
    assert (when >= enrol.reindex(samples["study_id"]).to_numpy()).all()
    assert (when <= last.reindex(samples["study_id"]).to_numpy()).all()
    baseline = samples["timepoint"] == "baseline"
    assert (when[baseline] <= first.reindex(samples.loc[baseline, "study_id"]).to_numpy()).all()


def test_doses_follow_the_sabr_comet_table(clinical_cohort):
    courses = clinical_cohort.table("sabr_courses").merge(
        clinical_cohort.table("lesions")[["lesion_id", "site", "longest_diameter_mm"]], on="lesion_id"
    )
    allowed: dict[str, set[tuple[float, int]]] = {}
    for (site, _), schedules in DOSE_TABLE.items():
        allowed.setdefault(site, set()).update(schedules)
    for row in courses.itertuples():
        assert (row.total_dose_gy, row.fractions) in allowed[row.site], row
        if row.site == "lung" and (row.total_dose_gy, row.fractions) == (54.0, 3):
            assert row.longest_diameter_mm <= 30.0
    bone = courses[courses["site"] == "bone"]
    assert {(35.0, 5), (30.0, 3), (20.0, 1)} <= set(zip(bone["total_dose_gy"], bone["fractions"]))
    assert set(courses["technique"]) <= {"vmat", "imrt", "cyberknife"}


def test_adverse_events_are_ctcae_and_mostly_mild(large_cohort):
    events = large_cohort.table("adverse_events")
    assert (events["ctcae_version"] == "5.0").all()
    assert events["grade"].between(1, 5).all()
    assert set(events["attribution_sabr"]) <= {"definite", "probable", "possible", "unlikely", "unrelated"}
    expected = {"Fatigue", "Pneumonitis", "Esophagitis", "Dermatitis radiation", "Fracture", "Nausea"}
    assert expected <= set(events["term"])
    assert not events.duplicated(["study_id", "term"]).any()
    severe = events.loc[events["grade"] >= 3, "study_id"].nunique() / large_cohort.config.n_patients
    assert 0.0 < severe < 0.05
    assert (events["grade"] <= 2).mean() > 0.95


def test_pain_falls_after_sabr_and_quality_of_life_drops_at_progression(large_cohort):
    visits = large_cohort.table("visits")
    pain = visits.pivot(index="study_id", columns="visit_number", values="vrs_pain")
    painful = pain[pain[0] >= 2]
    assert len(painful) > 200
    assert painful[3].mean() < painful[0].mean() - 1.0
    progression = large_cohort.table("progression_events").set_index("study_id")["event_date"]
    visits = visits.assign(
        after=pd.to_datetime(visits["visit_date"]).to_numpy()
        >= pd.to_datetime(progression.reindex(visits["study_id"])).to_numpy()
    )
    progressed = visits[visits["study_id"].isin(progression.index)]
    means = progressed.groupby("after")["tess_score"].mean()
    assert means[True] < means[False] - 3.0


def test_key_table_birth_dates_match_age(clinical_cohort):
    patients = clinical_cohort.table("patients").set_index("study_id")
    keys = clinical_cohort.table("identifiers").set_index("study_id")
    assert keys["hospital_number"].is_unique
    for sid, row in keys.iterrows():
        born, enrolled = row["date_of_birth"], patients.loc[sid, "enrolment_date"]
        age = enrolled.year - born.year - ((enrolled.month, enrolled.day) < (born.month, born.day))
        assert age == patients.loc[sid, "age_years"], sid
    others = pd.concat(
        [t.astype(str) for p, t in clinical_cohort.tables.items() if "identifiers" not in p], axis=0
    )
    text = others.to_csv()
    assert not any(number in text for number in keys["hospital_number"])


def test_large_cohort_is_calibrated_and_discriminative(large_cohort):
    """KM 2-year PFS 0.45 +- 0.03 and OS 0.85 +- 0.03; oracle Harrell C of the true LP >= 0.72."""
    ends = _endpoints(large_cohort)
    pfs = KaplanMeierFitter().fit(ends["pfs_months"], ends["pfs_event"]).predict(24.0)
    os_ = KaplanMeierFitter().fit(ends["os_months"], ends["os_event"]).predict(24.0)
    assert abs(pfs - 0.45) <= 0.03, pfs
    assert abs(os_ - 0.85) <= 0.03, os_
    assert (ends["os_months"] >= ends["pfs_months"]).all()
    truth = large_cohort.truth_patients.set_index("study_id").reindex(ends.index)
    oracle = concordance_index(ends["pfs_months"], -truth["lp_progression"], ends["pfs_event"])
    assert oracle >= 0.72, oracle
    assert abs(large_cohort.truth["population_pfs_2y"] - 0.45) < 1e-3
    assert abs(large_cohort.truth["population_os_2y"] - 0.85) < 1e-3
    assert abs(large_cohort.truth["true_pfs_2y"] - truth["s_pfs_24m"].mean()) < 1e-6
    # the planted subgroup does best
    best = truth["best_subgroup"].to_numpy(dtype=bool)
    km_best = KaplanMeierFitter().fit(ends["pfs_months"][best], ends["pfs_event"][best]).predict(24.0)
    assert km_best > pfs + 0.2
    assert large_cohort.truth["best_subgroup"]["population_pfs_2y"] > 0.7


def test_default_cohort_has_a_realistic_number_of_events():
    config = SynthConfig(write_images=False)
    cohort = generate_cohort(config, np.random.default_rng(config.seed))
    assert 25 <= cohort.truth["n_pfs_events"] <= 40
    assert len(cohort.table("patients")) == 60
    ends = _endpoints(cohort)
    assert int(ends["pfs_event"].sum()) == cohort.truth["n_pfs_events"]
    assert int(ends["os_event"].sum()) == cohort.truth["n_deaths"]


def test_write_is_deterministic_and_atomic(tmp_path):
    config = SynthConfig.tiny()
    first = synthesize(tmp_path / "a", config)
    second = write_cohort(generate_cohort(config, np.random.default_rng(config.seed)), tmp_path / "b")
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    expected = {*CONTRACT_COLUMNS, "ground_truth.json", "ground_truth_patients.csv"}
    assert expected <= {str(p) for p in files}
    for path, columns in CONTRACT_COLUMNS.items():
        assert tuple(pd.read_csv(first / path, nrows=0).columns) == columns
    images = pd.read_csv(first / "images.csv")
    assert len(images) == len(pd.read_csv(first / "registry/lesions.csv"))
    assert all((first / p).is_file() for p in [*images["image_path"], *images["mask_path"]])
    patients = pd.read_csv(first / "registry/patients.csv", dtype=str)
    assert set(patients["prior_nephrectomy"]) <= {"true", "false"}
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", patients["enrolment_date"].iloc[0])
    truth = json.loads((first / "ground_truth.json").read_text())
    assert {
        "config",
        "hazard_model",
        "signal_features",
        "best_subgroup",
        "true_pfs_2y",
        "true_os_2y",
        "population_pfs_2y",
        "population_os_2y",
        "n_pfs_events",
        "n_deaths",
    } <= set(truth)
    assert truth["config"]["n_patients"] == 8 and truth["signal_features"]
    assert set(truth["hazard_model"]["progression_coefficients"]) >= {
        "heterogeneity",
        "imdc_poor",
        "oligoprogressive",
    }
    other = synthesize(tmp_path / "c", SynthConfig.tiny(seed=1))
    assert (other / "registry/patients.csv").read_bytes() != (first / "registry/patients.csv").read_bytes()
    # no staging folder left behind; an earlier cohort is replaced as a whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="overwrite=True"):
        synthesize(first, config, overwrite=False)
    replaced = synthesize(first, SynthConfig.tiny(write_images=False))
    assert not (replaced / "images").exists()
    assert len(pd.read_csv(replaced / "images.csv")) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]
    # a folder that is not a cohort is never replaced
    other_folder = tmp_path / "notes"
    other_folder.mkdir()
    (other_folder / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a synthetic cohort"):
        synthesize(other_folder, config)
    assert (other_folder / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c", "notes"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"n_patients": 0},
        {"n_patients": 2.5},
        {"seed": -1},
        {"enrolment_end": dt.date(2024, 1, 1)},
        {"cutoff_date": "2026-06-01"},
        {"image_shape": (128, 128)},
        {"spacing_mm": (0.8, 0.8, 0.0)},
        {"target_pfs_2y": 1.2},
        {"target_os_2y": 0.40},
        {"enrolment_start": "May 2024"},
        {"loss_to_follow_up": 0.9},
    ],
)
def test_config_rejects_bad_values(overrides):
    with pytest.raises(ConfigError) as info:
        SynthConfig(**overrides)
    assert "rule:" in str(info.value) and "fix:" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_config_parses_mappings_and_refuses_unknown_keys():
    config = SynthConfig.from_mapping(
        {"n_patients": 12, "enrolment_start": "2024-06-01", "image_shape": [64, 64, 32]}
    )
    assert config.enrolment_start == dt.date(2024, 6, 1) and config.image_shape == (64, 64, 32)
    assert SynthConfig.from_mapping(config.to_dict()) == config
    with pytest.raises(ConfigError, match="n_patient"):
        SynthConfig.from_mapping({"n_patient": 12})
    tiny = SynthConfig.tiny()
    assert tiny.n_patients == 8 and tiny.image_shape == (48, 48, 24)
