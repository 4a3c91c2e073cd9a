"""Registry of survival model pipelines, filled by :func:`register_estimator`.

Each builder returns an unfitted scikit-learn :class:`~sklearn.pipeline.Pipeline` whose last
step follows scikit-survival's contract: ``predict`` returns a risk score (higher = worse),
``score`` is Harrell's C, and ``clone``, ``get_params``/``set_params`` and ``GridSearchCV``
work (step parameters are addressed as ``<step>__<param>``, e.g. ``coxnet__l1_ratio``).
Every data-dependent step (imputation, variance and correlation filters, scaling, ICC filter,
ComBat, univariate or mRMR selection) is a pipeline step, so cross-validation refits it in
each training fold.

=====================  ============================================  ==========================
name                   final step                                    default preprocessing
=====================  ============================================  ==========================
``coxph``              ``CoxPHSurvivalAnalysis`` (small ridge)       impute, variance, scale
``coxnet``             ``CoxnetSurvivalAnalysis`` (elastic net)      impute, variance, scale,
                                                                     decorrelate, select
``rsf``                ``RandomSurvivalForest``                      impute, variance
``gbsa``               ``GradientBoostingSurvivalAnalysis``          impute, variance, scale
``horizon_logistic``   :class:`~sabrkit.models.horizon.              impute, variance, scale,
                       FixedHorizonClassifier` (progression by 12 m)  decorrelate, select
``spca_cox``           ``CoxPHSurvivalAnalysis`` on the first         impute, variance, scale,
                       principal component(s) of selected features    select, pca
=====================  ============================================  ==========================

``build_pipeline(name, preprocessing=[...])`` replaces the default preprocessing with named
steps from :mod:`sabrkit.models.steps` (e.g. to add ``icc`` or ``combat``). Add a model::

    @register_estimator("my_model")
    def _build_my_model(alpha: float = 1.0) -> Pipeline:
        return Pipeline([...])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sklearn.pipeline import Pipeline

from sabrkit.errors import ConfigError, format_problem
from sabrkit.models.steps import StepSpec, build_steps

__all__ = ["register_estimator", "build_pipeline", "available_estimators", "PipelineBuilder", "unwrap_search"]

logger = logging.getLogger(__name__)

PipelineBuilder = Callable[..., Pipeline]
_REGISTRY: dict[str, PipelineBuilder] = {}
_STEP_PARAMS: dict[str, frozenset[str]] = {}
_DATAFRAME_STEPS = frozenset({"icc", "combat"})


def register_estimator(
    name: str, step_params: Sequence[str] = ()
) -> Callable[[PipelineBuilder], PipelineBuilder]:
    """Decorator: register ``builder`` under ``name`` for :func:`build_pipeline`.

    ``step_params`` names the builder arguments that configure its default preprocessing
    steps (refused together with an explicit ``preprocessing`` list).

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
        _STEP_PARAMS[name] = frozenset(step_params)
        return builder

    return decorate


def available_estimators() -> tuple[str, ...]:
    """Names accepted by :func:`build_pipeline`, sorted."""
    return tuple(sorted(_REGISTRY))


def build_pipeline(name: str, preprocessing: Sequence[StepSpec] | None = None, **params: Any) -> Pipeline:
    """Build the unfitted pipeline registered as ``name``.

    Parameters
    ----------
    name : str
        A registered estimator.
    preprocessing : list of step specs, optional
        Replaces the default preprocessing steps (see :mod:`sabrkit.models.steps`).
    **params
        Keyword arguments of the builder.

    Raises
    ------
    ConfigError
        Unknown ``name`` or step, a parameter the builder does not take, or a default-step
        parameter given together with ``preprocessing``.
    """
    if name not in _REGISTRY:
        raise ConfigError(
            format_problem(
                f"estimator {name!r}",
                f"estimator must be one of {list(available_estimators())}",
                "use a registered name or register a builder with @register_estimator",
            )
        )
    if preprocessing is not None:
        clash = sorted(_STEP_PARAMS[name] & set(params))
        if clash:
            raise ConfigError(
                format_problem(
                    f"parameters {clash} of estimator {name!r} together with a preprocessing list",
                    "with an explicit preprocessing list, step options go in the step specs",
                    "move them, e.g. {select: {k: 20}}",
                )
            )
    try:
        pipeline = _REGISTRY[name](**params)
    except TypeError as exc:
        raise ConfigError(
            format_problem(
                f"parameters {sorted(params)} for estimator {name!r} ({exc})",
                "parameters must be keyword arguments of the builder",
                f"see help(sabrkit.models.estimators.{_REGISTRY[name].__name__})",
            )
        ) from exc
    if preprocessing is not None:
        pipeline = Pipeline([*build_steps(preprocessing), pipeline.steps[-1]])
    if any(name in _DATAFRAME_STEPS for name, _ in pipeline.steps):
        # ICC filter and ComBat look rows up by study_id: keep DataFrames (index kept) between steps
        pipeline.set_output(transform="pandas")
    return pipeline


def unwrap_search(model: Any) -> Any:
    """The refitted best pipeline of a fitted hyper-parameter search (``best_estimator_``), else ``model``."""
    return getattr(model, "best_estimator_", model)


@register_estimator(
    "coxnet",
    step_params=("k", "correlation_threshold", "variance_threshold", "selection_method", "unpenalized"),
)
def build_coxnet(
    alpha: float | None = 0.1,
    l1_ratio: float = 0.5,
    k: int | str = 10,
    correlation_threshold: float = 0.9,
    variance_threshold: float = 0.0,
    selection_method: str = "concordance",
    alpha_min_ratio: float | str = "auto",
    max_iter: int = 100_000,
    unpenalized: str | None = None,
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
        Fixed penalty. It is reached along a short path of larger penalties
        (:class:`~sabrkit.models.coxnet.WarmStartCoxnet`), each solution the start of the next, and the model predicts
        with ``alpha`` (the path's last); a cold start at a small penalty on 60 patients can
        overflow ("weights are too large"). None fits the whole path (``alpha_min_ratio``) and
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
    unpenalized : str or None, default None
        Columns added to an established model rather than screened: ``"clinical"`` (the
        registry's encoded clinical covariates,
        :data:`~sabrkit.models.clinical_encoding.CLINICAL_COLUMN_PATTERN`), ``"established"``
        (the established prognostic factors of the default comparator, IMDC risk, ECOG and
        disease state: :data:`~sabrkit.models.clinical_encoding.ESTABLISHED_COLUMN_PATTERN`;
        the other clinical covariates are then screened with the radiomic ones) or a regular
        expression of column names. These columns skip the correlation filter and the univariate
        selection (``impute -> variance -> scale`` only) and enter the elastic net with penalty
        factor 0 (glmnet's ``penalty.factor``; scikit-survival's ``penalty_factor``), the other
        columns factor 1 - not rescaled to sum to the number of columns as scikit-survival and
        glmnet would, so each penalised coefficient gets exactly ``alpha`` as without
        ``unpenalized`` (see :class:`~sabrkit.models.coxnet.WarmStartCoxnet`). The
        model is the clinical model plus penalised markers - the usual way of testing markers
        on top of known prognostic factors - instead of shrinking the clinical covariates
        together with ~100 screened features. The pipeline is then
        ``columns`` (a ``ColumnTransformer``: ``unpenalized`` and the screened ``remainder``,
        column names kept) -> ``coxnet``; the other step parameters are under
        ``columns__remainder__<step>__``. Needs a fixed ``alpha`` (the warm-start fit).
    """
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    if alpha is None:
        coxnet = CoxnetSurvivalAnalysis(
            l1_ratio=l1_ratio, alpha_min_ratio=alpha_min_ratio, fit_baseline_model=True, max_iter=max_iter
        )
    else:
        from sabrkit.models.coxnet import WarmStartCoxnet

        coxnet = WarmStartCoxnet(alpha=float(alpha), l1_ratio=l1_ratio, max_iter=max_iter)
    steps = build_steps(
        [
            "impute",
            {"variance": {"threshold": variance_threshold}},
            "scale",
            {"decorrelate": {"threshold": correlation_threshold}},
            {"select": {"k": k, "method": selection_method}},
        ]
    )
    if unpenalized is not None:
        return _with_unpenalized(steps, coxnet, unpenalized, variance_threshold)
    return Pipeline([*steps, ("coxnet", coxnet)])


def _with_unpenalized(
    steps: list[tuple[str, Any]], coxnet: Any, unpenalized: str, variance_threshold: float
) -> Pipeline:
    """``columns`` (unpenalised columns: impute, variance, scale; the rest: ``steps``) -> ``coxnet``."""
    import re

    from sklearn.compose import ColumnTransformer, make_column_selector

    from sabrkit.models.clinical_encoding import CLINICAL_COLUMN_PATTERN, ESTABLISHED_COLUMN_PATTERN

    if not hasattr(coxnet, "unpenalized"):
        raise ConfigError(
            format_problem(
                "coxnet unpenalized with alpha=None",
                "unpenalized columns need the fixed-penalty (warm-start) fit",
                "set alpha (e.g. 0.1)",
            )
        )
    pattern = {"clinical": CLINICAL_COLUMN_PATTERN, "established": ESTABLISHED_COLUMN_PATTERN}.get(
        unpenalized, unpenalized
    )
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            format_problem(
                f"coxnet unpenalized={unpenalized!r}",
                f"'clinical', 'established' or a regular expression of column names ({exc})",
                "write e.g. unpenalized: clinical or unpenalized: '^(age_years|ecog)$'",
            )
        ) from exc
    kept = Pipeline(build_steps(["impute", {"variance": {"threshold": variance_threshold}}, "scale"]))
    columns = ColumnTransformer(
        [("unpenalized", kept, make_column_selector(pattern=pattern))],
        remainder=Pipeline(steps),
        verbose_feature_names_out=False,  # the model sees the input names (coefficients, importance)
    ).set_output(transform="pandas")
    coxnet.set_params(unpenalized=pattern)
    return Pipeline([("columns", columns), ("coxnet", coxnet)])


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
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    return Pipeline(
        [
            *build_steps(["impute", "variance", "scale"]),
            ("coxph", CoxPHSurvivalAnalysis(alpha=alpha, ties=ties)),
        ]
    )


@register_estimator("rsf")
def build_rsf(
    n_estimators: int = 500,
    min_samples_split: int | float = 10,
    min_samples_leaf: int | float = 5,
    max_features: int | float | str | None = "sqrt",
    max_depth: int | None = None,
    random_state: int | None = 0,
    n_jobs: int | None = None,
) -> Pipeline:
    """Random survival forest (log-rank splitting; Ishwaran et al. 2008).

    Steps: ``impute`` (median) -> ``variance`` -> ``rsf``
    (:class:`sksurv.ensemble.RandomSurvivalForest`). Trees need no scaling. ``predict`` is
    the sum of the ensemble cumulative hazard over the training event times (a risk score).

    Parameters
    ----------
    n_estimators, min_samples_split, min_samples_leaf, max_features, max_depth
        As in :class:`~sksurv.ensemble.RandomSurvivalForest`; the defaults suit about 50
        training patients (leaves of at least 5).
    random_state : int or None, default 0
        Seed of the bootstrap and feature draws (deterministic by default).
    n_jobs : int or None
        Trees in parallel.
    """
    from sksurv.ensemble import RandomSurvivalForest

    forest = RandomSurvivalForest(
        n_estimators=n_estimators,
        min_samples_split=min_samples_split,
        min_samples_leaf=min_samples_leaf,
        max_features=max_features,
        max_depth=max_depth,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    return Pipeline([*build_steps(["impute", "variance"]), ("rsf", forest)])


@register_estimator("gbsa")
def build_gbsa(
    n_estimators: int = 200,
    learning_rate: float = 0.05,
    max_depth: int = 2,
    subsample: float = 0.8,
    min_samples_leaf: int = 5,
    max_features: int | float | str | None = "sqrt",
    random_state: int | None = 0,
) -> Pipeline:
    r"""Gradient-boosted Cox model with regression trees (Ridgeway's partial-likelihood boosting).

    Steps: ``impute`` -> ``variance`` -> ``scale`` -> ``gbsa``
    (:class:`sksurv.ensemble.GradientBoostingSurvivalAnalysis`, ``loss="coxph"``): the
    log-hazard :math:`f(x)` is a sum of shallow trees fitted to the gradient of the negative
    Cox partial log-likelihood, shrunk by ``learning_rate`` and on ``subsample`` of the
    patients (stochastic boosting regularises small cohorts).
    """
    from sksurv.ensemble import GradientBoostingSurvivalAnalysis

    boosting = GradientBoostingSurvivalAnalysis(
        loss="coxph",
        n_estimators=n_estimators,
        learning_rate=learning_rate,
        max_depth=max_depth,
        subsample=subsample,
        min_samples_leaf=min_samples_leaf,
        max_features=max_features,
        random_state=random_state,
    )
    return Pipeline([*build_steps(["impute", "variance", "scale"]), ("gbsa", boosting)])


@register_estimator("horizon_logistic", step_params=("k", "correlation_threshold"))
def build_horizon_logistic(
    horizon_months: float = 12.0,
    censoring: str = "ipcw",
    C: float = 0.1,
    k: int | str = 10,
    correlation_threshold: float = 0.9,
) -> Pipeline:
    """L2-penalised logistic classifier of progression by ``horizon_months`` (12: "PFS at 12 months").

    Steps: ``impute`` -> ``variance`` -> ``scale`` -> ``decorrelate`` -> ``select`` (univariate
    survival selection on the training fold) -> ``horizon``
    (:class:`~sabrkit.models.horizon.FixedHorizonClassifier` wrapping
    :class:`sklearn.linear_model.LogisticRegression`). Patients censored before the horizon are
    left out of the fit and the others weighted by IPCW (``censoring="ipcw"``) or simply left
    out (``"exclude"``); see :mod:`sabrkit.models.horizon`.
    """
    from sklearn.linear_model import LogisticRegression

    from sabrkit.models.horizon import FixedHorizonClassifier

    classifier = FixedHorizonClassifier(
        horizon_months=horizon_months, censoring=censoring, classifier=LogisticRegression(C=C, max_iter=5000)
    )
    steps = build_steps(
        [
            "impute",
            "variance",
            "scale",
            {"decorrelate": {"threshold": correlation_threshold}},
            {"select": {"k": k}},
        ]
    )
    return Pipeline([*steps, ("horizon", classifier)])


@register_estimator("spca_cox", step_params=("k", "n_components", "selection_method"))
def build_spca_cox(
    k: int = 10, n_components: int = 1, selection_method: str = "concordance", alpha: float = 0.01
) -> Pipeline:
    """Supervised principal components Cox model (Bair and Tibshirani 2004).

    Steps: ``impute`` -> ``variance`` -> ``scale`` -> ``select`` (the ``k`` features most
    associated with survival in the training fold) -> ``pca`` (their first ``n_components``
    principal components) -> ``coxph`` (one or two parameters). When many radiomic features
    measure one latent property (texture heterogeneity) with noise, their first component
    averages the noise away while spending a single model parameter, which suits 60 patients.

    References
    ----------
    Bair E, Tibshirani R. Semi-supervised methods to predict patient survival from gene
    expression data. PLoS Biol 2004;2(4):e108.
    """
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    steps = build_steps(
        [
            "impute",
            "variance",
            "scale",
            {"select": {"k": k, "method": selection_method}},
            {"pca": {"n_components": n_components}},
        ]
    )
    return Pipeline([*steps, ("coxph", CoxPHSurvivalAnalysis(alpha=alpha))])
