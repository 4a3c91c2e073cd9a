"""Biologically effective dose (BED) and equivalent dose in 2 Gy fractions (EQD2).

Linear-quadratic model for a course of ``n`` equal fractions of ``d`` Gy (total ``D = n d``):

.. math::

    \\mathrm{BED} = n d \\left(1 + \\frac{d}{\\alpha/\\beta}\\right), \\qquad
    \\mathrm{EQD2} = \\frac{\\mathrm{BED}}{1 + 2 / (\\alpha/\\beta)}

By convention tumour dose uses :math:`\\alpha/\\beta = 10` Gy (BED10). The model ignores
repopulation and overall treatment time; at the high doses per fraction of SABR it is an
approximation, reported for comparison with the literature (e.g. median BED10 100 Gy in
Katipally et al., IJROBP 2025).
"""

from __future__ import annotations

import math
import numbers

from sabrkit.errors import ValidationError, format_problem

__all__ = ["DEFAULT_ALPHA_BETA_GY", "bed", "eqd2", "bed10"]

#: alpha/beta ratio (Gy) of tumour tissue used unless another is given.
DEFAULT_ALPHA_BETA_GY = 10.0


def _check(total_dose_gy: float, fractions: int, alpha_beta_gy: float) -> None:
    if not (isinstance(total_dose_gy, numbers.Real) and math.isfinite(total_dose_gy) and total_dose_gy > 0):
        raise ValidationError(
            format_problem(
                f"total dose {total_dose_gy!r} Gy",
                "the total dose must be a number > 0",
                "enter the prescribed total dose in Gy",
            )
        )
    if isinstance(fractions, bool) or not isinstance(fractions, numbers.Integral) or fractions < 1:
        raise ValidationError(
            format_problem(
                f"fractions {fractions!r}",
                "the number of fractions must be an integer >= 1",
                "enter the number of fractions delivered",
            )
        )
    if not (isinstance(alpha_beta_gy, numbers.Real) and math.isfinite(alpha_beta_gy) and alpha_beta_gy > 0):
        raise ValidationError(
            format_problem(
                f"alpha/beta {alpha_beta_gy!r} Gy",
                "alpha/beta must be a number > 0",
                "use 10 Gy for tumour (BED10) or 3 Gy for late-responding normal tissue",
            )
        )


def bed(total_dose_gy: float, fractions: int, alpha_beta_gy: float = DEFAULT_ALPHA_BETA_GY) -> float:
    """Biologically effective dose of a course of equal fractions.

    .. math:: \\mathrm{BED} = n d (1 + d / (\\alpha/\\beta)), \\quad d = D / n

    Parameters
    ----------
    total_dose_gy : float
        Total prescribed dose D in Gy (> 0).
    fractions : int
        Number of fractions n (>= 1).
    alpha_beta_gy : float
        alpha/beta ratio in Gy (> 0); 10 for tumour.

    Returns
    -------
    float
        BED in Gy. Example: 54 Gy in 3 fractions, alpha/beta 10 -> 54 * (1 + 18/10) = 151.2 Gy.

    Raises
    ------
    ValidationError
        If a dose, the fraction count or alpha/beta is not positive.
    """
    _check(total_dose_gy, fractions, alpha_beta_gy)
    dose_per_fraction = total_dose_gy / fractions
    return float(total_dose_gy * (1.0 + dose_per_fraction / alpha_beta_gy))


def eqd2(total_dose_gy: float, fractions: int, alpha_beta_gy: float = DEFAULT_ALPHA_BETA_GY) -> float:
    """Equivalent dose in 2 Gy fractions.

    .. math:: \\mathrm{EQD2} = \\mathrm{BED} / (1 + 2 / (\\alpha/\\beta))

    Parameters
    ----------
    total_dose_gy, fractions, alpha_beta_gy
        As in :func:`bed`.

    Returns
    -------
    float
        EQD2 in Gy. Example: 54 Gy / 3 fx, alpha/beta 10 -> 151.2 / 1.2 = 126.0 Gy.

    Raises
    ------
    ValidationError
        As :func:`bed`.
    """
    return bed(total_dose_gy, fractions, alpha_beta_gy) / (1.0 + 2.0 / alpha_beta_gy)


def bed10(total_dose_gy: float, fractions: int) -> float:
    """BED with alpha/beta = 10 Gy (the tumour convention); see :func:`bed`."""
    return bed(total_dose_gy, fractions, DEFAULT_ALPHA_BETA_GY)
