"""Survival and toxicity analyses against published reference values (sources quoted per test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sabrkit.registry.analyses import (
    cox_by,
    exact_proportion,
    km_landmarks,
    local_failure_incidence,
    logrank_by,
    score_by_month,
    subgroup_hazard_ratios,
    toxicity_summary,
)
from sabrkit.registry.analyses.km import km_curve
from sabrkit.registry.survival import median_followup

# Gehan (1965) leukaemia remission times, 6-MP arm (+ = censored); the classic KM example.
GEHAN_6MP = [
    (6, 1),
    (6, 1),
    (6, 1),
    (6, 0),
    (7, 1),
    (9, 0),
    (10, 1),
    (10, 0),
    (11, 0),
    (13, 1),
    (16, 1),
    (17, 0),
    (19, 0),
    (20, 0),
    (22, 1),
    (23, 1),
    (25, 0),
    (32, 0),
    (32, 0),
    (34, 0),
    (35, 0),
]


def test_kaplan_meier_matches_r_survfit_and_greenwood():
    # R:  library(survival); survfit(Surv(time, cens) ~ 1, data = gehan[gehan$treat == "6-MP", ])
    # (Gehan 1965 data; e.g. Klein & Moeschberger, Survival Analysis, 2nd ed., 2003, section 4.2):
    #  time n.risk n.event survival std.err
    #     6     21       3    0.857  0.0764
    #     7     17       1    0.807  0.0869
    #    10     15       1    0.753  0.0963
    #    13     12       1    0.690  0.1068
    #    16     11       1    0.627  0.1141
    #    22      7       1    0.538  0.1282
    #    23      6       1    0.448  0.1346
    # With conf.type = "log-log", R's limits are S^exp(-/+ 1.96 * (std.err / S) / |log S|),
    # computed here from the printed survival and std.err.
    published = {
        6: (0.857, 0.0764, 21),
        7: (0.807, 0.0869, 17),
        10: (0.753, 0.0963, 15),
        13: (0.690, 0.1068, 12),
        16: (0.627, 0.1141, 11),
        22: (0.538, 0.1282, 7),
        23: (0.448, 0.1346, 6),
    }
    durations = pd.Series([t for t, _ in GEHAN_6MP], dtype=float)
    events = pd.Series([e == 1 for _, e in GEHAN_6MP])
    for time, (s, std_err, n_risk) in published.items():
        at = km_landmarks(durations, events, (time,))[0]
        sigma = (std_err / s) / abs(np.log(s))
        low, high = s ** np.exp(1.959964 * sigma), s ** np.exp(-1.959964 * sigma)
        assert at.estimate == pytest.approx(s, abs=6e-4)
        assert (at.ci_low, at.ci_high) == pytest.approx((low, high), abs=4e-3)
        assert at.n_at_risk == n_risk


def test_logrank_by_cell_type_matches_scikit_survival_veterans():
    # scikit-survival user guide (Introduction to survival analysis, "compare_survival"), and
    # R: survdiff(Surv(time, status) ~ celltype, data = veteran) -> Chisq = 25.4 on 3 df, p = 1e-05
    # reference: chi2 = 25.4037, p = 1.27e-05
    from sksurv.datasets import load_veterans_lung_cancer

    features, outcome = load_veterans_lung_cancer()
    frame = pd.DataFrame(
        {
            "AVAL": outcome["Survival_in_days"],
            "EVENT": outcome["Status"],
            "Celltype": features["Celltype"].astype(str),
        }
    )
    result = logrank_by(frame, "Celltype")
    assert result.chi2 == pytest.approx(25.4037, abs=1e-4)
    assert result.p_value == pytest.approx(1.27e-05, rel=5e-3)
    assert result.df == 3


def test_cox_hazard_ratio_matches_r_coxph_on_rossi():
    # Fox & Weisberg, "Cox Proportional-Hazards Regression for Survival Data in R", appendix to
    # An R Companion to Applied Regression (2nd ed., 2011):
    #   coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = Rossi)
    #         coef exp(coef) se(coef)      z Pr(>|z|)
    #   fin -0.37942   0.68426  0.19138 -1.983  0.04742
    from lifelines.datasets import load_rossi

    rossi = load_rossi()
    frame = rossi.rename(columns={"week": "AVAL", "arrest": "EVENT"})
    frame["FIN"] = np.where(frame["fin"] == 1, "aid", "no aid")
    table = cox_by(
        frame, "FIN", reference="no aid", adjust_for=("age", "race", "wexp", "mar", "paro", "prio")
    ).set_index("level")
    assert table.loc["aid", "hr"] == pytest.approx(0.68426, abs=5e-5)
    se = (np.log(table.loc["aid", "ci_high"]) - np.log(table.loc["aid", "hr"])) / 1.959964
    assert se == pytest.approx(0.19138, abs=5e-5)
    assert table.loc["aid", "p"] == pytest.approx(0.04742, abs=5e-5)
    assert table.loc["no aid", "hr"] == 1.0
    assert table["n"].sum() == 432 and table["events"].sum() == 114


def test_clopper_pearson_matches_r_binom_test():
    # R's binom.test gives the Clopper-Pearson limits qbeta(0.025, k, n - k + 1), qbeta(0.975, k + 1, n - k):
    #   binom.test(0, 15)$conf.int -> 0 and 1 - 0.025^(1/15) = 0.2180 (no grade >= 3 in 15 patients,
    #   as in Katipally et al., IJROBP 2025); binom.test(2, 60)$conf.int -> 0.004063 0.115281
    zero = exact_proportion(0, 15)
    assert (zero.ci_low, zero.ci_high) == pytest.approx((0.0, 1 - 0.025 ** (1 / 15)), abs=1e-9)
    assert zero.ci_high == pytest.approx(0.2180, abs=5e-5)
    two = exact_proportion(2, 60)
    assert (two.estimate, two.ci_low, two.ci_high) == pytest.approx((2 / 60, 0.004063, 0.115281), abs=1e-6)


def test_aalen_johansen_without_censoring_is_the_cumulative_proportion():
    # Without censoring the Aalen-Johansen estimate equals the empirical share of type-1 events by t.
    durations = [2, 3, 5, 8, 13, 14, 20, 25, 30, 30]
    codes = [1, 2, 1, 2, 1, 2, 1, 0, 0, 0]  # censoring only after 24 months (administrative end)
    lc = pd.DataFrame({"AVAL": durations, "EVNTCD": codes})
    result = local_failure_incidence(lc, times=(6.0, 24.0)).table.set_index("time")
    assert result.loc[6.0, "cif"] == pytest.approx(2 / 10, abs=1e-3)
    assert result.loc[24.0, "cif"] == pytest.approx(4 / 10, abs=1e-3)
    assert result.loc[24.0, "local_control"] == pytest.approx(0.6, abs=1e-3)
    # censored at 8 months instead: by hand, S(13-) = 0.7, F(13) = 0.2 + 0.7/6, S(14) = 0.7 * 5/6 * 4/5,
    # F(20) = F(13) + S(14)/4 = 0.2 + 0.116667 + 0.116667 = 0.433333
    codes[3] = 0
    censored = local_failure_incidence(pd.DataFrame({"AVAL": durations, "EVNTCD": codes}), times=(24.0,))
    assert censored.table["cif"].iloc[0] == pytest.approx(0.433333, abs=1e-5)
    # with deaths censored instead, 1 - KM overstates the risk of local failure
    naive = (
        1
        - km_curve(pd.Series(durations, dtype=float), pd.Series(codes) == 1)
        .survival_function_at_times(24)
        .iloc[0]
    )
    assert naive > result.loc[24.0, "cif"]


def test_reverse_km_median_followup_hand_example():
    # times 6, 12, 18, 24, 30 months; the patient at 12 died (censors the reverse KM). Reverse KM:
    # S(6) = 4/5, S(18) = 4/5 * 2/3 = 0.533, S(24) = 0.533 * 1/2 = 0.267 -> median = 24 months
    assert median_followup(pd.Series([6, 12, 18, 24, 30.0]), pd.Series([0, 1, 0, 0, 0])) == pytest.approx(
        24.0
    )


def test_score_by_month_uses_t_intervals_and_change_from_baseline():
    scores = pd.DataFrame(
        {
            "USUBJID": ["a", "b", "c", "a", "b", "c"],
            "VISITNUM": [0, 0, 0, 1, 1, 1],
            "AVAL": [40.0, 44.0, 48.0, 42.0, 47.0, 49.0],
            "CHG": [0, 0, 0, 2.0, 3.0, 1.0],
        }
    )
    month1 = score_by_month(scores).set_index("month").loc[1]
    half = 4.302653 * np.std([42, 47, 49], ddof=1) / np.sqrt(3)  # t(0.975, 2) = 4.302653
    assert (month1["mean"], month1["ci_high"]) == pytest.approx((46.0, 46.0 + half))
    assert month1["mean_change"] == pytest.approx(2.0)


def test_toxicity_summary_keeps_the_worst_grade_per_patient_and_term():
    ae = pd.DataFrame(
        {
            "USUBJID": ["a", "a", "b", "c"],
            "AEDECOD": ["Fatigue", "Fatigue", "Fatigue", "Pneumonitis"],
            "AETOXGR": pd.array([1, 2, 1, 3], dtype="Int64"),
            "AEPHASE": ["ACUTE", "LATE", "ACUTE", "LATE"],
        }
    )
    table = toxicity_summary(ae, n_patients=4).set_index("term")
    assert table.loc["Fatigue", ["any_grade", "grade_1", "grade_2", "acute", "late"]].tolist() == [
        2,
        1,
        1,
        2,
        1,
    ]
    assert table.loc["Pneumonitis", "grade3plus"] == 1


def test_subgroup_hazard_ratios_report_interaction_p_values(rng):
    n = 200
    frame = pd.DataFrame(
        {"DISSTATE": rng.choice(["oligometastatic", "oligoprogressive"], n), "ANYSYST": rng.random(n) < 0.6}
    )
    hazard = np.where(frame["DISSTATE"] == "oligoprogressive", 2.0, 1.0)
    frame["AVAL"] = rng.exponential(12.0 / hazard)
    frame["EVENT"] = frame["AVAL"] < 24
    frame.loc[~frame["EVENT"], "AVAL"] = 24.0
    table = subgroup_hazard_ratios(frame, [("DISSTATE", "Disease state", "oligometastatic")]).set_index(
        "level"
    )
    assert table.loc["oligoprogressive", "hr"] == pytest.approx(2.0, rel=0.35)
    assert table.loc["oligoprogressive", "ci_low"] > 1.0
    assert 0.0 <= table["p_interaction"].iloc[0] <= 1.0 and table["p_heterogeneity"].iloc[0] < 0.01
