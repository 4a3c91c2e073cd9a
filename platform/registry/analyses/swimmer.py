"""Swimmer plot: one bar per patient from the first SABR fraction to the end of follow-up.

Each bar spans the patient's follow-up (to death or last contact), coloured by the systemic
therapy group; markers show SABR courses (triangles), progression (red dot: local, orange:
distant, purple: both), death (black cross) and ongoing follow-up (arrow).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from sabrkit.registry.endpoints import DAYS_PER_MONTH

__all__ = ["plot_swimmer"]

_PROGRESSION_COLOURS = {"local": "#d7191c", "distant": "#fdae61", "both": "#7b3294"}


def plot_swimmer(adsl: pd.DataFrame, courses: pd.DataFrame, *, max_patients: int = 120) -> Any:
    """Draw the swimmer plot of ``adsl`` (ADSL table) with course starts from ``courses``.

    ``courses`` has ``study_id`` and ``start_date``. Above ``max_patients`` patients only the
    longest-followed are drawn (the title says so).
    """
    from sabrkit.registry.analyses.plotting import THERAPY_COLOURS, new_figure, text_width

    shown = adsl.sort_values("OSMO", ascending=True).tail(max_patients).reset_index(drop=True)
    left = text_width(shown["USUBJID"].astype(str), 5) + 0.15  # fixed layout: the widest ID sets the margin
    figure, ax = new_figure(
        left + 7.8 + 0.2, max(4.0, 0.14 * len(shown) + 1.5), left=left, bottom=0.55, top=0.35, right=0.2
    )
    # One artist per kind of mark (bars, course starts, progression per type, deaths, arrows) rather
    # than one per patient: the same picture with a few hundred fewer artists to build and draw.
    ys = shown.index.to_numpy()
    ax.barh(
        ys,
        shown["OSMO"],
        color=[THERAPY_COLOURS.get(t, "#999999") for t in shown["TRT01A"]],
        height=0.7,
        alpha=0.8,
    )
    starts = courses.merge(
        shown[["USUBJID", "TRTSDT"]].rename_axis("y").reset_index(), left_on="study_id", right_on="USUBJID"
    )
    if len(starts):
        ax.plot(
            (starts["start_date"] - starts["TRTSDT"]).dt.days / DAYS_PER_MONTH,
            starts["y"],
            ">",
            color="black",
            ms=3,
            ls="none",
        )
    progressed = shown[shown["PROGDT"].notna()]
    for kind, group in progressed.groupby(
        progressed["PROGTYPE"].map(lambda v: v if v in _PROGRESSION_COLOURS else "")
    ):
        ax.plot(
            (group["PROGDT"] - group["TRTSDT"]).dt.days / DAYS_PER_MONTH,
            group.index,
            "o",
            color=_PROGRESSION_COLOURS.get(kind, "red"),
            ms=4,
            ls="none",
        )
    dead = shown[shown["DTHFL"].astype(bool)]
    if len(dead):
        ax.plot(dead["OSMO"], dead.index, "x", color="black", ms=5, ls="none")
    ongoing = shown[~shown["DTHFL"].astype(bool) & (shown["EOSSTT"] == "ongoing")]
    for y, months in zip(ongoing.index, ongoing["OSMO"], strict=True):
        ax.annotate("", xy=(months + 0.8, y), xytext=(months, y), arrowprops={"arrowstyle": "->", "lw": 0.6})
    from matplotlib.patches import Patch

    handles: list[Any] = [Patch(color=c, label=label) for label, c in THERAPY_COLOURS.items()]
    handles += [
        ax.plot([], [], "o", color=c, label=f"progression: {kind}")[0]
        for kind, c in _PROGRESSION_COLOURS.items()
    ]
    handles += [
        ax.plot([], [], "x", color="black", label="death")[0],
        ax.plot([], [], ">", color="black", label="SABR course")[0],
    ]
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels(shown["USUBJID"], fontsize=5)
    suffix = "" if len(shown) == len(adsl) else f" ({len(shown)} longest of {len(adsl)})"
    ax.set(
        xlabel="Months from first SABR fraction", title=f"Patient timelines{suffix}", ylim=(-1, len(shown))
    )
    return figure
