"""A self-contained HTML page of one validated PFS model (``reports/validation.html``).

The page embeds its figures (base64 PNG) so it can be mailed or archived as one file. It says
plainly what a single-arm cohort can and cannot show.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["figure_to_data_uri", "render_validation_report"]


def figure_to_data_uri(figure: Any) -> str:
    """PNG data URI of a matplotlib figure."""
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
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
