"""ICI/E50/E90 against lifelines' own survival_probability_calibration (public rossi data set)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from sabrkit.errors import ModelInputError
from sabrkit.models.calibration import calibration_indices, calibration_indices_at


@pytest.mark.parametrize("t0", [25.0, 40.0])
def test_ici_and_e50_agree_with_lifelines_on_rossi(t0):
    import matplotlib.pyplot as plt
    from lifelines import CoxPHFitter
    from lifelines.calibration import survival_probability_calibration
    from lifelines.datasets import load_rossi

    rossi = load_rossi()
    model = CoxPHFitter().fit(rossi, "week", "arrest")
    _, ici_ref, e50_ref = survival_probability_calibration(model, rossi, t0=t0)
    plt.close("all")
    survival = model.predict_survival_function(rossi, times=[t0]).T.squeeze().to_numpy()
    ours = calibration_indices(survival, rossi["week"].to_numpy(), rossi["arrest"].to_numpy(), t0)
    assert ours["ici"] == pytest.approx(ici_ref, abs=1e-4)
    assert ours["e50"] == pytest.approx(e50_ref, abs=1e-4)
    assert ours["e50"] <= ours["e90"]
    assert 0 < ours["ici"] < 0.2


def test_miscalibrated_predictions_get_a_larger_ici():
    from lifelines import CoxPHFitter
    from lifelines.datasets import load_rossi

    rossi = load_rossi()
    model = CoxPHFitter().fit(rossi, "week", "arrest")
    survival = model.predict_survival_function(rossi, times=[40.0]).T.squeeze().to_numpy()
    good = calibration_indices(survival, rossi["week"], rossi["arrest"], 40.0)
    bad = calibration_indices(survival**3, rossi["week"], rossi["arrest"], 40.0)  # event risk far too high
    assert bad["ici"] > good["ici"] + 0.1
    both = calibration_indices_at({40.0: survival, 25.0: survival}, rossi["week"], rossi["arrest"])
    assert set(both) == {f"{k}_{h}" for k in ("ici", "e50", "e90") for h in ("40", "25")}


def test_non_finite_prediction_is_refused():
    with pytest.raises(ModelInputError, match="non-finite"):
        calibration_indices(np.array([0.5, np.nan]), np.array([1.0, 2.0]), np.array([1, 0]), 1.0)
