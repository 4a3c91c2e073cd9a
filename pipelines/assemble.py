"""DVC stage `assemble`: lesion -> patient aggregation, joined with covariates and the endpoint."""

from __future__ import annotations

import pandas as pd

from stage_params import ROOT, load_section

FEATURES = ROOT / "data" / "features"
REGISTRY = ROOT / "data" / "registry"


def main() -> None:
    from sabrkit.features import aggregate_lesions, read_feature_table
    from sabrkit.models import assemble_dataset
    from sabrkit.models.io import write_dataset

    p = load_section("assemble")
    lesion_features = read_feature_table(FEATURES / "lesion_features.parquet")
    patient_features = aggregate_lesions(lesion_features, p.aggregation)
    dataset = assemble_dataset(
        patient_features,
        pd.read_parquet(REGISTRY / "endpoints.parquet"),
        pd.read_parquet(REGISTRY / "clinical.parquet"),
        feature_set=p.feature_set,
        endpoint=p.endpoint,
        require_complete=True,
    )
    write_dataset(dataset, FEATURES / "patient_dataset.parquet")
    print(
        f"assemble: {dataset.n_patients} patients, {dataset.n_events} events, "
        f"{len(dataset.feature_names)} features ({p.feature_set}, lesions aggregated by {p.aggregation})"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
