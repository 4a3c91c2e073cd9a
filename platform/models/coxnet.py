"""CoxNet at one penalty, reached along a warm-start path (what ``build_coxnet`` fits).

scikit-survival's ``CoxnetSurvivalAnalysis(alphas=[alpha])`` starts coordinate descent from zero
at ``alpha``; on 60 patients with a small penalty that can overflow ("Numerical error, because
weights are too large", seen on a fold of the demo cohort at alpha 0.05). glmnet's remedy is the
path: solve at a large penalty, then use each solution as the start at the next smaller one.
The problem is convex, so the solution at ``alpha`` is the one a cold start would find.
"""

from __future__ import annotations

import re
import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval
from sksurv.linear_model import CoxnetSurvivalAnalysis

__all__ = ["UNPENALIZED_FALLBACK_FACTORS", "WarmStartCoxnet", "warm_start_alphas"]

# Penalty factors tried, in order, for the ``unpenalized`` columns when their exact (factor 0) fit
# overflows; 1.0 is the all-penalised model. See ``WarmStartCoxnet.fit``.
UNPENALIZED_FALLBACK_FACTORS = (1e-3, 1e-2, 1e-1, 1.0)


def warm_start_alphas(alpha: float, steps: int = 8, span: float = 32.0) -> list[float]:
    """``steps`` penalties from ``span x alpha`` down to ``alpha`` (geometric), largest first."""
    alpha = float(alpha)
    if steps < 2:
        return [alpha]
    return [alpha * span ** (1 - i / (steps - 1)) for i in range(steps - 1)] + [alpha]


class WarmStartCoxnet(CoxnetSurvivalAnalysis):
    """Elastic-net Cox model at one penalty ``alpha``, fitted along :func:`warm_start_alphas`.

    Predictions, ``coef_[:, -1]`` and the baseline model are those of ``alpha`` (the path's last
    penalty). ``alpha`` is a plain hyperparameter, so a grid tunes it
    (``coxnet__alpha: [0.02, 0.1, 0.3]``); the other parameters are scikit-survival's, plus
    ``unpenalized``: a regular expression of column names fitted with penalty factor 0 (glmnet's
    ``penalty.factor``; fit on a DataFrame); the other columns keep factor 1, so each penalised
    coefficient is penalised by exactly ``alpha`` (scikit-survival would rescale the factors to
    sum to the number of columns, raising the penalty by p/m - see ``_check_penalty_factor``).

    As the scikit-learn contract asks, ``fit`` changes no parameter: the path is handed to
    scikit-survival through its ``_check_alphas`` hook, and the penalties used are the fitted
    ``alphas_``.

    Separation of an unpenalised column: a dummy held by one training patient (one poor-risk
    patient in a CV fold of 48) has a likelihood so flat and a standardised value so large
    (about 7) that coordinate descent without a penalty overflows ("weights are too large"; seen
    in the image-off pipeline check, seed 3100002). Then ``fit`` refits with the unpenalised
    columns given the small factors :data:`UNPENALIZED_FALLBACK_FACTORS` in turn (a small
    penalty that keeps the fit finite, as the comparator's ``coxph`` ridge does), warns, and
    records the factor used in ``unpenalized_factor_`` (0.0 when the exact fit converged).
    """

    _parameter_constraints: ClassVar[dict] = {
        **{
            k: v
            for k, v in CoxnetSurvivalAnalysis._parameter_constraints.items()
            if k not in ("alphas", "n_alphas")
        },
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "path_steps": [Interval(Integral, 1, None, closed="left")],
        "path_span": [Interval(Real, 1, None, closed="left")],
        "unpenalized": [str, None],
    }

    def __init__(
        self,
        alpha: float = 0.1,
        *,
        l1_ratio: float = 0.5,
        path_steps: int = 8,
        path_span: float = 32.0,
        unpenalized: str | None = None,
        penalty_factor: Any = None,
        normalize: bool = False,
        copy_X: bool = True,
        tol: float = 1e-7,
        max_iter: int = 100_000,
        verbose: bool = False,
        fit_baseline_model: bool = True,
    ) -> None:
        super().__init__(
            l1_ratio=l1_ratio,
            penalty_factor=penalty_factor,
            normalize=normalize,
            copy_X=copy_X,
            tol=tol,
            max_iter=max_iter,
            verbose=verbose,
            fit_baseline_model=fit_baseline_model,
        )
        self.alpha = alpha
        self.path_steps = path_steps
        self.path_span = path_span
        self.unpenalized = unpenalized

    def fit(self, X: Any, y: Any) -> WarmStartCoxnet:
        """Fit the path down to ``alpha`` (see the class docstring); returns ``self``."""
        self.unpenalized_factor_ = 0.0
        if self.unpenalized is None:
            return super().fit(X, y)
        try:
            return super().fit(X, y)
        except ArithmeticError as error:
            first_error = error
        for factor in UNPENALIZED_FALLBACK_FACTORS:
            self.unpenalized_factor_ = factor
            try:
                super().fit(X, y)
            except ArithmeticError:
                continue
            warnings.warn(
                f"coxnet: the unpenalised fit of the columns matching {self.unpenalized!r} overflowed "
                f"({first_error}); refitted with penalty factor {factor:g} on them (alpha {self.alpha:g})",
                RuntimeWarning,
                stacklevel=2,
            )
            return self
        raise first_error

    def _check_penalty_factor(self, n_features: int) -> np.ndarray:
        # scikit-survival's hook for the penalty factors; ``unpenalized`` (a regular expression
        # of column names, matched with re.search against the names seen in fit) gives those
        # columns factor 0, the others exactly 1.
        #
        # Not rescaled, on purpose: scikit-survival's own hook rescales any penalty_factor to sum
        # to n_features ("the penalty factors are internally rescaled to sum to n_features, and
        # the alphas sequence will reflect this change", CoxnetSurvivalAnalysis docstring;
        # ``pf * n_features / pf.sum()`` in sksurv/linear_model/coxnet.py, as glmnet does with
        # penalty.factor). With m penalised columns out of p that multiplies every penalised
        # coefficient's penalty by p/m, so alpha 0.1 would silently act as 0.1 * p/m (about 0.23
        # in clinical_radiomic_coxnet). Factors 0/1 keep the documented meaning of alpha and
        # l1_ratio: each penalised coefficient gets alpha * (l1_ratio |b| + (1 - l1_ratio) b^2 / 2)
        # as in the all-penalised model, the unpenalised ones nothing - the same fit as
        # scikit-survival's with alphas scaled by m/p (tests/models/test_models_estimators.py
        # checks that and lifelines' per-column penalizer).
        if self.unpenalized is None:
            return super()._check_penalty_factor(n_features)
        names = getattr(self, "feature_names_in_", None)
        if names is None or self.penalty_factor is not None:
            raise ValueError(
                "unpenalized needs named input columns (a DataFrame) and no penalty_factor; "
                f"got names={names is not None}, penalty_factor={self.penalty_factor is not None}"
            )
        pattern = re.compile(self.unpenalized)
        unpenalized_factor = getattr(self, "unpenalized_factor_", 0.0)
        factor = np.array([unpenalized_factor if pattern.search(str(n)) else 1.0 for n in names])
        if not (factor == 1.0).any() and unpenalized_factor < 1.0:
            raise ValueError(
                f"unpenalized={self.unpenalized!r} matches every one of the {n_features} columns; "
                "at least one column must stay penalised (or use the coxph estimator)"
            )
        return factor

    def _check_alphas(self) -> tuple[np.ndarray, bool]:
        # scikit-survival's hook for the penalties to fit: our path, never a path of its own
        alphas = np.asarray(warm_start_alphas(self.alpha, self.path_steps, self.path_span), dtype=np.float64)
        return alphas, False
