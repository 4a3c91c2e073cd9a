"""DVC stage `train_unet`: patch-based MONAI 3-D U-Net on the preprocessed lesion crops.

Patients are split into training and held-out sets (``unet.held_out_fraction``, seeded); the network
is trained within ``unet.max_minutes`` and scored by mean Dice on the held-out lesions. Writes
``models/unet/`` (``unet.pt`` weights, ``unet.json`` settings + history + held-out Dice, ``split.csv``),
``metrics/unet.json``, and logs the run (parameters, loss curve, Dice, weights) to MLflow. Uses a GPU
when torch sees one.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
from stage_params import ROOT, load_section

SOURCE = ROOT / "data" / "preprocessed"
OUT = ROOT / "models" / "unet"
METRICS = ROOT / "metrics" / "unet.json"


def split_patients(study_ids: list[str], fraction: float, seed: int) -> set[str]:
    """Held-out patients: ``round(fraction * n)`` (at least one) drawn with ``default_rng(seed)``."""
    patients = sorted(set(study_ids))
    n_held = max(1, int(round(fraction * len(patients))))
    return set(np.random.default_rng(seed).choice(patients, size=n_held, replace=False).tolist())


def main() -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    from sabrkit.imaging import UNetConfig, lesion_arrays, save_unet, train_unet
    from sabrkit.models.tracking import get_or_create_experiment
    from sabrkit.settings import Settings

    p = load_section("unet")
    config = UNetConfig(
        channels=p.channels,
        strides=p.strides,
        num_res_units=p.num_res_units,
        patch_size=p.patch_size,
        hu_window=p.hu_window,
        samples_per_lesion=p.samples_per_lesion,
        batch_lesions=p.batch_lesions,
        learning_rate=p.learning_rate,
        max_epochs=p.max_epochs,
        max_minutes=p.max_minutes,
        validate_every=p.validate_every,
        seed=p.seed,
    )
    manifest = pd.read_csv(SOURCE / "images.csv")
    held_out = split_patients(manifest["study_id"].astype(str).tolist(), p.held_out_fraction, p.seed)
    lesions = lesion_arrays(manifest, SOURCE, config)
    train = [lesion for lesion in lesions if lesion["study_id"] not in held_out]
    validation = [lesion for lesion in lesions if lesion["study_id"] in held_out]
    trained = train_unet(train, config, validation)

    if OUT.exists():
        shutil.rmtree(OUT)
    save_unet(trained, OUT)
    pd.DataFrame(
        {
            "lesion_id": [x["lesion_id"] for x in lesions],
            "study_id": [x["study_id"] for x in lesions],
            "split": ["held_out" if x["study_id"] in held_out else "train" for x in lesions],
        }
    ).to_csv(OUT / "split.csv", index=False)
    v = trained.validation
    summary = {
        "held_out_mean_dice": v["mean_dice"],
        "held_out_median_dice": v["median_dice"],
        "held_out_min_dice": v["min_dice"],
        "n_train_lesions": len(train),
        "n_held_out_lesions": len(validation),
        "train_seconds": round(trained.seconds, 1),
        "epochs": len(trained.history),
        "device": trained.device,
    }
    METRICS.parent.mkdir(exist_ok=True)
    METRICS.write_text(json.dumps(summary, indent=2) + "\n")

    tracking_uri = Settings().resolved_mlflow_uri()
    client = MlflowClient(tracking_uri=tracking_uri)
    artifact_location = (ROOT / "mlartifacts").as_uri() if tracking_uri.startswith("sqlite") else None
    experiment_id = get_or_create_experiment(client, p.experiment_name, artifact_location=artifact_location)
    run = client.create_run(
        experiment_id, run_name="unet", tags={"dvc_stage": "train_unet", "device": trained.device}
    )
    params = [Param(k, str(v)) for k, v in p.model_dump().items()]
    now = run.info.start_time
    metrics = [Metric(k, float(v), now, 0) for k, v in summary.items() if isinstance(v, (int, float))]
    metrics += [Metric("train_loss", h["loss"], now, int(h["epoch"])) for h in trained.history]
    metrics += [
        Metric("val_dice", h["val_dice"], now, int(h["epoch"])) for h in trained.history if "val_dice" in h
    ]
    client.log_batch(run.info.run_id, metrics=metrics, params=params)
    for name in ("unet.pt", "unet.json", "split.csv"):
        client.log_artifact(run.info.run_id, str(OUT / name))
    client.set_terminated(run.info.run_id)
    (OUT / "mlflow_run.json").write_text(
        json.dumps({"run_id": run.info.run_id, "tracking_uri": tracking_uri}) + "\n"
    )
    print(
        f"train_unet: held-out mean Dice {v['mean_dice']:.3f} on {len(validation)} lesions "
        f"({len(trained.history)} epochs, {trained.seconds / 60:.1f} min on {trained.device}); MLflow run {run.info.run_id}"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
