"""IBSI-1 CT radiomics phantom, configurations A-E: features and checkpoints vs the IBSI reference values.

The phantom (CC BY-NC 3.0) is outside the repository (``$SABRKIT_IBSI_DATA`` or ``../shared/data``);
these tests skip without it, and fail with ``SABRKIT_REQUIRE_REFERENCE_DATA=1`` (``.ci/run``).
References: ``tests/data/ibsi_reference/ibsi_1_chest_config_{a..e}.csv`` (IBSI reference manual,
arXiv:1612.07003) and ``ibsi_1_dig_phantom.csv``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest

from sabrkit.features.ibsi import check_configurations, render_ibsi_markdown

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="module")
def results(ibsi_ct_data: Path) -> tuple[dict, dict[str, tuple[pd.DataFrame, pd.DataFrame]]]:
    summaries, results = check_configurations(["digital"], DATA, DATA / "ibsi_reference")
    ct_summaries, ct_results = check_configurations(list("ABCDE"), ibsi_ct_data, DATA / "ibsi_reference")
    return {**summaries, **ct_summaries}, {**results, **ct_results}


@pytest.mark.parametrize("config", list("ABCDE"))
def test_configuration_is_ibsi_compliant(results: tuple[dict, dict], config: str) -> None:
    summaries, tables = results
    section = summaries[config]
    assert section["n_within_tolerance"] >= 100, section
    assert section["n_unexplained"] == 0, section["mismatched_tags"]
    # 2-D configurations compare the 2D and 2.5D texture variants, 3-D ones the 3D variants
    expected = {"A": 265, "B": 265, "C": 148, "D": 148, "E": 148}[config]
    assert section["n_compared"] == expected
    checkpoints = section["checkpoints"]
    assert checkpoints["n_compared"] >= 60 and checkpoints["mismatched_tags"] == [], checkpoints[
        "mismatched_tags"
    ]
    comparison, _ = tables[config]
    # the preprocessing really differs between configurations: mean after interpolation and re-segmentation
    assert comparison["ibsi_tag"].str.contains("_2D_avg" if config in "AB" else "_3D_avg").any()


def test_docs_page_is_current(results: tuple[dict, dict]) -> None:
    _, tables = results
    expected = render_ibsi_markdown(tables, pyradiomics_version=version("pyradiomics"))
    assert (ROOT / "docs" / "ibsi.md").read_text() == expected, (
        "regenerate with: python pipelines/ibsi_check.py --docs docs/ibsi.md"
    )


@pytest.mark.parametrize("require", ["0", "1"])
def test_missing_ct_phantom_skips_or_fails_as_required(tmp_path: Path, require: str) -> None:
    env = {
        **os.environ,
        "SABRKIT_IBSI_DATA": str(tmp_path / "absent"),
        "SABRKIT_REQUIRE_REFERENCE_DATA": require,
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-rs",
         str(Path(__file__).parent / "test_features_ibsi_processing.py"), "-k", "each_step and grid"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if require == "1":
        assert run.returncode == 1 and "SABRKIT_REQUIRE_REFERENCE_DATA=1 requires it" in run.stdout, (
            run.stdout
        )
    else:
        assert run.returncode == 0 and "5 skipped" in run.stdout and "CC BY-NC" in run.stdout, run.stdout
