"""Feature filters that learn from the training fold only: correlation pruning, univariate and mRMR selection.

Both are scikit-learn selectors (``SelectorMixin``): ``__init__`` stores arguments, ``fit``
validates and learns the kept columns (attributes ending in ``_``), and ``transform``,
``get_support`` and ``get_feature_names_out`` come from the mixin. Put them inside a
``Pipeline`` so that cross-validation refits them per fold; selecting on all patients first
leaks the outcome into the validation (see the study README: C about 0.76 on pure noise).
"""

from __future__ import annotations

import logging
import numbers
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "CorrelationFilter",
    "UnivariateSurvivalSelector",
    "MRMRSurvivalSelector",
    "concordance_per_feature",
    "cox_score_z_per_feature",
]

logger = logging.getLogger(__name__)

_TIED_TOL = 1e-8
_PAIR_BLOCK_ELEMENTS = 20_000_000


def concordance_per_feature(X: np.ndarray, event: np.ndarray, time: np.ndarray) -> np.ndarray:
    r"""Harrell's concordance index of every column of ``X`` used as a risk score.

    .. math::

        C_j = \frac{\sum_{(a,b) \in P} \left[ 1(x_{aj} > x_{bj}) + \tfrac12 1(x_{aj} = x_{bj}) \right]}{|P|}

    where :math:`P` holds the comparable pairs: patient :math:`a` had the event and
    :math:`t_a < t_b`, or :math:`t_a = t_b` and :math:`b` was censored (the definition of
    :func:`sksurv.metrics.concordance_index_censored`, with the same tie tolerance 1e-8).
    Vectorised over features in blocks, so it costs one pass over the pairs.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
    event : ndarray of bool, shape (n_samples,)
    time : ndarray of float, shape (n_samples,)

    Returns
    -------
    ndarray, shape (n_features,)
        C per feature; 0.5 for every feature when there is no comparable pair.
    """
    X = np.asarray(X, dtype=float)
    event = np.asarray(event, dtype=bool)
    time = np.asarray(time, dtype=float)
    later = time[None, :] > time[:, None]
    same_time_censored = (time[None, :] == time[:, None]) & ~event[None, :]
    comparable = event[:, None] & (later | same_time_censored)
    first, second = np.nonzero(comparable)
    n_pairs = first.size
    if n_pairs == 0:
        return np.full(X.shape[1], 0.5)
    block = max(1, _PAIR_BLOCK_ELEMENTS // n_pairs)
    scores = np.empty(X.shape[1])
    for start in range(0, X.shape[1], block):
        cols = slice(start, start + block)
        diff = X[first, cols] - X[second, cols]
        ties = np.abs(diff) <= _TIED_TOL
        concordant = (diff > 0) & ~ties
        scores[cols] = (concordant.sum(axis=0) + 0.5 * ties.sum(axis=0)) / n_pairs
    return scores


def cox_score_z_per_feature(X: np.ndarray, event: np.ndarray, time: np.ndarray) -> np.ndarray:
    r"""Univariate Cox score-test z statistic of every column (Breslow ties), at :math:`\beta = 0`.

    .. math::

        U_j = \sum_{i:\delta_i=1} \left(x_{ij} - \bar x_{R(t_i) j}\right), \quad
        I_j = \sum_{i:\delta_i=1} \left(\overline{x^2}_{R(t_i) j} - \bar x_{R(t_i) j}^2\right), \quad
        z_j = U_j / \sqrt{I_j}

    with :math:`R(t)` the risk set :math:`\{k: t_k \ge t\}`. This is the log-rank-type score
    test; it needs no iterative fit, so it is cheap for thousands of features. Columns without
    variance in the risk sets get z = 0.
    """
    X = np.asarray(X, dtype=float)
    event = np.asarray(event, dtype=bool)
    time = np.asarray(time, dtype=float)
    order = np.argsort(-time, kind="mergesort")
    Xs, ts, es = X[order], time[order], event[order]
    cum_n = np.arange(1, len(ts) + 1, dtype=float)
    cum_x = np.cumsum(Xs, axis=0)
    cum_x2 = np.cumsum(Xs**2, axis=0)
    # risk set of row i (descending time) ends at the last row with the same time
    last_tied = np.searchsorted(-ts, -ts, side="right") - 1
    rows = np.nonzero(es)[0]
    at_risk = last_tied[rows]
    mean = cum_x[at_risk] / cum_n[at_risk, None]
    mean_sq = cum_x2[at_risk] / cum_n[at_risk, None]
    U = (Xs[rows] - mean).sum(axis=0)
    info = np.clip(mean_sq - mean**2, 0.0, None).sum(axis=0)
    z = np.zeros(X.shape[1])
    ok = info > 1e-12
    z[ok] = U[ok] / np.sqrt(info[ok])
    return z


class CorrelationFilter(SelectorMixin, BaseEstimator):
    """Drop one feature of every pair whose absolute Pearson correlation exceeds ``threshold``.

    Columns are visited in input order; a column is kept when its absolute correlation with
    every column kept before it is at most ``threshold``, so of a correlated pair the earlier
    column stays. Memory is O(n_samples x n_features), not O(n_features**2).

    Parameters
    ----------
    threshold : float in (0, 1], default 0.9
        Largest absolute correlation allowed between two kept features; 1.0 keeps everything.

    Attributes
    ----------
    support_ : ndarray of bool, shape (n_features_in_,)
        Kept columns.
    n_features_in_, feature_names_in_
        As in scikit-learn.
    """

    _parameter_constraints: ClassVar[dict] = {"threshold": [Interval(numbers.Real, 0.0, 1.0, closed="right")]}

    def __init__(self, threshold: float = 0.9):
        self.threshold = threshold

    def fit(self, X, y=None) -> CorrelationFilter:
        """Learn which columns to keep from ``X`` (``y`` is ignored)."""
        self._validate_params()
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        _n_samples, n_features = X.shape
        centred = X - X.mean(axis=0)
        norms = np.linalg.norm(centred, axis=0)
        unit = np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 0).T.copy()
        kept_rows = np.empty_like(unit)
        support = np.zeros(n_features, dtype=bool)
        n_kept = 0
        for j in range(n_features):
            if n_kept and np.max(np.abs(kept_rows[:n_kept] @ unit[j])) > self.threshold:
                continue
            kept_rows[n_kept] = unit[j]
            n_kept += 1
            support[j] = True
        self.support_ = support
        logger.debug(
            "CorrelationFilter(threshold=%s) keeps %d of %d features", self.threshold, n_kept, n_features
        )
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


class UnivariateSurvivalSelector(SelectorMixin, BaseEstimator):
    """Keep the ``k`` features most associated with survival, one feature at a time.

    Score per feature (``method``):

    - ``"concordance"``: :math:`|C_j - 0.5|` with Harrell's C of the feature as a risk score
      (:func:`concordance_per_feature`);
    - ``"cox_score"``: :math:`|z_j|`, the univariate Cox score-test statistic
      (:func:`cox_score_z_per_feature`).

    Ties in score keep the earlier column. The SelectKBest of survival outcomes: ``fit`` takes
    the scikit-survival structured ``y``.

    Parameters
    ----------
    k : int or "all", default 10
        Number of features to keep; more than available keeps all.
    method : {"concordance", "cox_score"}, default "concordance"

    Attributes
    ----------
    scores_ : ndarray, shape (n_features_in_,)
    support_ : ndarray of bool, shape (n_features_in_,)
    """

    _parameter_constraints: ClassVar[dict] = {
        "k": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"all"})],
        "method": [StrOptions({"concordance", "cox_score"})],
    }

    def __init__(self, k: int | str = 10, method: str = "concordance"):
        self.k = k
        self.method = method

    def fit(self, X, y) -> UnivariateSurvivalSelector:
        """Score every feature against the survival outcome ``y`` and keep the top ``k``."""
        from sksurv.util import check_array_survival

        self._validate_params()
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        event, time = check_array_survival(X, y)
        if self.method == "concordance":
            scores = np.abs(concordance_per_feature(X, event, time) - 0.5)
        else:
            scores = np.abs(cox_score_z_per_feature(X, event, time))
        n_features = X.shape[1]
        support = np.zeros(n_features, dtype=bool)
        if self.k == "all" or self.k >= n_features:
            support[:] = True
        else:
            support[np.argsort(-scores, kind="stable")[: self.k]] = True
        self.scores_ = scores
        self.support_ = support
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = False
        return tags


def _relevance(X: np.ndarray, event: np.ndarray, time: np.ndarray, method: str) -> np.ndarray:
    if method == "concordance":
        return np.abs(concordance_per_feature(X, event, time) - 0.5)
    return np.abs(cox_score_z_per_feature(X, event, time))


class MRMRSurvivalSelector(SelectorMixin, BaseEstimator):
    r"""Minimum-redundancy maximum-relevance selection of ``k`` features for a survival outcome.

    Greedy forward selection (Ding and Peng's mRMR, difference form): the first feature is the
    most relevant; each next one maximises

    .. math::

        \frac{r_j}{\max_l r_l} - \frac{1}{|S|} \sum_{s \in S} |\rho_{js}|

    with :math:`r_j` the univariate relevance (``method`` as in
    :class:`UnivariateSurvivalSelector`), :math:`S` the features chosen so far and
    :math:`\rho` Pearson's correlation in the training fold. Ties keep the earlier column.

    Parameters
    ----------
    k : int or "all", default 10
    method : {"cox_score", "concordance"}, default "cox_score"

    Attributes
    ----------
    relevance_ : ndarray, shape (n_features_in_,)
    order_ : ndarray of int
        Selected columns in the order they were chosen.
    support_ : ndarray of bool

    References
    ----------
    Ding C, Peng H. Minimum redundancy feature selection from microarray gene expression data.
    J Bioinform Comput Biol 2005;3(2):185-205.
    """

    _parameter_constraints: ClassVar[dict] = {
        "k": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"all"})],
        "method": [StrOptions({"concordance", "cox_score"})],
    }

    def __init__(self, k: int | str = 10, method: str = "cox_score"):
        self.k = k
        self.method = method

    def fit(self, X, y) -> MRMRSurvivalSelector:
        """Rank the features of the training fold by mRMR and keep the first ``k``."""
        from sksurv.util import check_array_survival

        self._validate_params()
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        event, time = check_array_survival(X, y)
        relevance = _relevance(X, event, time, self.method)
        n_features = X.shape[1]
        k = n_features if self.k == "all" else min(int(self.k), n_features)
        top = float(relevance.max()) if relevance.size and relevance.max() > 0 else 1.0
        centred = X - X.mean(axis=0)
        norms = np.linalg.norm(centred, axis=0)
        unit = np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 0)
        redundancy_sum = np.zeros(n_features)
        chosen: list[int] = []
        available = np.ones(n_features, dtype=bool)
        for step in range(k):
            score = relevance / top - (redundancy_sum / step if step else 0.0)
            score = np.where(available, score, -np.inf)
            best = int(np.argmax(score))
            chosen.append(best)
            available[best] = False
            redundancy_sum += np.abs(unit.T @ unit[:, best])
        support = np.zeros(n_features, dtype=bool)
        support[chosen] = True
        self.relevance_ = relevance
        self.order_ = np.asarray(chosen, dtype=int)
        self.support_ = support
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = False
        return tags
