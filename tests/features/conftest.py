"""Reference data for the feature tests: the repo's own copies, and the CT phantom kept outside.

``tests/data`` holds the IBSI digital phantom, the IBSI reference values and pyradiomics' cases
and baselines (each with its licence). The IBSI CT phantom (CC BY-NC 3.0) is read from
``$SABRKIT_IBSI_DATA/ibsi_ct_phantom`` or ``../shared/data/ibsi_ct_phantom``; tests needing it
skip with the reason when it is absent, and fail instead when ``SABRKIT_REQUIRE_REFERENCE_DATA=1``
(``.ci/run`` sets it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sabrkit.settings import shared_data_dir

REPO_DATA = Path(__file__).resolve().parents[1] / "data"
IBSI_REFERENCE = REPO_DATA / "ibsi_reference"
REQUIRE_ENV = "SABRKIT_REQUIRE_REFERENCE_DATA"


def ct_phantom_data_dir() -> Path:
    """Folder expected to hold ``ibsi_ct_phantom/``."""
    return shared_data_dir()


def missing_reference_data(reason: str) -> None:
    """Skip with ``reason``, or fail when ``SABRKIT_REQUIRE_REFERENCE_DATA=1``."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 requires it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ibsi_ct_data() -> Path:
    """Folder holding ``ibsi_ct_phantom/nifti`` (skips or fails when absent, see the module docstring)."""
    folder = ct_phantom_data_dir()
    if not (folder / "ibsi_ct_phantom" / "nifti" / "image" / "phantom.nii.gz").is_file():
        missing_reference_data(
            f"IBSI CT phantom (CC BY-NC 3.0, not in the repo) absent under {folder}; set SABRKIT_IBSI_DATA"
        )
    return folder
