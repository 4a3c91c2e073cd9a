"""Dose-volume histograms and DVH metrics of one structure on a voxel dose grid.

Every metric is computed from the doses of the voxels inside a binary mask, each voxel
weighing its volume (``voxel_volume_cc``); the dose and the mask share one grid (resample the
dose onto the mask's grid first, see :mod:`sabrkit.imaging.rtdose`).

* ``D<x>%`` (D98, D95, D50, D2): the lowest dose received by the hottest ``x`` % of the volume;
  ``D<v>cc``: the lowest dose received by the hottest ``v`` cm³ (``Dmax`` is ``D0.03cc``, the
  near-maximum of ICRU 91; ``Dmax_point`` the single hottest voxel);
* ``Dmean``, ``Dmin``; ``V<x>%``: the percentage of the volume receiving at least ``x`` % of the
  prescription; ``V<d>Gy``: the volume (cm³) receiving at least ``d`` Gy;
* Paddick conformity index ``CI = TV_PIV^2 / (TV * PIV)`` and gradient index
  ``GI = PIV_50 / PIV_100`` (Paddick & Lippitz, J Neurosurg 2006;105 Suppl:194-201), from the
  whole dose grid handed in (the prescription isodose volumes ``PIV`` are counted over every
  voxel of that grid, so hand in a grid that covers the target and its fall-off).

A dose value ``d`` is "received" by a voxel when ``dose >= d``. The hottest ``v`` cm³ is the
smallest set of hottest voxels whose volume reaches ``v`` (rounded up to whole voxels).
"""

from __future__ import annotations

import logging
import math
import re

import numpy as np
import pandas as pd

from sabrkit.errors import EmptyMaskError, ValidationError, format_problem

__all__ = [
    "DEFAULT_METRICS",
    "DVH_METRIC_NAMES",
    "StructureDose",
    "conformity_indices",
    "cumulative_dvh",
    "dvh_metrics",
    "evaluate_metric",
]

logger = logging.getLogger(__name__)

#: Metrics of :func:`dvh_metrics` unless others are asked for.
DEFAULT_METRICS: tuple[str, ...] = ("D98%", "D95%", "D50%", "D2%", "Dmean", "Dmax", "Dmax_point", "Dmin")
#: The DVH columns of the plan and lesion dose tables: the default metrics, the structure's
#: volume and the V100% of the prescription.
DVH_METRIC_NAMES: tuple[str, ...] = (*DEFAULT_METRICS, "volume_cc", "V100%")
#: Volume of the near-maximum ``Dmax`` (cm³).
NEAR_MAX_CC = 0.03
_METRIC = re.compile(
    r"^(?:(?P<dx>D)(?P<dv>\d+(?:\.\d+)?)(?P<du>%|cc)|(?P<vx>V)(?P<vv>\d+(?:\.\d+)?)(?P<vu>%|Gy))$"
)


class StructureDose:
    """The doses inside one structure, sorted hottest first, with the voxel volume.

    Parameters
    ----------
    dose : numpy.ndarray
        Dose (Gy) on a voxel grid.
    mask : numpy.ndarray
        Same shape; non-zero voxels belong to the structure.
    voxel_volume_cc : float
        Volume of one voxel (cm³).
    name : str
        Structure name used in messages.

    Raises
    ------
    ValidationError
        Shapes differ, the voxel volume is not positive, or a dose is not finite.
    EmptyMaskError
        The mask holds no voxel.
    """

    def __init__(
        self, dose: np.ndarray, mask: np.ndarray, voxel_volume_cc: float, name: str = "structure"
    ) -> None:
        dose, mask = np.asarray(dose), np.asarray(mask)
        if dose.shape != mask.shape:
            raise ValidationError(
                format_problem(
                    f"{name}: dose grid {dose.shape} and mask {mask.shape}",
                    "dose and mask must share one grid",
                    "resample the dose onto the mask's grid (sabrkit.imaging.rtdose.resample_dose)",
                )
            )
        if not (math.isfinite(voxel_volume_cc) and voxel_volume_cc > 0):
            raise ValidationError(
                format_problem(
                    f"{name}: voxel volume {voxel_volume_cc!r} cc",
                    "must be a number > 0",
                    "pass the product of the spacings / 1000",
                )
            )
        values = dose[mask != 0].astype(np.float64)
        if values.size == 0:
            raise EmptyMaskError(
                format_problem(
                    f"structure {name!r} has no voxel on the dose grid",
                    "a DVH needs at least one voxel",
                    "check the contour and the grid",
                )
            )
        if not np.isfinite(values).all():
            raise ValidationError(
                format_problem(
                    f"{name}: dose holds NaN or infinite values inside the structure",
                    "doses must be finite",
                    "check the dose grid's coverage",
                )
            )
        self.name = name
        self.voxel_volume_cc = float(voxel_volume_cc)
        self.doses = np.sort(values)[::-1]

    @property
    def volume_cc(self) -> float:
        """Structure volume (cm³)."""
        return self.doses.size * self.voxel_volume_cc

    def dose_to_volume_cc(self, volume_cc: float) -> float:
        """Lowest dose received by the hottest ``volume_cc`` (whole voxels, rounded up)."""
        k = max(1, math.ceil(volume_cc / self.voxel_volume_cc - 1e-9))
        return float(self.doses[min(k, self.doses.size) - 1])

    def dose_to_percent(self, percent: float) -> float:
        """Lowest dose received by the hottest ``percent`` % of the volume."""
        return self.dose_to_volume_cc(percent / 100.0 * self.volume_cc)

    def volume_at_least(self, dose_gy: float) -> float:
        """Volume (cm³) receiving at least ``dose_gy``."""
        return float(np.count_nonzero(self.doses >= dose_gy)) * self.voxel_volume_cc


def evaluate_metric(structure: StructureDose, metric: str, prescription_gy: float | None = None) -> float:
    """One DVH metric by name (module docstring): ``D95%``, ``D0.35cc``, ``Dmax``, ``Dmean``, ``V100%``, ``V20Gy``.

    Raises
    ------
    ValidationError
        Unknown metric name, or ``V<x>%`` without a prescription.
    """
    if metric == "Dmean":
        return float(structure.doses.mean())
    if metric == "Dmin":
        return float(structure.doses[-1])
    if metric == "Dmax":
        return structure.dose_to_volume_cc(NEAR_MAX_CC)
    if metric == "Dmax_point":
        return float(structure.doses[0])
    if metric == "volume_cc":
        return structure.volume_cc
    match = _METRIC.match(metric)
    if match is None:
        raise ValidationError(
            format_problem(
                f"DVH metric {metric!r}",
                "use D<x>%, D<v>cc, V<x>%, V<d>Gy, Dmean, Dmin, Dmax, Dmax_point or volume_cc",
                "e.g. D95% or D0.35cc",
            )
        )
    if match["dx"]:
        value = float(match["dv"])
        return structure.dose_to_percent(value) if match["du"] == "%" else structure.dose_to_volume_cc(value)
    value = float(match["vv"])
    if match["vu"] == "Gy":
        return structure.volume_at_least(value)
    if prescription_gy is None or not prescription_gy > 0:
        raise ValidationError(
            format_problem(
                f"metric {metric!r} without a prescription",
                "V<x>% is relative to the prescribed dose",
                "pass prescription_gy",
            )
        )
    return 100.0 * structure.volume_at_least(value / 100.0 * prescription_gy) / structure.volume_cc


def dvh_metrics(
    structure: StructureDose, prescription_gy: float | None = None, metrics: tuple[str, ...] = DEFAULT_METRICS
) -> dict[str, float]:
    """The ``metrics`` of one structure (Gy; ``V..%`` in %, ``V..Gy`` and ``volume_cc`` in cm³).

    ``V100%`` is added when a prescription is given.
    """
    names = (*metrics, "volume_cc", *(("V100%",) if prescription_gy else ()))
    return {name: evaluate_metric(structure, name, prescription_gy) for name in dict.fromkeys(names)}


def cumulative_dvh(structure: StructureDose, bin_width_gy: float = 0.1) -> pd.DataFrame:
    """Cumulative DVH: for each dose level ``0, w, 2w ...`` up to the maximum, the volume receiving at least it.

    Returns
    -------
    pandas.DataFrame
        ``dose_gy, volume_cc, volume_pct``.
    """
    if not bin_width_gy > 0:
        raise ValidationError(format_problem(f"bin width {bin_width_gy!r} Gy", "must be > 0", "use e.g. 0.1"))
    levels = np.arange(0.0, structure.doses[0] + bin_width_gy, bin_width_gy)
    ascending = structure.doses[::-1]
    counts = ascending.size - np.searchsorted(ascending, levels, side="left")
    volume = counts * structure.voxel_volume_cc
    return pd.DataFrame(
        {"dose_gy": np.round(levels, 6), "volume_cc": volume, "volume_pct": 100.0 * counts / ascending.size}
    )


def conformity_indices(dose: np.ndarray, target: np.ndarray, prescription_gy: float) -> dict[str, float]:
    """Paddick conformity index and gradient index of one target on a whole dose grid.

    Returns
    -------
    dict
        ``paddick_ci`` (1 = perfect) and ``gradient_index`` (``PIV_50 / PIV_100``); NaN when
        no voxel of the grid reaches the prescription.
    """
    dose, target = np.asarray(dose), np.asarray(target) != 0
    if dose.shape != target.shape:
        raise ValidationError(
            format_problem(
                f"dose grid {dose.shape} and target {target.shape}",
                "must share one grid",
                "resample the dose onto the mask's grid",
            )
        )
    covered = dose >= prescription_gy
    piv, tv = int(covered.sum()), int(target.sum())
    if tv == 0:
        raise EmptyMaskError(format_problem("target mask is empty", "CI needs a target", "check the contour"))
    if piv == 0:
        return {"paddick_ci": float("nan"), "gradient_index": float("nan")}
    tv_piv = int((covered & target).sum())
    return {
        "paddick_ci": tv_piv**2 / (tv * piv),
        "gradient_index": int((dose >= 0.5 * prescription_gy).sum()) / piv,
    }
