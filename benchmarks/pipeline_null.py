"""Part (d) of ``benchmarks/inference.py``: the whole pipeline on cohorts whose images carry no
outcome signal.

Each cohort is generated with the image phenotype switched off (``heterogeneity`` and
``tumour_burden_z`` log hazard ratios 0 for progression and death; the clinical effects stay on),
then goes through the real stages' functions: images rendered and written, registry and consents
loaded into a fresh SQLite database, consent snapshot, preprocessing (params.yaml
``preprocess`` defaults), pyradiomics extraction (``ct_v1``), and the experiments
``clinical_radiomic_coxnet`` and ``radiomic_spca`` through ``run_experiment`` (5 x 5 CV, no
permutation test or bootstrap to save time). If nothing outcome-related reaches the features,
the clinical + radiomic model's CV C falls to the clinical comparator's level and the
radiomic-only model's to 0.5. Images are 64 x 64 x 32 voxels (1 x 1 x 2 mm) to fit the time.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from sabrkit.errors import ModelInputError

REPO = Path(__file__).resolve().parents[1]
IMAGE_OFF = {"heterogeneity": 0.0, "tumour_burden_z": 0.0}
EXPERIMENTS = ("clinical_radiomic_coxnet", "radiomic_spca")
# The judged seeds (benchmarks/PREREGISTERED.md, 2026-12-03): a block never generated before. The
# first block, 3_000_000.., was looked at when the combined CoxNet's tuning was decided, so it is
# re-run only as a transparency figure (``SEEN_FIRST_SEED``, 5 cohorts).
FIRST_SEED = 3_100_000
SEEN_FIRST_SEED = 3_000_000


def _one_cohort(seed: int, folder: Path, image_off: bool = True) -> dict[str, Any]:
    from sabrkit.db import Database
    from sabrkit.features import aggregate_lesions, extract_lesion_features, load_params
    from sabrkit.imaging import PreprocessConfig, preprocess_manifest
    from sabrkit.models.consent_snapshot import consent_snapshot, load_consent_table
    from sabrkit.models.experiment import run_experiment
    from sabrkit.models.experiment_io import ExperimentInputs
    from sabrkit.models.spec import load_experiment
    from sabrkit.registry import clinical_covariates_from_db, endpoints_from_db, load_registry_folder
    from sabrkit.synthetic import SynthConfig, synthesize

    config = SynthConfig(
        seed=seed,
        image_shape=(64, 64, 32),
        spacing_mm=(1.0, 1.0, 2.0),
        progression_coefficients=IMAGE_OFF if image_off else {},
        death_coefficients=IMAGE_OFF if image_off else {},
    )
    cohort = synthesize(folder / "synthetic", config)
    db = Database.from_url(f"sqlite:///{folder / 'registry.db'}")
    db.upgrade()
    load_registry_folder(db, cohort / "registry")
    load_consent_table(db, cohort / "biobank" / "consents.csv")
    endpoints, clinical = endpoints_from_db(db), clinical_covariates_from_db(db)
    snapshot = consent_snapshot(db, endpoints["study_id"])
    db.dispose()
    manifest = pd.read_csv(cohort / "images.csv")
    preprocess_manifest(manifest, folder / "pre", PreprocessConfig(), n_jobs=1, base_dir=cohort)
    pre_manifest = pd.read_csv(folder / "pre" / "images.csv")
    features = extract_lesion_features(
        pre_manifest, load_params("ct_v1"), n_jobs=1, progress=False, base_dir=folder / "pre"
    ).features
    row: dict[str, Any] = {"seed": seed}
    truth = __import__("json").loads((cohort / "ground_truth.json").read_text())
    row["oracle_uno_c"] = truth["oracle"]["oracle_uno_c"]
    for name in EXPERIMENTS:
        spec = load_experiment(REPO / "experiments" / f"{name}.yaml")
        spec = spec.model_copy(
            update={
                "validation": spec.validation.model_copy(update={"n_repeats": 5, "bootstrap_optimism": 0}),
                "analysis": spec.analysis.model_copy(
                    update={
                        "permutations": 0,
                        "interval_bootstrap": 0,
                        "importance_repeats": 0,
                        "screening": False,
                    }
                ),
            }
        )
        inputs = ExperimentInputs(
            endpoints=endpoints,
            clinical=clinical,
            lesion_features=features,
            patient_features=aggregate_lesions(features, spec.inputs.aggregation),
            consented=snapshot,
        )
        result = run_experiment(spec, inputs, tracking_uri=None, out_dir=None)
        row[f"{name}_uno_c"] = result.metrics["summary"]["uno_c_mean"]
        row[f"{name}_clinical_uno_c"] = result.metrics["clinical_reference"]["summary"]["uno_c_mean"]
        if result.metrics.get("final_model_best_params"):  # tuned: the all-patient model's choice
            row[f"{name}_final_best_params"] = result.metrics["final_model_best_params"]
    return row


def part_pipeline(
    n_cohorts: int,
    write: Callable[[dict[str, Any]], None] | None = None,
    image_off: bool = True,
    first_seed: int = FIRST_SEED,
) -> dict[str, Any]:
    """Run :func:`_one_cohort` on seeds ``first_seed ..`` and summarise (JSON-ready); ``write`` gets the
    summary after every cohort (``partial: true`` until the last), so a stopped run keeps its cohorts."""
    t0, load0 = time.time(), os.getloadavg()
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    failed: list[dict[str, Any]] = []
    for i in range(n_cohorts):
        seed = first_seed + i
        with tempfile.TemporaryDirectory(prefix="sabrkit-null-pipeline-") as tmp:
            try:
                rows.append(_one_cohort(seed, Path(tmp), image_off))
            except ModelInputError as error:  # e.g. follow-up short of tau: reported, never silently replaced
                failed.append({"seed": seed, "error": f"{type(error).__name__}: {error}"})
                logging.warning("pipeline null: cohort %d (seed %d) failed: %s", i + 1, seed, error)
            else:
                logging.info(
                    "pipeline null: cohort %d/%d done (%.0f s): %s",
                    i + 1,
                    n_cohorts,
                    time.time() - t0,
                    rows[-1],
                )
        if not rows:
            continue
        summary = _summary(rows, n_cohorts, t0, load0, first_seed, failed)
        if not image_off:  # the positive control: the same cohorts' seeds with the image phenotype on
            summary.update(
                what="positive control of the pipeline check: the same seeds with the image phenotype ON "
                "(default generator); mean CV Uno C over cohorts",
                target="reported (no target): does the clinical+radiomic model gain over the comparator?",
                met=None,
            )
        if write is not None:
            write(summary)
    return summary


def _summary(
    rows: list[dict[str, Any]],
    n_target: int,
    t0: float,
    load0: tuple[float, float, float],
    first_seed: int = FIRST_SEED,
    failed: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    from sabrkit.models.spec import load_experiment

    n_cohorts = len(rows)
    table = pd.DataFrame(rows)
    combined = table["clinical_radiomic_coxnet_uno_c"].mean()
    clinical = table["clinical_radiomic_coxnet_clinical_uno_c"].mean()
    return {
        "what": "whole pipeline (render, preprocess, pyradiomics, experiments) on cohorts with the image phenotype "
        "switched off; mean CV Uno C over cohorts",
        "partial": n_cohorts + len(failed or ()) < n_target,
        "n_cohorts": n_cohorts,
        "n_cohorts_planned": n_target,
        "seeds": f"{first_seed} .. {first_seed + n_cohorts + len(failed or ()) - 1}",
        "failed_cohorts": list(failed or ()),
        "seeds_role": "judged (pre-registered, never generated before)"
        if first_seed == FIRST_SEED
        else "seen: looked at before the model's current settings were decided (transparency only)",
        "model_params": {
            name: dict(load_experiment(REPO / "experiments" / f"{name}.yaml").model.params)
            for name in EXPERIMENTS
        },
        "model_tuning": {
            name: tuning.model_dump()
            if (tuning := load_experiment(REPO / "experiments" / f"{name}.yaml").model.tuning) is not None
            else None
            for name in EXPERIMENTS
        },
        "cohorts": rows,
        "clinical_radiomic_coxnet_uno_c_mean": float(combined),
        "clinical_comparator_uno_c_mean": float(clinical),
        "difference": float(combined - clinical),
        "radiomic_spca_uno_c_mean": float(table["radiomic_spca_uno_c"].mean()),
        "target": "clinical+radiomic model within 0.03 of the clinical comparator (mean over >= 5 cohorts)",
        "met": bool(abs(combined - clinical) <= 0.03 and n_cohorts >= 5),
        "sd_between_cohorts_note": "SD of the cohort values; the difference's SD is in difference_sd",
        "difference_sd": float(
            (table["clinical_radiomic_coxnet_uno_c"] - table["clinical_radiomic_coxnet_clinical_uno_c"]).std(
                ddof=1
            )
        )
        if n_cohorts > 1
        else None,
        "seconds": round(time.time() - t0, 1),
        "load_average_before": load0,
        "load_average_after": os.getloadavg(),
        "sd_between_cohorts": {
            k: float(table[k].std(ddof=1)) if n_cohorts > 1 else None
            for k in table.columns
            if k.endswith("uno_c")
        },
        "image_shape": [64, 64, 32],
        "n_repeats": 5,
    }
