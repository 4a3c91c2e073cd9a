"""Benchmark: repeated cross-validation of the model pipelines, against a plain scikit-survival loop.

Measures, in one run, on a simulated cohort of 60 patients x 1,500 features (3 informative, joint log HR 2.5):

1. **CoxNet**, 10 x 5-fold repeated stratified CV through the platform
   (``repeated_stratified_cv(build_pipeline("coxnet"))``: in-fold imputation, variance and
   correlation filters, scaling, univariate selection, elastic-net Cox; Harrell and Uno C,
   AUC at 12/24 months, IBS with the KM reference, survival functions, training-fold cut-offs)
   vs the **plain loop** a user would write (``RepeatedStratifiedKFold`` on the event,
   ``StandardScaler`` + ``CoxnetSurvivalAnalysis`` on all features, Harrell and Uno C only).
   Target: platform under 60 s on 2 cores.
2. **Random survival forest**, 500 trees, the same 10 x 5 CV through the platform vs the plain
   loop (``RandomSurvivalForest(500)`` per fold, Harrell and Uno C only). Target: platform
   under 5 minutes on 2 cores.

Both use the machine's 2 cores: CoxNet runs folds in parallel (``n_jobs=2``), the forests grow
their trees in parallel (``n_jobs=2``). Run: ``.venv/bin/python benchmarks/models.py
[--repeats N] [--forest-repeats N]`` -> ``benchmarks/results/models.json``: every timing repeated
(default 3 each, platform and plain alternated in the same run), with its runs, median, min and
max, and the load average before and after each case (the machine is shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
import warnings
from pathlib import Path
from statistics import median

import numpy as np
from measure import DEFAULT_REPEATS, check_repeats, load_average, spread

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "models.json"
N_PATIENTS, N_FEATURES, N_SPLITS, N_REPEATS = 60, 1500, 5, 10


def _cohort():
    from sabrkit.models.simulation import simulate_feature_cohort

    return simulate_feature_cohort(
        np.random.default_rng(20240501), N_PATIENTS, N_FEATURES, n_informative=3, log_hazard_ratio=2.5
    )


def _plain_cv(make_model, dataset) -> dict[str, float]:
    """The hand-written loop: no platform code, scikit-learn and scikit-survival only."""
    from sklearn.model_selection import RepeatedStratifiedKFold
    from sksurv.metrics import concordance_index_censored, concordance_index_ipcw

    X, y = dataset.X.to_numpy(), dataset.y
    harrell, uno = [], []
    splitter = RepeatedStratifiedKFold(n_splits=N_SPLITS, n_repeats=N_REPEATS, random_state=0)
    for train, test in splitter.split(X, y["event"]):
        model = make_model().fit(X[train], y[train])
        risk = model.predict(X[test])
        harrell.append(concordance_index_censored(y["event"][test], y["time"][test], risk)[0])
        tau = min(24.0, float(y["time"][train].max()))
        if np.any(y["event"][test] & (y["time"][test] < tau)):
            uno.append(concordance_index_ipcw(y[train], y[test], risk, tau=tau)[0])
    return {"harrell_c_mean": float(np.mean(harrell)), "uno_c_mean": float(np.mean(uno))}


def _time(function, repeats: int) -> tuple[float, list[float], object]:
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return median(seconds), seconds, result


def _case(name: str, platform, plain, repeats: int, target_s: float) -> dict:
    load_before = load_average()
    platform_s, platform_all, platform_result = _time(platform, repeats)
    plain_s, plain_all, plain_result = _time(plain, repeats)
    summary = platform_result.summary
    return {
        "name": name,
        "platform_seconds": spread(platform_all, 2),
        "plain_seconds": spread(plain_all, 2),
        "load_average_before_after": [load_before, load_average()],
        "platform_median_s": round(platform_s, 2),
        "platform_runs_s": [round(s, 2) for s in platform_all],
        "plain_median_s": round(plain_s, 2),
        "plain_runs_s": [round(s, 2) for s in plain_all],
        "ratio_platform_to_plain": round(platform_s / plain_s, 2),
        "target_s": target_s,
        "meets_target": platform_s < target_s,
        "platform_metrics": {
            k: round(float(summary[k]), 4)
            for k in ("harrell_c_mean", "uno_c_mean", "auc_12_mean", "ibs_mean", "ibs_km_mean")
        },
        "plain_metrics": {k: round(v, 4) for k, v in plain_result.items()},
        "n_folds": int(summary["n_folds"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats",
        type=lambda text: check_repeats(int(text)),
        default=DEFAULT_REPEATS,
        help="Timings per CoxNet measurement (median reported).",
    )
    parser.add_argument(
        "--forest-repeats",
        type=lambda text: check_repeats(int(text)),
        default=DEFAULT_REPEATS,
        help="Timings per forest measurement (median reported).",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sksurv.ensemble import RandomSurvivalForest
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    from sabrkit.models import build_pipeline, repeated_stratified_cv

    dataset = _cohort()
    load_before = load_average()
    cases = [
        _case(
            "coxnet_10x5_cv_60x1500",
            lambda: repeated_stratified_cv(
                build_pipeline("coxnet", alpha=0.1, k=10),
                dataset,
                N_SPLITS,
                N_REPEATS,
                random_state=0,
                n_jobs=2,
            ),
            lambda: _plain_cv(
                lambda: make_pipeline(StandardScaler(), CoxnetSurvivalAnalysis(l1_ratio=0.5, alphas=[0.1])),
                dataset,
            ),
            args.repeats,
            60.0,
        ),
        _case(
            "rsf_500_trees_10x5_cv_60x1500",
            lambda: repeated_stratified_cv(
                build_pipeline("rsf", n_estimators=500, n_jobs=2),
                dataset,
                N_SPLITS,
                N_REPEATS,
                random_state=0,
            ),
            lambda: _plain_cv(
                lambda: RandomSurvivalForest(
                    n_estimators=500, min_samples_split=10, min_samples_leaf=5, random_state=0, n_jobs=2
                ),
                dataset,
            ),
            args.forest_repeats,
            300.0,
        ),
    ]
    document = {
        "benchmark": "models",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "gpu": "none used (CPU-only scikit-survival work; no GPU in this session)",
        "cohort": {
            "n_patients": N_PATIENTS,
            "n_features": N_FEATURES,
            "n_informative": 3,
            "log_hazard_ratio": 2.5,
            "n_events": int(dataset.n_events),
        },
        "cv": f"{N_REPEATS} x {N_SPLITS}-fold repeated stratified (event)",
        "note": "Each timing is one whole 10 x 5-fold repeated CV (50 fits + scoring) on the simulated "
        "60 x 1,500 cohort, cohort simulation excluded; platform = repeated_stratified_cv of the "
        "build_pipeline model (in-fold filters and selection, survival functions, Harrell/Uno C, AUC, "
        "IBS with the KM reference, cut-offs), plain = the hand-written sksurv loop (Harrell and Uno C "
        "only), so the ratio is the price of the extra work. Metrics are on simulated (synthetic) data. "
        "Timings depend on what else runs on the shared machine: see the load averages.",
        "cases": cases,
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(document, indent=2) + "\n")
    for case in cases:
        print(
            f"{case['name']}: platform {case['platform_median_s']} s, plain {case['plain_median_s']} s "
            f"(x{case['ratio_platform_to_plain']}), target {case['target_s']} s: "
            f"{'met' if case['meets_target'] else 'NOT met'}"
        )
    print(f"-> {RESULT}")


if __name__ == "__main__":
    main()
