"""The ``sabrkit`` command line (Typer)."""

from __future__ import annotations

from sabrkit.cli.main import app

__all__ = ["app"]
