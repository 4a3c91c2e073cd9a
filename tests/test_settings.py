"""Every setting is documented in the README (datasette's habit)."""

from __future__ import annotations

from pathlib import Path

from sabrkit.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_documented_in_readme():
    readme = (REPO_ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"SABRKIT_{name.upper()}" in readme, f"SABRKIT_{name.upper()} is not documented in README.md"


def test_unknown_setting_rejected():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(databse_url="sqlite://")
