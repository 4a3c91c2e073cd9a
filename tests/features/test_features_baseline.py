"""Regression of sabrkit's extraction wrapper against pyradiomics' own baseline values.

Source: pyradiomics 3.0.1 ``data/baseline/baseline_<class>.csv`` (copied with its BSD licence to
``tests/data/pyradiomics``, so any clone runs this test). Rows are features, columns are test cases; the
``diagnostics_Configuration_Settings`` / ``..._EnabledImageTypes`` rows (``general_info_*`` in
older baselines) hold the settings each column was computed with. pyradiomics' own tests
(``tests/testUtils.py``) accept a relative difference below 3 %.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest

from sabrkit.features import RadiomicsParams, extract_lesion_features

CASES = Path(__file__).parents[1] / "data" / "pyradiomics"
TOLERANCE = 0.03

SETTING_ROWS = ("diagnostics_Configuration_Settings", "general_info_GeneralSettings")
IMAGE_TYPE_ROWS = ("diagnostics_Configuration_EnabledImageTypes", "general_info_EnabledImageTypes")


def _baseline(feature_class: str) -> pd.DataFrame:
    return pd.read_csv(CASES / "baseline" / f"baseline_{feature_class}.csv", index_col=0)


def _settings(baseline: pd.DataFrame, case: str) -> tuple[dict[str, object], dict[str, dict[str, object]]]:
    setting_row = next(r for r in SETTING_ROWS if r in baseline.index)
    image_row = next((r for r in IMAGE_TYPE_ROWS if r in baseline.index), None)
    setting = ast.literal_eval(baseline.loc[setting_row, case])
    image_types = ast.literal_eval(baseline.loc[image_row, case]) if image_row else {"Original": {}}
    return setting, image_types


CLASSES = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
COLUMNS = [f"{case}{variant}" for case in ("brain1", "brain2", "breast1") for variant in ("", "_resampling")]


@pytest.mark.parametrize("column", COLUMNS)
def test_wrapper_reproduces_pyradiomics_baselines(column: str) -> None:
    case = column.removesuffix("_resampling")
    baselines = {c: _baseline(c) for c in CLASSES}
    classes = [c for c, b in baselines.items() if column in b.columns]
    setting, image_types = _settings(baselines[classes[0]], column)
    assert all(_settings(baselines[c], column) == (setting, image_types) for c in classes)  # one extraction
    params = RadiomicsParams.from_mapping(
        {
            "version": f"pyradiomics-baseline-{column}",
            "modality": "MR",
            "setting": setting,  # binWidth 25, voxelArrayShift 2000, (B-spline 2 mm resampling) ...
            "imageType": image_types,
            "featureClass": {c: None for c in classes},
        }
    )
    manifest = pd.DataFrame(
        {
            "lesion_id": [case],
            "study_id": [case],
            "image_path": [str(CASES / f"{case}_image.nrrd")],
            "mask_path": [str(CASES / f"{case}_label.nrrd")],
        }
    )
    ours = extract_lesion_features(manifest, params, progress=False).features.iloc[0]

    compared, off = 0, {}
    for feature_class in classes:
        baseline = baselines[feature_class]
        names = [n for n in baseline.index if n.startswith(f"original_{feature_class}_") and n in ours.index]
        assert len(names) >= 5, f"too few {feature_class} features in common: {names}"
        for name in names:
            expected = float(baseline.loc[name, column])
            difference = abs(ours[name] - expected) if expected == 0 else abs(1 - ours[name] / expected)
            compared += 1
            if difference >= TOLERANCE:
                off[name] = (ours[name], expected)
    assert len(classes) == len(CLASSES) and compared >= 90
    assert off == {}, f"features off by >= 3 % (ours, baseline): {off}"
