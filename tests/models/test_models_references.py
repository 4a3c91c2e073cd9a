"""Reference values of scikit-survival's user guide, reproduced through the platform's own path.

The platform path: a :class:`~sabrkit.models.dataset.SurvivalDataset` built with
``make_dataset``, the registered ``rsf`` pipeline from ``build_pipeline`` and
``evaluate_fold`` (clone, fit on the training rows, Harrell's C on the test rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OrdinalEncoder
from sksurv.datasets import load_gbsg2
from sksurv.preprocessing import OneHotEncoder

from sabrkit.models.dataset import make_dataset
from sabrkit.models.estimators import build_pipeline
from sabrkit.models.validation import evaluate_fold


def test_gbsg2_random_survival_forest_matches_the_user_guide() -> None:
    # Source: scikit-survival user guide, "Using Random Survival Forests"
    # (https://scikit-survival.readthedocs.io/en/stable/user_guide/random-survival-forest.html):
    #   X, y = load_gbsg2()
    #   grade_num = OrdinalEncoder(categories=[["I", "II", "III"]]).fit_transform(tgrade)
    #   Xt = OneHotEncoder().fit_transform(X.drop("tgrade", axis=1)); Xt["tgrade"] = grade_num
    #   X_train, X_test, y_train, y_test = train_test_split(Xt, y, test_size=0.25, random_state=20)
    #   rsf = RandomSurvivalForest(n_estimators=1000, min_samples_split=10, min_samples_leaf=15,
    #                              n_jobs=-1, random_state=20).fit(X_train, y_train)
    #   rsf.score(X_test, y_test)  ->  0.6745...
    X, y = load_gbsg2()
    grade = OrdinalEncoder(categories=[["I", "II", "III"]]).fit_transform(
        X.loc[:, "tgrade"].astype(object).to_frame()
    )
    Xt = OneHotEncoder().fit_transform(X.drop("tgrade", axis=1))
    Xt.loc[:, "tgrade"] = grade.ravel()
    Xt.index = pd.Index([f"GBSG2-{i:03d}" for i in range(len(Xt))], name="study_id")
    dataset = make_dataset(Xt, y["cens"], y["time"], feature_set="gbsg2", endpoint="rfs")
    train, test = train_test_split(np.arange(len(Xt)), test_size=0.25, random_state=20)
    pipeline = build_pipeline(
        "rsf", n_estimators=1000, min_samples_split=10, min_samples_leaf=15, random_state=20, n_jobs=2
    )
    evaluation = evaluate_fold(
        pipeline, dataset, train, test, tau_months=2000.0, auc_times=(365.0, 730.0)
    )  # days
    assert evaluation.harrell_c == pytest.approx(0.6745, abs=5e-5)
    assert evaluation.n_test == 172
