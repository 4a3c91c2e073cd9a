"""Registry of data-dependent preprocessing steps, addressed by name in pipeline specs.

Every step is a scikit-learn transformer that learns from the rows it is fitted on, so it
belongs *inside* the model pipeline, refitted in every training fold. A pipeline spec lists
steps by name with optional parameters::

    preprocessing: [impute, variance, {icc: {threshold: 0.75}}, {combat: {}}, scale,
                    {decorrelate: {threshold: 0.9}}, {select: {k: 20}}]

================  ==========================================================================
step              transformer
================  ==========================================================================
``impute``        :class:`sklearn.impute.SimpleImputer` (median)
``variance``      :class:`sklearn.feature_selection.VarianceThreshold`
``scale``         :class:`sklearn.preprocessing.StandardScaler`
``decorrelate``   :class:`~sabrkit.models.selection.CorrelationFilter`
``select``        :class:`~sabrkit.models.selection.UnivariateSurvivalSelector`
``mrmr``          :class:`~sabrkit.models.selection.MRMRSurvivalSelector`
``pca``           :class:`sklearn.decomposition.PCA` (after ``select``: supervised PCA)
``icc``           ``sabrkit.features.ICCSelector`` (features room; reliability filter)
``combat``        ``sabrkit.features.ComBat`` (features room; scanner harmonisation)
================  ==========================================================================

``icc`` and ``combat`` are looked up in :mod:`sabrkit.features` when the pipeline is built;
if that room does not provide them yet, building fails with a message saying so. Add a step
with :func:`register_step`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sklearn.base import BaseEstimator

from sabrkit.errors import ConfigError, format_problem

__all__ = [
    "register_step",
    "available_steps",
    "build_step",
    "build_steps",
    "StepSpec",
    "normalise_step_specs",
]

logger = logging.getLogger(__name__)

StepSpec = str | Mapping[str, Mapping[str, Any] | None]
StepFactory = Callable[..., BaseEstimator]
_STEPS: dict[str, StepFactory] = {}


def register_step(name: str) -> Callable[[StepFactory], StepFactory]:
    """Decorator: register a factory of an unfitted transformer under ``name``."""

    def decorate(factory: StepFactory) -> StepFactory:
        if name in _STEPS:
            raise ConfigError(
                format_problem(
                    f"step name {name!r} is already registered",
                    "step names are unique",
                    "choose another name",
                )
            )
        _STEPS[name] = factory
        return factory

    return decorate


def available_steps() -> tuple[str, ...]:
    """Names accepted in ``preprocessing`` lists, sorted."""
    return tuple(sorted(_STEPS))


def normalise_step_specs(specs: Sequence[StepSpec]) -> list[tuple[str, dict[str, Any]]]:
    """``["scale", {"select": {"k": 5}}]`` -> ``[("scale", {}), ("select", {"k": 5})]``; names checked."""
    out: list[tuple[str, dict[str, Any]]] = []
    for spec in specs:
        if isinstance(spec, str):
            name, params = spec, {}
        elif isinstance(spec, Mapping) and len(spec) == 1:
            name, raw = next(iter(spec.items()))
            params = dict(raw or {})
        else:
            raise ConfigError(
                format_problem(
                    f"preprocessing step {spec!r}",
                    "a step is a name or a one-key mapping {name: {param: value}}",
                    "write e.g. 'scale' or {select: {k: 10}}",
                )
            )
        if name not in _STEPS:
            raise ConfigError(
                format_problem(
                    f"preprocessing step {name!r}",
                    f"steps are {list(available_steps())}",
                    "use a registered step or register one with @register_step",
                )
            )
        out.append((name, params))
    names = [n for n, _ in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            format_problem(
                f"steps {repeated} appear twice", "each step once per pipeline", "remove the repeats"
            )
        )
    return out


def build_step(name: str, **params: Any) -> BaseEstimator:
    """An unfitted transformer for step ``name``."""
    ((_, checked),) = normalise_step_specs([{name: params}])
    try:
        return _STEPS[name](**checked)
    except TypeError as exc:
        raise ConfigError(
            format_problem(
                f"parameters {sorted(checked)} for step {name!r} ({exc})",
                "parameters must be keyword arguments of the step",
                f"see help of the {name!r} transformer",
            )
        ) from exc


def build_steps(specs: Sequence[StepSpec]) -> list[tuple[str, BaseEstimator]]:
    """``(name, transformer)`` pairs for a :class:`~sklearn.pipeline.Pipeline`."""
    return [(name, build_step(name, **params)) for name, params in normalise_step_specs(specs)]


@register_step("impute")
def _impute(strategy: str = "median") -> BaseEstimator:
    from sklearn.impute import SimpleImputer

    return SimpleImputer(strategy=strategy)


@register_step("variance")
def _variance(threshold: float = 0.0) -> BaseEstimator:
    from sklearn.feature_selection import VarianceThreshold

    return VarianceThreshold(threshold=threshold)


@register_step("scale")
def _scale() -> BaseEstimator:
    from sklearn.preprocessing import StandardScaler

    return StandardScaler()


@register_step("decorrelate")
def _decorrelate(threshold: float = 0.9) -> BaseEstimator:
    from sabrkit.models.selection import CorrelationFilter

    return CorrelationFilter(threshold=threshold)


@register_step("select")
def _select(k: int | str = 10, method: str = "concordance") -> BaseEstimator:
    from sabrkit.models.selection import UnivariateSurvivalSelector

    return UnivariateSurvivalSelector(k=k, method=method)


@register_step("mrmr")
def _mrmr(k: int | str = 10, method: str = "cox_score") -> BaseEstimator:
    from sabrkit.models.selection import MRMRSurvivalSelector

    return MRMRSurvivalSelector(k=k, method=method)


@register_step("pca")
def _pca(n_components: int | float = 1) -> BaseEstimator:
    from sklearn.decomposition import PCA

    return PCA(n_components=n_components)


def _features_room_class(class_name: str, step: str) -> type:
    features = importlib.import_module("sabrkit.features")
    found = getattr(features, class_name, None)
    if found is None:
        raise ConfigError(
            format_problem(
                f"preprocessing step {step!r} needs sabrkit.features.{class_name}, which this installation lacks",
                f"the {step!r} step is provided by the features room",
                f"update sabrkit (features room) or remove {step!r} from the preprocessing list",
            )
        )
    return found


@register_step("icc")
def _icc(**params: Any) -> BaseEstimator:
    """Reliability (ICC) filter of the features room; parameters are passed through."""
    return _features_room_class("ICCSelector", "icc")(**params)


@register_step("combat")
def _combat(**params: Any) -> BaseEstimator:
    """ComBat harmonisation of the features room; parameters are passed through."""
    return _features_room_class("ComBat", "combat")(**params)
