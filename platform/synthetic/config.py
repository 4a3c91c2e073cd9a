"""Settings of the synthetic SABR cohort generator.

:class:`SynthConfig` is a frozen dataclass validated on construction: a bad value raises
:class:`sabrkit.errors.ConfigError` naming the value, the rule and the fix. Entry points build
one from ``params.yaml`` (with :meth:`SynthConfig.from_mapping`, which rejects unknown keys) and
pass it down; library code never reads settings files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sabrkit.errors import ConfigError, format_problem

__all__ = ["SynthConfig"]

_MAX_PATIENTS = 100_000


def _as_date(name: str, value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(
        format_problem(
            f"{name}={value!r}",
            "dates must be datetime.date objects or ISO strings YYYY-MM-DD",
            f"write {name} as e.g. '2024-05-01'",
        )
    )


def _as_triple(name: str, value: Any, kind: type) -> tuple:
    try:
        items = tuple(kind(v) for v in value)
    except (TypeError, ValueError):
        items = ()
    if len(items) != 3:
        raise ConfigError(
            format_problem(
                f"{name}={value!r}",
                f"{name} needs exactly three {kind.__name__} values (x, y, z)",
                f"pass e.g. {name}=(128, 128, 64)" if kind is int else f"pass e.g. {name}=(0.8, 0.8, 2.0)",
            )
        )
    return items


def _as_coefficients(name: str, value: object, defaults: Mapping[str, float]) -> dict[str, float]:
    """The full coefficient mapping: ``defaults`` updated by ``value`` (validated)."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            format_problem(
                f"{name}={value!r}",
                f"{name} must map hazard terms to log hazard ratios",
                f"pass e.g. {name}={{'heterogeneity': 0.0}}",
            )
        )
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        raise ConfigError(
            format_problem(
                f"{name} terms {unknown}",
                f"the hazard terms are {list(defaults)}",
                "remove or rename the terms listed",
            )
        )
    out = dict(defaults)
    for term, coefficient in value.items():
        if (
            isinstance(coefficient, bool)
            or not isinstance(coefficient, (int, float))
            or not (-5.0 <= float(coefficient) <= 5.0)
        ):
            raise ConfigError(
                format_problem(
                    f"{name}.{term}={coefficient!r}",
                    "a log hazard ratio must be a number from -5 to 5 (HR 0.007 to 148)",
                    "pass e.g. 0.69 for a hazard ratio of 2, or 0 to switch the effect off",
                )
            )
        out[term] = float(coefficient)
    return out


@dataclass(frozen=True)
class SynthConfig:
    """Settings of one synthetic cohort.

    Parameters
    ----------
    n_patients : int
        Number of patients enrolled (1 to 100 000; study IDs have 3 digits up to 999 and grow
        to more digits only beyond that).
    seed : int
        Seed of the :class:`numpy.random.Generator` that :func:`sabrkit.synthetic.synthesize`
        builds; :func:`~sabrkit.synthetic.generate_cohort` itself takes the generator.
    enrolment_start, enrolment_end : datetime.date
        Enrolment window; enrolment dates are uniform over it (inclusive).
    cutoff_date : datetime.date
        Data cut-off: no event, visit or sample after it; administrative censoring date.
    image_shape : tuple of int
        CT region size in voxels, ordered (x, y, z).
    spacing_mm : tuple of float
        Voxel spacing in mm, ordered (x, y, z).
    target_pfs_2y, target_os_2y : float
        Population 2-year progression-free and overall survival the hazard model is calibrated to.
    write_images : bool
        Whether :func:`~sabrkit.synthetic.write_cohort` renders and writes the CT images and masks.
    loss_to_follow_up : float
        Probability that a patient is lost to follow-up at a uniform time before the cut-off.
    progression_coefficients, death_coefficients : dict of str to float
        Log hazard ratios of the hazard model by term (see
        :data:`sabrkit.synthetic.hazard.PROGRESSION_COEFFICIENTS`); terms not given keep their
        documented default, unknown terms are refused, 0 switches an effect off (e.g.
        ``{"heterogeneity": 0, "tumour_burden_z": 0}``: the images carry no outcome signal).
    """

    n_patients: int = 60
    seed: int = 20240501
    enrolment_start: dt.date = dt.date(2024, 5, 1)
    enrolment_end: dt.date = dt.date(2026, 5, 31)
    cutoff_date: dt.date = dt.date(2026, 11, 1)
    image_shape: tuple[int, int, int] = (128, 128, 64)
    spacing_mm: tuple[float, float, float] = (0.8, 0.8, 2.0)
    target_pfs_2y: float = 0.45
    target_os_2y: float = 0.85
    write_images: bool = True
    loss_to_follow_up: float = 0.03
    progression_coefficients: Mapping[str, float] = dataclasses.field(default_factory=dict)
    death_coefficients: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        from sabrkit.synthetic import hazard

        set_(
            self,
            "progression_coefficients",
            _as_coefficients(
                "progression_coefficients", self.progression_coefficients, hazard.PROGRESSION_COEFFICIENTS
            ),
        )
        set_(
            self,
            "death_coefficients",
            _as_coefficients("death_coefficients", self.death_coefficients, hazard.DEATH_COEFFICIENTS),
        )
        set_(self, "enrolment_start", _as_date("enrolment_start", self.enrolment_start))
        set_(self, "enrolment_end", _as_date("enrolment_end", self.enrolment_end))
        set_(self, "cutoff_date", _as_date("cutoff_date", self.cutoff_date))
        set_(self, "image_shape", _as_triple("image_shape", self.image_shape, int))
        set_(self, "spacing_mm", _as_triple("spacing_mm", self.spacing_mm, float))
        self._check()

    def _check(self) -> None:
        if (
            isinstance(self.n_patients, bool)
            or not isinstance(self.n_patients, int)
            or not (1 <= self.n_patients <= _MAX_PATIENTS)
        ):
            raise ConfigError(
                format_problem(
                    f"n_patients={self.n_patients!r}",
                    f"n_patients must be an integer from 1 to {_MAX_PATIENTS}",
                    "pass e.g. n_patients=60",
                )
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(
                format_problem(
                    f"seed={self.seed!r}", "seed must be a non-negative integer", "pass e.g. seed=20240501"
                )
            )
        if self.enrolment_end < self.enrolment_start:
            raise ConfigError(
                format_problem(
                    f"enrolment window {self.enrolment_start} to {self.enrolment_end}",
                    "enrolment_end must not precede enrolment_start",
                    "swap the two dates",
                )
            )
        # First fraction comes up to 4 weeks after enrolment: leave room for it and some follow-up.
        if self.cutoff_date < self.enrolment_end + dt.timedelta(days=60):
            raise ConfigError(
                format_problem(
                    f"cutoff_date={self.cutoff_date} with enrolment_end={self.enrolment_end}",
                    "the cut-off must fall at least 60 days after the end of enrolment "
                    "(SABR starts up to 4 weeks after enrolment)",
                    "move cutoff_date later or enrolment_end earlier",
                )
            )
        if any(n < 16 or n > 1024 for n in self.image_shape):
            raise ConfigError(
                format_problem(
                    f"image_shape={self.image_shape}",
                    "each image dimension must be 16 to 1024 voxels",
                    "pass e.g. image_shape=(128, 128, 64)",
                )
            )
        if any(not (0.1 <= s <= 10.0) for s in self.spacing_mm):
            raise ConfigError(
                format_problem(
                    f"spacing_mm={self.spacing_mm}",
                    "each voxel spacing must be 0.1 to 10 mm",
                    "pass e.g. spacing_mm=(0.8, 0.8, 2.0)",
                )
            )
        extent = [n * s for n, s in zip(self.image_shape, self.spacing_mm)]
        if min(extent) < 40.0:
            raise ConfigError(
                format_problem(
                    f"field of view {tuple(round(e, 1) for e in extent)} mm",
                    "the CT region must span at least 40 mm along every axis to hold a lesion",
                    "raise image_shape or spacing_mm",
                )
            )
        for name in ("target_pfs_2y", "target_os_2y"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not (0.05 <= value <= 0.98):
                raise ConfigError(
                    format_problem(
                        f"{name}={value!r}",
                        f"{name} must be a probability from 0.05 to 0.98",
                        "pass e.g. 0.45",
                    )
                )
        if self.target_os_2y <= self.target_pfs_2y:
            raise ConfigError(
                format_problem(
                    f"target_os_2y={self.target_os_2y} with target_pfs_2y={self.target_pfs_2y}",
                    "overall survival is at least progression-free survival, so target_os_2y "
                    "must exceed target_pfs_2y",
                    "raise target_os_2y or lower target_pfs_2y",
                )
            )
        if not isinstance(self.write_images, bool):
            raise ConfigError(
                format_problem(
                    f"write_images={self.write_images!r}", "write_images must be True or False", "pass a bool"
                )
            )
        if not isinstance(self.loss_to_follow_up, (int, float)) or not (0.0 <= self.loss_to_follow_up <= 0.5):
            raise ConfigError(
                format_problem(
                    f"loss_to_follow_up={self.loss_to_follow_up!r}",
                    "loss_to_follow_up must be a probability from 0 to 0.5",
                    "pass e.g. 0.03",
                )
            )

    @classmethod
    def tiny(cls, **overrides: Any) -> SynthConfig:
        """A small, fast cohort for tests: 8 patients, 48 x 48 x 24 voxels at 1 x 1 x 2 mm."""
        settings: dict[str, Any] = {
            "n_patients": 8,
            "image_shape": (48, 48, 24),
            "spacing_mm": (1.0, 1.0, 2.0),
        }
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SynthConfig:
        """Build a config from a mapping (e.g. a ``params.yaml`` section); unknown keys are refused."""
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                format_problem(
                    f"unknown synthetic setting(s) {unknown}",
                    f"the known settings are {sorted(known)}",
                    "remove or rename the keys listed",
                )
            )
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (dates as ISO strings, tuples as lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if not f.init:
                continue
            value = getattr(self, f.name)
            if isinstance(value, dt.date):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out
