"""Sample accession IDs: ``SABR-<TT>-<NNNNNN>-<C>``.

``TT`` is the two-letter specimen code (PL plasma, SE serum, WB whole blood, BC buffy coat, PB
PBMC, UR urine, FF fresh-frozen tissue, FP FFPE, DN DNA, RN RNA, CF cell-free DNA), ``NNNNNN`` a
six-digit serial (000001-999999, counted per specimen code, so each code holds up to 999,999
samples) and ``C`` an
ISO/IEC 7064 MOD 37,36 check character computed over ``SABR`` + ``TT`` + ``NNNNNN`` (hyphens
left out), e.g. ``SABR-PL-000001-C``. When a label is keyed in by hand, the check character
catches every single mistyped character and almost every swap of two adjacent characters: as in
every ISO/IEC 7064 hybrid system a few swaps go unnoticed (1 in 630 over all states and
character pairs; under 1 % of swapped serial digits), e.g. ``SABR-WB-098765-0`` and
``SABR-WB-098675-0`` share the check character. (The pure system MOD 37-2 catches every swap
but needs ``*`` as a 37th check character, the start/stop symbol of Code 39 barcodes.)

ISO/IEC 7064 MOD 37,36 (hybrid system, M = 36, alphabet ``0-9A-Z`` with values 0-35):

.. math::

    P_1 = M,\\quad S_j = \\| P_j + a_j \\|_M,\\quad P_{j+1} = (2 S_j) \\bmod (M + 1),\\quad
    C = (1 - P_{n+1}) \\bmod M

where :math:`\\|x\\|_M` is :math:`x \\bmod M` with 0 replaced by M. A complete ID satisfies
:math:`S_{n+1} = 1`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stdnum.iso7064 import mod_37_36

from sabrkit.biobank.vocabulary import SPECIMEN_CODES
from sabrkit.errors import ValidationError, format_problem

__all__ = [
    "ACCESSION_PREFIX",
    "ACCESSION_PATTERN",
    "MAX_SERIAL",
    "AccessionId",
    "accession_check_char",
    "make_accession_id",
    "parse_accession_id",
    "validate_accession_id",
    "specimen_code",
]

ACCESSION_PREFIX = "SABR"
MAX_SERIAL = 999_999
ACCESSION_PATTERN = re.compile(r"^SABR-(?P<code>[A-Z]{2})-(?P<serial>[0-9]{6})-(?P<check>[0-9A-Z])$")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CODES_TO_TYPES = {code: name for name, code in SPECIMEN_CODES.items()}
_FORMAT_RULE = (
    "an accession ID reads SABR-<TT>-<NNNNNN>-<C> (TT specimen code, six-digit serial, check character)"
)


def accession_check_char(body: str) -> str:
    """ISO/IEC 7064 MOD 37,36 check character of ``body`` (characters 0-9, A-Z).

    Computed by :mod:`stdnum.iso7064.mod_37_36` (python-stdnum, a dependency).

    Parameters
    ----------
    body : str
        Upper-case alphanumeric string, e.g. ``"SABRPL000001"``.

    Returns
    -------
    str
        One character of ``0-9A-Z``.

    Raises
    ------
    ValidationError
        If ``body`` is empty or holds a character outside 0-9, A-Z.
    """
    if not body or any(char not in _ALPHABET for char in body):
        raise ValidationError(
            format_problem(
                f"check-character input {body!r}",
                "MOD 37,36 works on the characters 0-9 and A-Z only",
                "remove hyphens and spaces and use upper case",
            )
        )
    return str(mod_37_36.calc_check_digit(body))


def specimen_code(specimen_type: str) -> str:
    """The two-letter code of a specimen type name (``"plasma"`` -> ``"PL"``); codes pass through."""
    if specimen_type in _CODES_TO_TYPES:
        return specimen_type
    try:
        return SPECIMEN_CODES[specimen_type]
    except KeyError:
        raise ValidationError(
            format_problem(
                f"specimen type {specimen_type!r}",
                "specimen type must be one of " + ", ".join(f"{n} ({c})" for n, c in SPECIMEN_CODES.items()),
                "use one of the listed names or two-letter codes",
            )
        ) from None


@dataclass(frozen=True)
class AccessionId:
    """The parts of a valid accession ID."""

    specimen_code: str
    serial: int
    check_char: str

    @property
    def specimen_type(self) -> str:
        """Specimen type name (``"plasma"``)."""
        return _CODES_TO_TYPES[self.specimen_code]

    def __str__(self) -> str:
        return f"{ACCESSION_PREFIX}-{self.specimen_code}-{self.serial:06d}-{self.check_char}"


def make_accession_id(specimen_type: str, serial: int) -> str:
    """Build the accession ID of sample number ``serial`` of a specimen type.

    Parameters
    ----------
    specimen_type : str
        Specimen type name (``"plasma"``) or two-letter code (``"PL"``).
    serial : int
        1 to 999999.

    Returns
    -------
    str
        ``SABR-<TT>-<NNNNNN>-<C>``.

    Raises
    ------
    ValidationError
        Unknown specimen type or serial out of range.
    """
    code = specimen_code(specimen_type)
    if isinstance(serial, bool) or not isinstance(serial, int) or not 1 <= serial <= MAX_SERIAL:
        raise ValidationError(
            format_problem(
                f"accession serial {serial!r}",
                f"the serial must be an integer from 1 to {MAX_SERIAL}",
                "take the next free serial from the biobank database",
            )
        )
    body = f"{ACCESSION_PREFIX}{code}{serial:06d}"
    return str(AccessionId(code, serial, accession_check_char(body)))


def parse_accession_id(accession_id: str) -> AccessionId:
    """Split a valid accession ID into its parts; raises like :func:`validate_accession_id`."""
    match = ACCESSION_PATTERN.match(accession_id) if isinstance(accession_id, str) else None
    if match is None:
        raise ValidationError(
            format_problem(
                f"accession ID {accession_id!r}",
                _FORMAT_RULE,
                "copy the ID exactly as printed on the label (upper case, with hyphens)",
            )
        )
    code, serial, check = match["code"], int(match["serial"]), match["check"]
    if code not in _CODES_TO_TYPES:
        raise ValidationError(
            format_problem(
                f"accession ID {accession_id!r}: specimen code {code!r}",
                "the specimen code must be one of " + ", ".join(sorted(_CODES_TO_TYPES)),
                "check the label for a mistyped code",
            )
        )
    if serial < 1:
        raise ValidationError(
            format_problem(
                f"accession ID {accession_id!r}: serial {serial:06d}",
                f"the serial must be from 000001 to {MAX_SERIAL}",
                "check the label for a mistyped serial",
            )
        )
    expected = accession_check_char(f"{ACCESSION_PREFIX}{code}{match['serial']}")
    if check != expected:
        raise ValidationError(
            format_problem(
                f"accession ID {accession_id!r}: check character {check!r}",
                "the last character must be the ISO/IEC 7064 MOD 37,36 check character of the rest "
                f"(here {expected!r} would be needed)",
                "the ID was mistyped or misread: scan the barcode or re-enter the ID",
            )
        )
    return AccessionId(code, serial, check)


def validate_accession_id(accession_id: str) -> str:
    """Return ``accession_id`` if it is well formed with a correct check character.

    Raises
    ------
    ValidationError
        Naming the bad ID and the rule it breaks (format, specimen code, serial, check character).
    """
    parse_accession_id(accession_id)
    return accession_id
