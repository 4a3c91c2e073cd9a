"""DVC stage `compare_experiments`: one table of every experiment the pipeline ran.

Reads ``metrics/experiments/<name>.json`` for the names in ``params.yaml`` ``experiments.names``
(and, from ``metrics/dicom_experiments/``, ``experiments.dicom_names``: the DICOM path's
lesion-level experiments, when their metrics exist, since that pipeline is optional; not a DVC
dependency of this stage, so `sabrkit demo --with-dicom` forces this stage after the DICOM path) and writes ``reports/experiments.csv`` (every column) and ``reports/experiments.md`` (the
columns a reader compares: cross-validated C and AUC as mean ± SD over repeats, and the paired
difference from the clinical-only model on the same folds). Rows are sorted by Uno's C.
"""

from __future__ import annotations

from stage_params import ROOT, load_all

METRICS = ROOT / "metrics" / "experiments"
DICOM_METRICS = ROOT / "metrics" / "dicom_experiments"
REPORTS = ROOT / "reports"


def _pm(row: dict, metric: str) -> str:
    mean, sd = row.get(f"{metric}_mean"), row.get(f"{metric}_sd")
    if mean is None or mean != mean:
        return "-"
    return f"{mean:.3f}" + ("" if sd is None or sd != sd else f" ± {sd:.3f}")


def markdown(table) -> str:
    """The comparison as a Markdown table (what a reader compares, not every column)."""
    lines = [
        "# Experiments",
        "",
        "Cross-validated metrics, mean ± SD over repeats; Δ Uno C = model − its comparator on the same "
        "folds (the clinical-only model unless the comparator column names another, e.g. `dose`: BED10 "
        "alone for lesion-level local control; events of a lesion-level experiment are local failures). "
        "Written by `dvc repro` (stage compare_experiments).",
        "",
        "| experiment | model | features | patients | events | Harrell C | Uno C | AUC 12 m | AUC 24 m | IBS | "
        "Δ Uno C | comparator | endpoint |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in table.to_dict("records"):
        delta = row.get("delta_uno_c_vs_clinical")
        delta_text = "-" if delta is None or delta != delta else f"{delta:+.3f}"
        lines.append(
            f"| {row['experiment']} | {row['estimator']} | {row['feature_set']} | {row['n_patients']} | "
            f"{row['n_events']} | {_pm(row, 'harrell_c')} | {_pm(row, 'uno_c')} | {_pm(row, 'auc_12')} | "
            f"{_pm(row, 'auc_24')} | {_pm(row, 'ibs')} | {delta_text} | {row.get('comparator') or '-'} | "
            f"{row.get('endpoint') or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    from sabrkit.models.experiment_table import experiment_table

    experiments = load_all()["experiments"]
    files = [METRICS / f"{name}.json" for name in experiments.names]
    files += [
        DICOM_METRICS / f"{n}.json"
        for n in experiments.dicom_names
        if (DICOM_METRICS / f"{n}.json").is_file()
    ]
    table = experiment_table(files)
    REPORTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(REPORTS / "experiments.csv", index=False)
    (REPORTS / "experiments.md").write_text(markdown(table), encoding="utf-8")
    best = table.iloc[0]
    print(
        f"compare_experiments: {len(table)} experiment(s); best Uno C {best['uno_c_mean']:.3f} ({best['experiment']}); "
        f"table in {REPORTS / 'experiments.md'}"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
