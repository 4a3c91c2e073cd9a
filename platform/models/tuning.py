"""Nested cross-validation: hyperparameters tuned by grid search inside each outer training fold.

:func:`tuned_pipeline` wraps a pipeline in :class:`sklearn.model_selection.GridSearchCV` whose
inner splitter, :class:`EventStratifiedKFold`, stratifies on the event indicator (not on
scikit-survival's structured ``y``, which scikit-learn would split on each distinct
(event, time) pair) and keeps a patient's lesions together when groups are given. The outer
validation (:func:`sabrkit.models.validation.repeated_stratified_cv`) clones and fits the
whole search in every outer training fold, so the chosen hyperparameters never see the outer
test patients. The inner score is the pipeline's own ``score`` (Harrell's C).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import BaseCrossValidator, GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from sabrkit.errors import ConfigError, format_problem

__all__ = ["EventStratifiedKFold", "tuned_pipeline"]

logger = logging.getLogger(__name__)


class EventStratifiedKFold(BaseCrossValidator):
    """K-fold stratified on ``y["event"]``; grouped (``StratifiedGroupKFold``) when groups are given.

    Parameters
    ----------
    n_splits : int, default 3
    shuffle : bool, default True
    random_state : int or None, default 0
    """

    def __init__(self, n_splits: int = 3, shuffle: bool = True, random_state: int | None = 0):
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if y is None or getattr(y, "dtype", None) is None or y.dtype.names is None:
            raise ConfigError(
                format_problem(
                    "EventStratifiedKFold.split without a structured survival y",
                    "the event indicator stratifies the folds",
                    "pass y built with sksurv.util.Surv",
                )
            )
        event_field = "event" if "event" in y.dtype.names else y.dtype.names[0]
        labels = np.asarray(y[event_field], dtype=int)
        random_state = self.random_state if self.shuffle else None
        if groups is None:
            splitter: BaseCrossValidator = StratifiedKFold(
                self.n_splits, shuffle=self.shuffle, random_state=random_state
            )
            yield from splitter.split(np.zeros((len(labels), 1)), labels)
        else:
            grouped = StratifiedGroupKFold(self.n_splits, shuffle=self.shuffle, random_state=random_state)
            yield from grouped.split(np.zeros((len(labels), 1)), labels, groups)

    def _iter_test_indices(self, X: Any = None, y: Any = None, groups: Any = None) -> Iterator[np.ndarray]:
        for _, test in self.split(X, y, groups):
            yield test


def tuned_pipeline(
    pipeline: Pipeline,
    grid: Mapping[str, Sequence[Any]],
    inner_splits: int = 3,
    random_state: int = 0,
    n_jobs: int | None = None,
) -> GridSearchCV:
    """Wrap ``pipeline`` in a grid search over ``grid`` (parameters as ``<step>__<param>``).

    Raises
    ------
    ConfigError
        An empty grid, or a parameter the pipeline does not have (named with the valid ones).
    """
    if not grid:
        raise ConfigError(
            format_problem("an empty tuning grid", "name at least one parameter", "add e.g. coxnet__l1_ratio")
        )
    valid = pipeline.get_params(deep=True)
    unknown = sorted(set(grid) - set(valid))
    if unknown:
        candidates = sorted(k for k in valid if "__" in k)
        raise ConfigError(
            format_problem(
                f"tuning parameter(s) {unknown}",
                f"grid keys are pipeline parameters, e.g. {candidates[:12]}",
                "use <step>__<param> names of the pipeline",
            )
        )
    bad = [k for k, values in grid.items() if isinstance(values, str) or not list(values)]
    if bad:
        raise ConfigError(
            format_problem(
                f"tuning values of {bad}", "each grid entry is a non-empty list", "write [v1, v2, ...]"
            )
        )
    return GridSearchCV(
        pipeline,
        {k: list(v) for k, v in grid.items()},
        cv=EventStratifiedKFold(inner_splits, shuffle=True, random_state=random_state),
        refit=True,
        n_jobs=n_jobs,
        error_score=np.nan,
    )
