"""The shipped CTCAE v5.0 term list (allowed grades) and the monthly visit schedule."""

from __future__ import annotations

import datetime as dt

from sabrkit.registry.ctcae import CTCAE_SOURCE, check_ctcae, ctcae_terms
from sabrkit.registry.schedule import (
    expected_visit_numbers,
    missing_visit_numbers,
    scheduled_date,
    visit_rule_problem,
    window_problem,
)


def test_term_list_ships_with_its_source_and_grades():
    terms = ctcae_terms()
    assert len(terms) >= 800 and "ctcae" in CTCAE_SOURCE.lower()
    # CTCAE v5.0 (NCI, 2017): Fatigue grades 1-3 only; Pneumonitis 1-5; Edema cerebral 3-5; Asystole 1, 4, 5; Alopecia 1-2
    assert terms["fatigue"].allowed_grades == (1, 2, 3)
    assert terms["pneumonitis"].allowed_grades == (1, 2, 3, 4, 5)
    assert terms["edema cerebral"].allowed_grades == (3, 4, 5)
    assert terms["asystole"].allowed_grades == (1, 4, 5)
    # the full v5.0 release: 837 terms; Hypokalemia (MedDRA 10021018) 1-5, Hiccups 1-3
    assert len(terms) == 837 and terms["hypokalemia"].meddra_code == "10021018"
    assert terms["hiccups"].allowed_grades == (1, 2, 3)
    assert terms["alopecia"].allowed_grades == (1, 2)


def test_every_term_of_the_synthetic_generator_is_in_the_list():
    from sabrkit.synthetic import followup

    used = {
        term
        for options in (*followup._SITE_AES.values(), *followup._LOCATION_AES.values())
        for term, *_ in options
    }
    used |= {term for options in followup._SYSTEMIC_AES.values() for term, _ in options}
    assert {term.lower() for term in used} <= set(ctcae_terms())


def test_check_ctcae_rules():
    assert check_ctcae("Fatigue", 3, "5.0") is None
    assert "grades 1, 2, 3" in check_ctcae("Fatigue", 4, "5.0")
    assert check_ctcae("fatigue", None, "5.0") is None  # ungraded: a data query, not an error
    assert "not a CTCAE v5.0 term" in check_ctcae("Tiredness", 1, "5.0")
    assert check_ctcae("Investigations - Other, specify: troponin", 2, "5.0") is None
    assert "specification" in check_ctcae("Investigations - Other, specify", 2, "5.0")
    assert check_ctcae("Tiredness", 2, "4.03") is None  # no term list shipped for v4.03


def test_visit_schedule_and_windows():
    index = dt.date(2024, 6, 3)
    assert scheduled_date(index, 3) == dt.date(2024, 9, 2)  # round(3 * 30.4375) = 91 days
    assert window_problem(index, 3, dt.date(2024, 9, 9)) is None  # +7 days: inside the protocol window
    assert "+8 days" in window_problem(index, 3, dt.date(2024, 9, 10))
    assert (
        visit_rule_problem(index, 3, dt.date(2024, 9, 17)) is None
    )  # +15: accepted (flagged as out of window)
    assert "is visit 4" in visit_rule_problem(index, 3, dt.date(2024, 10, 2))
    assert visit_rule_problem(index, 0, dt.date(2024, 5, 20)) is None  # baseline up to 30 days before
    assert "up to visit 24" in visit_rule_problem(index, 25, dt.date(2026, 7, 1))
    # by 2024-09-10 the windows of visits 0, 1, 2 and 3 (closes 2024-09-09) have closed
    assert expected_visit_numbers(index, dt.date(2024, 9, 10)) == [0, 1, 2, 3]
    assert missing_visit_numbers([0, 2], index, dt.date(2024, 9, 10)) == [1, 3]
