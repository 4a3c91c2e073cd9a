"""DVC stage `deidentify`: DICOM PS3.15 Basic Profile on the export, then the PHI check.

Pseudonyms come from the key table ``registry/identifiers.csv`` (hospital number -> study ID). UIDs and
date offsets are keyed by the secret in ``SABRKIT_DEID_SECRET``; without it a fixed demo secret is used
(synthetic data only: a real run must set it and keep it on the clinical side). The stage fails when
any PS3.15 Table E.1-1 attribute or any key-table identifier remains (``metrics/deid.json``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil

import pandas as pd
from stage_params import ROOT, load_section

SOURCE = ROOT / "data" / "dicom" / "export"
KEY_TABLE = ROOT / "data" / "synthetic" / "registry" / "identifiers.csv"
OUT = ROOT / "data" / "dicom_deid"
METRICS = ROOT / "metrics" / "deid.json"
DEMO_SECRET = "sabrkit-synthetic-demo-secret-not-for-real-data"


def main() -> None:
    from sabrkit.errors import ExtractionError
    from sabrkit.imaging import DeidConfig, assert_no_phi, check_deidentified_folder, deidentify_folder

    p = load_section("deidentify")
    secret = os.environ.get("SABRKIT_DEID_SECRET")
    if not secret:
        logging.getLogger("sabrkit.pipelines").warning(
            "SABRKIT_DEID_SECRET is not set: using the demo secret (acceptable for synthetic data only)"
        )
        secret = DEMO_SECRET
    keys = pd.read_csv(KEY_TABLE, dtype=str)
    config = DeidConfig(
        secret=secret,
        pseudonym_of=dict(zip(keys["hospital_number"], keys["study_id"])),
        max_shift_days=p.max_shift_days,
        keep_label_pattern=p.keep_label_pattern,
    )
    if OUT.exists():
        shutil.rmtree(OUT)
    result = deidentify_folder(SOURCE, OUT, config)
    if result.failures:
        raise ExtractionError(result.failures, result.n_written + len(result.failures), 0.0)
    needles = [
        *keys["hospital_number"],
        *(keys["family_name"] + "^" + keys["given_name"]),
        *keys["date_of_birth"].str.replace("-", ""),
    ]
    findings = check_deidentified_folder(OUT, identifiers=needles, keep_label_pattern=p.keep_label_pattern)
    METRICS.parent.mkdir(exist_ok=True)
    METRICS.write_text(
        json.dumps(
            {"n_files": result.n_written, "n_patients": len(result.patients), "phi_findings": len(findings)},
            indent=2,
        )
        + "\n"
    )
    assert_no_phi(findings)
    print(f"deidentify: {result.n_written} files of {len(result.patients)} patients, no PHI attribute left")


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
