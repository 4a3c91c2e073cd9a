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
    from sabrkit.registry.analyses.plotting import THERAPY_COLOURS, new_figure

    shown = adsl.sort_values("OSMO", ascending=True).tail(max_patients).reset_index(drop=True)
    figure, ax = new_figure(9.0, max(4.0, 0.14 * len(shown) + 1.5))
    starts = courses.groupby("study_id")["start_date"].apply(list)
    for y, row in shown.iterrows():
        colour = THERAPY_COLOURS.get(row["TRT01A"], "#999999")
        ax.barh(y, row["OSMO"], color=colour, height=0.7, alpha=0.8)
        for start in starts.get(row["USUBJID"], []):
            ax.plot((start - row["TRTSDT"]).days / DAYS_PER_MONTH, y, ">", color="black", ms=3)
        if pd.notna(row["PROGDT"]):
            ax.plot(
                (row["PROGDT"] - row["TRTSDT"]).days / DAYS_PER_MONTH,
                y,
                "o",
                color=_PROGRESSION_COLOURS.get(row["PROGTYPE"], "red"),
                ms=4,
            )
        if row["DTHFL"]:
            ax.plot(row["OSMO"], y, "x", color="black", ms=5)
        elif row["EOSSTT"] == "ongoing":
            ax.annotate(
                "",
                xy=(row["OSMO"] + 0.8, y),
                xytext=(row["OSMO"], y),
                arrowprops={"arrowstyle": "->", "lw": 0.6},
            )
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
