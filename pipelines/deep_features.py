"""DVC stage `deep_features`: one autoencoder embedding per lesion (data/features/deep_features.parquet)."""

from __future__ import annotations

import pandas as pd
from stage_params import ROOT

SOURCE = ROOT / "data" / "preprocessed"
ENCODER = ROOT / "models" / "encoder" / "encoder.pt"
OUT = ROOT / "data" / "features" / "deep_features.parquet"


def main() -> None:
    from sabrkit.features import feature_columns, write_feature_table
    from sabrkit.features.deep import deep_feature_table, load_encoder

    encoder = load_encoder(ENCODER)
    table = deep_feature_table(pd.read_csv(SOURCE / "images.csv"), encoder, base_dir=SOURCE)
    write_feature_table(table, OUT)
    print(f"deep_features: {len(table)} lesion(s) x {len(feature_columns(table))} features "
          f"(encoder {encoder.sha256[:12]})")  # fmt: skip


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
