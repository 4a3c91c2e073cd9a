"""CTCAE v5.0 terms: every term with its system organ class, MedDRA code and the grades it allows.

Source: National Cancer Institute, *Common Terminology Criteria for Adverse Events (CTCAE)
Version 5.0*, published November 27, 2017 (U.S. Department of Health and Human Services; a
U.S. government work in the public domain),
https://ctep.cancer.gov/protocolDevelopment/electronic_applications/ctc.htm#ctc_50 .

``data/ctcae_v5_terms.csv`` ships **all 837 terms** of the v5.0 release (26 system organ
classes, including each SOC's "<SOC> - Other, specify"): ``term``, ``soc``, ``meddra_code``
(MedDRA v20.1 lowest-level term code), ``allowed_grades`` (space-separated) and
``study_relevance`` (why a term is frequent in this study: SABR sites, TKI and ICI toxicities;
blank for the rest). It was converted from a machine-readable transcription of the NCI document
(the ``ctcaev5.js`` table of github.com/oncohub/CTCAE5, one record per term with the text of
grades 1-5; a grade is allowed when its cell is not "-"); see ``data/README.md``.

CTCAE grades 1-5 are not all defined for every term (a "-" in the document: *Fatigue* stops at
grade 3, *Edema cerebral* starts at grade 3, *Asystole* allows 1, 4 and 5). Terms are matched
case-insensitively. "<SOC> - Other, specify" terms (grades 1-5) are accepted with the text after
"specify". Other CTCAE versions (4.03, 6.0) are stored with grades 1-5 but without a term list.
:func:`terms_for_entry` lists the study's frequent terms first (forms and the term search).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

__all__ = ["CtcaeTerm", "ctcae_terms", "terms_for_entry", "check_ctcae", "CTCAE_SOURCE", "TERM_LIST_VERSION"]

CTCAE_SOURCE = (
    "NCI CTCAE v5.0 (November 27, 2017), "
    "https://ctep.cancer.gov/protocolDevelopment/electronic_applications/ctc.htm#ctc_50; "
    "all 837 terms shipped as sabrkit/registry/data/ctcae_v5_terms.csv"
)
#: The CTCAE version the shipped term list belongs to.
TERM_LIST_VERSION = "5.0"
_OTHER_SPECIFY = " - other, specify"


@dataclass(frozen=True)
class CtcaeTerm:
    """One CTCAE term: name, system organ class, allowed grades, MedDRA code, why it is frequent here."""

    term: str
    soc: str
    allowed_grades: tuple[int, ...]
    relevance: str
    meddra_code: str = ""

    @property
    def frequent(self) -> bool:
        """True for the terms this study expects (listed first in forms)."""
        return bool(self.relevance)


@lru_cache(maxsize=1)
def ctcae_terms() -> dict[str, CtcaeTerm]:
    """The shipped CTCAE v5.0 terms, keyed by lower-case term."""
    source = files("sabrkit.registry").joinpath("data/ctcae_v5_terms.csv")
    with io.StringIO(source.read_text(encoding="utf-8"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        row["term"].strip().lower(): CtcaeTerm(
            row["term"].strip(),
            row["soc"].strip(),
            tuple(int(g) for g in row["allowed_grades"].split()),
            row["study_relevance"].strip(),
            row["meddra_code"].strip(),
        )
        for row in rows
    }


def terms_for_entry(query: str = "", limit: int | None = None) -> list[CtcaeTerm]:
    """Terms matching ``query`` (case-insensitive, in the term or its SOC): the study's frequent ones first.

    Within each group, terms whose name starts with the query come before those that only contain it,
    then alphabetical order.
    """
    needle = query.strip().lower()
    found = [t for key, t in ctcae_terms().items() if not needle or needle in key or needle in t.soc.lower()]
    found.sort(
        key=lambda t: (
            not t.frequent,
            not t.term.lower().startswith(needle),
            needle not in t.term.lower(),
            t.term.lower(),
        )
    )
    return found[:limit] if limit else found


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
        return (
            f"{term!r} is not a CTCAE v5.0 term; check the spelling (e.g. 'Dermatitis radiation', "
            "'Hypokalemia') or use '<SOC> - Other, specify: <text>'"
        )
    if grade is not None and grade not in known.allowed_grades:
        allowed = ", ".join(map(str, known.allowed_grades))
        return f"CTCAE v5.0 defines grades {allowed} for {known.term!r}, not {grade}"
    return None
