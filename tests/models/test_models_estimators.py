"""Estimator registry and the scikit-survival estimator contract of every registered pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sksurv.datasets import load_veterans_lung_cancer, load_whas500
from sksurv.metrics import concordance_index_censored
from sksurv.preprocessing import OneHotEncoder

from sabrkit.errors import ConfigError
from sabrkit.models.estimators import available_estimators, build_pipeline, register_estimator
from sabrkit.models.simulation import simulate_feature_cohort


@pytest.fixture(scope="module")
def whas500():
    X, y = load_whas500()
    return OneHotEncoder().fit_transform(X), y


def test_registry_lists_the_models_and_rejects_unknown_names() -> None:
    assert {"coxnet", "coxph"} <= set(available_estimators())
    assert {"rsf", "gbsa", "horizon_logistic", "spca_cox"} <= set(available_estimators())
    with pytest.raises(ConfigError, match="estimator 'svm'"):
        build_pipeline("svm")
    with pytest.raises(ConfigError, match="already registered"):
        register_estimator("coxnet")(lambda: Pipeline([]))
    with pytest.raises(ConfigError, match="keyword arguments"):
        build_pipeline("coxnet", learning_rate=0.1)


# small ensembles keep the contract test fast; whas500 times are in days
_CONTRACT_PARAMS = {
    "rsf": {"n_estimators": 30},
    "gbsa": {"n_estimators": 60},
    "horizon_logistic": {"horizon_months": 365.0},
}


@pytest.mark.parametrize("name", available_estimators())
def test_contract_clone_params_fit_predict(name: str, whas500) -> None:
    X, y = whas500
    pipeline = build_pipeline(name, **_CONTRACT_PARAMS.get(name, {}))
    params = pipeline.get_params()
    twin = clone(pipeline)
    assert twin is not pipeline
    assert (
        twin.set_params(**{k: v for k, v in params.items() if "__" in k}).get_params().keys() == params.keys()
    )
    assert type(clone(pipeline)[-1]) is type(pipeline[-1])
    fitted = clone(pipeline).fit(X, y)
    risk = fitted.predict(X)
    assert risk.shape == (len(X),) and np.isfinite(risk).all()
    # higher risk = earlier event: whas500 is strongly predictable from age, bmi, heart rate ...
    harrell = concordance_index_censored(y["fstat"], y["lenfol"], risk)[0]
    assert harrell > 0.7
    assert fitted.score(X, y) == pytest.approx(harrell)
    # clone of a fitted pipeline is unfitted and does not share state
    assert not hasattr(clone(fitted)[-1], "coef_")


def test_coxnet_risk_rises_with_a_harmful_feature() -> None:
    dataset = simulate_feature_cohort(
        np.random.default_rng(5), 150, 30, n_informative=1, log_hazard_ratio=1.5
    )
    fitted = build_pipeline("coxnet", k=5).fit(dataset.X, dataset.y)
    low, high = dataset.X.median().to_frame().T, dataset.X.median().to_frame().T
    high["feature_0000"] += 2.0
    assert fitted.predict(high)[0] > fitted.predict(low)[0]
    assert "feature_0000" in fitted[:-1].get_feature_names_out()


def test_grid_search_tunes_pipeline_parameters(whas500) -> None:
    X, y = whas500
    search = GridSearchCV(
        build_pipeline("coxnet", k=5),
        {"coxnet__l1_ratio": [0.5, 1.0], "select__k": [3, 5]},
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    assert set(search.best_params_) == {"coxnet__l1_ratio", "select__k"}
    assert 0.6 < search.best_score_ < 1.0


def test_veterans_apparent_concordance_matches_scikit_survival_user_guide() -> None:
    # Source: scikit-survival user guide, "Introduction to Survival Analysis with scikit-survival"
    # (https://scikit-survival.readthedocs.io/en/stable/user_guide/00-introduction.html):
    #   data_x_numeric = OneHotEncoder().fit_transform(data_x)
    #   estimator = CoxPHSurvivalAnalysis(); estimator.fit(data_x_numeric, data_y)
    #   estimator.score(data_x_numeric, data_y)  ->  0.7362562471603816
    X, y = load_veterans_lung_cancer()
    X_numeric = OneHotEncoder().fit_transform(X)
    fitted = build_pipeline("coxph", alpha=0.0).fit(X_numeric, y)
    risk = fitted.predict(X_numeric)
    harrell = concordance_index_censored(y["Status"], y["Survival_in_days"], risk)[0]
    assert harrell == pytest.approx(0.7363, abs=5e-5)
    assert fitted.score(X_numeric, y) == pytest.approx(0.7363, abs=5e-5)


def test_warm_start_coxnet_ends_at_the_cold_start_solution():
    """The path ends where a cold start at ``alpha`` converges (the problem is convex); ``alpha`` is
    the tunable parameter. (Where a cold start overflows - a fold of the demo cohort at alpha 0.05
    - the path does not; that case needs the demo's data and is checked by `make demo`.)"""
    import numpy as np
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    from sabrkit.models.coxnet import WarmStartCoxnet, warm_start_alphas
    from sabrkit.models.simulation import simulate_feature_cohort

    assert warm_start_alphas(0.1)[-1] == 0.1 and warm_start_alphas(0.1)[0] == pytest.approx(3.2)
    data = simulate_feature_cohort(np.random.default_rng(5), 60, 20, n_informative=3, log_hazard_ratio=1.0)
    X = data.X.to_numpy()
    cold = CoxnetSurvivalAnalysis(alphas=[0.2], l1_ratio=0.5).fit(X, data.y)
    warm = WarmStartCoxnet(alpha=0.2, l1_ratio=0.5).fit(X, data.y)
    np.testing.assert_allclose(warm.coef_[:, -1], cold.coef_[:, -1], atol=1e-4)
    np.testing.assert_allclose(warm.predict(X), cold.predict(X), atol=1e-3)
    assert warm.get_params()["alpha"] == 0.2 and "alphas" not in warm.get_params()
    assert clone(warm).get_params() == warm.get_params()
    np.testing.assert_allclose(warm.alphas_, warm_start_alphas(0.2))


def test_warm_start_coxnet_fit_sets_only_fitted_state() -> None:
    """scikit-learn's contract: ``fit`` leaves the constructor's attributes as they were."""
    import numpy as np

    from sabrkit.models.coxnet import WarmStartCoxnet
    from sabrkit.models.simulation import simulate_feature_cohort

    data = simulate_feature_cohort(np.random.default_rng(7), 40, 6, n_informative=2, log_hazard_ratio=1.0)
    model = WarmStartCoxnet(alpha=0.3)
    before = {k: v for k, v in vars(model).items()}
    model.fit(data.X.to_numpy(), data.y)
    after = vars(model)
    changed = {k for k in before if not k.startswith("_") and after[k] is not before[k]}
    added = {k for k in after if k not in before}
    assert not changed, f"fit changed constructor attributes {changed}"
    assert all(k.endswith("_") or k.startswith("_") for k in added), added
    with pytest.raises(ValueError, match="path_steps"):
        WarmStartCoxnet(alpha=0.3, path_steps=0).fit(data.X.to_numpy(), data.y)


def _clinical_plus_noise(seed: int = 3):
    import pandas as pd

    from sabrkit.models.clinical_encoding import encode_clinical

    rng = np.random.default_rng(seed)
    n = 120
    clinical = pd.DataFrame(
        {
            "study_id": [f"P{i:03d}" for i in range(n)],
            "imdc_risk": rng.choice(["favourable", "intermediate", "poor"], n, p=[0.4, 0.45, 0.15]),
            "ecog": rng.choice([0, 1, 2], n, p=[0.6, 0.3, 0.1]),
            "disease_state": rng.choice(["oligometastatic", "oligoprogressive"], n),
            "age_years": rng.normal(63, 9, n),
        }
    )
    X = encode_clinical(clinical).astype(float)
    for j in range(40):
        X[f"original_firstorder_Noise{j:02d}"] = rng.standard_normal(n)
    lp = 0.6 * X["imdc_risk=intermediate"] + 1.1 * X["imdc_risk=poor"] + 0.4 * X["ecog"]
    event_time = rng.exponential(12.0 / np.exp(lp))
    censor = rng.uniform(6, 36, n)
    from sksurv.util import Surv

    y = Surv.from_arrays(event_time <= censor, np.minimum(event_time, censor))
    return X, y


def test_coxnet_unpenalized_clinical_is_the_unpenalised_cox_model_plus_penalised_features() -> None:
    """With a penalty large enough to zero every screened feature, ``unpenalized="clinical"``
    leaves the unpenalised Cox model of the clinical covariates: lifelines' fit of the same
    standardised columns (no ties, so Breslow = Efron)."""
    import pandas as pd
    from lifelines import CoxPHFitter

    X, y = _clinical_plus_noise()
    model = build_pipeline("coxnet", alpha=5.0, unpenalized="clinical").fit(X, y)
    names = list(model[:-1].get_feature_names_out())
    clinical = [c for c in X.columns if not c.startswith("original_")]
    assert names[: len(clinical)] == clinical  # the clinical columns bypass the screening
    factor = model[-1].penalty_factor_
    assert np.all(factor[: len(clinical)] == 0) and np.all(factor[len(clinical) :] > 0)
    coef = model[-1].coef_[:, -1]
    assert np.all(coef[len(clinical) :] == 0)
    Z = X[clinical]
    Z = (Z - Z.mean()) / Z.std(ddof=0)
    frame = pd.DataFrame(Z).assign(time=y["time"], event=y["event"].astype(int))
    reference = CoxPHFitter().fit(frame, "time", "event").params_[clinical].to_numpy()
    np.testing.assert_allclose(coef[: len(clinical)], reference, atol=2e-3)


def _clinical_plus_markers(seed: int = 5):
    """Standardised (ddof=1, so lifelines' own normalisation is the identity) clinical columns
    and 8 radiomic columns, two of them prognostic; continuous times (no ties: Breslow = Efron)."""
    import pandas as pd
    from sksurv.util import Surv

    X, _ = _clinical_plus_noise(seed)
    X = X.iloc[:, :13]  # 5 clinical + 8 radiomic columns
    rng = np.random.default_rng(seed + 1)
    lp = (
        0.6 * X["imdc_risk=intermediate"]
        + 1.1 * X["imdc_risk=poor"]
        + 0.4 * X["ecog"]
        + 0.5 * X["original_firstorder_Noise00"]
        - 0.4 * X["original_firstorder_Noise01"]
    )
    event_time = rng.exponential(12.0 / np.exp(lp))
    censor = rng.uniform(6, 36, len(X))
    Z = pd.DataFrame((X - X.mean()) / X.std(ddof=1))
    return Z, Surv.from_arrays(event_time <= censor, np.minimum(event_time, censor))


def test_coxnet_unpenalized_penalises_each_marker_by_exactly_alpha() -> None:
    """``unpenalized`` keeps alpha's meaning: every penalised coefficient gets alpha (l1_ratio as
    usual), the unpenalised ones nothing. References: lifelines' per-column ``penalizer`` (the
    same objective, -l/n + sum_j pen_j (r |b_j| + (1-r) b_j^2 / 2), its own Newton solver) and
    scikit-survival's own fit with penalty_factor 0/1 and alphas pre-scaled by m/p (it rescales
    the factors to sum to p). The plain scikit-survival call (alpha unscaled, factors rescaled to
    p/m) penalises the markers more and must differ. With no column matched, the plain fit."""
    from lifelines import CoxPHFitter
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    from sabrkit.models.clinical_encoding import CLINICAL_COLUMN_PATTERN
    from sabrkit.models.coxnet import WarmStartCoxnet

    Z, y = _clinical_plus_markers()
    alpha, l1_ratio, tol = 0.1, 0.5, 1e-12  # tight: the default tol 1e-7 leaves ~4e-4 in the coefficients
    clinical = Z.columns.str.match(CLINICAL_COLUMN_PATTERN)
    p, m = Z.shape[1], int((~clinical).sum())
    assert (p, m) == (13, 8)
    model = WarmStartCoxnet(alpha=alpha, l1_ratio=l1_ratio, tol=tol, unpenalized=CLINICAL_COLUMN_PATTERN).fit(
        Z, y
    )
    coef = model.coef_[:, -1]
    np.testing.assert_array_equal(model.penalty_factor_, (~clinical).astype(float))
    assert model.alphas_[-1] == pytest.approx(alpha)
    assert np.count_nonzero(coef[~clinical]) >= 2  # the markers are in the model, not all zero

    factor = (~clinical).astype(float)
    frame = Z.assign(time=y["time"], event=y["event"].astype(int))
    lifelines = CoxPHFitter(penalizer=alpha * factor, l1_ratio=l1_ratio).fit(frame, "time", "event")
    np.testing.assert_allclose(coef, lifelines.params_[Z.columns].to_numpy(), atol=1e-4)

    prescaled = CoxnetSurvivalAnalysis(
        alphas=[alpha * m / p], l1_ratio=l1_ratio, penalty_factor=factor, tol=tol
    )
    np.testing.assert_allclose(coef, prescaled.fit(Z, y).coef_[:, 0], atol=1e-5)
    plain_call = CoxnetSurvivalAnalysis(
        alphas=[alpha], l1_ratio=l1_ratio, penalty_factor=factor, tol=tol
    ).fit(Z, y)
    assert np.abs(coef - plain_call.coef_[:, 0]).max() > 0.02  # alpha x p/m on the markers

    nothing = WarmStartCoxnet(alpha=alpha, l1_ratio=l1_ratio, tol=tol, unpenalized="^no_such_column$").fit(
        Z, y
    )
    everything = WarmStartCoxnet(alpha=alpha, l1_ratio=l1_ratio, tol=tol).fit(Z, y)
    np.testing.assert_allclose(nothing.coef_[:, -1], everything.coef_[:, -1], atol=1e-10)
    everything_ll = CoxPHFitter(penalizer=alpha, l1_ratio=l1_ratio).fit(frame, "time", "event")
    np.testing.assert_allclose(
        everything.coef_[:, -1], everything_ll.params_[Z.columns].to_numpy(), atol=1e-4
    )


def test_coxnet_unpenalized_rejects_a_bad_pattern_and_a_path_fit() -> None:
    with pytest.raises(ConfigError, match="regular expression"):
        build_pipeline("coxnet", unpenalized="(")
    with pytest.raises(ConfigError, match="set alpha"):
        build_pipeline("coxnet", alpha=None, unpenalized="clinical")


def test_coxnet_unpenalized_established_leaves_the_comparator_model_and_screens_the_rest() -> None:
    """``unpenalized="established"``: IMDC risk, ECOG and disease state bypass the screening with
    penalty factor 0; age joins the screened, penalised columns. With a penalty that zeroes every
    screened column the fit is lifelines' unpenalised Cox model of the established columns."""
    import pandas as pd
    from lifelines import CoxPHFitter

    X, y = _clinical_plus_noise()
    model = build_pipeline("coxnet", alpha=5.0, unpenalized="established").fit(X, y)
    names = list(model[:-1].get_feature_names_out())
    established = ["imdc_risk=intermediate", "imdc_risk=poor", "ecog", "disease_state=oligoprogressive"]
    assert names[:4] == established and "age_years" not in names[:4]
    coef = model[-1].coef_[:, -1]
    assert np.all(model[-1].penalty_factor_[:4] == 0) and np.all(coef[4:] == 0)
    Z = X[established]
    Z = (Z - Z.mean()) / Z.std(ddof=0)
    frame = pd.DataFrame(Z).assign(time=y["time"], event=y["event"].astype(int))
    reference = CoxPHFitter().fit(frame, "time", "event").params_[established].to_numpy()
    np.testing.assert_allclose(coef[:4], reference, atol=2e-3)


def test_coxnet_unpenalized_separation_falls_back_to_a_small_penalty() -> None:
    """A training fold with one poor-risk patient (tests/data/models/coxnet_separation_fold.csv,
    from the image-off pipeline check): scikit-survival's own solver overflows on the exact
    (factor 0) fit of the established columns, which once stopped a whole experiment. The
    estimator refits with the smallest fallback factor that converges, warns, records it, and
    the result is scikit-survival's solution of that penalty (factors [f, ..., 1], alphas
    pre-scaled as scikit-survival rescales factors to sum to p, on the same warm-start path)."""
    from pathlib import Path

    import pandas as pd
    from sksurv.linear_model import CoxnetSurvivalAnalysis
    from sksurv.util import Surv

    from sabrkit.models.coxnet import UNPENALIZED_FALLBACK_FACTORS, WarmStartCoxnet, warm_start_alphas

    table = pd.read_csv(Path(__file__).parents[1] / "data" / "models" / "coxnet_separation_fold.csv")
    y = Surv.from_arrays(table["event"].astype(bool), table["time_months"])
    established = ["imdc_risk=intermediate", "imdc_risk=poor", "ecog", "disease_state=oligoprogressive"]
    assert table["imdc_risk=poor"].sum() == 1  # the separating dummy
    rng = np.random.default_rng(0)
    X = table[established].assign(original_firstorder_Noise00=rng.normal(size=len(table)))
    X = (X - X.mean()) / X.std(ddof=1)
    alpha, p = 0.1, X.shape[1]
    exact = np.array([0.0, 0.0, 0.0, 0.0, 1.0])
    with pytest.raises(ArithmeticError, match="too large"):
        CoxnetSurvivalAnalysis(
            alphas=np.array(warm_start_alphas(alpha)) * exact.sum() / p, l1_ratio=0.5, penalty_factor=exact
        ).fit(X, y)

    with pytest.warns(RuntimeWarning, match="overflowed.*refitted with penalty factor"):
        model = WarmStartCoxnet(alpha=alpha, unpenalized="^(imdc_risk|ecog|disease_state)").fit(X, y)
    factor = model.unpenalized_factor_
    assert factor == UNPENALIZED_FALLBACK_FACTORS[0]
    pf = np.array([factor] * 4 + [1.0])
    np.testing.assert_allclose(model.penalty_factor_, pf)
    reference = CoxnetSurvivalAnalysis(
        alphas=np.array(warm_start_alphas(alpha)) * pf.sum() / p, l1_ratio=0.5, penalty_factor=pf
    ).fit(X, y)
    np.testing.assert_allclose(model.coef_[:, -1], reference.coef_[:, -1], atol=1e-6)
    assert np.all(np.isfinite(model.predict(X)))
    clean = WarmStartCoxnet(alpha=alpha, unpenalized="^(imdc_risk|ecog|disease_state)").fit(
        X.drop(columns="imdc_risk=poor"), y
    )
    assert clean.unpenalized_factor_ == 0.0  # no separation: the exact fit, no fallback
