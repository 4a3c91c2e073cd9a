r"""Which features drive a model: permutation importance on held-out folds, and model weights.

Permutation importance of feature :math:`j` on a test fold is the drop in Harrell's C when
column :math:`j` is shuffled (Breiman 2001; the algorithm of
:func:`sklearn.inspection.permutation_importance`):

.. math::

    I_j = C(\hat r(X)) - \frac{1}{R} \sum_{r=1}^{R} C(\hat r(X^{(j, r)}))

It is computed only for the features that reach the final estimator in that fold (after the
in-fold filters and selection, and with a non-zero coefficient for linear models); every
other feature has importance exactly 0 because the fitted pipeline ignores it. All permuted
copies are predicted in one call, which keeps forests fast. Per repeat, fold importances are
averaged (:func:`importance_ranks`).

SHAP values need the optional ``shap`` package, which this installation does not ship; the
platform reports permutation importance only and says so (:func:`shap_status`, logged as the
MLflow tag ``shap``).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from sabrkit.models.estimators import unwrap_search

__all__ = ["used_features", "fold_permutation_importance", "importance_ranks", "shap_status"]

logger = logging.getLogger(__name__)


def used_features(model: Any, feature_names: list[str]) -> list[str]:
    """Input features that reach the model of a fitted pipeline (non-zero weight if linear).

    The longest leading run of steps that keeps input feature names (imputation, filters,
    scaling, selection) decides which inputs are used; a later step that makes new features
    (PCA) uses only those. Features dropped in the fold cannot change the prediction.
    """
    model = unwrap_search(model)
    if not isinstance(model, Pipeline) or len(model) < 2:
        return list(feature_names)
    names = np.asarray(feature_names, dtype=object)
    for stop in range(len(model) - 1, 0, -1):
        try:
            reaching = [str(n) for n in model[:stop].get_feature_names_out(names)]
        except (AttributeError, ValueError, TypeError):
            continue
        if set(reaching) <= set(feature_names):
            break
    else:
        return list(feature_names)
    if stop < len(model) - 1:
        return reaching  # a projection follows: every kept input matters
    estimator = model[-1]
    try:
        coef = np.asarray(estimator.coef_, dtype=float)
    except (AttributeError, ValueError):
        return reaching
    if coef.ndim == 2:
        coef = coef[:, -1]
    if coef.shape[0] == len(reaching):
        return [name for name, c in zip(reaching, coef, strict=True) if c != 0]
    return reaching


def fold_permutation_importance(
    model: Any, X_test: pd.DataFrame, y_test: np.ndarray, rng: np.random.Generator, n_repeats: int = 5
) -> pd.Series:
    """Permutation importance (drop in Harrell's C) of every column of ``X_test`` on one test fold.

    Returns
    -------
    pandas.Series
        Indexed by feature name; 0 for features the fitted model does not use; NaN for all
        features when the fold has no comparable pair.
    """
    from sksurv.metrics import concordance_index_censored

    names = list(X_test.columns)
    out = pd.Series(0.0, index=names, dtype=float)
    event, time = y_test["event"].astype(bool), y_test["time"].astype(float)
    try:
        baseline = concordance_index_censored(event, time, np.asarray(model.predict(X_test), dtype=float))[0]
    except ValueError:
        return out * np.nan
    used = used_features(model, names)
    if not used:
        return out
    n = len(X_test)
    blocks = []
    for name in used:  # column by column, so text covariates (encoded inside the model) permute too
        for _ in range(n_repeats):
            permuted = X_test.copy()
            permuted[name] = X_test[name].to_numpy()[rng.permutation(n)]
            blocks.append(permuted)
    # keep the row IDs: steps such as ComBat look rows up by study_id
    stacked = pd.concat(blocks)
    risk = np.asarray(model.predict(stacked), dtype=float).reshape(len(used), n_repeats, n)
    for k, name in enumerate(used):
        scores = [concordance_index_censored(event, time, risk[k, r])[0] for r in range(n_repeats)]
        out[name] = float(baseline - np.mean(scores))
    return out


def importance_ranks(importance: pd.DataFrame) -> pd.DataFrame:
    """Per repeat: mean fold importance and rank of every feature (1 = most important).

    Parameters
    ----------
    importance : pandas.DataFrame
        ``repeat, fold, feature, importance`` (``CVResult.importance``).

    Returns
    -------
    pandas.DataFrame
        ``repeat, feature, importance, rank``, sorted by repeat and rank.
    """
    per_repeat = importance.groupby(["repeat", "feature"], as_index=False)["importance"].mean()
    per_repeat["rank"] = (
        per_repeat.groupby("repeat")["importance"].rank(ascending=False, method="first").astype(int)
    )
    return per_repeat.sort_values(["repeat", "rank"], ignore_index=True)


def shap_status() -> str:
    """Why SHAP values are not part of the report (permutation importance is)."""
    if importlib.util.find_spec("shap") is None:
        return "skipped: the optional package 'shap' is not installed"
    return "skipped: shap is installed but sabrkit does not compute SHAP values yet"
