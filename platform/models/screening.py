r"""Biomarker and radiomic feature screening: univariate Cox models with Benjamini-Hochberg FDR.

For each feature :math:`x_j` (standardised to mean 0, SD 1 over the patients) a Cox model
:math:`h(t \mid x_j) = h_0(t)\exp(\beta_j x_j)` is fitted with lifelines' ``CoxPHFitter``;
the table reports the hazard ratio per SD :math:`e^{\beta_j}`, its 95 % Wald CI
:math:`e^{\beta_j \pm 1.96\,SE}` and the Wald p-value :math:`2\,\Phi(-|\beta_j/SE|)`
(the values of lifelines' ``summary``). The q-values control the false discovery rate over all screened features
(Benjamini and Hochberg, JRSS B 1995;57:289-300):

.. math::

    q_{(i)} = \min_{k \ge i} \min\left(1, \frac{m}{k} p_{(k)}\right)

computed by ``statsmodels.stats.multitest.multipletests(method="fdr_bh")`` when statsmodels
is installed, else by :func:`scipy.stats.false_discovery_control`.

Screening is descriptive and uses every patient: it ranks candidates for future studies and
is *never* used to choose the features of a validated model (that selection happens inside
each training fold).
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sabrkit.errors import ModelInputError, format_problem
from sabrkit.models.dataset import SurvivalDataset

__all__ = ["univariate_cox_screen", "benjamini_hochberg"]

logger = logging.getLogger(__name__)

_Z95 = 1.959963984540054


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (NaN p-values stay NaN and do not count in m)."""
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        return q
    if importlib.util.find_spec("statsmodels") is not None:
        from statsmodels.stats.multitest import multipletests

        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    else:
        from scipy.stats import false_discovery_control

        q[ok] = false_discovery_control(p[ok], method="bh")
    return q


def univariate_cox_screen(
    dataset: SurvivalDataset, blocks: Sequence[str] = ("biomarker", "radiomic"), fdr: float = 0.10
) -> pd.DataFrame:
    """Univariate Cox model per feature of ``blocks``, with BH q-values over all of them.

    Parameters
    ----------
    dataset : SurvivalDataset
    blocks : sequence of str
        Feature blocks to screen (those the data set lacks are skipped with a log line).
    fdr : float, default 0.10
        Level at which ``significant`` is flagged.

    Returns
    -------
    pandas.DataFrame
        ``block, feature, n, hazard_ratio, ci_low, ci_high, log2_hr, p_value, q_value,
        significant, note``, sorted by p-value. Constant features and failed fits have NaN
        and a note.
    """
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError
    from scipy.stats import norm

    present = [b for b in blocks if b in dataset.blocks]
    for block in set(blocks) - set(present):
        logger.info("screening: block %r not in the data set, skipped", block)
    if not present:
        raise ModelInputError(
            format_problem(
                f"blocks {list(blocks)}; the data set holds {sorted(dataset.blocks)}",
                "screening needs at least one of the requested blocks",
                "assemble the data set with the radiomic or biomarker table",
            )
        )
    time, event = dataset.y["time"].astype(float), dataset.y["event"].astype(int)
    rows = []
    for block in present:
        for feature in dataset.blocks[block]:
            values = dataset.X[feature].to_numpy(dtype=float)
            ok = np.isfinite(values)
            row = {
                "block": block,
                "feature": feature,
                "n": int(ok.sum()),
                "hazard_ratio": np.nan,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "p_value": np.nan,
                "note": "",
            }
            sd = values[ok].std(ddof=1) if ok.sum() > 1 else 0.0
            if sd <= 0 or event[ok].sum() < 2:
                row["note"] = "constant feature or fewer than 2 events"
                rows.append(row)
                continue
            frame = pd.DataFrame(
                {"x": (values[ok] - values[ok].mean()) / sd, "time": time[ok], "event": event[ok]}
            )
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fitter = CoxPHFitter().fit(frame, "time", "event")
                beta, se = float(fitter.params_["x"]), float(fitter.standard_errors_["x"])
                row.update(
                    hazard_ratio=float(np.exp(beta)),
                    ci_low=float(np.exp(beta - _Z95 * se)),
                    ci_high=float(np.exp(beta + _Z95 * se)),
                    p_value=float(2 * norm.sf(abs(beta / se))),
                )
            except (ConvergenceError, ValueError, np.linalg.LinAlgError) as exc:
                row["note"] = f"fit failed: {exc}"
            rows.append(row)
    table = pd.DataFrame(rows)
    table["log2_hr"] = np.log2(table["hazard_ratio"])
    table["q_value"] = benjamini_hochberg(table["p_value"].to_numpy())
    table["significant"] = table["q_value"] <= fdr
    columns = [
        "block",
        "feature",
        "n",
        "hazard_ratio",
        "ci_low",
        "ci_high",
        "log2_hr",
        "p_value",
        "q_value",
        "significant",
        "note",
    ]
    return table[columns].sort_values("p_value", ignore_index=True, na_position="last")
