r"""Paired comparison of a model with the clinical-only model on the same folds.

Any radiomic (deep, biomarker) model is validated beside the clinical-only model on the
*same* train/test splits (same patients, same ``random_state`` and strata), so each fold gives
a paired difference :math:`\Delta_f = m_f^{model} - m_f^{clinical}`. Per repeat the fold
differences are averaged; the summary reports the mean, SD and 2.5-97.5 percentile interval of
the repeat differences and the share of repeats in which the model was better. For the
integrated Brier score lower is better, so ``ibs`` differences are reported as
``clinical - model`` (positive = the model is better, as for the other metrics).

The interval describes how the difference varies over re-splits of 60 patients; it is not a
test. A model that adds nothing to the clinical covariates shows a difference around 0.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sabrkit.errors import ModelInputError, format_problem
from sabrkit.models.validation import CVResult

__all__ = ["PairedComparison", "paired_cv_comparison", "COMPARED_METRICS"]

logger = logging.getLogger(__name__)

COMPARED_METRICS: tuple[str, ...] = ("harrell_c", "uno_c", "auc_12", "auc_24", "ibs")
_LOWER_IS_BETTER = frozenset({"ibs"})


@dataclass(frozen=True)
class PairedComparison:
    """Fold-paired differences ``model - reference`` (``reference - model`` for the IBS).

    Attributes
    ----------
    folds : pandas.DataFrame
        ``repeat, fold, <metric>_model, <metric>_reference, <metric>_diff`` per metric.
    repeats : pandas.DataFrame
        ``repeat`` and the mean ``<metric>_diff`` of its folds.
    summary : dict
        ``delta_<metric>_mean``, ``_sd``, ``_p025``, ``_p975`` over repeats and
        ``delta_<metric>_share_better`` (share of repeats with a difference > 0).
    reference : str
        Label of the reference model (e.g. ``"clinical coxph"``).
    """

    folds: pd.DataFrame
    repeats: pd.DataFrame
    summary: dict[str, float]
    reference: str


def paired_cv_comparison(
    model: CVResult,
    reference: CVResult,
    reference_label: str = "clinical",
    metrics: Sequence[str] = COMPARED_METRICS,
) -> PairedComparison:
    """Pair two cross-validations fold by fold and summarise the differences over repeats.

    Raises
    ------
    ModelInputError
        The two results were not run on the same splits (fold test sets differ).
    """
    keys = ["repeat", "fold"]
    left = model.folds.set_index(keys)
    right = reference.folds.set_index(keys)
    if not left.index.equals(right.index) or not (left["test_ids_sha1"] == right["test_ids_sha1"]).all():
        raise ModelInputError(
            format_problem(
                "the model and the reference were validated on different folds",
                "paired differences need the same patients in every test fold",
                "run both with the same data set rows, n_splits, n_repeats, random_state and strata",
            )
        )
    table = pd.DataFrame(index=left.index)
    present = [m for m in metrics if m in left.columns and m in right.columns]
    for metric in present:
        a, b = left[metric].astype(float), right[metric].astype(float)
        table[f"{metric}_model"], table[f"{metric}_reference"] = a, b
        table[f"{metric}_diff"] = (b - a) if metric in _LOWER_IS_BETTER else (a - b)
    table = table.reset_index()
    diff_columns = [f"{m}_diff" for m in present]
    repeats = table.groupby("repeat", as_index=False)[diff_columns].mean()
    summary: dict[str, float] = {}
    for metric in present:
        values = repeats[f"{metric}_diff"].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        key = f"delta_{metric}"
        if finite.size == 0:
            summary.update(
                {f"{key}_{s}": float("nan") for s in ("mean", "sd", "p025", "p975", "share_better")}
            )
            continue
        low, high = np.percentile(finite, [2.5, 97.5])
        summary.update(
            {
                f"{key}_mean": float(finite.mean()),
                f"{key}_sd": float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
                f"{key}_p025": float(low),
                f"{key}_p975": float(high),
                f"{key}_share_better": float((finite > 0).mean()),
            }
        )
    return PairedComparison(folds=table, repeats=repeats, summary=summary, reference=reference_label)
