"""Registry of survival model pipelines, filled by :func:`register_estimator`.

Each builder returns an unfitted scikit-learn :class:`~sklearn.pipeline.Pipeline` whose last
step is a scikit-survival estimator, so ``predict`` returns a risk score (higher = worse),
``score`` is Harrell's C, and ``clone``, ``get_params``/``set_params`` and ``GridSearchCV``
work (step parameters are addressed as ``<step>__<param>``, e.g. ``coxnet__l1_ratio``).
Every data-dependent step (imputation, variance and correlation filters, scaling, univariate
selection) is a pipeline step, so cross-validation refits it in each training fold.

Add a model::

    @register_estimator("my_model")
    def _build_my_model(alpha: float = 1.0) -> Pipeline:
        return Pipeline([...])
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sklearn.pipeline import Pipeline

from sabrkit.errors import ConfigError, format_problem

__all__ = ["register_estimator", "build_pipeline", "available_estimators", "PipelineBuilder"]

logger = logging.getLogger(__name__)

PipelineBuilder = Callable[..., Pipeline]
_REGISTRY: dict[str, PipelineBuilder] = {}


def register_estimator(name: str) -> Callable[[PipelineBuilder], PipelineBuilder]:
    """Decorator: register ``builder`` under ``name`` for :func:`build_pipeline`.

    Raises
    ------
    ConfigError
        ``name`` is already registered.
    """

    def decorate(builder: PipelineBuilder) -> PipelineBuilder:
        if name in _REGISTRY:
            raise ConfigError(
                format_problem(
                    f"estimator name {name!r} is already registered by {_REGISTRY[name].__qualname__}",
                    "estimator names are unique",
                    "choose another name",
                )
            )
        _REGISTRY[name] = builder
        return builder

    return decorate


def available_estimators() -> tuple[str, ...]:
    """Names accepted by :func:`build_pipeline`, sorted."""
    return tuple(sorted(_REGISTRY))


def build_pipeline(name: str, **params: Any) -> Pipeline:
    """Build the unfitted pipeline registered as ``name`` with the builder's keyword ``params``.

    Raises
    ------
    ConfigError
        Unknown ``name`` or a parameter the builder does not take.
    """
    if name not in _REGISTRY:
        raise ConfigError(
            format_problem(
                f"estimator {name!r}",
                f"estimator must be one of {list(available_estimators())}",
                "use a registered name or register a builder with @register_estimator",
            )
        )
    try:
        return _REGISTRY[name](**params)
    except TypeError as exc:
        raise ConfigError(
            format_problem(
                f"parameters {sorted(params)} for estimator {name!r} ({exc})",
                "parameters must be keyword arguments of the builder",
                f"see help(sabrkit.models.estimators.{_REGISTRY[name].__name__})",
            )
        ) from exc


@register_estimator("coxnet")
def build_coxnet(
    alpha: float | None = 0.1,
    l1_ratio: float = 0.5,
    k: int | str = 10,
    correlation_threshold: float = 0.9,
    variance_threshold: float = 0.0,
    selection_method: str = "concordance",
    alpha_min_ratio: float | str = "auto",
    max_iter: int = 100_000,
) -> Pipeline:
    r"""Penalised Cox model for many (radiomic) features.

    Steps: ``impute`` (median) -> ``variance`` (drop near-constant) -> ``scale`` (z-score) ->
    ``decorrelate`` (:class:`~sabrkit.models.selection.CorrelationFilter`) -> ``select``
    (:class:`~sabrkit.models.selection.UnivariateSurvivalSelector`) -> ``coxnet``
    (:class:`sksurv.linear_model.CoxnetSurvivalAnalysis`, elastic net, baseline model fitted).

    The elastic-net Cox model minimises

    .. math::

        -\frac{1}{n}\,\ell(\beta) + \alpha\left(r \lVert\beta\rVert_1
        + \tfrac{1-r}{2}\lVert\beta\rVert_2^2\right), \quad r = \text{l1\_ratio}.

    Parameters
    ----------
    alpha : float or None, default 0.1
        Fixed penalty (``alphas=[alpha]``). None fits the whole path (``alpha_min_ratio``) and
        predicts with its smallest alpha - weakly penalised, rarely what 60 patients support.
    l1_ratio : float in (0, 1], default 0.5
    k : int or "all", default 10
        Features kept by univariate selection inside each training fold.
    correlation_threshold : float, default 0.9
    variance_threshold : float, default 0.0
    selection_method : {"concordance", "cox_score"}
    alpha_min_ratio : float or "auto"
        Only used when ``alpha`` is None.
    max_iter : int
    """
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    from sabrkit.models.selection import CorrelationFilter, UnivariateSurvivalSelector

    coxnet = CoxnetSurvivalAnalysis(
        l1_ratio=l1_ratio,
        alphas=None if alpha is None else [float(alpha)],
        alpha_min_ratio=alpha_min_ratio,
        fit_baseline_model=True,
        max_iter=max_iter,
    )
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("variance", VarianceThreshold(threshold=variance_threshold)),
            ("scale", StandardScaler()),
            ("decorrelate", CorrelationFilter(threshold=correlation_threshold)),
            ("select", UnivariateSurvivalSelector(k=k, method=selection_method)),
            ("coxnet", coxnet),
        ]
    )


@register_estimator("coxph")
def build_coxph(alpha: float = 0.01, ties: str = "breslow") -> Pipeline:
    r"""Cox proportional hazards model for a few (clinical) covariates, with a small ridge penalty.

    Steps: ``impute`` (median) -> ``variance`` (drop constant columns, e.g. an absent level) ->
    ``scale`` -> ``coxph`` (:class:`sksurv.linear_model.CoxPHSurvivalAnalysis`), which
    maximises :math:`\ell(\beta) - \tfrac{\alpha}{2}\lVert\beta\rVert_2^2`.

    Parameters
    ----------
    alpha : float, default 0.01
        Ridge penalty; it keeps the fit finite under separation in small cohorts. 0 gives the
        unpenalised Cox model.
    ties : {"breslow", "efron"}
    """
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("variance", VarianceThreshold(threshold=0.0)),
            ("scale", StandardScaler()),
            ("coxph", CoxPHSurvivalAnalysis(alpha=alpha, ties=ties)),
        ]
    )
