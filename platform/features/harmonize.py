r"""ComBat harmonisation of radiomic features across scanners, as a scikit-learn transformer.

ComBat (Johnson, Li & Rabinovic, *Biostatistics* 2007; for radiomics Orlhac et al., *J Nucl
Med* 2018) models feature :math:`g` of sample :math:`j` in batch (scanner) :math:`i` as

.. math::

    y_{ijg} = \alpha_g + \gamma_{ig} + \delta_{ig}\,\varepsilon_{ijg},
    \qquad \varepsilon_{ijg} \sim N(0, \sigma_g^2).

:meth:`ComBat.fit` (training rows only) standardises
:math:`z_{ijg} = (y_{ijg} - \hat\alpha_g) / \hat\sigma_g` with the grand mean
:math:`\hat\alpha_g` and the pooled residual variance
:math:`\hat\sigma_g^2 = \frac{1}{N}\sum_{ij}(y_{ijg} - \bar y_{ig})^2`, estimates per batch
:math:`\hat\gamma_{ig} = \bar z_{ig}` and :math:`\hat\delta^2_{ig} = \operatorname{var}(z_{ig})`
(ddof 1), and shrinks them with the parametric empirical-Bayes priors across features
(normal for :math:`\gamma`, inverse gamma for :math:`\delta^2`, iterated to convergence 1e-4)
to :math:`\gamma^*_{ig}, \delta^{*2}_{ig}`. :meth:`ComBat.transform` applies the stored
estimates to any rows of a batch seen in training:

.. math::

    y^{*}_{ijg} = \hat\sigma_g\,\frac{z_{ijg} - \gamma^*_{ig}}{\delta^*_{ig}} + \hat\alpha_g .

This is the estimator of neuroCombat (``neuroCombat`` + ``neuroCombatFromTraining``, Fortin
et al. 2017/2018) without biological covariates; the test suite checks it against numbers
produced by neuroCombat 0.2.12. It is implemented here (about 100 lines of numpy) rather than
taken as a dependency because neuroCombat has no fit/transform split (its apply-to-new-data
function is marked "under development" and prints to stdout), neurocombat-sklearn has not been
released since 2019, and neuroHarmonize pulls in statsmodels/nibabel for GAM covariates we do
not use; none is a scikit-learn transformer that reads the batch of each row from side data.

Batches reach the transformer as side data keyed by the row index of ``X`` (study IDs in
:class:`sabrkit.models.SurvivalDataset`), so it runs inside a CV pipeline: ``fit`` sees only
the training rows and their batches; held-out rows are adjusted with the training estimates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sabrkit.errors import ModelInputError, ValidationError, format_problem
from sabrkit.features.io import is_feature_column

__all__ = ["ComBat", "combat_estimates", "scanner_batches"]

logger = logging.getLogger(__name__)

_CONVERGENCE = 1e-4
_MAX_ITERATIONS = 1000


def _it_sol(z: np.ndarray, g_hat: np.ndarray, d_hat: np.ndarray, g_bar: float, t2: float, a: float, b: float):
    """Parametric EB posterior of (gamma, delta^2) for one batch; ``z`` is samples x features."""
    n = z.shape[0]
    g_old, d_old = g_hat.copy(), d_hat.copy()
    for _ in range(_MAX_ITERATIONS):
        g_new = (t2 * n * g_hat + d_old * g_bar) / (t2 * n + d_old)
        sum2 = ((z - g_new) ** 2).sum(axis=0)
        d_new = (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)
        change = max(np.max(np.abs(g_new - g_old) / np.abs(g_old)), np.max(np.abs(d_new - d_old) / d_old))
        g_old, d_old = g_new, d_new
        if change <= _CONVERGENCE:
            break
    return g_old, d_old


def combat_estimates(values: np.ndarray, batch: np.ndarray, empirical_bayes: bool = True) -> dict[str, Any]:
    """ComBat estimates from a samples x features matrix (see the module docstring).

    Parameters
    ----------
    values : ndarray, shape (n_samples, n_features)
        Finite values; every feature varies within every batch.
    batch : ndarray, shape (n_samples,)
        Batch label per sample; every batch has at least 2 samples.
    empirical_bayes : bool, default True
        Shrink the per-batch location/scale estimates with the parametric EB priors; False
        uses the plain per-batch estimates (location/scale adjustment).

    Returns
    -------
    dict
        ``batches`` (sorted labels), ``grand_mean`` and ``var_pooled`` (per feature),
        ``gamma_star`` and ``delta_star`` (batches x features).
    """
    batches = np.array(sorted(set(batch.tolist())), dtype=object)
    n = values.shape[0]
    batch_means = np.vstack([values[batch == b].mean(axis=0) for b in batches])
    weights = np.array([np.sum(batch == b) for b in batches], dtype=float) / n
    grand_mean = weights @ batch_means
    position = {b: i for i, b in enumerate(batches)}
    fitted = batch_means[[position[b] for b in batch]]
    var_pooled = ((values - fitted) ** 2).mean(axis=0)
    z = (values - grand_mean) / np.sqrt(var_pooled)
    gamma_hat = np.vstack([z[batch == b].mean(axis=0) for b in batches])
    delta_hat = np.vstack([z[batch == b].var(axis=0, ddof=1) for b in batches])
    if empirical_bayes:
        gamma_bar = gamma_hat.mean(axis=1)
        t2 = gamma_hat.var(axis=1, ddof=1)
        m = delta_hat.mean(axis=1)
        s2 = delta_hat.var(axis=1, ddof=1)
        a_prior = (2 * s2 + m**2) / s2
        b_prior = (m * s2 + m**3) / s2
        stars = [
            _it_sol(z[batch == b], gamma_hat[i], delta_hat[i], gamma_bar[i], t2[i], a_prior[i], b_prior[i])
            for i, b in enumerate(batches)
        ]
        gamma_star = np.vstack([s[0] for s in stars])
        delta_star = np.vstack([s[1] for s in stars])
    else:
        gamma_star, delta_star = gamma_hat, delta_hat
    return {
        "batches": batches,
        "grand_mean": grand_mean,
        "var_pooled": var_pooled,
        "gamma_star": gamma_star,
        "delta_star": delta_star,
    }


def _batches_of(index: pd.Index, batches: Mapping[Any, Any] | pd.Series) -> np.ndarray:
    from sabrkit.rowkeys import source_keys

    lookup = pd.Series(batches) if not isinstance(batches, pd.Series) else batches
    index = source_keys(index)  # a bootstrap copy's row has its source patient's batch
    missing = [str(i) for i in index if i not in lookup.index]
    if missing:
        raise ModelInputError(
            format_problem(
                f"no batch for row(s) {missing[:10]}",
                "every row of X has a batch (scanner) in the batches mapping, keyed by X's index",
                "build batches with scanner_batches(images) and index X by study_id",
            )
        )
    return lookup.loc[index].astype(str).to_numpy(dtype=object)


def _as_frame(X: Any) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise ModelInputError(
            format_problem(
                f"X is a {type(X).__name__}",
                "ComBat reads each row's batch through X's index, so X is a DataFrame indexed by study_id",
                "put ComBat before steps that turn X into an array (impute, scale)",
            )
        )
    return X


#: a training batch needs this many rows to get its own ComBat estimates; rarer ones are pooled.
MIN_BATCH_ROWS = 2
#: the label of the pooled rare batches.
POOLED_BATCH = "<pooled rare batches>"


class ComBat(TransformerMixin, BaseEstimator):
    """Empirical-Bayes ComBat by scanner batch, fitted on training rows only.

    Parameters
    ----------
    batches : Series or mapping
        Batch label (scanner / protocol) per row key: index = the values of ``X.index``
        (study IDs for patient tables). May hold more keys than ``X`` (the whole cohort):
        only the rows passed to ``fit`` are learnt from.
    columns : list of str or None, default None
        Columns to harmonise; None: every pyradiomics-named feature column
        (:func:`~sabrkit.features.is_feature_column`). Other columns pass through unchanged.
    empirical_bayes : bool, default True
        See :func:`combat_estimates`.

    Attributes
    ----------
    harmonized_columns_ : list of str
        Columns adjusted (features constant within a training batch pass through).
    estimates_ : dict
        Output of :func:`combat_estimates` on the training rows.
    feature_names_in_ : ndarray
    """

    def __init__(
        self, batches: Any = None, columns: list[str] | None = None, empirical_bayes: bool = True
    ) -> None:
        self.batches = batches
        self.columns = columns
        self.empirical_bayes = empirical_bayes

    def fit(self, X: pd.DataFrame, y: Any = None) -> ComBat:
        """Learn the ComBat estimates from the rows of ``X`` (training rows) and their batches.

        Rare batches (fewer than :data:`MIN_BATCH_ROWS` training rows, e.g. the one patient of a
        scanner that a CV split left in this training fold) are pooled into one batch
        (:data:`POOLED_BATCH`), with a warning; if that still leaves fewer than 2 batches of
        at least 2 rows, ComBat leaves the features unharmonised (``passthrough_`` True, warning)
        instead of failing. ``pooled_batches_`` lists what was pooled.

        Raises
        ------
        ModelInputError
            ``X`` is not a DataFrame, a row has no batch, or a harmonised column holds a
            non-finite value.
        """
        X = _as_frame(X)
        batch = _batches_of(X.index, self.batches if self.batches is not None else {}).astype(str)
        labels, counts = np.unique(batch, return_counts=True)
        rare = sorted(labels[counts < MIN_BATCH_ROWS].tolist())
        self.pooled_batches_, self.unharmonised_batches_ = [], []
        if rare and int(counts[counts < MIN_BATCH_ROWS].sum()) >= MIN_BATCH_ROWS:
            self.pooled_batches_ = rare
            batch = np.where(np.isin(batch, rare), POOLED_BATCH, batch)
            logger.warning(
                "ComBat: batch(es) %s have fewer than %d training rows; pooled into one batch",
                rare,
                MIN_BATCH_ROWS,
            )
        elif rare:
            self.unharmonised_batches_ = rare
            logger.warning(
                "ComBat: batch %s has fewer than %d training rows and nothing to pool with; its rows "
                "are left unharmonised",
                rare,
                MIN_BATCH_ROWS,
            )
        used = ~np.isin(batch, self.unharmonised_batches_)
        labels, counts = np.unique(batch[used], return_counts=True)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        if len(labels) < 2:
            logger.warning(
                "ComBat: training batches %s cannot be harmonised (need 2 batches of >= %d rows); "
                "features left unharmonised in this fit",
                dict(zip(labels.tolist(), counts.tolist())),
                MIN_BATCH_ROWS,
            )
            self.passthrough_ = True
            self.harmonized_columns_ = []
            self.estimates_ = {"batches": labels.tolist()}
            return self
        self.passthrough_ = False
        candidates = (
            list(self.columns) if self.columns is not None else [c for c in X.columns if is_feature_column(c)]
        )
        unknown = [c for c in candidates if c not in X.columns]
        if unknown:
            raise ValidationError(
                format_problem(f"columns {unknown[:10]} not in X", "columns name X's columns", "fix columns")
            )
        values = X[candidates].to_numpy(dtype=float)[used]
        batch = batch[used]
        if not np.isfinite(values).all():
            raise ModelInputError(
                format_problem(
                    "X holds NaN/inf in harmonised columns", "ComBat needs finite values", "impute first"
                )
            )
        varies = np.all(np.vstack([values[batch == b].std(axis=0) > 0 for b in labels]), axis=0)
        self.harmonized_columns_ = [c for c, ok in zip(candidates, varies) if ok]
        if len(self.harmonized_columns_) < len(candidates):
            logger.info(
                "ComBat: %d column(s) constant within a batch pass through",
                len(candidates) - int(varies.sum()),
            )
        if not self.harmonized_columns_:
            logger.warning("ComBat: no feature column varies within every training batch; nothing harmonised")
            self.passthrough_ = True
            self.estimates_ = {"batches": labels.tolist()}
            return self
        self.estimates_ = combat_estimates(values[:, varies], batch, self.empirical_bayes)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Adjust the harmonised columns of ``X`` with the training estimates.

        Rows of a batch not seen in training are adjusted as the pooled rare batch when the fit
        pooled one, else left unharmonised (warning); so are rows of a batch the fit left
        unharmonised.

        Raises
        ------
        ModelInputError
            A row has no batch.
        """
        check_is_fitted(self, "estimates_")
        X = _as_frame(X)
        if list(X.columns) != list(self.feature_names_in_):
            raise ModelInputError(
                format_problem("X has other columns than at fit", "same columns", "pass the same table")
            )
        if getattr(self, "passthrough_", False):
            return X.copy()
        batch = _batches_of(X.index, self.batches if self.batches is not None else {}).astype(str)
        known = list(self.estimates_["batches"])
        batch = np.where(np.isin(batch, self.pooled_batches_), POOLED_BATCH, batch)
        unseen = sorted(set(batch.tolist()) - set(known) - set(self.unharmonised_batches_))
        out = X.copy()
        keep = ~np.isin(batch, unseen) & ~np.isin(batch, self.unharmonised_batches_)
        if unseen:
            if POOLED_BATCH in known:
                batch = np.where(np.isin(batch, unseen), POOLED_BATCH, batch)
                keep = ~np.isin(batch, self.unharmonised_batches_)
                logger.warning(
                    "ComBat: batch(es) %s not seen in training; adjusted as the pooled rare batch", unseen
                )
            else:
                logger.warning(
                    "ComBat: batch(es) %s not seen in training; their rows are left unharmonised", unseen
                )
        rows = np.array([known.index(b) for b in batch[keep]], dtype=int)
        est = self.estimates_
        values = X.loc[keep, self.harmonized_columns_].to_numpy(dtype=float)
        sd = np.sqrt(est["var_pooled"])
        z = (values - est["grand_mean"]) / sd
        adjusted = (z - est["gamma_star"][rows]) / np.sqrt(est["delta_star"][rows]) * sd + est["grand_mean"]
        out.loc[keep, self.harmonized_columns_] = adjusted
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "estimates_")
        return self.feature_names_in_.copy()


def scanner_batches(images: pd.DataFrame, key: str = "study_id", batch_column: str = "scanner") -> pd.Series:
    """Batch label per patient (or lesion) from an image manifest's scanner column.

    Parameters
    ----------
    images : DataFrame
        ``images.csv`` (``lesion_id, study_id, ..., scanner``); the scanner comes from the
        DICOM header (Manufacturer + ManufacturerModelName) at ingest.
    key : {"study_id", "lesion_id"}
        Level of the feature table ComBat will see.
    batch_column : str, default "scanner"

    Returns
    -------
    Series
        ``key`` -> batch label.

    Raises
    ------
    ValidationError
        The column is missing or a patient's lesions were imaged on several scanners.
    """
    for column in (key, batch_column):
        if column not in images.columns:
            raise ValidationError(
                format_problem(
                    f"images table lacks {column!r}",
                    f"batches need {key} and {batch_column}",
                    "pass images.csv",
                )
            )
    per_key = images.groupby(key)[batch_column].agg(lambda s: sorted(set(s.astype(str))))
    mixed = per_key[per_key.map(len) > 1]
    if not mixed.empty:
        raise ValidationError(
            format_problem(
                f"{key}(s) {list(mixed.index[:5])} imaged on several scanners {list(mixed.iloc[:5])}",
                "one batch per row of the harmonised table",
                "harmonise at lesion level (key='lesion_id') or pick the index lesion's scanner",
            )
        )
    return per_key.map(lambda labels: labels[0]).rename("batch")
