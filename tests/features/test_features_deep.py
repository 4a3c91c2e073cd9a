"""Deep features: crops, seeded self-supervised training, identical embeddings, checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sabrkit.errors import ConfigError, NotFoundError
from sabrkit.features import (
    CropConfig,
    EncoderConfig,
    deep_feature_table,
    feature_columns,
    load_encoder,
    save_encoder,
    train_encoder,
)
from sabrkit.features.deep import load_crops

CROP = CropConfig(size_voxels=16, spacing_mm=2.0)
SMALL = EncoderConfig(channels=(4, 8), strides=(2, 2), epochs=3, batch_size=4)


@pytest.fixture
def manifest(write_case: Callable) -> pd.DataFrame:
    rows = []
    for k, radius in enumerate((4.0, 5.0, 6.0, 7.0, 8.0, 5.5)):
        lesion_id = f"SABR-RCC-{k // 2 + 1:03d}-L{k % 2 + 1}"
        image, mask = write_case(lesion_id, radius_mm=radius)
        rows.append((lesion_id, lesion_id.rsplit("-L", 1)[0], str(image), str(mask)))
    return pd.DataFrame(rows, columns=["lesion_id", "study_id", "image_path", "mask_path"])


def test_same_seed_gives_identical_weights_and_embeddings(manifest: pd.DataFrame) -> None:
    crops = load_crops(manifest, CROP)
    assert crops[1].shape == (6, 2, 16, 16, 16) and crops[1][:, 1].sum() > 0
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    global_state = torch.random.get_rng_state()
    first = train_encoder(crops[1], np.random.default_rng(11), SMALL, CROP)
    second = train_encoder(crops[1], np.random.default_rng(11), SMALL, CROP)
    other = train_encoder(crops[1], np.random.default_rng(12), SMALL, CROP)
    assert first.sha256 == second.sha256 != other.sha256 and first.losses == second.losses
    table_1 = deep_feature_table(manifest, first, crops=crops)
    table_2 = deep_feature_table(manifest, second)
    pd.testing.assert_frame_equal(table_1, table_2, check_exact=True)
    names = feature_columns(table_1)
    assert names == [f"deep_autoencoder_f{k:03d}" for k in range(8)]
    assert np.isfinite(table_1[names].to_numpy()).all() and table_1[names].std().gt(0).any()
    assert set(table_1["prov_encoder_sha256"]) == {first.sha256}
    # the caller's torch state is untouched
    assert torch.are_deterministic_algorithms_enabled() == deterministic_before
    assert torch.equal(torch.random.get_rng_state(), global_state)


def test_checkpoint_round_trip_and_errors(tmp_path: Path, manifest: pd.DataFrame) -> None:
    crops = load_crops(manifest, CROP)
    encoder = train_encoder(crops[1], np.random.default_rng(3), SMALL, CROP)
    path = save_encoder(encoder, tmp_path / "encoder" / "encoder.pt")
    loaded = load_encoder(path)
    assert loaded.sha256 == encoder.sha256 and loaded.config == SMALL and loaded.crop == CROP
    pd.testing.assert_frame_equal(
        deep_feature_table(manifest, loaded, crops=crops), deep_feature_table(manifest, encoder, crops=crops)
    )
    with pytest.raises(NotFoundError, match="nothing is downloaded"):
        load_encoder(tmp_path / "absent.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(ConfigError, match="not a usable sabrkit encoder"):
        load_encoder(tmp_path / "foreign.pt")
    with pytest.raises(ConfigError, match="crops"):
        train_encoder(crops[1][:1], np.random.default_rng(3), SMALL, CROP)
    with pytest.raises(ConfigError, match="multiple of 8"):
        CropConfig(size_voxels=20)
