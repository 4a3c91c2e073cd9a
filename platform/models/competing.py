r"""Local failure with death as a competing risk: Aalen-Johansen incidence by out-of-fold risk group.

Lesion-level local-control models are fitted to the *cause-specific* hazard of local failure:
a death before local failure censors the lesion in the model's outcome. The cause-specific
model's :math:`1 - S(t)` is the risk of local failure in a world without death, which exceeds the
real-world probability of failing when patients die first. The report therefore gives, per
out-of-fold risk group, the cumulative incidence of local failure by the Aalen-Johansen
estimator (:class:`lifelines.AalenJohansenFitter`, death = competing event),

.. math::

    \hat F_1(t) = \sum_{t_k \le t} \hat S(t_{k-1}) \frac{d_{1k}}{n_k},

beside the naive :math:`1 - \mathrm{KM}(t)` that censors deaths and the mean out-of-fold
predicted cause-specific risk :math:`1 - \hat S(t)`.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

__all__ = ["cif_by_risk_group"]

logger = logging.getLogger(__name__)


def _cif_at(time: np.ndarray, code: np.ndarray, horizon: float) -> float:
    from lifelines import AalenJohansenFitter

    if not (code == 1).any():
        return 0.0
    fitter = AalenJohansenFitter(calculate_variance=False, seed=0)
    with warnings.catch_warnings():  # lifelines jitters tied times (a warning, not an error)
        warnings.simplefilter("ignore")
        fitter.fit(time, code, event_of_interest=1)
    cif = fitter.cumulative_density_.iloc[:, 0]
    before = cif[cif.index <= horizon]
    return float(before.iloc[-1]) if len(before) else 0.0


def _one_minus_km(time: np.ndarray, event: np.ndarray, horizon: float) -> float:
    from lifelines import KaplanMeierFitter

    fitter = KaplanMeierFitter().fit(time, event)
    return float(1.0 - fitter.survival_function_at_times(horizon).iloc[0])


def cif_by_risk_group(
    groups: pd.Series, outcomes: pd.DataFrame, predicted_survival: pd.Series | None, horizon: float = 24.0
) -> pd.DataFrame:
    """Aalen-Johansen incidence of local failure at ``horizon`` per risk group (module docstring).

    Parameters
    ----------
    groups : pandas.Series
        ``"low"``/``"high"`` per lesion (index ``lesion_id``; pooled out-of-fold groups).
    outcomes : pandas.DataFrame
        ``lesion_id, local_control_months, local_failure, competing_death``.
    predicted_survival : pandas.Series, optional
        Mean out-of-fold cause-specific survival at ``horizon`` per lesion.

    Returns
    -------
    pandas.DataFrame
        ``risk_group, n_lesions, n_local_failures, n_competing_deaths, cif_aalen_johansen,
        one_minus_km, mean_predicted_risk`` (rows ``all``, ``low``, ``high``).
    """
    rows = outcomes.set_index("lesion_id").reindex(groups.index)
    time = rows["local_control_months"].to_numpy(dtype=float)
    failure = rows["local_failure"].astype(bool).to_numpy()
    death = rows["competing_death"].astype(bool).to_numpy() & ~failure
    code = np.where(failure, 1, np.where(death, 2, 0))
    predicted = None if predicted_survival is None else 1.0 - predicted_survival.reindex(groups.index)
    out = []
    for label in ("all", "low", "high"):
        pick = np.ones(len(groups), bool) if label == "all" else (groups.to_numpy() == label)
        if not pick.any():
            continue
        out.append(
            {
                "risk_group": label,
                "n_lesions": int(pick.sum()),
                "n_local_failures": int(failure[pick].sum()),
                "n_competing_deaths": int(death[pick].sum()),
                "cif_aalen_johansen": _cif_at(time[pick], code[pick], horizon),
                "one_minus_km": _one_minus_km(time[pick], failure[pick], horizon),
                "mean_predicted_risk": float("nan") if predicted is None else float(predicted[pick].mean()),
            }
        )
    logger.info("cumulative incidence of local failure at %g months by risk group: %s", horizon, out)
    return pd.DataFrame(out)
