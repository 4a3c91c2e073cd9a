"""Figures for the study report: matplotlib with the non-interactive Agg backend, PNG bytes out."""

from __future__ import annotations

import base64
import io
from typing import Any

__all__ = ["new_figure", "figure_png", "png_data_uri", "THERAPY_COLOURS"]

#: One colour per systemic-therapy group, fixed so every figure uses the same.
THERAPY_COLOURS = {
    "SABR alone": "#1b9e77",
    "SABR + TKI": "#d95f02",
    "SABR + ICI": "#7570b3",
    "SABR + TKI + ICI": "#e7298a",
}


def new_figure(width: float = 7.0, height: float = 4.5) -> tuple[Any, Any]:
    """A figure and its axes drawn with the Agg backend (no display needed, thread-safe use)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110)
    return figure, figure.subplots()


def figure_png(figure: Any) -> bytes:
    """The figure as PNG bytes (tight layout)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for embedding a PNG in a self-contained HTML page."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
