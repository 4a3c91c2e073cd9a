"""sabrkit's features on the IBSI-1 digital phantom vs the IBSI consensus reference values.

Reference: ``../shared/data/ibsi_reference/ibsi_1_dig_phantom.csv`` (IBSI reference manual,
Zwanenburg et al., arXiv:1612.07003, digital phantom table; ``reference value;tolerance;tag``).
"""

from __future__ import annotations

import math
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest

from sabrkit.errors import NotFoundError, ValidationError
from sabrkit.features.ibsi import (
    IBSI_TAGS,
    KNOWN_DEVIATIONS,
    compare_with_ibsi_reference,
    extract_phantom_features,
    ibsi_summary,
    read_ibsi_reference,
    render_ibsi_markdown,
)

ROOT = Path(__file__).parents[2]
DATA = ROOT / ".." / "shared" / "data"
PHANTOM = DATA / "ibsi_digital_phantom" / "nifti"
REFERENCE = DATA / "ibsi_reference" / "ibsi_1_dig_phantom.csv"

pytestmark = pytest.mark.skipif(
    not (PHANTOM / "image" / "phantom.nii.gz").is_file() or not REFERENCE.is_file(),
    reason=f"IBSI phantom or reference absent under {DATA.resolve()} (see shared/data/README.md)",
)


@pytest.fixture(scope="module")
def comparison() -> pd.DataFrame:
    ours = extract_phantom_features(PHANTOM / "image" / "phantom.nii.gz", PHANTOM / "mask" / "mask.nii.gz")
    return compare_with_ibsi_reference(ours, read_ibsi_reference(REFERENCE))


def test_every_feature_without_a_documented_deviation_matches(comparison: pd.DataFrame) -> None:
    assert len(comparison) == len(IBSI_TAGS) >= 100
    should_match = comparison.loc[~comparison["ibsi_tag"].isin(KNOWN_DEVIATIONS)]
    off = should_match.loc[~should_match["match"], ["ibsi_tag", "ours", "reference"]]
    assert off.empty, f"features off the IBSI reference:\n{off}"
    # the families IBSI defines and pyradiomics implements are all represented
    for prefix in ("morph_", "stat_", "ih_", "cm_", "rlm_", "szm_", "ngt_", "ngl_"):
        assert (comparison["ibsi_tag"].str.startswith(prefix) & comparison["match"]).sum() >= 2, prefix
    summary = ibsi_summary(comparison)
    assert summary["n_unexplained"] == 0 and summary["n_within_tolerance"] >= 100


def test_known_deviations_are_exactly_the_documented_ones(comparison: pd.DataFrame) -> None:
    by_tag = comparison.set_index("ibsi_tag")
    # kurtosis: pyradiomics' value minus 3 is IBSI's excess kurtosis
    assert abs(by_tag.loc["stat_kurt", "ours"] - 3 - by_tag.loc["stat_kurt", "reference"]) < 5e-4
    # PCA axes: rescaled from N to N - 1 normalisation (74 voxels in the phantom mask) they match
    for tag in ("morph_pca_maj_axis", "morph_pca_min_axis", "morph_pca_least_axis"):
        rescaled = by_tag.loc[tag, "ours"] * math.sqrt(74 / 73)
        assert abs(rescaled - by_tag.loc[tag, "reference"]) <= by_tag.loc[tag, "tolerance"]
    mismatched = comparison.loc[~comparison["match"]]
    assert (mismatched["known_deviation"] != "").all()


def test_docs_table_is_current(comparison: pd.DataFrame) -> None:
    expected = render_ibsi_markdown(comparison, pyradiomics_version=version("pyradiomics"))
    page = ROOT / "docs" / "ibsi.md"
    assert page.read_text() == expected, "regenerate with: python pipelines/ibsi_check.py --docs docs/ibsi.md"


def test_reference_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"absent.csv"):
        read_ibsi_reference(tmp_path / "absent.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("value,tag\n1,stat_mean\n")
    with pytest.raises(ValidationError, match="columns"):
        read_ibsi_reference(wrong)
    with pytest.raises(ValidationError, match="feature not computed"):
        compare_with_ibsi_reference(pd.Series({"original_firstorder_Mean": 2.15}), read_ibsi_reference(REFERENCE))
