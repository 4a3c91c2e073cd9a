"""Every `sabrkit` command answers --help; `sabrkit info` reports versions and locations."""

from __future__ import annotations

import typer.main
from typer.testing import CliRunner

from sabrkit.cli import app

runner = CliRunner()


def _all_command_paths(command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    if hasattr(command, "commands"):  # a group (Typer's own click-like classes)
        for name, sub in command.commands.items():
            paths.extend(_all_command_paths(sub, (*prefix, name)))
    return paths


def test_every_command_has_help():
    root = typer.main.get_command(app)
    paths = _all_command_paths(root)
    assert len(paths) > 8
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_info_reports_versions_and_locations(monkeypatch, tmp_path):
    monkeypatch.setenv("SABRKIT_DATABASE_URL", "postgresql+psycopg://lab:secret@db.example/sabr")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    result = runner.invoke(app, ["info"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in ("pyradiomics", "scikit-survival", "mlflow", "monai", "torch"):
        assert name in result.output
    assert "secret" not in result.output  # the password is hidden
    assert "db.example/sabr" in result.output
    assert f"{tmp_path}/mlflow.db" in result.output
