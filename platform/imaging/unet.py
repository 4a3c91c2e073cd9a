"""A small MONAI 3-D U-Net for lesion segmentation, trained patch-wise on contoured lesions.

Training data are the preprocessed lesion crops (1 mm isotropic, HU) of
:func:`~sabrkit.imaging.preprocess_manifest`. Each crop is windowed to
``hu_window`` and scaled to [0, 1]; patches of ``patch_size`` are drawn with MONAI's
``RandCropByPosNegLabeld`` (half centred on lesion voxels, half on background), flipped at
random, and fed to :class:`monai.networks.nets.UNet` with the Dice + cross-entropy loss
(``DiceCELoss``). Inference is ``sliding_window_inference`` over the whole crop (or image).
Randomness comes only from the seed in :class:`UNetConfig` (torch and MONAI generators).

The network runs on CUDA when available, else on the CPU with ``n_threads`` threads.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sabrkit.errors import ConfigError, format_problem

__all__ = [
    "UNetConfig",
    "TrainedUNet",
    "build_unet",
    "lesion_arrays",
    "train_unet",
    "save_unet",
    "load_unet",
    "WEIGHTS_FILE",
    "CONFIG_FILE",
]

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "unet.pt"
CONFIG_FILE = "unet.json"


@dataclass(frozen=True)
class UNetConfig:
    """Network, patch and optimiser settings (defaults train in minutes on 2 CPU cores)."""

    channels: tuple[int, ...] = (8, 16, 32, 64)
    strides: tuple[int, ...] = (2, 2, 2)
    num_res_units: int = 0
    patch_size: tuple[int, int, int] = (32, 32, 32)
    hu_window: tuple[float, float] = (-250.0, 350.0)
    samples_per_lesion: int = 4
    batch_lesions: int = 4
    learning_rate: float = 3e-3
    max_epochs: int = 200
    max_minutes: float = 8.0
    validate_every: int = 10
    sw_overlap: float = 0.25
    seed: int = 20240501
    n_threads: int = 2
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))
        object.__setattr__(self, "hu_window", tuple(float(v) for v in self.hu_window))
        if len(self.strides) != len(self.channels) - 1 or min(self.channels) < 1:
            raise ConfigError(
                format_problem(
                    f"channels={self.channels}, strides={self.strides}",
                    "a U-Net needs len(strides) == len(channels) - 1",
                    "e.g. (8, 16, 32), (2, 2)",
                )
            )
        factor = int(np.prod(self.strides))
        if len(self.patch_size) != 3 or any(p % factor for p in self.patch_size):
            raise ConfigError(
                format_problem(
                    f"patch_size={self.patch_size}", f"three sizes divisible by {factor}", "use (32, 32, 32)"
                )
            )
        if not self.hu_window[0] < self.hu_window[1]:
            raise ConfigError(
                format_problem(f"hu_window={self.hu_window}", "lower < upper", "use (-250, 350)")
            )
        if not (
            self.max_minutes > 0
            and self.max_epochs >= 1
            and self.learning_rate > 0
            and 0 <= self.sw_overlap < 1
        ):
            raise ConfigError(
                format_problem(
                    "U-Net training limits",
                    "max_minutes > 0, max_epochs >= 1, learning_rate > 0, 0 <= sw_overlap < 1",
                    "use the defaults",
                )
            )

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> UNetConfig:
        return cls(**values)


def build_unet(config: UNetConfig) -> Any:
    """The :class:`monai.networks.nets.UNet` of ``config`` (1 input channel, 2 classes)."""
    from monai.networks.nets import UNet

    return UNet(
        spatial_dims=3,
        in_channels=1,
        out_channels=2,
        channels=config.channels,
        strides=config.strides,
        num_res_units=config.num_res_units,
    )


def scale_hu(array: np.ndarray, hu_window: tuple[float, float]) -> np.ndarray:
    """Clip to the HU window and scale to [0, 1] (float32)."""
    lo, hi = hu_window
    return ((np.clip(array, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def lesion_arrays(
    manifest: Any, base_dir: str | os.PathLike[str] | None, config: UNetConfig
) -> list[dict[str, Any]]:
    """Read each lesion's crop and mask into ``{"image", "label", "lesion_id", "study_id"}`` (channel-first z, y, x)."""
    import SimpleITK as sitk

    from sabrkit.imaging.io import read_image

    base = Path(base_dir) if base_dir is not None else None
    items = []
    for row in manifest.itertuples(index=False):
        image_path = (
            Path(row.image_path)
            if base is None or Path(row.image_path).is_absolute()
            else base / row.image_path
        )
        mask_path = (
            Path(row.mask_path) if base is None or Path(row.mask_path).is_absolute() else base / row.mask_path
        )
        image = sitk.GetArrayFromImage(read_image(image_path, row.lesion_id))
        label = sitk.GetArrayFromImage(read_image(mask_path, row.lesion_id, role="mask")) > 0
        items.append(
            {
                "image": scale_hu(image, config.hu_window)[None],
                "label": label.astype(np.float32)[None],
                "lesion_id": str(row.lesion_id),
                "study_id": str(row.study_id),
            }
        )
    return items


@dataclass
class TrainedUNet:
    """A trained network with its settings and training record."""

    model: Any
    config: UNetConfig
    history: list[dict[str, float]]
    validation: dict[str, float]
    device: str
    seconds: float


def _device() -> Any:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_unet(
    train: list[dict[str, Any]], config: UNetConfig, validation: list[dict[str, Any]] | None = None
) -> TrainedUNet:
    """Train the U-Net on lesion arrays (:func:`lesion_arrays`) within ``max_epochs`` / ``max_minutes``.

    Parameters
    ----------
    train : list of dict
        Training lesions.
    config : UNetConfig
    validation : list of dict, optional
        Held-out lesions; mean Dice every ``validate_every`` epochs and at the end (the
        returned ``validation`` holds the final figures, see :func:`evaluate_unet`).

    Returns
    -------
    TrainedUNet
    """
    import torch
    from monai.data import CacheDataset, DataLoader
    from monai.losses import DiceCELoss
    from monai.transforms import (
        Compose,
        EnsureTyped,
        FgBgToIndicesd,
        RandCropByPosNegLabeld,
        RandFlipd,
        SpatialPadd,
    )
    from monai.utils import set_determinism

    from sabrkit.imaging.unet_infer import evaluate_unet

    if not train:
        raise ConfigError(
            format_problem("no training lesions", "the U-Net needs contoured lesions", "ingest masks first")
        )
    torch.set_num_threads(config.n_threads)
    set_determinism(seed=config.seed)
    device = _device()
    keys = ("image", "label")
    transforms = Compose(
        [  # deterministic steps first: CacheDataset keeps their output (padding, fg/bg indices)
            EnsureTyped(keys=keys, track_meta=False),
            SpatialPadd(keys=keys, spatial_size=config.patch_size, mode="edge"),
            FgBgToIndicesd(keys="label", fg_postfix="_fg", bg_postfix="_bg"),
            RandCropByPosNegLabeld(
                keys=keys,
                label_key="label",
                spatial_size=config.patch_size,
                pos=1,
                neg=1,
                num_samples=config.samples_per_lesion,
                allow_smaller=False,
                fg_indices_key="label_fg",
                bg_indices_key="label_bg",
            ),
            RandFlipd(keys=("image", "label"), prob=0.5, spatial_axis=0),
            RandFlipd(keys=("image", "label"), prob=0.5, spatial_axis=1),
            RandFlipd(keys=("image", "label"), prob=0.5, spatial_axis=2),
        ]
    )
    transforms.set_random_state(seed=config.seed)
    dataset = CacheDataset(
        [{"image": t["image"], "label": t["label"]} for t in train],
        transform=transforms,
        cache_rate=1.0,
        num_workers=0,
        progress=False,
    )
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(
        dataset, batch_size=config.batch_lesions, shuffle=True, num_workers=0, generator=generator
    )
    model = build_unet(config).to(device)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    started = time.perf_counter()
    history: list[dict[str, float]] = []
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        losses = []
        for batch in loader:
            # cosine annealing over the budget: whichever of epochs and minutes runs out first
            progress = min(
                1.0,
                max(
                    (epoch - 1) / config.max_epochs,
                    (time.perf_counter() - started) / (config.max_minutes * 60),
                ),
            )
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
            optimizer.zero_grad()
            loss = loss_function(model(batch["image"].to(device)), batch["label"].to(device))
            loss.backward()
            optimizer.step()
            losses.append(float(loss.item()))
        elapsed = time.perf_counter() - started
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "seconds": elapsed}
        if validation and epoch % config.validate_every == 0:
            record["val_dice"] = evaluate_unet(model, validation, config)["mean_dice"]
            model.train()
        history.append(record)
        logger.info(
            "U-Net epoch %d: loss %.4f%s (%.0f s)",
            epoch,
            record["loss"],
            f", val Dice {record['val_dice']:.3f}" if "val_dice" in record else "",
            elapsed,
        )
        epoch_seconds = elapsed - (history[-2]["seconds"] if len(history) > 1 else 0.0)
        if elapsed + epoch_seconds > config.max_minutes * 60:  # the next epoch would end past the budget
            logger.info(
                "U-Net training stopped before the %.1f-minute budget (epoch %d)", config.max_minutes, epoch
            )
            break
    seconds = time.perf_counter() - started
    final = evaluate_unet(model, validation, config) if validation else {}
    return TrainedUNet(model.eval(), config, history, final, str(device), seconds)


def save_unet(trained: TrainedUNet, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``unet.pt`` (state dict) and ``unet.json`` (settings, history, validation) into ``out_dir``."""
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(trained.model.state_dict(), out / WEIGHTS_FILE)
    record = {
        "config": asdict(trained.config),
        "validation": trained.validation,
        "device": trained.device,
        "seconds": round(trained.seconds, 1),
        "history": trained.history,
    }
    (out / CONFIG_FILE).write_text(json.dumps(record, indent=2, default=_jsonable) + "\n")
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def load_unet(folder: str | os.PathLike[str]) -> tuple[Any, UNetConfig]:
    """Load a network saved by :func:`save_unet` (on CPU unless CUDA is available), in eval mode."""
    import torch

    from sabrkit.errors import ImageReadError

    path = Path(folder)
    if not (path / WEIGHTS_FILE).is_file() or not (path / CONFIG_FILE).is_file():
        raise ImageReadError(
            format_problem(
                f"U-Net folder {str(path)!r} lacks {WEIGHTS_FILE} or {CONFIG_FILE}",
                "a trained U-Net is saved by train_unet / pipelines/train_unet.py",
                "run the train_unet stage first",
            )
        )
    config = UNetConfig.from_json(json.loads((path / CONFIG_FILE).read_text())["config"])
    model = build_unet(config)
    model.load_state_dict(torch.load(path / WEIGHTS_FILE, map_location=_device(), weights_only=True))
    return model.to(_device()).eval(), config
