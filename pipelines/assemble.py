"""DVC stage `assemble`: lesion -> patient aggregation, joined with covariates and the endpoint,
consented patients only.

``assemble.consent`` names the consent snapshot the `ingest` stage writes
(``data/registry/consent.parquet``: whose consent covers future research and image linkage);
patients it does not cover are left out of the data set. ``consent: not_required`` skips the
check only with a ``consent_reason``. Writes ``data/features/patient_dataset.parquet`` and
``data/features/consent.json`` (snapshot SHA-256, patients excluded).
"""

from __future__ import annotations

import json

import pandas as pd
from stage_params import ROOT, load_section

FEATURES = ROOT / "data" / "features"
REGISTRY = ROOT / "data" / "registry"


def main() -> None:
    from sabrkit.features import aggregate_lesions, read_feature_table
    from sabrkit.models import assemble_dataset
    from sabrkit.models.consent_snapshot import NOT_REQUIRED, n_excluded, require_checked, snapshot_sha256
    from sabrkit.models.io import write_dataset

    p = load_section("assemble")
    require_checked(p.consent, p.consent_reason, "params.yaml assemble.consent")
    endpoints = pd.read_parquet(REGISTRY / "endpoints.parquet")
    snapshot = None if p.consent == NOT_REQUIRED else pd.read_parquet(ROOT / p.consent)
    lesion_features = read_feature_table(FEATURES / "lesion_features.parquet")
    patient_features = aggregate_lesions(lesion_features, p.aggregation)
    dataset = assemble_dataset(
        patient_features,
        endpoints,
        pd.read_parquet(REGISTRY / "clinical.parquet"),
        feature_set=p.feature_set,
        endpoint=p.endpoint,
        require_complete=True,
        consented=snapshot,
    )
    write_dataset(dataset, FEATURES / "patient_dataset.parquet")
    record = {
        "consent": p.consent,
        "consent_reason": p.consent_reason,
        "dataset_consent": dataset.consent,
        "consent_snapshot_sha256": None if snapshot is None else snapshot_sha256(snapshot),
        "n_excluded_no_consent": 0 if snapshot is None else n_excluded(snapshot, endpoints["study_id"]),
        "n_patients": dataset.n_patients,
    }
    (FEATURES / "consent.json").write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"assemble: {dataset.n_patients} patients, {dataset.n_events} events, "
        f"{len(dataset.feature_names)} features ({p.feature_set}, lesions aggregated by {p.aggregation}); "
        f"consent: {dataset.consent}"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
