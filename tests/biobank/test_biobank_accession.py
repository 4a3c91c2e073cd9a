"""Accession IDs: format, ISO/IEC 7064 MOD 37,36 check character, error detection."""

from __future__ import annotations

import pytest
from stdnum.iso7064 import mod_37_36

from sabrkit.biobank import (
    SPECIMEN_CODES,
    accession_check_char,
    make_accession_id,
    parse_accession_id,
    validate_accession_id,
)
from sabrkit.errors import ValidationError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SAMPLE_IDS = [
    make_accession_id(code, serial) for code in SPECIMEN_CODES.values() for serial in (1, 42, 98765, 999999)
]


def test_reference_vector_from_python_stdnum_docs():
    # python-stdnum, stdnum/iso7064/mod_37_36.py doctest: calc_check_digit('A12425GABC1234002') == 'M'
    assert accession_check_char("A12425GABC1234002") == "M"


def test_every_issued_id_passes_stdnum_validation():
    # python-stdnum's validator (independent of how the ID was built) accepts body + check character
    for accession_id in SAMPLE_IDS:
        assert mod_37_36.is_valid(accession_id[:-2].replace("-", "") + accession_id[-1]), accession_id


def test_make_parse_validate_round_trip():
    accession_id = make_accession_id("plasma", 1)
    assert accession_id == make_accession_id("PL", 1)
    assert accession_id.startswith("SABR-PL-000001-") and len(accession_id) == 16
    parts = parse_accession_id(accession_id)
    assert (parts.specimen_code, parts.serial, parts.specimen_type) == ("PL", 1, "plasma")
    assert str(parts) == accession_id
    for accession_id in SAMPLE_IDS:
        assert validate_accession_id(accession_id) == accession_id


def _compact(accession_id: str) -> str:
    return accession_id.replace("-", "")


def _checks(compact: str) -> bool:
    """Whether body + check character of a compact ID (``SABRPL0000017``) is consistent."""
    return accession_check_char(compact[:-1]) == compact[-1]


@pytest.mark.parametrize("accession_id", SAMPLE_IDS[::5])
def test_every_single_character_substitution_is_detected(accession_id):
    compact = _compact(accession_id)
    for position in range(len(compact)):
        for char in ALPHABET:
            if char != compact[position]:
                changed = compact[:position] + char + compact[position + 1 :]
                assert not _checks(changed), (accession_id, position, char)


def test_adjacent_transpositions_are_detected_except_the_documented_hybrid_blind_spot():
    """ISO/IEC 7064 hybrid systems detect every single substitution but not every adjacent
    transposition: for MOD 37,36, 72 of the 45,360 (running state, ordered pair) combinations,
    i.e. 1 in 630, leave the check unchanged. Computed here exhaustively."""

    def step(state: int, char: str) -> int:
        total = (state + ALPHABET.index(char)) % 36 or 36
        return (2 * total) % 37

    combos = [(p, a, b) for p in range(1, 37) for a in ALPHABET for b in ALPHABET if a != b]
    missed = [(p, a, b) for p, a, b in combos if step(step(p, a), b) == step(step(p, b), a)]
    assert len(combos) == 45_360 and len(missed) == 72


def test_swapped_serial_digits_are_caught_in_over_99_percent_of_ids():
    swaps = missed = 0
    for code in SPECIMEN_CODES.values():
        for serial in range(1, 200_000, 3001):
            compact = _compact(make_accession_id(code, serial))
            for position in range(6, len(compact) - 1):  # serial digits and the check character
                a, b = compact[position], compact[position + 1]
                if a != b:
                    swaps += 1
                    missed += _checks(compact[:position] + b + a + compact[position + 2 :])
    assert swaps > 2_000
    assert missed / swaps < 0.01


def test_known_undetected_transposition_is_pinned():
    # the blind spot in practice: swapping 7 and 6 of SABR-WB-098765 keeps check character 0
    assert make_accession_id("WB", 98765) == "SABR-WB-098765-0"
    assert validate_accession_id("SABR-WB-098675-0") == "SABR-WB-098675-0"
    with pytest.raises(ValidationError):
        validate_accession_id("SABR-WB-098756-0")  # most swaps are caught


def test_validate_names_the_bad_id_and_the_rule():
    good = make_accession_id("serum", 123)
    wrong_check = good[:-1] + next(c for c in ALPHABET if c != good[-1])
    with pytest.raises(ValidationError, match=rf"{wrong_check}.*MOD 37,36 check character"):
        validate_accession_id(wrong_check)
    serial_typo = good.replace("000123", "000132")
    with pytest.raises(ValidationError, match="check character"):
        validate_accession_id(serial_typo)
    with pytest.raises(ValidationError, match="SABR-<TT>-<NNNNNN>-<C>"):
        validate_accession_id("SABR-PL-12-X")
    with pytest.raises(ValidationError, match="specimen code 'XX'"):
        validate_accession_id("SABR-XX-000001-" + accession_check_char("SABRXX000001"))
    with pytest.raises(ValidationError, match="serial"):
        validate_accession_id("SABR-PL-000000-" + accession_check_char("SABRPL000000"))


def test_make_refuses_unknown_type_and_bad_serial():
    with pytest.raises(ValidationError, match="specimen type 'saliva'"):
        make_accession_id("saliva", 1)
    for serial in (0, 1_000_000, -3):
        with pytest.raises(ValidationError, match="serial"):
            make_accession_id("plasma", serial)
