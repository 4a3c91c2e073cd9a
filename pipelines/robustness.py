"""DVC stage `robustness`: perturbed re-extraction of every lesion and ICC(1,1) per feature.

Writes ``data/features/perturbed_lesion_features.parquet`` (long: lesion x perturbation),
``data/features/perturbed_patient_features.parquet`` (aggregated per perturbation with
``assemble.aggregation``; the side data of :class:`sabrkit.features.ICCSelector`),
``reports/icc.csv`` (ICC per feature with 95 % CI, pingouin) and ``metrics/robustness.json``.
"""

from __future__ import annotations

import json

import pandas as pd
from stage_params import ROOT, load_all

from sabrkit.io import atomic_write

SOURCE = ROOT / "data" / "preprocessed"
OUT = ROOT / "data" / "features"
ICC_REPORT = ROOT / "reports" / "icc.csv"
METRICS = ROOT / "metrics" / "robustness.json"


def _write_parquet(table: pd.DataFrame, name: str) -> None:
    target = OUT / name
    with atomic_write(target) as tmp:
        table.to_parquet(tmp, index=False)


def main() -> None:
    from sabrkit.features import load_params
    from sabrkit.features.robustness import (
        PerturbationConfig,
        aggregate_perturbed,
        config_dict,
        extract_perturbed_features,
        icc_table,
    )

    params = load_all()
    p, features, assemble, execution = (
        params["robustness"], params["features"], params["assemble"], params["execution"]
    )  # fmt: skip
    config = PerturbationConfig(
        n_perturbations=p.n_perturbations, noise_sd_hu=p.noise_sd_hu, max_rotation_deg=p.max_rotation_deg,
        max_translation_voxels=p.max_translation_voxels, max_volume_change=p.max_volume_change,
        contour_flip_probability=p.contour_flip_probability,
    )  # fmt: skip
    perturbed, failures = extract_perturbed_features(
        pd.read_csv(SOURCE / "images.csv"), load_params(features.radiomics_params), config, p.seed,
        n_jobs=execution.n_jobs, scheduler=execution.scheduler, base_dir=SOURCE,
        max_failure_fraction=p.max_failure_fraction,
    )  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    _write_parquet(perturbed, "perturbed_lesion_features.parquet")
    _write_parquet(aggregate_perturbed(perturbed, assemble.aggregation), "perturbed_patient_features.parquet")
    icc = icc_table(perturbed, id_column="lesion_id")
    ICC_REPORT.parent.mkdir(parents=True, exist_ok=True)
    icc.to_csv(ICC_REPORT, index=False)
    robust = int((icc["icc"] >= p.icc_threshold).sum())
    summary = {
        "icc_form": "ICC(1,1)",
        "icc_threshold": p.icc_threshold,
        "n_features": int(len(icc)),
        "n_robust": robust,
        "median_icc": float(icc["icc"].median()),
        "n_lesions": int(perturbed["lesion_id"].nunique()),
        "n_failed": len(failures),
        "perturbation": config_dict(config),
    }
    METRICS.parent.mkdir(parents=True, exist_ok=True)
    METRICS.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(f"robustness: {robust} of {len(icc)} features with ICC(1,1) >= {p.icc_threshold} "
          f"over {summary['n_lesions']} lesions x {config.n_perturbations} perturbations")  # fmt: skip


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
