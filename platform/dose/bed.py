"""Voxel-wise BED and EQD2 maps from a physical dose grid and the plan's fractionation.

Linear-quadratic model, ``n`` equal fractions, total dose ``D`` in a voxel (as
:mod:`sabrkit.registry.dose` for a prescription):

.. math::

    \\mathrm{BED} = D \\left(1 + \\frac{D / n}{\\alpha/\\beta}\\right), \\qquad
    \\mathrm{EQD2} = \\frac{\\mathrm{BED}}{1 + 2 / (\\alpha/\\beta)}

``alpha_beta`` may be one number or a map of the grid's shape (e.g. 10 Gy inside targets, 3 Gy
elsewhere, built by :func:`alpha_beta_map`). BED is monotone in dose, so the BED map's
``D98%`` is the BED of the physical ``D98%``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from sabrkit.errors import ValidationError, format_problem

__all__ = ["LATE_ALPHA_BETA_GY", "TUMOUR_ALPHA_BETA_GY", "alpha_beta_map", "bed_map", "eqd2_map"]

logger = logging.getLogger(__name__)

#: alpha/beta (Gy) of tumour and of late-responding normal tissue, unless configured otherwise.
TUMOUR_ALPHA_BETA_GY = 10.0
LATE_ALPHA_BETA_GY = 3.0


def _check(fractions: int, alpha_beta: float | np.ndarray) -> np.ndarray:
    if isinstance(fractions, bool) or not isinstance(fractions, (int, np.integer)) or fractions < 1:
        raise ValidationError(
            format_problem(
                f"fractions {fractions!r}", "an integer >= 1", "take NumberOfFractionsPlanned of the RTPLAN"
            )
        )
    ab = np.asarray(alpha_beta, dtype=np.float64)
    if not (np.isfinite(ab).all() and (ab > 0).all()):
        raise ValidationError(
            format_problem(
                f"alpha/beta {alpha_beta!r}",
                "every alpha/beta must be > 0",
                "use 10 Gy for tumour and 3 Gy for late-responding tissue",
            )
        )
    return ab


def bed_map(
    dose_gy: np.ndarray, fractions: int, alpha_beta: float | np.ndarray = TUMOUR_ALPHA_BETA_GY
) -> np.ndarray:
    """Voxel-wise BED (Gy) of a physical dose grid delivered in ``fractions`` equal fractions."""
    ab = _check(fractions, alpha_beta)
    dose = np.asarray(dose_gy, dtype=np.float64)
    if (dose < 0).any():
        raise ValidationError(
            format_problem(
                "dose grid holds negative values",
                "physical dose is >= 0",
                "check DoseGridScaling and the pixel representation",
            )
        )
    return (dose * (1.0 + dose / fractions / ab)).astype(np.float32)


def eqd2_map(
    dose_gy: np.ndarray, fractions: int, alpha_beta: float | np.ndarray = TUMOUR_ALPHA_BETA_GY
) -> np.ndarray:
    """Voxel-wise EQD2 (Gy): ``BED / (1 + 2 / (alpha/beta))``."""
    ab = _check(fractions, alpha_beta)
    return (bed_map(dose_gy, fractions, ab) / (1.0 + 2.0 / ab)).astype(np.float32)


def alpha_beta_map(
    shape: tuple[int, ...],
    masks: Mapping[str, tuple[np.ndarray, float]],
    default_gy: float = LATE_ALPHA_BETA_GY,
) -> np.ndarray:
    """An alpha/beta map: ``default_gy`` everywhere, each mask's value inside it (later masks win).

    Parameters
    ----------
    shape : tuple of int
        Grid shape.
    masks : mapping
        name -> (mask of ``shape``, alpha/beta in Gy), e.g. ``{"GTV_L1": (gtv, 10.0)}``.
    default_gy : float
        Value outside every mask (3 Gy: late-responding normal tissue).
    """
    out = np.full(shape, float(default_gy), dtype=np.float64)
    for name, (mask, value) in masks.items():
        if np.shape(mask) != tuple(shape):
            raise ValidationError(
                format_problem(
                    f"mask {name!r} of shape {np.shape(mask)}",
                    f"must have shape {shape}",
                    "resample masks onto the dose grid first",
                )
            )
        out[np.asarray(mask) != 0] = float(value)
    _check(1, out)
    return out
