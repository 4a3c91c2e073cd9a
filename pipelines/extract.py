"""DVC stage `extract`: pyradiomics features, one row per lesion, with provenance."""

from __future__ import annotations

import pandas as pd
from stage_params import ROOT, load_all

SOURCE = ROOT / "data" / "preprocessed"
OUT = ROOT / "data" / "features"


def main() -> None:
    from sabrkit.features import extract_lesion_features, load_params, write_feature_table

    params = load_all()
    p, execution = params["features"], params["execution"]
    radiomics_params = load_params(p.radiomics_params)
    manifest = pd.read_csv(SOURCE / "images.csv")
    result = extract_lesion_features(
        manifest,
        radiomics_params,
        n_jobs=execution.n_jobs,
        max_failure_fraction=p.max_failure_fraction,
        base_dir=SOURCE,
        cache_dir=ROOT / execution.cache_dir if execution.cache_dir else None,
        scheduler=execution.scheduler,
    )
    OUT.mkdir(parents=True, exist_ok=True)
    result.failure_table().to_csv(OUT / "extraction_failures.csv", index=False)
    write_feature_table(result.features, OUT / "lesion_features.parquet")
    print(
        f"extract: {len(result.features)} lesion(s) with features, {len(result.failures)} failed "
        f"(params {radiomics_params.version}, hash {radiomics_params.params_hash[:12]})"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
