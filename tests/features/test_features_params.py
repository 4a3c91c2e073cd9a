from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from sabrkit.errors import ConfigError
from sabrkit.features import RadiomicsParams, load_params, packaged_params


def _minimal(**overrides: object) -> dict[str, object]:
    mapping: dict[str, object] = {
        "version": "test-v1",
        "modality": "CT",
        "setting": {"binWidth": 25, "label": 1},
        "imageType": {"Original": {}},
        "featureClass": {"firstorder": None},
    }
    mapping.update(overrides)
    return mapping


def test_packaged_ct_v1_loads_by_either_name() -> None:
    assert "ct_v1" in packaged_params()
    params = load_params("ct_v1")
    assert params == load_params("ct-v1")
    assert params.version == "ct-v1" and params.modality == "CT"
    assert params.setting["binWidth"] == 25 and params.setting["resampledPixelSpacing"] == [1.0, 1.0, 1.0]
    assert params.setting["interpolator"] == "sitkBSpline" and params.label == 1
    assert params.image_types == {"Original": {}}
    assert set(params.feature_classes) == {"shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"}
    assert re.fullmatch(r"[0-9a-f]{64}", params.params_hash)


def test_to_pyradiomics_dict_is_a_copy_with_pyradiomics_keys() -> None:
    params = load_params("ct_v1")
    section = params.to_pyradiomics_dict()
    assert set(section) == {"setting", "imageType", "featureClass"}
    section["setting"]["binWidth"] = 1
    assert params.setting["binWidth"] == 25


def test_params_hash_follows_the_settings_only() -> None:
    base = RadiomicsParams.from_mapping(_minimal())
    renamed = RadiomicsParams.from_mapping(_minimal(version="other-v9", description="same settings"))
    as_float = RadiomicsParams.from_mapping(_minimal(setting={"binWidth": 25.0, "label": 1}))
    wider = RadiomicsParams.from_mapping(_minimal(setting={"binWidth": 50, "label": 1}))
    assert base.params_hash == renamed.params_hash == as_float.params_hash
    assert base.params_hash != wider.params_hash


def test_unknown_top_level_key_is_named_with_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        RadiomicsParams.from_mapping(_minimal(settings={"binWidth": 10}))
    message = str(info.value)
    assert "'settings'" in message
    for allowed in ("version", "modality", "setting", "imageType", "featureClass"):
        assert allowed in message


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"setting": {"binWidht": 25}}, "binWidht"),  # pyradiomics' schema
        ({"setting": {"binWidth": -5}}, "binWidth"),
        ({"imageType": {"Laplacian": {}}}, "Laplacian"),  # pyradiomics' extension functions
        ({"featureClass": {"firstorder": ["NoSuchFeature"]}}, "NoSuchFeature"),
        ({"featureClass": {}}, "featureClass"),  # pydantic
        ({"modality": "XR"}, "modality"),
        ({"version": "bad version"}, "version"),
    ],
)
def test_invalid_values_raise_config_error(overrides: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        RadiomicsParams.from_mapping(_minimal(**overrides))


def test_load_from_path_and_load_errors(tmp_path: Path) -> None:
    file = tmp_path / "mine.yaml"
    file.write_text(yaml.safe_dump(_minimal()))
    assert load_params(file).version == "test-v1"
    assert load_params(str(file)).params_hash == RadiomicsParams.from_mapping(_minimal()).params_hash
    with pytest.raises(ConfigError, match="ct_v1"):
        load_params("ct_v7")
    with pytest.raises(ConfigError, match="does not exist"):
        load_params(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: [unclosed\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_params(broken)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump({**_minimal(), "voxelSetting": {"kernelRadius": 2}}))
    with pytest.raises(ConfigError, match="voxelSetting"):
        load_params(wrong)


def test_derive_enables_filters_under_a_new_version() -> None:
    params = load_params("ct_v1")
    filtered = params.derive(
        "ct-v1-filters",
        image_types={"Original": {}, "LoG": {"sigma": [1.0, 3.0]}, "Wavelet": {}},
        setting={"binWidth": 10},
    )
    assert set(filtered.image_types) == {"Original", "LoG", "Wavelet"}
    assert filtered.setting["binWidth"] == 10 and filtered.setting["voxelArrayShift"] == 1000
    assert filtered.params_hash != params.params_hash
    with pytest.raises(ConfigError, match="new version"):
        params.derive("ct-v1", setting={"binWidth": 10})
    with pytest.raises(ConfigError, match="sigma"):
        params.derive("ct-v1-bad", image_types={"LoG": {"sigma": [-1.0]}})


def test_packaged_mr_v1_normalises_and_uses_a_fixed_bin_count() -> None:
    params = load_params("mr_v1")
    assert params.version == "mr-v1" and params.modality == "MR"
    assert params.setting["normalize"] is True and params.setting["binCount"] == 32
    assert "binWidth" not in params.setting and params.params_hash != load_params("ct_v1").params_hash


def test_with_image_types_enables_log_and_wavelet_under_a_derived_version() -> None:
    params = load_params("ct_v1")
    filtered = params.with_image_types(log_sigma_mm=[1, 3.0], wavelet=True)
    assert filtered.version == "ct-v1-log1_3-wavelet"
    assert filtered.image_types == {"Original": {}, "LoG": {"sigma": [1.0, 3.0]}, "Wavelet": {}}
    assert filtered.setting == params.setting and filtered.params_hash != params.params_hash
    assert params.with_image_types() is params
    assert params.with_image_types(original=False, wavelet=True).image_types == {"Wavelet": {}}
    with pytest.raises(ConfigError, match="image type"):
        params.with_image_types(original=False)
    with pytest.raises(ConfigError, match="sigma"):
        params.with_image_types(log_sigma_mm=[-1.0])


def test_log_and_wavelet_columns_are_feature_columns(tmp_path: Path, write_case) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    from sabrkit.features import extract_lesion_features, feature_columns

    image, mask = write_case("lw", radius_mm=6.0)
    manifest = pd.DataFrame(
        {"lesion_id": ["SABR-RCC-001-L1"], "study_id": ["SABR-RCC-001"], "image_path": [str(image)],
         "mask_path": [str(mask)]}
    )  # fmt: skip
    params = (
        load_params("ct_v1")
        .derive("ct-v1-filters-test", feature_classes={"firstorder": ["Mean"]})
        .with_image_types(log_sigma_mm=[2.0], wavelet=True)
    )
    table = extract_lesion_features(manifest, params, progress=False).features
    names = set(feature_columns(table))
    assert {
        "original_firstorder_Mean",
        "log-sigma-2-0-mm-3D_firstorder_Mean",
        "wavelet-HHH_firstorder_Mean",
    } <= names
    assert len(names) == 1 + 1 + 8


# ---- two-section profiles: sabrkit keys apart from pyradiomics' -------------------------------

DIGITAL = Path(__file__).parents[1] / "data" / "ibsi_digital_phantom" / "nifti"


@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")  # pykwalify, inside pyradiomics
@pytest.mark.parametrize("name", ["ct_v1", "ct_v2", "mr_v1", "ibsi_ct_a", "ibsi_ct_b", "ibsi_ct_c", "ibsi_ct_d",
                                  "ibsi_ct_e", "ibsi_digital"])  # fmt: skip
def test_pyradiomics_part_of_every_profile_loads_in_plain_pyradiomics(tmp_path: Path, name: str) -> None:
    from importlib import resources

    from radiomics import featureextractor

    assert name in packaged_params()
    raw = yaml.safe_load(resources.files("sabrkit.features.params").joinpath(f"{name}.yaml").read_text())
    part = (
        raw["pyradiomics"]
        if "pyradiomics" in raw
        else {k: raw[k] for k in ("setting", "imageType", "featureClass")}
    )
    assert part == load_params(name).to_pyradiomics_dict()
    file = tmp_path / f"{name}_pyradiomics.yaml"
    file.write_text(yaml.safe_dump(part))
    extractor = featureextractor.RadiomicsFeatureExtractor(str(file))  # pyradiomics validates the file itself
    extractor.enabledFeatures = {"firstorder": ["Mean"]}
    result = extractor.execute(
        str(DIGITAL / "image" / "phantom.nii.gz"), str(DIGITAL / "mask" / "mask.nii.gz")
    )
    mean = float(result["original_firstorder_Mean"])
    if not {"resampledPixelSpacing", "normalize"} & set(part["setting"]):
        assert (
            abs(mean - 2.15) < 0.005
        )  # IBSI stat_mean of the digital phantom (no resampling in pyradiomics)
    else:
        assert math.isfinite(mean)  # resampled / z-score normalised by pyradiomics itself


def test_two_section_layout_names_unknown_keys_and_keeps_preprocessing_in_the_hash() -> None:
    profile = load_params("ibsi_ct_c").to_profile()
    assert set(profile) == {"sabrkit", "pyradiomics"} and "preprocessing" in profile["sabrkit"]
    assert RadiomicsParams.from_mapping(profile) == load_params("ibsi_ct_c")
    with pytest.raises(ConfigError, match=r"\['spacing'\] in section 'sabrkit'"):
        RadiomicsParams.from_mapping({**profile, "sabrkit": {**profile["sabrkit"], "spacing": [1, 1, 1]}})
    with pytest.raises(ConfigError, match=r"top-level key\(s\) \['setting'\]"):
        RadiomicsParams.from_mapping({**profile, "setting": {}})
    with pytest.raises(ConfigError, match="resegment_sigma"):
        bad = {
            **profile["sabrkit"],
            "preprocessing": {**profile["sabrkit"]["preprocessing"], "resegment_sigma": -1},
        }
        RadiomicsParams.from_mapping({**profile, "sabrkit": bad})
    # same pyradiomics settings, other preprocessing -> other hash; the derived copy keeps preprocessing
    narrower = {**profile["sabrkit"]["preprocessing"], "resegment_range": [-500, 400]}
    other = RadiomicsParams.from_mapping(
        {**profile, "sabrkit": {**profile["sabrkit"], "preprocessing": narrower}}
    )
    assert other.params_hash != load_params("ibsi_ct_c").params_hash
    derived = load_params("ibsi_ct_c").derive("ibsi-ct-c-bw10", setting={"binWidth": 10})
    assert derived.preprocessing == load_params("ibsi_ct_c").preprocessing


def test_preprocessing_owns_resampling_resegmentation_and_filters() -> None:
    profile = load_params("ct_v2").to_profile()
    with_pyradiomics_resampling = {**profile["pyradiomics"]["setting"], "resampledPixelSpacing": [1, 1, 1]}
    with pytest.raises(ConfigError, match="resampledPixelSpacing"):
        RadiomicsParams.from_mapping({**profile, "pyradiomics": {**profile["pyradiomics"],
                                                                 "setting": with_pyradiomics_resampling}})  # fmt: skip
    with pytest.raises(ConfigError, match="LoG"):
        load_params("ct_v2").with_image_types(log_sigma_mm=[1.0])


def test_production_ct_v2_is_ibsi_consistent() -> None:
    params = load_params("ct_v2")
    processing = params.preprocessing
    assert processing is not None and params.version == "ct-v2"
    assert processing.spacing_mm == (1.0, 1.0, 1.0) and processing.round_intensities
    assert processing.mask_interpolation == "linear" and processing.mask_threshold == 0.5
    assert processing.resegment_range == (-1000.0, 3000.0) and processing.lower_bound == -1000.0
    assert params.setting["binWidth"] == 25 and params.setting["voxelArrayShift"] == 0
