"""Synthetic SABR plans: an analytic dose model, PTVs, nearby OARs and planted constraint violations.

For each lesion (one SABR course row of the registry: total dose ``D_Rx``, ``n`` fractions) on
its planning CT region:

* **PTV** = GTV expanded isotropically by ``ptv_margin_mm`` (5 mm; Euclidean distance transform);
* **dose** is an analytic function of the signed distance ``s`` (mm) of a point to the PTV
  surface (negative inside), computed on the CT grid:

  .. math::

      D(s) = D_{Rx} \\cdot \\begin{cases}
          1 + (H - 1)\\,(1 - e^{s/\\tau}) & s \\le 0 \\\\
          2^{-s / d_{50}} & s > 0
      \\end{cases}

  with hot spot ``H = 1.3`` (the prescription isodose is the 77 % line of the maximum, as for
  SABR plans prescribed to the 70-80 % isodose), ``tau = 4 mm`` and ``d50 = 8 mm`` (the dose
  halves every 8 mm outside the PTV: a steep SABR fall-off). The prescription isodose is the
  PTV surface, so the PTV's ``D98%`` is about ``D_Rx``;
* **OAR**: one serial organ per lesion where the site has one nearby (:data:`SITE_OAR`: spinal
  cord for vertebral bone lesions, oesophagus for central lung and nodes, chest wall for
  peripheral lung, stomach for liver/adrenal, duodenum for pancreas, brainstem for brain;
  :func:`oar_for`), a
  cylinder of radius ``oar_radius_mm`` (4 mm) along z, beside the PTV on the side with the most
  room in the region, at the distance where its near-maximum dose (0.035 cc) is at most
  ``safe_fraction`` (0.7) of the organ's lowest TG-101 limit; for the lesions chosen as
  **planted violations** at the farthest position (from half-way inside the PTV outwards)
  where it is still at least 1.1 times the ``Dmax`` limit (about ``violation_fraction``, 1.25,
  times the limit).
  The placement is searched on the rendered dose, so every planted OAR fails its ``Dmax``
  constraint and every other OAR passes all of its constraints (its near-maximum, which no
  volume metric exceeds, stays at 70 % of the organ's lowest limit);
* the RTDOSE grid samples the CT-grid dose (trilinear) every ``grid_spacing_mm`` (2 mm) in x
  and y, from a quarter of that spacing inside the CT origin, and on every CT slice, over the CT region.

Fractionations the table does not list (4 and 8 fractions) get their OAR at the safe distance
for the 5-fraction limit and are never planted (the check reports them as not tabulated).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from sabrkit.errors import ConfigError, format_problem

__all__ = [
    "SITE_OAR",
    "DoseModel",
    "LesionPlan",
    "dose_grid",
    "oar_for",
    "plan_dose",
    "plan_lesion",
    "ptv_mask",
]

logger = logging.getLogger(__name__)

#: site -> TG-263 name of the serial OAR next to the lesion (bone and lung: see :func:`oar_for`).
SITE_OAR: dict[str, str | None] = {
    "lymph_node": "Esophagus",
    "liver": "Stomach",
    "adrenal": "Stomach",
    "pancreas": "Duodenum",
    "brain": "Brainstem",
}


def oar_for(site: str, fractions: int) -> str | None:
    """The OAR drawn next to a lesion. The registry has no lesion location, so the SABR-COMET
    fractionation stands in for it: bone in 1 or 3 fractions is vertebral (spinal cord; 5: none),
    lung in 8 fractions is central (oesophagus; else chest wall)."""
    if site == "bone":
        return "SpinalCord" if fractions in (1, 3) else None
    if site == "lung":
        return "Esophagus" if fractions == 8 else "Chestwall"
    return SITE_OAR.get(site)


@dataclass(frozen=True)
class DoseModel:
    """Parameters of the analytic dose model (module docstring)."""

    ptv_margin_mm: float = 5.0
    hot_spot: float = 1.3
    tau_mm: float = 4.0
    d50_mm: float = 8.0
    grid_spacing_mm: float = 2.0
    oar_radius_mm: float = 4.0
    safe_fraction: float = 0.7
    violation_fraction: float = 1.25

    def __post_init__(self) -> None:
        if not (
            self.hot_spot >= 1.0
            and self.tau_mm > 0
            and self.d50_mm > 0
            and self.grid_spacing_mm > 0
            and self.ptv_margin_mm >= 0
            and self.oar_radius_mm > 0
            and 0 < self.safe_fraction < 0.9
            and self.violation_fraction > 1.1
        ):
            raise ConfigError(
                format_problem(
                    f"dose model {self}",
                    "hot_spot >= 1, lengths > 0, safe_fraction in (0, 0.9), violation_fraction > 1.1",
                    "use the defaults of DoseModel",
                )
            )


@dataclass(frozen=True)
class LesionPlan:
    """One lesion's synthetic plan on its CT grid (arrays ``[z, y, x]``)."""

    dose_gy: np.ndarray
    ptv: np.ndarray
    oar_name: str | None
    oar: np.ndarray | None
    oar_dmax_gy: float | None
    oar_limit_gy: float | None
    planted: bool


def _step(spacing_xyz: tuple[float, float, float]) -> np.ndarray:
    return np.array([spacing_xyz[2], spacing_xyz[1], spacing_xyz[0]], dtype=np.float64)


def ptv_mask(gtv: np.ndarray, spacing_xyz: tuple[float, float, float], margin_mm: float) -> np.ndarray:
    """GTV expanded isotropically by ``margin_mm`` (voxel centres within the margin)."""
    outside = ndi.distance_transform_edt(gtv == 0, sampling=_step(spacing_xyz))
    return (outside <= margin_mm + 1e-6).astype(np.uint8)


def plan_dose(
    ptv: np.ndarray, spacing_xyz: tuple[float, float, float], prescription_gy: float, model: DoseModel
) -> np.ndarray:
    """The analytic dose (Gy, float32, ``[z, y, x]``) of a PTV on its CT grid."""
    step = _step(spacing_xyz)
    half = 0.5 * float(step.min())  # voxel centres sit half a voxel from the surface
    out_d = ndi.distance_transform_edt(ptv == 0, sampling=step) - half
    in_d = ndi.distance_transform_edt(ptv != 0, sampling=step) - half
    s = np.where(ptv != 0, -np.maximum(in_d, 0.0), np.maximum(out_d, 0.0))
    inside = 1.0 + (model.hot_spot - 1.0) * (1.0 - np.exp(np.minimum(s, 0.0) / model.tau_mm))
    outside = np.exp2(-np.maximum(s, 0.0) / model.d50_mm)
    return (prescription_gy * np.where(s <= 0, inside, outside)).astype(np.float32)


def _cylinder(
    shape: tuple[int, ...],
    spacing_xyz: tuple[float, float, float],
    centre_yx_mm: tuple[float, float],
    radius_mm: float,
) -> np.ndarray:
    y = np.arange(shape[1]) * spacing_xyz[1]
    x = np.arange(shape[2]) * spacing_xyz[0]
    disc = (y[:, None] - centre_yx_mm[0]) ** 2 + (x[None, :] - centre_yx_mm[1]) ** 2 <= radius_mm**2
    return np.broadcast_to(disc, shape).astype(np.uint8)


def _near_max(dose: np.ndarray, mask: np.ndarray, voxel_cc: float, volume_cc: float = 0.035) -> float:
    values = np.sort(dose[mask != 0])[::-1]
    k = max(1, int(np.ceil(volume_cc / voxel_cc - 1e-9)))
    return float(values[min(k, values.size) - 1])


def plan_lesion(
    gtv: np.ndarray,
    spacing_xyz: tuple[float, float, float],
    prescription_gy: float,
    oar_name: str | None,
    oar_limit_gy: float | None,
    oar_lowest_limit_gy: float | None,
    planted: bool,
    model: DoseModel | None = None,
) -> LesionPlan:
    """Plan one lesion: PTV, dose and (when ``oar_name``) the OAR placed for its target near-maximum.

    ``oar_limit_gy`` is the OAR's ``Dmax`` limit for the plan's fractions and
    ``oar_lowest_limit_gy`` the lowest of all its limits. The OAR moves away from the PTV
    (on the side with the most room) in 0.5 mm steps until its near-maximum dose (0.035 cc) falls below the
    target: between 1.1 and ``violation_fraction`` times the ``Dmax`` limit when ``planted``
    (placed safely when impossible), else at most ``safe_fraction`` times the lowest limit (so
    every metric of a safe OAR passes). When no position inside the region works the OAR is left
    out (``oar_name`` None in the result).
    """
    model = model or DoseModel()
    ptv = ptv_mask(gtv, spacing_xyz, model.ptv_margin_mm)
    dose = plan_dose(ptv, spacing_xyz, prescription_gy, model)
    if oar_name is None or oar_limit_gy is None or oar_lowest_limit_gy is None:
        return LesionPlan(dose, ptv, None, None, None, None, False)
    voxel_cc = float(np.prod(spacing_xyz)) / 1000.0
    _, yy, xx = np.nonzero(ptv)
    centre = (float(yy.mean()) * spacing_xyz[1], float(xx.mean()) * spacing_xyz[0])
    extent = ((gtv.shape[1] - 1) * spacing_xyz[1], (gtv.shape[2] - 1) * spacing_xyz[0])
    edges = [
        (0, 1.0, float(yy.max()) * spacing_xyz[1]),
        (0, -1.0, float(yy.min()) * spacing_xyz[1]),
        (1, 1.0, float(xx.max()) * spacing_xyz[0]),
        (1, -1.0, float(xx.min()) * spacing_xyz[0]),
    ]
    # the side of the PTV with the most room to the region's border (posterior +y first on ties)
    axis, sign, edge = max(edges, key=lambda e: (extent[e[0]] - e[2]) if e[1] > 0 else e[2])

    def place(gap: float) -> np.ndarray | None:
        position = edge + sign * (gap + model.oar_radius_mm)
        if position - model.oar_radius_mm < 0 or position + model.oar_radius_mm > extent[axis]:
            return None
        where = (position, centre[1]) if axis == 0 else (centre[0], position)
        return _cylinder(gtv.shape, spacing_xyz, where, model.oar_radius_mm)

    def near_max(oar: np.ndarray) -> float:
        return _near_max(dose, oar, voxel_cc) if oar.any() else 0.0

    gap = -model.oar_radius_mm  # a planted OAR may reach into the PTV (as chest wall often does)
    if planted:  # the farthest position still clearly violating (>= 1.1 x limit), at most violation_fraction
        best: tuple[np.ndarray, float] | None = None
        while (oar := place(gap)) is not None and (value := near_max(oar)) >= 1.1 * oar_limit_gy:
            best = (oar, value)
            if value <= oar_limit_gy * model.violation_fraction:
                break
            gap += 0.5
        if best is not None:
            return LesionPlan(dose, ptv, oar_name, best[0].astype(np.uint8), best[1], oar_limit_gy, True)
        logger.info("OAR %s cannot be placed for a clear violation: placed safely instead", oar_name)
    gap = 0.0
    target = oar_lowest_limit_gy * model.safe_fraction
    while (oar := place(gap)) is not None:
        value = near_max(oar)
        if value <= target:
            return LesionPlan(dose, ptv, oar_name, oar.astype(np.uint8), value, oar_limit_gy, False)
        gap += 0.5
    logger.info("OAR %s does not fit in the region at a safe distance from the PTV: left out", oar_name)
    return LesionPlan(dose, ptv, None, None, None, None, False)


def dose_grid(
    dose: np.ndarray, spacing_xyz: tuple[float, float, float], grid_spacing_mm: float
) -> tuple[np.ndarray, tuple[float, float, float], tuple[float, float, float]]:
    """Sample the CT-grid dose (trilinear) on a grid of ``grid_spacing_mm`` in x, y and every CT slice.

    The dose grid starts a quarter of its spacing inside the CT origin in x and y (so that no
    dose-grid point falls on a contour, which runs half-way between CT voxel centres) and on the
    CT's first slice; returns the ``[z, y, x]`` array, its spacing (x, y, z) and its origin offset
    from the CT origin (x, y, z, mm).
    """
    shift = 0.25 * grid_spacing_mm
    ny = int(np.floor(((dose.shape[1] - 1) * spacing_xyz[1] - shift) / grid_spacing_mm)) + 1
    nx = int(np.floor(((dose.shape[2] - 1) * spacing_xyz[0] - shift) / grid_spacing_mm)) + 1
    z = np.arange(dose.shape[0], dtype=np.float64)
    y = (shift + np.arange(ny) * grid_spacing_mm) / spacing_xyz[1]
    x = (shift + np.arange(nx) * grid_spacing_mm) / spacing_xyz[0]
    coords = np.meshgrid(z, y, x, indexing="ij")
    sampled = ndi.map_coordinates(dose.astype(np.float64), coords, order=1, mode="nearest")
    return (
        sampled.astype(np.float32),
        (grid_spacing_mm, grid_spacing_mm, float(spacing_xyz[2])),
        (shift, shift, 0.0),
    )
