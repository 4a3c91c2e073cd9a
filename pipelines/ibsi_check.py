"""DVC stage `ibsi_check`: IBSI-1 compliance on the digital phantom and the CT phantom's configurations A-E.

Writes ``metrics/ibsi.json`` with one section per configuration (``digital``, ``A`` ... ``E``:
``n_compared``, ``n_within_tolerance``, ``n_converted``, ``n_known_deviations``,
``n_unexplained``, ``mismatched_tags`` and the preprocessing ``checkpoints``) and
``reports/ibsi_comparison.csv``; with ``--docs docs/ibsi.md`` it also regenerates the docs page.

Data: the digital phantom and every reference file are in the repository (``tests/data``); the CT
phantom (CC BY-NC 3.0) is not: it is read from ``$SABRKIT_IBSI_DATA/ibsi_ct_phantom`` or
``../shared/data/ibsi_ct_phantom``. Without it the CT sections are recorded as skipped, unless
``SABRKIT_REQUIRE_REFERENCE_DATA=1``, which makes the stage fail. The ``ibsi_data`` stage
fingerprints that folder so this stage re-runs when it appears or changes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from stage_params import ROOT

REPO_DATA = ROOT / "tests" / "data"
REFERENCE = REPO_DATA / "ibsi_reference"
METRICS = ROOT / "metrics" / "ibsi.json"
REPORT = ROOT / "reports" / "ibsi_comparison.csv"
REQUIRE_ENV = "SABRKIT_REQUIRE_REFERENCE_DATA"

logger = logging.getLogger("sabrkit.pipelines.ibsi_check")


def ct_data_dir() -> Path:
    """Folder holding ``ibsi_ct_phantom/``: ``$SABRKIT_IBSI_DATA`` or ``../shared/data``."""
    from sabrkit.settings import shared_data_dir

    return shared_data_dir()


def main() -> None:
    from importlib.metadata import version

    from sabrkit.errors import NotFoundError, format_problem
    from sabrkit.features.ibsi import check_configurations, comparison_table, render_ibsi_markdown

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=Path, help="also write the markdown page to this file (docs/ibsi.md)")
    args = parser.parse_args()

    required = os.environ.get(REQUIRE_ENV) == "1"
    summaries, results = check_configurations(["digital"], REPO_DATA, REFERENCE)
    ct_summaries, ct_results = check_configurations(
        list("ABCDE"), ct_data_dir(), REFERENCE, skip_missing=not required
    )
    summaries.update(ct_summaries)
    results.update(ct_results)
    skipped = [config for config, section in summaries.items() if "skipped" in section]
    if skipped and args.docs is not None:
        raise NotFoundError(
            format_problem(
                f"--docs with configurations {skipped} skipped",
                "docs/ibsi.md shows all six configurations",
                f"place the CT phantom at {ct_data_dir() / 'ibsi_ct_phantom'} or set SABRKIT_IBSI_DATA",
            )
        )
    METRICS.parent.mkdir(parents=True, exist_ok=True)
    METRICS.write_text(json.dumps(summaries, indent=2, sort_keys=True) + "\n")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    comparison_table(results).to_csv(REPORT, index=False)
    if args.docs is not None:
        args.docs.write_text(render_ibsi_markdown(results, pyradiomics_version=version("pyradiomics")))
    for config, section in summaries.items():
        if "skipped" in section:
            logger.warning("ibsi_check %s: skipped (CT phantom not found; set SABRKIT_IBSI_DATA)", config)
        else:
            logger.info(
                "ibsi_check %s: %d of %d features within tolerance, %d unexplained; checkpoints %d of %d",
                config, section["n_within_tolerance"], section["n_compared"], section["n_unexplained"],
                section["checkpoints"]["n_within_tolerance"], section["checkpoints"]["n_compared"],
            )  # fmt: skip


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
