"""Consent is enforced: a withdrawn patient leaves the data set, the CV and the final model's rows.

The registry, consents and withdrawal go through the real database (SQLite, Alembic) and
:mod:`sabrkit.biobank.consent`; the snapshot is what the `ingest` stage writes.
"""

from __future__ import annotations

import pandas as pd
import pytest

from sabrkit.errors import ConfigError, ConsentError
from sabrkit.models.consent_snapshot import (
    consent_snapshot,
    load_consent_table,
    n_excluded,
    require_checked,
    snapshot_sha256,
)

WITHDRAWN = "SABR-RCC-003"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    import numpy as np

    from sabrkit.db import Database
    from sabrkit.registry import clinical_covariates_from_db, endpoints_from_db, load_registry_folder
    from sabrkit.synthetic import SynthConfig, generate_cohort, write_cohort

    folder = tmp_path_factory.mktemp("consent") / "cohort"
    config = SynthConfig.tiny(n_patients=24, write_images=False, seed=11)
    write_cohort(generate_cohort(config, np.random.default_rng(config.seed)), folder)
    consents = pd.read_csv(folder / "biobank" / "consents.csv", dtype=str, keep_default_na=False)
    assert len(consents) == 24 and (consents["withdrawn_on"] == "").all()
    consents.loc[consents["study_id"] == WITHDRAWN, "withdrawn_on"] = "2026-10-01"
    consents.to_csv(folder / "biobank" / "consents.csv", index=False)
    db = Database.from_url(f"sqlite:///{folder.parent / 'registry.db'}")
    db.upgrade()
    load_registry_folder(db, folder / "registry")
    counts = load_consent_table(db, folder / "biobank" / "consents.csv")
    endpoints, clinical = endpoints_from_db(db), clinical_covariates_from_db(db)
    snapshot = consent_snapshot(db, endpoints["study_id"])
    db.dispose()
    return {"counts": counts, "endpoints": endpoints, "clinical": clinical, "snapshot": snapshot}


def test_withdrawal_reaches_the_snapshot(registry) -> None:
    snapshot = registry["snapshot"]
    assert registry["counts"] == {"consents": 24, "withdrawn": 1}
    assert not snapshot.set_index("study_id").loc[WITHDRAWN, "consented"]
    assert snapshot["consented"].sum() == 23
    assert n_excluded(snapshot, registry["endpoints"]["study_id"]) == 1
    assert len(snapshot_sha256(snapshot)) == 64
    changed = snapshot.assign(consented=True)
    assert snapshot_sha256(changed) != snapshot_sha256(snapshot)


def test_withdrawn_patient_is_absent_from_data_set_cv_and_final_model(registry, tmp_path) -> None:
    from sabrkit.models import assemble_dataset
    from sabrkit.models.experiment import run_experiment
    from sabrkit.models.experiment_io import ExperimentInputs
    from sabrkit.models.spec import parse_experiment

    dataset = assemble_dataset(
        None, registry["endpoints"], registry["clinical"], "clinical", consented=registry["snapshot"]
    )
    assert WITHDRAWN not in set(dataset.row_ids) and dataset.n_patients == 23
    assert dataset.consent.startswith("applied: 1 patient")
    spec = parse_experiment(
        {
            "name": "consent_check",
            "data": {"feature_set": "clinical"},
            "model": {"estimator": "coxph"},
            "validation": {"n_splits": 3, "n_repeats": 1},
            "analysis": {
                "importance_repeats": 0,
                "permutations": 0,
                "interval_bootstrap": 0,
                "screening": False,
            },
        }
    )
    inputs = ExperimentInputs(
        endpoints=registry["endpoints"], clinical=registry["clinical"], consented=registry["snapshot"]
    )
    result = run_experiment(spec, inputs, tracking_uri=None, out_dir=tmp_path / "out")
    assert WITHDRAWN not in set(result.cv.oof["study_id"])
    assert WITHDRAWN not in set(result.dataset.row_ids)  # the final model's training rows
    assert result.metrics["lineage"]["n_excluded_no_consent"] == 1
    assert result.metrics["lineage"]["consent_snapshot_sha256"] == snapshot_sha256(registry["snapshot"])
    assert WITHDRAWN not in (tmp_path / "out" / "oof.csv").read_text()


def test_a_model_without_a_consent_check_is_refused() -> None:
    from sabrkit.models.spec import parse_experiment

    with pytest.raises(ConsentError, match="no consent snapshot"):
        require_checked(None, None, "params.yaml assemble.consent")
    with pytest.raises(ConsentError, match="without a reason"):
        require_checked("not_required", " ", "params.yaml assemble.consent")
    require_checked("not_required", "public data set with its own ethics approval", "x")
    base = {"name": "x", "data": {"feature_set": "clinical"}, "model": {"estimator": "coxph"}}
    with pytest.raises(ConfigError, match="consent_reason"):
        parse_experiment({**base, "inputs": {"consent": "not_required"}})
    with pytest.raises(ConfigError, match=r"inputs\.consent is required"):
        parse_experiment({**base, "inputs": {"consent": None}})
    spec = parse_experiment({**base, "inputs": {"consent": "not_required", "consent_reason": "public data"}})
    assert spec.inputs.consent == "not_required"
