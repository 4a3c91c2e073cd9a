"""Benchmark: which clinical comparator estimates the clinical covariates' prognostic value best?

Every experiment is compared with a clinical-only Cox model on the same folds ("delta vs
clinical"). Two specifications of that comparator, run on cohorts of 60 patients from the
documented generator (``platform/synthetic/hazard.py``):

- ``all_registry``: every covariate of the registry's clinical table (age, sex, ECOG,
  histology, IMDC risk, prior nephrectomy, disease state, systemic therapy, number of lesions,
  maximum BED10: 14 encoded columns; about 2 events per column at 60 patients);
- ``established`` (the default since 2026-12-03, ``clinical_reference.covariates``): the
  established prognostic factors IMDC risk, ECOG and disease state (4 columns; near the 10 events
  per variable rule, Peduzzi et al. 1996).

Both are ``coxph`` (ridge 0.01, the comparator's estimator), 10 x 5-fold CV stratified on the
event (random_state 42, as the experiments). The yardstick is the **clinical oracle C**: Uno's C
of the generator's true *clinical* linear predictor (the progression coefficients of the
clinical terms, image terms left out) on the cohort's observed PFS - the best any clinical-only
model could do on that cohort. A comparator far below it understates the clinical covariates and
inflates every "delta vs clinical".

Cohort seeds: ``FIRST_SEED + i`` (the rule of ``benchmarks/inference.py``), never the demo's seed;
the demo's cohort (``params.yaml`` ``synthesize.seed``) is reported in its own section for
reference and played no part in the choice. No images are rendered (the comparators use only the
registry tables).

Run: ``nice -n 15 python benchmarks/comparator.py [--n-cohorts 100]`` (about 2 s per cohort) ->
``benchmarks/results/comparator.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform as _platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from measure import load_average  # benchmarks/measure.py

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "comparator.json"
FIRST_SEED = 1_000_000  # the cohort-seed rule of benchmarks/inference.py
N_PATIENTS = 60
N_SPLITS, N_REPEATS, RANDOM_STATE = 5, 10, 42
IMAGE_TERMS = ("heterogeneity", "tumour_burden_z")


def _cohort(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The encoded clinical covariate table and the outcome (time, event, clinical and full eta_P)."""
    from sabrkit.models.clinical_encoding import encode_clinical
    from sabrkit.registry.covariates import compute_clinical_covariates
    from sabrkit.synthetic import SynthConfig, generate_cohort
    from sabrkit.timescale import DAYS_PER_MONTH

    cohort = generate_cohort(
        SynthConfig(n_patients=N_PATIENTS, seed=seed, write_images=False), np.random.default_rng(seed)
    )
    patients = cohort.table("patients")
    clinical = encode_clinical(
        compute_clinical_covariates(patients, cohort.table("lesions"), cohort.table("sabr_courses"))
    )
    p = patients.set_index("study_id")
    start = cohort.table("sabr_courses").groupby("study_id")["start_date"].min().reindex(p.index)
    prog = cohort.table("progression_events").set_index("study_id")["event_date"].reindex(p.index)
    death = cohort.table("deaths").set_index("study_id")["death_date"].reindex(p.index)
    event_date = prog.where(prog.notna(), death)
    end = event_date.where(event_date.notna(), p["last_contact_date"])
    months = np.array([(e - s).days for e, s in zip(end, start)], float) / DAYS_PER_MONTH
    truth = cohort.truth_patients.set_index("study_id").reindex(p.index)
    coefficients = cohort.truth["hazard_model"]["progression_coefficients"]
    image_part = sum(coefficients[term] * truth[term].to_numpy(float) for term in IMAGE_TERMS)
    clinical_lp = truth["lp_progression"].to_numpy(float) - image_part  # eta_P without the image terms
    outcome = pd.DataFrame(
        {
            "time": np.maximum(months, 1.0 / DAYS_PER_MONTH),
            "event": event_date.notna().to_numpy(),
            "clinical_lp": np.asarray(clinical_lp, float),
            "lp": truth["lp_progression"].to_numpy(float),
        },
        index=p.index,
    )
    return clinical.reindex(p.index), outcome


def _one(seed: int) -> dict[str, Any]:
    from sabrkit.models.dataset import make_dataset
    from sabrkit.models.spec import ReferenceSpec
    from sabrkit.models.validation import repeated_stratified_cv
    from sabrkit.synthetic import hazard

    clinical, outcome = _cohort(seed)
    time_, event = outcome["time"].to_numpy(), outcome["event"].to_numpy()
    row: dict[str, Any] = {"seed": seed, "n_events": int(event.sum())}
    row["clinical_oracle_uno_c"] = hazard.oracle_concordance(outcome["clinical_lp"].to_numpy(), time_, event)[
        "oracle_uno_c"
    ]
    row["oracle_uno_c"] = hazard.oracle_concordance(outcome["lp"].to_numpy(), time_, event)["oracle_uno_c"]
    full = make_dataset(clinical, event, time_, "clinical", blocks={"clinical": tuple(clinical.columns)})
    for name, spec in (
        ("all_registry", ReferenceSpec(covariates="all")),
        ("established", ReferenceSpec()),
    ):
        data = spec.comparator_data(full)
        cv = repeated_stratified_cv(spec.build(), data, N_SPLITS, N_REPEATS, random_state=RANDOM_STATE)
        row[f"{name}_uno_c"] = cv.summary["uno_c_mean"]
        row[f"{name}_n_columns"] = len(data.feature_names)
    return row


def _distribution(values: pd.Series) -> dict[str, float]:
    v = values.dropna().to_numpy(float)
    return {
        "median": round(float(np.median(v)), 4),
        "p05": round(float(np.quantile(v, 0.05)), 4),
        "p95": round(float(np.quantile(v, 0.95)), 4),
        "min": round(float(v.min()), 4),
        "max": round(float(v.max()), 4),
    }


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    frame = pd.DataFrame(rows)
    out: dict[str, Any] = {}
    for column in ("clinical_oracle_uno_c", "oracle_uno_c", "all_registry_uno_c", "established_uno_c"):
        out[column] = _distribution(frame[column])
    for name in ("all_registry", "established"):
        gap = frame["clinical_oracle_uno_c"] - frame[f"{name}_uno_c"]
        out[f"{name}_gap_to_clinical_oracle"] = _distribution(gap)
        out[f"{name}_share_at_least_0.55"] = round(float((frame[f"{name}_uno_c"] >= 0.55).mean()), 4)
    better = frame["established_uno_c"] > frame["all_registry_uno_c"]
    out["established_better_share"] = round(float(better.mean()), 4)
    out["established_minus_all_registry"] = _distribution(
        frame["established_uno_c"] - frame["all_registry_uno_c"]
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cohorts", type=int, default=100)
    parser.add_argument(
        "--demo-seed", type=int, default=20240501, help="params.yaml synthesize.seed (reported apart)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    load_before, started = load_average(), time.perf_counter()
    rows = []
    for i in range(args.n_cohorts):
        rows.append(_one(FIRST_SEED + i))
        print(json.dumps(rows[-1]), flush=True)
    demo = _one(args.demo_seed)
    from sabrkit.io import atomic_write_text

    document = {
        "what": __doc__.split("\n\n")[0],
        "date": dt.date.today().isoformat(),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": _platform.platform(),
            "python": _platform.python_version(),
        },
        "seeds": f"{FIRST_SEED} .. {FIRST_SEED + args.n_cohorts - 1} (FIRST_SEED + i, none skipped)",
        "n_cohorts": args.n_cohorts,
        "cv": {
            "n_splits": N_SPLITS,
            "n_repeats": N_REPEATS,
            "random_state": RANDOM_STATE,
            "estimator": "coxph alpha 0.01",
        },
        "summary": _summary(rows),
        "cohorts": rows,
        "demo_cohort": {"note": "the demo's seed, reported for reference; not used to choose", **demo},
        "seconds": round(time.perf_counter() - started, 1),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULT, json.dumps(document, indent=1, default=float) + "\n")
    print(json.dumps(document["summary"], indent=1))


if __name__ == "__main__":
    main()
