"""Figures for the study report: matplotlib with the non-interactive Agg backend, PNG bytes out.

Every figure gets a fixed layout when it is created: margins in inches
(:func:`new_figure`, :func:`set_margins`), sized from the text they must hold
(:func:`text_width`, measured with the Agg renderer's font metrics, nothing drawn). ``savefig`` then
draws each figure exactly once. ``bbox_inches="tight"`` or a layout engine (constrained/tight)
draws it a second time to measure it first, which made figure drawing about half of a study
report's build time; :func:`overflow` (for tests) checks that nothing drawn falls off the canvas.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Iterable
from typing import Any

__all__ = [
    "new_figure",
    "set_margins",
    "text_width",
    "line_height",
    "figure_png",
    "png_data_uri",
    "overflow",
    "THERAPY_COLOURS",
    "DPI",
]

#: Resolution of the report's PNGs (dots per inch).
DPI = 110

#: One colour per systemic-therapy group, fixed so every figure uses the same.
THERAPY_COLOURS = {
    "SABR alone": "#1b9e77",
    "SABR + TKI": "#d95f02",
    "SABR + ICI": "#7570b3",
    "SABR + TKI + ICI": "#e7298a",
}


def set_margins(
    figure: Any,
    *,
    left: float = 0.8,
    bottom: float = 0.6,
    right: float = 0.25,
    top: float = 0.4,
    **kwargs: Any,
) -> None:
    """Fix the subplot area by margins in inches (``kwargs``: ``wspace``/``hspace`` as fractions)."""
    width, height = figure.get_size_inches()
    figure.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height, **kwargs
    )


def new_figure(
    width: float = 7.0,
    height: float = 4.5,
    *,
    left: float = 0.8,
    bottom: float = 0.6,
    right: float = 0.25,
    top: float = 0.4,
) -> tuple[Any, Any]:
    """A figure (Agg backend, no display needed) and its axes, with fixed margins in inches.

    The defaults hold y tick labels and a y label (left), x tick labels and an x label (bottom)
    and a one-line title (top) at matplotlib's default font sizes.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    set_margins(figure, left=left, bottom=bottom, right=right, top=top)
    return figure, figure.subplots()


@functools.cache
def _renderer() -> Any:
    from matplotlib.backends.backend_agg import RendererAgg

    return RendererAgg(1, 1, DPI)  # at the PNGs' resolution: glyph hinting changes widths with it


def text_width(texts: Iterable[str], fontsize: float) -> float:
    """Width in inches of the widest line among ``texts`` at ``fontsize`` points (default font)."""
    from matplotlib.font_manager import FontProperties

    prop = FontProperties(size=fontsize)
    renderer = _renderer()
    widest = 0.0
    for text in texts:
        for line in str(text).split("\n"):
            if line:
                width, _, _ = renderer.get_text_width_height_descent(line, prop, ismath=False)
                widest = max(widest, width)
    return widest / DPI


def line_height(fontsize: float, linespacing: float = 1.2) -> float:
    """Height in inches of one line of text at ``fontsize`` points (matplotlib's line spacing)."""
    return fontsize * linespacing / 72.0


def figure_png(figure: Any) -> bytes:
    """The figure as PNG bytes, drawn once with its fixed layout (no tight bbox, no layout engine)."""
    if figure.get_layout_engine() is not None:  # would draw the figure twice; the layout is fixed already
        figure.set_layout_engine("none")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def overflow(figure: Any) -> float:
    """How far (inches) anything drawn reaches past the canvas edges; 0 when it all fits.

    Draws the figure (slow): for tests of the fixed layouts, not for building reports.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    renderer = canvas.get_renderer()
    figure.draw(renderer)
    box = figure.get_tightbbox(renderer)
    width, height = figure.get_size_inches()
    return float(max(0.0, -box.x0, -box.y0, box.x1 - width, box.y1 - height))


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for embedding a PNG in a self-contained HTML page."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
