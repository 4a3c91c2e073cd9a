"""DVC stage `ibsi_check`: our features on the IBSI-1 digital phantom vs the IBSI reference values.

Writes ``metrics/ibsi.json`` (``n_compared``, ``n_within_tolerance``, ...) and
``reports/ibsi_comparison.csv``; with ``--docs docs/ibsi.md`` it also regenerates the docs table.
The phantom and reference live in ``../shared/data`` (override with ``SABRKIT_IBSI_DATA``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from stage_params import ROOT

DATA = Path(os.environ.get("SABRKIT_IBSI_DATA", ROOT.parent / "shared" / "data"))
PHANTOM = DATA / "ibsi_digital_phantom" / "nifti"
REFERENCE = DATA / "ibsi_reference" / "ibsi_1_dig_phantom.csv"
METRICS = ROOT / "metrics" / "ibsi.json"
REPORT = ROOT / "reports" / "ibsi_comparison.csv"


def main() -> None:
    from importlib.metadata import version

    from sabrkit.features.ibsi import (
        compare_with_ibsi_reference,
        extract_phantom_features,
        ibsi_summary,
        read_ibsi_reference,
        render_ibsi_markdown,
    )

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=Path, help="also write the markdown table to this file (docs/ibsi.md)")
    args = parser.parse_args()

    if not (PHANTOM.is_dir() and REFERENCE.is_file()):
        # The phantom is test data beside the checkout (../shared/data), not part of sabrkit: on a
        # machine without it the check is recorded as skipped instead of stopping `dvc repro`.
        METRICS.parent.mkdir(parents=True, exist_ok=True)
        METRICS.write_text(json.dumps({"n_compared": 0, "n_within_tolerance": 0,
                                       "skipped": f"IBSI phantom not found at {DATA}; set SABRKIT_IBSI_DATA"}, indent=2) + "\n")
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text("")
        print(f"ibsi_check: skipped, IBSI phantom not found at {DATA} (set SABRKIT_IBSI_DATA)")
        return
    ours = extract_phantom_features(PHANTOM / "image" / "phantom.nii.gz", PHANTOM / "mask" / "mask.nii.gz")
    comparison = compare_with_ibsi_reference(ours, read_ibsi_reference(REFERENCE))
    summary = ibsi_summary(comparison)
    METRICS.parent.mkdir(parents=True, exist_ok=True)
    METRICS.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    comparison.to_csv(REPORT, index=False)
    if args.docs is not None:
        args.docs.write_text(render_ibsi_markdown(comparison, pyradiomics_version=version("pyradiomics")))
    print(
        f"ibsi_check: {summary['n_within_tolerance']} of {summary['n_compared']} features within tolerance; "
        f"{summary['n_known_deviations']} known pyradiomics deviations, {summary['n_unexplained']} unexplained"
    )


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
