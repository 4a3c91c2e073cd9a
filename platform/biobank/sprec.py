"""SPREC codes (Standard PREanalytical Code, ISBER, version 3.0) of fluid samples.

A fluid sample's SPREC is seven elements joined by hyphens::

    type of sample - primary container - pre-centrifugation - centrifugation
    - second centrifugation - post-centrifugation - long-term storage

e.g. ``PL2-PED-A-D-J-A-A``: double-spun plasma from a potassium-EDTA tube, processed at room
temperature within 2 h, spun at 2-10 °C, 10-15 min, < 3000 g with braking, spun again above
10 000 g, frozen within 1 h at 2-10 °C, stored in a 0.5-2 mL polypropylene tube at -85 to -60 °C.

:func:`derive_sprec` computes the code from what the lab records (times, temperatures, g-force,
minutes, braking, containers, storage temperature); nobody types it. Elements that cannot be
derived because a value was not recorded are ``X`` (``XXX`` for the container), as SPREC
prescribes for "unknown"; recorded conditions outside every defined option are ``Z`` ("other").

Version and sources: SPREC 3.0 (Betsou F. et al., "Standard PREanalytical Code Version 3.0",
Biopreserv Biobank 2018;16(1):9-12) keeps the fluid options of SPREC 2.0 (Lehmann S. et al.,
Biopreserv Biobank 2012;10(4):366-374, Table 1) and adds new ones. The options used here are
SPREC 2.0 options carried into 3.0: sample types and containers and the pre-centrifugation
letters as printed in the 2.0 Table 1; the centrifugation, post-centrifugation and storage
letters as tabulated by SPRECLib (github.com/chrmey/SPRECLib, a SPREC 2.0 implementation).
:data:`SPREC_VERSION` is stored with every sample's code. Solid tissue (warm/cold ischaemia,
fixation) and complex derivatives (DNA, RNA: a different element set) get no code here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from sabrkit.errors import ValidationError, format_problem

__all__ = [
    "SPREC_VERSION",
    "SPREC_SAMPLE_TYPES",
    "PRIMARY_CONTAINERS",
    "STORAGE_CONTAINERS",
    "ProcessingTemperature",
    "PROCESSING_TEMPERATURES",
    "Centrifugation",
    "Preanalytics",
    "derive_sprec",
    "pre_centrifugation_code",
    "centrifugation_code",
    "post_centrifugation_code",
    "storage_code",
]

SPREC_VERSION = "3.0"

#: Temperature a sample waits at before / after centrifugation, or is spun at.
ProcessingTemperature = Literal["room_temperature", "refrigerated", "body"]
PROCESSING_TEMPERATURES: tuple[str, ...] = get_args(ProcessingTemperature)

#: SPREC type-of-sample code of each fluid specimen type; plasma is PL1 or PL2 (spins).
SPREC_SAMPLE_TYPES: dict[str, str] = {
    "whole_blood": "BLD",
    "plasma": "PL1",
    "serum": "SER",
    "buffy_coat": "BFF",  # unficolled buffy coat, non-viable (frozen without cryoprotectant)
    "pbmc": "CEL",  # Ficoll mononuclear cells, viable (cryopreserved)
    "urine": "URN",  # urine, random ("spot")
}

#: SPREC primary-container codes accepted (SPREC 2.0 Table 1, kept in 3.0).
PRIMARY_CONTAINERS: dict[str, str] = {
    "ACD": "Acid citrate dextrose",
    "CAT": "Serum tube without clot activator",
    "CPT": "Cell Preparation Tube",
    "EDG": "EDTA and gel",
    "HEP": "Lithium heparin",
    "LHG": "Lithium heparin and gel",
    "PAX": "PAXgene blood RNA+",
    "PED": "Potassium EDTA",
    "PET": "Polyethylene tube sterile",
    "PPS": "Polypropylene tube sterile",
    "PXD": "PAXgene blood DNA",
    "SCI": "Sodium citrate",
    "SHP": "Sodium heparin",
    "SPO": "Sodium fluoride/potassium oxalate",
    "SST": "Serum separator tube with clot activator",
    "TEM": "Tempus tube",
    "XXX": "Unknown",
    "ZZZ": "Other",
}

#: Long-term storage containers and their SPREC letter per temperature band.
STORAGE_CONTAINERS: tuple[str, ...] = (
    "pp_tube_0.5_2ml",
    "pp_tube_40_500ul",
    "pp_tube_over_5ml",
    "cryotube_1_2ml",
    "microplate",
    "original_primary_container",
)

_NEVER_SPUN = {"whole_blood"}
_HOUR = timedelta(hours=1)
# pre-centrifugation: (upper bound in hours, letter at room temperature, letter at 2-10 °C)
_PRE_BANDS = (
    (2, "A", "B"),
    (4, "C", "D"),
    (8, "E", "F"),
    (12, "G", "H"),
    (24, "I", "J"),
    (48, "K", "L"),
    (None, "M", "N"),
)
# post-centrifugation: (upper bound in hours, letter at 2-10 °C, letter at room temperature)
_POST_BANDS = ((1, "A", "B"), (2, "C", "D"), (8, "E", "F"), (24, "G", "H"), (None, "I", "J"))
# storage: container -> [(band, letter)]; bands: ult (-85..-60), freezer (-35..-18), cryo (< -135), ln (< -150)
_STORAGE_LETTERS: dict[str, dict[str, str]] = {
    "pp_tube_0.5_2ml": {"ult": "A", "freezer": "B", "cryo": "V", "ln": "V"},
    "cryotube_1_2ml": {"ln": "C", "ult": "D"},
    "pp_tube_over_5ml": {"ult": "J", "freezer": "K"},
    "microplate": {"ult": "L", "freezer": "M"},
    "pp_tube_40_500ul": {"ult": "S", "freezer": "T", "cryo": "W", "ln": "W"},
    "original_primary_container": {"ult": "Y", "freezer": "Y"},
}


@dataclass(frozen=True)
class Centrifugation:
    """One centrifugation: relative centrifugal force (g), duration, temperature and braking."""

    g_force: float
    minutes: float
    temperature: str = "room_temperature"
    braking: bool = True

    def __post_init__(self) -> None:
        if not (self.g_force > 0 and self.minutes > 0):
            raise ValidationError(
                format_problem(
                    f"centrifugation {self.g_force!r} g for {self.minutes!r} min",
                    "g-force and minutes must both be positive",
                    "enter the centrifuge's settings",
                )
            )
        if self.temperature not in ("room_temperature", "refrigerated"):
            raise ValidationError(
                format_problem(
                    f"centrifugation temperature {self.temperature!r}",
                    "centrifugation runs at room_temperature or refrigerated (2-10 °C)",
                    "use one of the two",
                )
            )


@dataclass(frozen=True)
class Preanalytics:
    """What the lab recorded about one fluid sample between collection and long-term storage.

    ``None`` means "not recorded". ``centrifugation=None`` with ``centrifuged=False`` means the
    sample was never spun (whole blood always); ``second_centrifugation=None`` after a recorded
    first spin means a single spin.
    """

    specimen_type: str
    collected_at: datetime
    primary_container: str | None = None
    processed_at: datetime | None = None
    pre_centrifugation_temperature: str | None = None
    centrifugation: Centrifugation | None = None
    second_centrifugation: Centrifugation | None = None
    post_centrifugation_temperature: str | None = None
    frozen_at: datetime | None = None
    storage_container: str | None = None
    storage_temperature_c: float | None = None
    centrifuged: bool | None = None

    @property
    def time_to_processing(self) -> timedelta | None:
        """Delay between collection and the start of processing."""
        return None if self.processed_at is None else self.processed_at - self.collected_at


def _band(hours: float, bands: tuple[tuple[int | None, str, str], ...], column: int) -> str:
    for upper, first, second in bands:
        if upper is None or hours < upper:
            return (first, second)[column]
    raise AssertionError("unreachable")  # pragma: no cover


def pre_centrifugation_code(delay: timedelta | None, temperature: str | None) -> str:
    """Pre-centrifugation element: delay collection -> processing and the temperature meanwhile.

    Bands are half-open, ``[lower, upper)`` hours: < 2 h is A (RT) / B (2-10 °C), 2-4 h C/D,
    4-8 h E/F, 8-12 h G/H, 12-24 h I/J, 24-48 h K/L, >= 48 h M/N; 35-38 °C under 2 h is O.
    """
    if delay is None or temperature is None:
        return "X"
    hours = delay / _HOUR
    if temperature == "body":
        return "O" if hours < 2 else "Z"
    return _band(hours, _PRE_BANDS, 0 if temperature == "room_temperature" else 1)


def centrifugation_code(spin: Centrifugation | None, *, known: bool = True) -> str:
    """Centrifugation element of one spin (``N``: no spin; ``X``: not recorded; ``Z``: other)."""
    if not known:
        return "X"
    if spin is None:
        return "N"
    cold = spin.temperature == "refrigerated"
    if 10 <= spin.minutes <= 15:
        if spin.g_force < 3000:
            return ("C" if cold else "A") if not spin.braking else ("D" if cold else "B")
        if spin.braking:
            for upper, room, refrigerated in ((6000, "E", "F"), (10000, "G", "H"), (None, "I", "J")):
                if upper is None or spin.g_force < upper:
                    return refrigerated if cold else room
    if spin.minutes == 30 and spin.g_force < 1000 and not cold and not spin.braking:
        return "M"
    return "Z"


def post_centrifugation_code(delay: timedelta | None, temperature: str | None, *, centrifuged: bool) -> str:
    """Post-centrifugation element: delay from the end of the last spin to freezing.

    < 1 h A (2-10 °C) / B (RT), 1-2 h C/D, 2-8 h E/F, 8-24 h G/H, >= 24 h I/J; ``N`` when the
    sample was not centrifuged.
    """
    if not centrifuged:
        return "N"
    if delay is None or temperature is None:
        return "X"
    if temperature == "body":
        return "Z"
    return _band(delay / _HOUR, _POST_BANDS, 0 if temperature == "refrigerated" else 1)


def _temperature_band(celsius: float) -> str | None:
    if celsius <= -150:
        return "ln"
    if celsius < -135:
        return "cryo"
    if -85 <= celsius <= -60:
        return "ult"
    if -35 <= celsius <= -18:
        return "freezer"
    return None


def storage_code(container: str | None, temperature_c: float | None) -> str:
    """Long-term storage element from the storage container and temperature (°C)."""
    if container is None or temperature_c is None:
        return "X"
    if container not in _STORAGE_LETTERS:
        raise ValidationError(
            format_problem(
                f"storage container {container!r}",
                "one of " + ", ".join(STORAGE_CONTAINERS),
                "use one of the listed containers",
            )
        )
    band = _temperature_band(temperature_c)
    letters = _STORAGE_LETTERS[container]
    if band == "cryo" and "cryo" not in letters:
        band = None
    if band == "ln" and "ln" not in letters:
        band = "cryo" if "cryo" in letters else None
    return letters.get(band, "Z") if band else "Z"


def _check_order(record: Preanalytics) -> None:
    if record.processed_at is not None and record.processed_at < record.collected_at:
        raise ValidationError(
            format_problem(
                f"processing at {record.processed_at:%Y-%m-%dT%H:%M} before collection at {record.collected_at:%Y-%m-%dT%H:%M}",
                "a sample is processed after it is collected",
                "correct the collection or the processing time",
            )
        )
    start = record.processed_at or record.collected_at
    if record.frozen_at is not None and record.frozen_at < start:
        raise ValidationError(
            format_problem(
                f"freezing at {record.frozen_at:%Y-%m-%dT%H:%M} before processing/collection at {start:%Y-%m-%dT%H:%M}",
                "a sample is frozen after it is collected and processed",
                "correct the freezing time",
            )
        )
    if record.primary_container is not None and record.primary_container not in PRIMARY_CONTAINERS:
        raise ValidationError(
            format_problem(
                f"primary container {record.primary_container!r}",
                "a SPREC primary-container code: " + ", ".join(PRIMARY_CONTAINERS),
                "use the tube's SPREC code",
            )
        )


def derive_sprec(record: Preanalytics) -> str | None:
    """The SPREC code of a fluid sample (``None`` for tissue and complex derivatives).

    Parameters
    ----------
    record : Preanalytics
        Recorded times, temperatures, spins and storage of one sample.

    Returns
    -------
    str or None
        Seven hyphen-joined elements, e.g. ``"SER-SST-A-B-N-B-A"``.

    Raises
    ------
    ValidationError
        If processing precedes collection, freezing precedes processing, or a container code is
        unknown.
    """
    _check_order(record)
    if record.specimen_type not in SPREC_SAMPLE_TYPES:
        return None
    sample_type = SPREC_SAMPLE_TYPES[record.specimen_type]
    never_spun = record.specimen_type in _NEVER_SPUN or record.centrifuged is False
    first_known = never_spun or record.centrifugation is not None
    first = None if never_spun else record.centrifugation
    if record.specimen_type == "plasma" and record.second_centrifugation is not None:
        sample_type = "PL2"
    spins = [spin for spin in (first, record.second_centrifugation) if spin is not None]
    end_of_spins = None
    if record.processed_at is not None and (spins or never_spun):
        end_of_spins = record.processed_at + timedelta(minutes=sum(spin.minutes for spin in spins))
    post_delay = None if record.frozen_at is None or end_of_spins is None else record.frozen_at - end_of_spins
    if post_delay is not None and post_delay < timedelta(0):
        raise ValidationError(
            format_problem(
                f"freezing at {record.frozen_at:%Y-%m-%dT%H:%M}",
                "freezing comes after the end of centrifugation (processing start + spin minutes)",
                "correct the freezing time or the centrifugation minutes",
            )
        )
    elements = [
        sample_type,
        record.primary_container or "XXX",
        pre_centrifugation_code(record.time_to_processing, record.pre_centrifugation_temperature),
        centrifugation_code(first, known=first_known),
        centrifugation_code(record.second_centrifugation, known=first_known),
        "X"
        if not first_known
        else post_centrifugation_code(
            post_delay, record.post_centrifugation_temperature, centrifuged=first is not None
        ),
        storage_code(record.storage_container, record.storage_temperature_c),
    ]
    return "-".join(elements)
