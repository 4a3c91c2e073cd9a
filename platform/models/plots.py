"""Figures of the model reports: calibration, therapy forest plot, volcano plot, importance.

Every function returns a :class:`matplotlib.figure.Figure` on an Agg canvas (no pyplot state,
no display needed); the caller saves or logs it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_calibration", "plot_therapy_forest", "plot_volcano", "plot_importance"]

logger = logging.getLogger(__name__)


def _figure(figsize: tuple[float, float]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def plot_calibration(table: pd.DataFrame, months: float = 24.0, title: str | None = None) -> Figure:
    """Observed (Kaplan-Meier, 95 % CI) versus mean predicted survival at ``months`` per risk group.

    ``table`` comes from :func:`sabrkit.models.metrics.calibration_at`.
    """
    fig = _figure((5.0, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect calibration")
    usable = table.dropna(subset=["observed"])
    if not usable.empty:
        err = np.vstack(
            [usable["observed"] - usable["observed_low"], usable["observed_high"] - usable["observed"]]
        )
        ax.errorbar(
            usable["predicted"],
            usable["observed"],
            yerr=np.clip(err, 0, None),
            fmt="o",
            color="#1f77b4",
            capsize=3,
            label="risk group (KM, 95% CI)",
        )
        for row in usable.itertuples():
            ax.annotate(
                f"n={row.n}",
                (row.predicted, row.observed),
                textcoords="offset points",
                xytext=(6, -10),
                fontsize=8,
            )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"predicted survival at {months:g} months (out-of-fold)")
    ax.set_ylabel(f"observed survival at {months:g} months")
    ax.set_title(title or f"Calibration at {months:g} months")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def plot_therapy_forest(table: pd.DataFrame, endpoint: str = "pfs", note: str | None = None) -> Figure:
    """Forest plot of the high- vs low-risk hazard ratio per therapy class (log scale).

    ``table`` comes from :func:`sabrkit.models.profile.risk_by_therapy`.
    """
    fig = _figure((7.0, 1.0 + 0.55 * len(table)))
    ax = fig.add_subplot(1, 1, 1)
    positions = np.arange(len(table))[::-1]
    for y, row in zip(positions, table.itertuples(), strict=True):
        label = f"{row.label} (n={row.n}, events={row.events})"
        ax.text(-0.02, y, label, transform=ax.get_yaxis_transform(), ha="right", va="center", fontsize=9)
        if np.isfinite(row.hazard_ratio):
            ax.plot([row.ci_low, row.ci_high], [y, y], color="black", linewidth=1.2)
            marker = "D" if row.therapy == "all" else "s"
            ax.plot([row.hazard_ratio], [y], marker=marker, color="#d62728", markersize=7)
        else:
            ax.text(1.0, y, "not estimable", ha="center", va="center", fontsize=8, color="grey")
    ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks([])
    ax.set_ylim(-0.8, len(table) - 0.2)
    ax.set_xlabel(f"hazard ratio of {endpoint.upper()}, high vs low out-of-fold risk group (95% CI)")
    ax.set_title("Model risk by therapy class (prognostic, not a treatment comparison)", fontsize=10)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, wrap=True)
    fig.subplots_adjust(left=0.42, bottom=0.28 if note else 0.2)
    return fig


def plot_volcano(table: pd.DataFrame, fdr: float = 0.10, label_top: int = 8) -> Figure:
    """Volcano plot of a screening table: log2 hazard ratio per SD vs -log10 p, FDR hits marked."""
    fig = _figure((6.5, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    usable = table.dropna(subset=["p_value", "log2_hr"])
    colours = {"radiomic": "#1f77b4", "biomarker": "#2ca02c", "deep": "#9467bd"}
    for block, part in usable.groupby("block"):
        hit = part["q_value"] <= fdr
        ax.scatter(
            part.loc[~hit, "log2_hr"],
            -np.log10(part.loc[~hit, "p_value"]),
            s=14,
            alpha=0.6,
            color=colours.get(block, "grey"),
            label=f"{block}",
        )
        ax.scatter(
            part.loc[hit, "log2_hr"],
            -np.log10(part.loc[hit, "p_value"]),
            s=30,
            edgecolor="black",
            color=colours.get(block, "grey"),
            label=f"{block}, q <= {fdr:g}",
        )
    for row in usable.nsmallest(label_top, "p_value").itertuples():
        ax.annotate(
            row.feature.replace("original_", ""),
            (row.log2_hr, -np.log10(row.p_value)),
            fontsize=6,
            textcoords="offset points",
            xytext=(3, 3),
        )
    ax.axvline(0.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("log2 hazard ratio per SD (univariate Cox)")
    ax.set_ylabel("-log10 p")
    ax.set_title("Univariate screening (descriptive; Benjamini-Hochberg FDR)")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_importance(ranks: pd.DataFrame, top: int = 15) -> Figure:
    """Mean permutation importance over repeats of the ``top`` features, with the repeat range."""
    summary = ranks.groupby("feature")["importance"].agg(["mean", "min", "max"]).nlargest(top, "mean")[::-1]
    fig = _figure((7.0, 1.0 + 0.3 * len(summary)))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(summary))
    ax.barh(y, summary["mean"], color="#1f77b4")
    ax.errorbar(
        summary["mean"],
        y,
        xerr=[summary["mean"] - summary["min"], summary["max"] - summary["mean"]],
        fmt="none",
        ecolor="black",
        capsize=2,
        linewidth=0.8,
    )
    ax.set_yticks(y, [name.replace("original_", "") for name in summary.index], fontsize=7)
    ax.set_xlabel("drop in Harrell's C when permuted (held-out folds; range over repeats)")
    ax.set_title("Permutation importance")
    fig.tight_layout()
    return fig


def plot_decision_curve(table: pd.DataFrame, months: float = 24.0) -> Figure:
    """Net benefit against the threshold risk at ``months``: the model(s), treat all, treat none."""
    fig = _figure((6.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    styles: dict[str, dict[str, Any]] = {
        "all": dict(color="grey", linestyle="--"),
        "none": dict(color="black", linestyle=":"),
    }
    for name, part in table.groupby("model", sort=False):
        ax.plot(
            part["threshold"],
            part["net_benefit"],
            label=f"treat {name}" if name in styles else str(name),
            **styles.get(str(name), {}),
        )
    finite = table["net_benefit"].to_numpy(dtype=float)
    top = float(np.nanmax(finite)) if np.isfinite(finite).any() else 0.1
    ax.set_ylim(-0.05, max(top, 0.01) * 1.1)
    ax.set_xlabel(f"threshold risk of the event by {months:g} months")
    ax.set_ylabel("net benefit")
    ax.set_title(f"Decision curve at {months:g} months (pooled out-of-fold predictions)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
