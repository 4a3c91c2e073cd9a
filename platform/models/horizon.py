r"""A classifier of "progression by a fixed horizon" that follows scikit-survival's contract.

:class:`FixedHorizonClassifier` turns the survival outcome into the label
:math:`Y_i = 1(T_i \le h, \delta_i = 1)` (progressed or died by the horizon :math:`h`, e.g.
12 months; :math:`Y_i = 0` means progression-free at :math:`h`) and fits a scikit-learn
classifier inside the pipeline, so it is refitted in every fold like any other step.

Patients censored before the horizon
------------------------------------
Their label is unknown: they are *never* counted as progression-free. With
``censoring="ipcw"`` (default) they are left out and the others are weighted by the inverse
probability of remaining uncensored, estimated by Kaplan-Meier on the training fold's
censoring times (:class:`sksurv.nonparametric.CensoringDistributionEstimator`):

.. math::

    w_i = \begin{cases} 1/\hat G(T_i) & T_i \le h,\ \delta_i = 1 \\
                        1/\hat G(h)   & T_i > h \end{cases}

which removes the bias of dropping them when censoring is independent of the outcome
(weights are normalised to mean 1 and :math:`\hat G` is floored at 0.05). With
``censoring="exclude"`` they are simply left out (complete-case; biased towards early events
when follow-up is short). The number left out is stored in ``n_censored_before_horizon_``.

``predict`` returns :math:`\hat P(Y = 1 \mid x)`, the risk of progression by the horizon
(higher = worse, as for the survival models), and ``score`` is Harrell's C of that risk, so
cross-validation, grid search and MLflow logging treat it like the survival pipelines.
"""

from __future__ import annotations

import logging
import numbers
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from sabrkit.errors import ModelInputError, format_problem

__all__ = ["FixedHorizonClassifier", "horizon_labels", "MIN_CENSORING_SURVIVAL"]

logger = logging.getLogger(__name__)

MIN_CENSORING_SURVIVAL = 0.05


def horizon_labels(event: np.ndarray, time: np.ndarray, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """``(label, known)``: progression by ``horizon`` and whether that is known (not censored before it)."""
    event = np.asarray(event, dtype=bool)
    time = np.asarray(time, dtype=float)
    label = event & (time <= horizon)
    known = label | (time > horizon)
    return label, known


class FixedHorizonClassifier(BaseEstimator):
    """Classify progression by ``horizon_months`` from a survival outcome (see the module docstring).

    Parameters
    ----------
    horizon_months : float, default 12.0
    censoring : {"ipcw", "exclude"}, default "ipcw"
        How patients censored before the horizon are handled.
    classifier : scikit-learn classifier, optional
        Fitted with ``sample_weight``; default ``LogisticRegression(C=0.1, max_iter=5000)``
        (L2-penalised, as 60 patients support few free parameters).

    Attributes
    ----------
    classifier_ : the fitted classifier
    n_censored_before_horizon_ : int
    n_progressed_, n_progression_free_ : int
    coef_ : ndarray, only for linear classifiers
    """

    _parameter_constraints: ClassVar[dict] = {
        "horizon_months": [Interval(numbers.Real, 0.0, None, closed="neither")],
        "censoring": [StrOptions({"ipcw", "exclude"})],
        "classifier": [HasMethods(["fit", "predict_proba"]), None],
    }

    def __init__(self, horizon_months: float = 12.0, censoring: str = "ipcw", classifier=None):
        self.horizon_months = horizon_months
        self.censoring = censoring
        self.classifier = classifier

    def _weights(self, y: np.ndarray, event: np.ndarray, time: np.ndarray, label: np.ndarray) -> np.ndarray:
        if self.censoring == "exclude":
            return np.ones(len(time))
        from sksurv.nonparametric import CensoringDistributionEstimator

        censoring = CensoringDistributionEstimator().fit(y)
        at = np.where(label, time, float(self.horizon_months))
        at = np.minimum(at, censoring.unique_time_[-1])
        g = np.clip(censoring.predict_proba(at), MIN_CENSORING_SURVIVAL, 1.0)
        return 1.0 / g

    def fit(self, X, y) -> FixedHorizonClassifier:
        """Build the horizon label from ``y`` and fit the classifier on patients whose label is known."""
        from sklearn.linear_model import LogisticRegression
        from sksurv.util import check_array_survival

        self._validate_params()
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        event, time = check_array_survival(X, y)
        label, known = horizon_labels(event, time, float(self.horizon_months))
        if label[known].all() or not label[known].any():
            raise ModelInputError(
                format_problem(
                    f"{int(label[known].sum())} progressed and {int((~label[known]).sum())} progression-free "
                    f"patients at {self.horizon_months} months",
                    "the horizon classifier needs both outcomes among patients with a known label",
                    "choose another horizon or a survival model",
                )
            )
        weights = self._weights(y, event, time, label)[known]
        weights = weights / weights.mean()
        base = self.classifier if self.classifier is not None else LogisticRegression(C=0.1, max_iter=5000)
        self.classifier_ = clone(base).fit(X[known], label[known].astype(int), sample_weight=weights)
        self.n_censored_before_horizon_ = int((~known).sum())
        self.n_progressed_ = int(label[known].sum())
        self.n_progression_free_ = int((~label[known]).sum())
        logger.debug(
            "horizon %s months: %d progressed, %d progression-free, %d censored before (%s)",
            self.horizon_months,
            self.n_progressed_,
            self.n_progression_free_,
            self.n_censored_before_horizon_,
            self.censoring,
        )
        return self

    def predict_proba(self, X) -> np.ndarray:
        """``[P(progression-free at h), P(progressed by h)]`` per row."""
        check_is_fitted(self, "classifier_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        proba = self.classifier_.predict_proba(X)
        column = list(self.classifier_.classes_).index(1)
        progressed = proba[:, column]
        return np.column_stack([1.0 - progressed, progressed])

    def predict(self, X) -> np.ndarray:
        """Risk of progression by the horizon (higher = worse)."""
        return self.predict_proba(X)[:, 1]

    def score(self, X, y) -> float:
        """Harrell's C of :meth:`predict` against the survival outcome."""
        from sksurv.metrics import concordance_index_censored
        from sksurv.util import check_array_survival

        event, time = check_array_survival(X, y)
        return float(concordance_index_censored(event, time, self.predict(X))[0])

    @property
    def coef_(self) -> np.ndarray:
        """Coefficients (log odds of progression per unit of each input) of a linear classifier."""
        check_is_fitted(self, "classifier_")
        coef = getattr(self.classifier_, "coef_", None)
        if coef is None:
            raise AttributeError("the horizon classifier has no coef_ (not a linear classifier)")
        return np.asarray(coef, dtype=float).ravel()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
