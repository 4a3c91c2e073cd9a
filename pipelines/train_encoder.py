"""DVC stage `train_encoder`: self-supervised MONAI autoencoder on the cohort's lesion crops.

Writes ``models/encoder/encoder.pt`` (weights + settings) and ``metrics/encoder.json``. With
``deep_features.checkpoint`` set, the user's checkpoint is validated and copied there instead
(no training, nothing downloaded).
"""

from __future__ import annotations

import json
import time

import pandas as pd
from stage_params import ROOT, load_section

SOURCE = ROOT / "data" / "preprocessed"
OUT = ROOT / "models" / "encoder" / "encoder.pt"
METRICS = ROOT / "metrics" / "encoder.json"


def main() -> None:
    import numpy as np

    from sabrkit.features.deep import (
        CropConfig,
        EncoderConfig,
        load_crops,
        load_encoder,
        save_encoder,
        train_encoder,
    )

    p = load_section("deep_features")
    started = time.perf_counter()
    if p.checkpoint:
        encoder = load_encoder(ROOT / p.checkpoint)
        n_crops, source = 0, f"checkpoint {p.checkpoint}"
    else:
        crop = CropConfig(p.crop_size_voxels, p.crop_spacing_mm, tuple(p.hu_window))
        config = EncoderConfig(
            channels=tuple(p.channels), strides=(2,) * len(p.channels), epochs=p.epochs,
            batch_size=p.batch_size, learning_rate=p.learning_rate, noise_sd=p.noise_sd,
        )  # fmt: skip
        _, crops = load_crops(pd.read_csv(SOURCE / "images.csv"), crop, SOURCE)
        encoder = train_encoder(crops, np.random.default_rng(p.seed), config, crop)
        n_crops, source = len(crops), "trained on the cohort's lesion crops"
    save_encoder(encoder, OUT)
    summary = {
        "source": source,
        "n_crops": n_crops,
        "epochs": len(encoder.losses),
        "final_loss": encoder.losses[-1] if encoder.losses else None,
        "seconds": round(time.perf_counter() - started, 1),
        "encoder_sha256": encoder.sha256,
    }
    METRICS.parent.mkdir(parents=True, exist_ok=True)
    METRICS.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(f"train_encoder: {source}, {n_crops} crops, {summary['seconds']} s, sha {encoder.sha256[:12]}")


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
