"""A self-contained HTML page of one validated PFS model (``reports/validation.html``).

The page embeds its figures (base64 PNG) so it can be mailed or archived as one file. It says
plainly what a single-arm cohort can and cannot show.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["figure_to_data_uri", "render_validation_report"]


def figure_to_data_uri(figure: Any) -> str:
    """PNG data URI of a matplotlib figure, or of a PNG file given by its path."""
    if isinstance(figure, str | Path):
        return "data:image/png;base64," + base64.b64encode(Path(figure).read_bytes()).decode("ascii")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render_validation_report(
    validation: Mapping[str, Any],
    folds: pd.DataFrame,
    coefficients: pd.DataFrame | None,
    km_figure: Any,
    risk_groups: pd.DataFrame,
) -> str:
    """Render the validation report.

    Parameters
    ----------
    validation
        The content of ``metrics/validation.json``.
    folds
        One row per CV fold (``CVResult.folds``).
    coefficients
        Non-zero coefficients of the final model (feature, coefficient), or None.
    km_figure
        Kaplan-Meier figure of the out-of-fold risk groups.
    risk_groups
        Per-group counts and survival (``RiskGroupSurvival.groups``).
    """
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("sabrkit.models", "templates"), autoescape=select_autoescape())
    template = env.get_template("validation_report.html.j2")
    return template.render(
        v=validation,
        folds=folds.to_dict("records"),
        coefficients=None if coefficients is None else coefficients.to_dict("records"),
        km_uri=figure_to_data_uri(km_figure),
        risk_groups=risk_groups.reset_index().to_dict("records"),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _records(table: pd.DataFrame | None, limit: int | None = None) -> list[dict[str, Any]]:
    if table is None:
        return []
    return (table if limit is None else table.head(limit)).to_dict("records")


def _metric_names(metrics: Mapping[str, Any]) -> list[str]:
    """The report's metric rows: C, AUC and Brier at the experiment's horizons, IBS, calibration."""
    times = (metrics.get("validation") or {}).get("auc_times") or [12.0, 24.0]
    return [
        "harrell_c",
        "uno_c",
        *(f"auc_{float(t):g}" for t in times),
        *(f"brier_{float(t):g}" for t in times),
        "ibs",
        "ibs_km",
        "calibration_error_24",
    ]


def render_experiment_report(result: Any, figure_files: Mapping[str, Path] | None = None) -> str:
    """Render the self-contained HTML report of one experiment (:class:`~sabrkit.models.experiment.ExperimentResult`).

    Sections: the prognostic-groups note, cross-validated metrics with the clinical-only
    reference and their paired difference, optimism correction (if run), KM of the out-of-fold
    risk groups, calibration at 24 months, importance, the low-risk profile, risk by therapy
    class and the screening table.
    """
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("sabrkit.models", "templates"), autoescape=select_autoescape())
    env.filters["num"] = lambda value, fmt="%.3f": "-" if value is None or value != value else fmt % value
    template = env.get_template("experiment_report.html.j2")
    profile = result.tables.get("profile")
    if profile is not None:
        profile = profile.assign(abs_smd=profile["smd"].abs()).sort_values("abs_smd", ascending=False)
    importance = result.tables.get("importance")
    top = None
    if importance is not None:
        top = (
            importance.groupby("feature")
            .agg(importance=("importance", "mean"), median_rank=("rank", "median"))
            .sort_values("median_rank")
            .reset_index()
        )
    sources = {**result.figures, **(figure_files or {})}
    figures = {name: figure_to_data_uri(figure) for name, figure in sources.items()}
    return template.render(
        m=result.metrics,
        spec=result.spec,
        figures=figures,
        profile=_records(profile, 25),
        therapy=_records(result.tables.get("therapy")),
        screening=_records(result.tables.get("screening"), 20),
        importance=_records(top, 15),
        metric_names=_metric_names(result.metrics),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
