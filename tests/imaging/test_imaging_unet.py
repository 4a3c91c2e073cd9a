"""The lesion U-Net: shapes, save/load, sliding-window inference; a tiny training run (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sabrkit.errors import ConfigError, ImageReadError
from sabrkit.imaging import (
    PreprocessConfig,
    UNetConfig,
    dice_coefficient,
    evaluate_unet,
    lesion_arrays,
    load_unet,
    preprocess_manifest,
    save_unet,
    segment_image,
    train_unet,
)
from sabrkit.imaging.unet import TrainedUNet, build_unet
from sabrkit.imaging.unet_infer import largest_component, predict_mask

TINY = UNetConfig(
    channels=(4, 8, 16),
    strides=(2, 2),
    patch_size=(16, 16, 16),
    samples_per_lesion=2,
    batch_lesions=2,
    max_epochs=2,
    max_minutes=1.0,
    n_threads=1,
)


def test_dice_coefficient_formula() -> None:
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert dice_coefficient(a, b) == 1.0
    a[:2] = True
    b[1:3] = True
    assert dice_coefficient(a, b) == pytest.approx(2 * 4 / (8 + 8))


def test_largest_component_keeps_one_blob() -> None:
    mask = np.zeros((10, 10, 10), bool)
    mask[1:4, 1:4, 1:4] = True
    mask[8, 8, 8] = True
    assert largest_component(mask).sum() == 27


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        UNetConfig(patch_size=(30, 32, 32))
    with pytest.raises(ConfigError, match="len\\(strides\\)"):
        UNetConfig(channels=(8, 16), strides=(2, 2))


def test_untrained_network_predicts_on_the_input_grid_and_round_trips(tmp_path: Path, make_ct_case) -> None:
    import torch

    torch.manual_seed(0)
    model = build_unet(TINY).eval()
    image = np.random.default_rng(0).random(
        (1, 20, 23, 17), dtype=np.float32
    )  # smaller than a patch on one axis
    assert predict_mask(model, image, TINY).shape == (20, 23, 17)
    save_unet(TrainedUNet(model, TINY, [], {}, "cpu", 0.0), tmp_path)
    loaded, config = load_unet(tmp_path)
    assert config == TINY
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b.cpu())
    ct, _ = make_ct_case(size_xyz=(30, 30, 12))
    mask = segment_image(loaded, config, ct)
    assert mask.GetSize() == ct.GetSize() and mask.GetSpacing() == ct.GetSpacing()
    with pytest.raises(ImageReadError, match="train_unet"):
        load_unet(tmp_path / "missing")


@pytest.mark.slow
def test_tiny_training_run_learns_something(tiny_cohort: Path, tmp_path: Path) -> None:
    preprocessed = preprocess_manifest(
        pd.read_csv(tiny_cohort / "images.csv"), tmp_path / "pre", PreprocessConfig(), base_dir=tiny_cohort
    )
    lesions = lesion_arrays(preprocessed, None, TINY)
    config = UNetConfig(
        channels=(4, 8, 16),
        strides=(2, 2),
        patch_size=(16, 16, 16),
        samples_per_lesion=4,
        batch_lesions=2,
        max_epochs=15,
        max_minutes=1.5,
        n_threads=1,
        validate_every=15,
    )
    trained = train_unet(lesions, config, lesions)
    losses = [h["loss"] for h in trained.history]
    assert losses[-1] < losses[0]
    assert trained.validation["mean_dice"] > evaluate_unet(build_unet(config), lesions, config)["mean_dice"]
    assert set(trained.validation["per_lesion"]) == {x["lesion_id"] for x in lesions}
    assert sitk.ReadImage(preprocessed["image_path"][0]).GetSpacing() == (1.0, 1.0, 1.0)
