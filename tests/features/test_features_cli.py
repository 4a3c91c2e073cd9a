"""``sabrkit features ...`` commands, run in-process with Typer's CliRunner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sabrkit.cli.main import app

DATA = (
    Path(__file__).parents[1] / "data"
)  # the repo's copies of the IBSI digital phantom and reference values
runner = CliRunner()


def test_params_shows_mr_v1() -> None:
    result = runner.invoke(app, ["features", "params", "mr_v1"])
    assert result.exit_code == 0, result.output
    assert "mr-v1" in result.output and "binCount" in result.output


def test_extract_with_cache_then_icc_round(tmp_path: Path, write_case: Callable) -> None:
    rows = []
    for lesion_id in ("SABR-RCC-001-L1", "SABR-RCC-002-L1"):
        image, mask = write_case(lesion_id)
        rows.append((lesion_id, lesion_id[:12], image.name, mask.name))
    manifest = tmp_path / "images.csv"
    pd.DataFrame(rows, columns=["lesion_id", "study_id", "image_path", "mask_path"]).to_csv(
        manifest, index=False
    )
    args = ["features", "extract", str(manifest), "--out", str(tmp_path / "f.parquet"),
            "--cache-dir", str(tmp_path / "cache"), "--failures", str(tmp_path / "failures.csv")]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "0 from cache, 2 extracted" in first.output
    second = runner.invoke(app, args)
    assert "2 from cache, 0 extracted" in second.output
    assert pd.read_csv(tmp_path / "failures.csv").empty
    bad = runner.invoke(app, [*args, "--scheduler", "localhost:1"])
    assert bad.exit_code == 1 and "scheduler" in bad.output


def test_ibsi_command_writes_metrics(tmp_path: Path) -> None:
    args = ["features", "ibsi", "--config", "digital", "--data", str(DATA), "--metrics", str(tmp_path / "ibsi.json"),
            "--table", str(tmp_path / "ibsi.csv")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ibsi.json").read_text())["digital"]
    assert metrics["n_compared"] >= 100 and metrics["n_unexplained"] == 0
    table = pd.read_csv(tmp_path / "ibsi.csv")
    assert len(table) == metrics["n_compared"] and set(table["config"]) == {"digital"}
    kurtosis = table.set_index("ibsi_tag").loc["stat_kurt"]  # converted: pyradiomics kurtosis - 3
    assert kurtosis["ours"] == pytest.approx(kurtosis["pyradiomics"] - 3) and kurtosis["match"]
