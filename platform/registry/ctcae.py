"""CTCAE terms and the grades each term allows (a curated subset of CTCAE v5.0).

Source: National Cancer Institute, *Common Terminology Criteria for Adverse Events (CTCAE)
Version 5.0*, published November 27, 2017 (U.S. Department of Health and Human Services),
https://ctep.cancer.gov/protocolDevelopment/electronic_applications/ctc.htm#ctc_50 .

CTCAE grades 1-5 are not all defined for every term (a "-" in the document: e.g. *Fatigue*
stops at grade 3, *Edema cerebral* starts at grade 4). ``data/ctcae_v5_terms.csv`` ships **a
curated subset of 59 terms**, those expected after SABR to lung, bone/spine, brain, adrenal,
liver, pancreas and lymph nodes, and the common toxicities of TKIs and ICIs, with each term's
allowed grades transcribed from the v5.0 document. Terms are matched case-insensitively. CTCAE's
"<SOC> - Other, specify" terms (grades 1-5) are accepted with any text after "specify".

A valid v5.0 term missing from the subset is refused with a message saying so: add the row
(term, SOC, allowed grades as ``a-b``, why it is relevant) to the CSV. Other CTCAE versions
(4.03, 6.0) are stored with grades 1-5 but without a term list (none is shipped).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

__all__ = ["CtcaeTerm", "ctcae_terms", "check_ctcae", "CTCAE_SOURCE", "TERM_LIST_VERSION"]

CTCAE_SOURCE = ("NCI CTCAE v5.0 (November 27, 2017), "
                "https://ctep.cancer.gov/protocolDevelopment/electronic_applications/ctc.htm#ctc_50; "
                "curated subset shipped as sabrkit/registry/data/ctcae_v5_terms.csv")
#: The CTCAE version the shipped term list belongs to.
TERM_LIST_VERSION = "5.0"
_OTHER_SPECIFY = " - other, specify"


@dataclass(frozen=True)
class CtcaeTerm:
    """One CTCAE term: its name, system organ class, allowed grades and why it is listed."""

    term: str
    soc: str
    allowed_grades: tuple[int, ...]
    relevance: str


def _grades(text: str) -> tuple[int, ...]:
    low, _, high = text.partition("-")
    return tuple(range(int(low), int(high or low) + 1))


@lru_cache(maxsize=1)
def ctcae_terms() -> dict[str, CtcaeTerm]:
    """The shipped CTCAE v5.0 terms, keyed by lower-case term."""
    source = files("sabrkit.registry").joinpath("data/ctcae_v5_terms.csv")
    with io.StringIO(source.read_text(encoding="utf-8"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        row["term"].strip().lower(): CtcaeTerm(row["term"].strip(), row["soc"].strip(),
                                               _grades(row["allowed_grades"]), row["relevance"].strip())
        for row in rows
    }


def check_ctcae(term: str, grade: int | None, version: str) -> str | None:
    """The rule ``term``/``grade`` break under CTCAE ``version``, or None when they are valid.

    A missing grade is allowed here (it is reported as a data query, not refused).
    """
    if version != TERM_LIST_VERSION:
        return None if grade is None or 1 <= grade <= 5 else "CTCAE grades are 1-5"
    key = term.strip().lower()
    if _OTHER_SPECIFY in key:
        ok = key.split(_OTHER_SPECIFY, 1)[1].strip(" :") != ""
        return None if ok else "an 'Other, specify' term needs the specification after 'specify:'"
    known = ctcae_terms().get(key)
    if known is None:
        return (f"{term!r} is not a CTCAE v5.0 term of sabrkit's list (a curated subset); check the spelling "
                "(e.g. 'Dermatitis radiation'), use '<SOC> - Other, specify: <text>', or add the term to "
                "sabrkit/registry/data/ctcae_v5_terms.csv")
    if grade is not None and grade not in known.allowed_grades:
        allowed = ", ".join(map(str, known.allowed_grades))
        return f"CTCAE v5.0 defines grades {allowed} for {known.term!r}, not {grade}"
    return None
