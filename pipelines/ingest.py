"""DVC stage `ingest`: load the synthetic registry and biobank into a fresh database.

Creates ``data/registry/sabrkit.db`` with Alembic, loads the registry CSVs and the biobank
samples (each all-or-nothing), then exports the endpoint and clinical-covariate tables the
models use (``endpoints.parquet``, ``clinical.parquet``, ``lesion_outcomes.parquet``: local control
per treated lesion with death as the competing event), the consent snapshot (``consent.parquet``: whose consent covers future research and
image linkage; ``biobank/consents.csv`` rows, withdrawals applied), and the cohort's Kaplan-Meier summary (``metrics/cohort.json``).
"""

from __future__ import annotations

import json

from stage_params import ROOT

SOURCE = ROOT / "data" / "synthetic"
OUT = ROOT / "data" / "registry"


def main() -> None:
    from sabrkit.audit import open_database
    from sabrkit.biobank import load_samples
    from sabrkit.models.consent_snapshot import consent_snapshot, load_consent_table
    from sabrkit.registry import (
        clinical_covariates_from_db,
        endpoints_from_db,
        lesion_outcomes_from_db,
        load_registry_folder,
    )
    from sabrkit.registry.survival import cohort_summary

    OUT.mkdir(parents=True, exist_ok=True)
    db_path = OUT / "sabrkit.db"
    for stale in OUT.glob("sabrkit.db*"):
        stale.unlink()
    with open_database(f"sqlite:///{db_path}") as db:
        db.upgrade()
        registry = load_registry_folder(db, SOURCE / "registry")
        samples = load_samples(db, SOURCE / "biobank" / "samples.csv")
        consents = load_consent_table(db, SOURCE / "biobank" / "consents.csv")
        endpoints = endpoints_from_db(db)
        clinical = clinical_covariates_from_db(db)
        lesion_outcomes = lesion_outcomes_from_db(db)
        snapshot = consent_snapshot(db, endpoints["study_id"])
    endpoints.to_parquet(OUT / "endpoints.parquet", index=False)
    snapshot.to_parquet(OUT / "consent.parquet", index=False)
    clinical.to_parquet(OUT / "clinical.parquet", index=False)
    lesion_outcomes.to_parquet(OUT / "lesion_outcomes.parquet", index=False)
    summary = cohort_summary(endpoints, n_lesions=int(clinical["n_lesions"].sum()))
    metrics = ROOT / "metrics"
    metrics.mkdir(exist_ok=True)
    (metrics / "cohort.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"ingest: {registry}; {samples}; consents {consents['consents']} ({consents['withdrawn']} withdrawn), "
        f"{int(snapshot['consented'].sum())} of {len(snapshot)} patients consented to future research and image linkage"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
