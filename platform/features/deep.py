r"""Deep lesion features: a MONAI 3-D autoencoder trained self-supervised on the cohort's lesion crops.

Each lesion becomes a fixed-size crop centred on its mask centroid (:class:`CropConfig`:
32³ voxels of 1.5 mm, two channels: the CT windowed to [-200, 300] HU scaled to [0, 1], and
the mask). A :class:`monai.networks.nets.AutoEncoder` learns to reconstruct the crops from
noisy copies (denoising autoencoder; loss :math:`\lVert f(x + \epsilon) - x \rVert_2^2`,
:math:`\epsilon \sim N(0, \sigma^2)`); a lesion's embedding is the global average of the
encoder's last feature maps, one value per channel, in columns ``deep_autoencoder_f000`` ...
(image type ``deep``, family ``autoencoder``, so :func:`~sabrkit.features.feature_columns`
treats them as features).

Weights come from :func:`train_encoder` (inside the pipeline, ``pipelines/train_encoder.py``)
or from a checkpoint the user supplies (:func:`load_encoder`); nothing is ever downloaded.
Training and embedding are deterministic on CPU for a given seed and thread count: the seed
comes from the caller's :class:`numpy.random.Generator`, torch's global RNG is forked and
restored around the work, and ``torch.use_deterministic_algorithms(True)`` is in force
during it. On a GPU (``device="auto"`` picks CUDA when present) batches run there;
bit-identity is then only promised per device.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.errors import ConfigError, NotFoundError, format_problem
from sabrkit.io import atomic_write_bytes

__all__ = [
    "CHECKPOINT_FORMAT",
    "CropConfig",
    "EncoderConfig",
    "TrainedEncoder",
    "lesion_crop",
    "load_crops",
    "train_encoder",
    "embed_crops",
    "deep_feature_table",
    "save_encoder",
    "load_encoder",
]

logger = logging.getLogger(__name__)

#: Format tag of sabrkit encoder checkpoints.
CHECKPOINT_FORMAT = "sabrkit-encoder-v1"
FEATURE_PREFIX = "deep_autoencoder_f"


@dataclass(frozen=True)
class CropConfig:
    """Lesion crop: ``size_voxels``³ voxels of ``spacing_mm``, CT window ``hu_window``."""

    size_voxels: int = 32
    spacing_mm: float = 1.5
    hu_window: tuple[float, float] = (-200.0, 300.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hu_window", tuple(float(v) for v in self.hu_window))
        if (
            self.size_voxels < 8
            or self.size_voxels % 8
            or self.spacing_mm <= 0
            or self.hu_window[0] >= self.hu_window[1]
        ):
            raise ConfigError(
                format_problem(
                    f"crop {asdict(self)}",
                    "size_voxels is a multiple of 8 (>= 8), spacing_mm > 0, hu_window low < high",
                    "use e.g. CropConfig(32, 1.5, (-200, 300))",
                )
            )


@dataclass(frozen=True)
class EncoderConfig:
    """Autoencoder shape and self-supervised training settings."""

    channels: tuple[int, ...] = (4, 8, 16)
    strides: tuple[int, ...] = (2, 2, 2)
    epochs: int = 15
    batch_size: int = 16
    learning_rate: float = 2e-3
    noise_sd: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        if (
            len(self.channels) != len(self.strides)
            or self.epochs < 1
            or self.batch_size < 1
            or self.learning_rate <= 0
        ):
            raise ConfigError(
                format_problem(
                    f"encoder {asdict(self)}",
                    "one stride per channel level, epochs >= 1, batch_size >= 1, learning_rate > 0",
                    "use e.g. EncoderConfig() (4/8/16 channels, stride 2)",
                )
            )

    @property
    def embedding_size(self) -> int:
        return self.channels[-1]


@dataclass
class TrainedEncoder:
    """An autoencoder's weights with the settings that produced them."""

    config: EncoderConfig
    crop: CropConfig
    state_dict: dict[str, Any]
    losses: list[float] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        """Hash of the weights (names, shapes, bytes) - recorded in ``prov_encoder_sha256``."""
        digest = hashlib.sha256()
        for name in sorted(self.state_dict):
            tensor = self.state_dict[name].detach().cpu().contiguous()
            digest.update(name.encode())
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.numpy().tobytes())
        return digest.hexdigest()


def lesion_crop(image: Any, mask: Any, crop: CropConfig) -> np.ndarray:
    """Two-channel crop ``(2, s, s, s)`` (windowed CT in [0, 1], mask) centred on the mask centroid."""
    import SimpleITK as sitk

    voxels = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)
    centre = image.TransformContinuousIndexToPhysicalPoint([float(v) for v in voxels.mean(axis=0)[::-1]])
    size, spacing = crop.size_voxels, crop.spacing_mm
    reference = sitk.Image([size] * 3, sitk.sitkFloat32)
    reference.SetSpacing([spacing] * 3)
    reference.SetOrigin([c - (size - 1) / 2 * spacing for c in centre])
    low, high = crop.hu_window
    ct = sitk.Resample(sitk.Cast(image, sitk.sitkFloat32), reference, sitk.Transform(), sitk.sitkLinear, low)
    roi = sitk.Resample(
        sitk.Cast(mask > 0, sitk.sitkFloat32), reference, sitk.Transform(), sitk.sitkLinear, 0.0
    )
    ct_array = (np.clip(sitk.GetArrayFromImage(ct), low, high) - low) / (high - low)
    roi_array = (sitk.GetArrayFromImage(roi) >= 0.5).astype(np.float32)
    return np.stack([ct_array.astype(np.float32), roi_array])


def load_crops(
    manifest: pd.DataFrame, crop: CropConfig, base_dir: str | os.PathLike[str] | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Crops of every lesion of a manifest (read one lesion at a time).

    Returns
    -------
    (DataFrame, ndarray)
        ``lesion_id, study_id, prov_image_sha256, prov_mask_sha256`` sorted by ``lesion_id``,
        and the crops ``(n, 2, s, s, s)`` float32 in that order.
    """
    from sabrkit.imaging import check_manifest, check_mask_not_empty, read_image, sha256_file

    check_manifest(manifest)
    base = Path(base_dir) if base_dir is not None else None
    ids, crops = [], []
    for row in manifest.sort_values("lesion_id").itertuples(index=False):
        paths = [Path(str(p)) if base is None or Path(str(p)).is_absolute() else base / str(p)
                 for p in (row.image_path, row.mask_path)]  # fmt: skip
        image = read_image(paths[0], str(row.lesion_id), role="image")
        mask = read_image(paths[1], str(row.lesion_id), role="mask")
        check_mask_not_empty(mask, str(row.lesion_id))
        crops.append(lesion_crop(image, mask, crop))
        ids.append({"lesion_id": str(row.lesion_id), "study_id": str(row.study_id),
                    "prov_image_sha256": sha256_file(paths[0]), "prov_mask_sha256": sha256_file(paths[1])})  # fmt: skip
    return pd.DataFrame(ids), np.stack(crops) if crops else np.zeros(
        (0, 2, *[crop.size_voxels] * 3), np.float32
    )


def _device(device: str) -> Any:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextmanager
def _deterministic(seed: int) -> Iterator[None]:
    """Fork torch's RNG, seed it, and enforce deterministic algorithms for the block."""
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous)


def _network(config: EncoderConfig) -> Any:
    from monai.networks.nets import AutoEncoder

    return AutoEncoder(
        spatial_dims=3, in_channels=2, out_channels=2, channels=config.channels, strides=config.strides
    )


def train_encoder(
    crops: np.ndarray,
    rng: np.random.Generator,
    config: EncoderConfig | None = None,
    crop: CropConfig | None = None,
    device: str = "auto",
) -> TrainedEncoder:
    """Train the denoising autoencoder on lesion crops (self-supervised: no labels).

    Parameters
    ----------
    crops : ndarray, shape (n, 2, s, s, s)
        From :func:`load_crops`.
    rng : numpy.random.Generator
        Source of the seed (weights, batch order, noise).
    config : EncoderConfig, optional
    crop : CropConfig, optional
        Stored with the weights so embedding uses the same crops.
    device : str, default "auto"

    Returns
    -------
    TrainedEncoder
        CPU weights, settings and the mean loss per epoch.
    """
    import torch

    config, crop = config or EncoderConfig(), crop or CropConfig()
    if crops.ndim != 5 or crops.shape[1] != 2 or crops.shape[0] < 2:
        raise ConfigError(
            format_problem(
                f"crops of shape {crops.shape}", "training needs (n >= 2, 2, s, s, s) crops", "use load_crops"
            )
        )
    seed = int(rng.integers(0, 2**31 - 1))
    where = _device(device)
    losses: list[float] = []
    with _deterministic(seed):
        network = _network(config).to(where)
        optimiser = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
        data = torch.from_numpy(crops)
        generator = torch.Generator().manual_seed(seed)
        for epoch in range(config.epochs):
            order = torch.randperm(len(data), generator=generator)
            total = 0.0
            for start in range(0, len(data), config.batch_size):
                clean = data[order[start : start + config.batch_size]].to(where)
                noise = torch.randn(clean.shape, generator=generator).to(where) * config.noise_sd
                optimiser.zero_grad()
                loss = torch.nn.functional.mse_loss(network(clean + noise), clean)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(clean)
            losses.append(total / len(data))
            logger.debug("encoder epoch %d: loss %.5f", epoch + 1, losses[-1])
    state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
    logger.info(
        "trained encoder: %d crops, %d epochs, final loss %.5f", len(crops), config.epochs, losses[-1]
    )
    return TrainedEncoder(config, crop, state, losses)


def embed_crops(
    crops: np.ndarray, encoder: TrainedEncoder, batch_size: int = 64, device: str = "auto"
) -> np.ndarray:
    """Embeddings ``(n, channels[-1])``: global average of the encoder's last feature maps."""
    import torch

    where = _device(device)
    with _deterministic(0), torch.no_grad():
        network = _network(encoder.config)
        network.load_state_dict(encoder.state_dict)
        network = network.to(where).eval()
        parts = [
            network.encode(torch.from_numpy(crops[start : start + batch_size]).to(where))
            .mean(dim=(2, 3, 4))
            .cpu()
            for start in range(0, len(crops), batch_size)
        ]
    return (
        torch.cat(parts).numpy().astype(np.float64) if parts else np.zeros((0, encoder.config.embedding_size))
    )


def deep_feature_table(
    manifest: pd.DataFrame,
    encoder: TrainedEncoder,
    base_dir: str | os.PathLike[str] | None = None,
    device: str = "auto",
    crops: tuple[pd.DataFrame, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per lesion: ``lesion_id, study_id, deep_autoencoder_f000 ..., prov_*``.

    ``crops`` (the output of :func:`load_crops`) may be passed to avoid reading the images again.
    """
    import monai
    import torch

    from sabrkit.version import __version__

    ids, arrays = crops if crops is not None else load_crops(manifest, encoder.crop, base_dir)
    embedding = embed_crops(arrays, encoder, device=device)
    columns = [f"{FEATURE_PREFIX}{k:03d}" for k in range(embedding.shape[1])]
    table = pd.concat([ids[["lesion_id", "study_id"]], pd.DataFrame(embedding, columns=columns)], axis=1)
    table["prov_image_sha256"] = ids["prov_image_sha256"]
    table["prov_mask_sha256"] = ids["prov_mask_sha256"]
    table["prov_encoder_sha256"] = encoder.sha256
    table["prov_encoder_format"] = CHECKPOINT_FORMAT
    table["prov_torch_version"] = torch.__version__
    table["prov_monai_version"] = monai.__version__
    table["prov_sabrkit_version"] = __version__
    return table


def save_encoder(encoder: TrainedEncoder, path: str | os.PathLike[str]) -> Path:
    """Write a checkpoint (weights + settings) atomically; load it with :func:`load_encoder`."""
    import torch

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "encoder": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(encoder.config).items()},
        "crop": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(encoder.crop).items()},
        "losses": [float(v) for v in encoder.losses],
        "state_dict": encoder.state_dict,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(target, buffer.getvalue())


def load_encoder(path: str | os.PathLike[str]) -> TrainedEncoder:
    """Read a checkpoint written by :func:`save_encoder` (tensors only: ``weights_only=True``).

    Raises
    ------
    NotFoundError
        The file does not exist.
    ConfigError
        Not a sabrkit encoder checkpoint, or its weights do not fit its settings.
    """
    import torch

    file = Path(path)
    if not file.is_file():
        raise NotFoundError(
            format_problem(
                f"encoder checkpoint {str(file)!r} does not exist",
                "deep features need trained weights (nothing is downloaded)",
                "run pipelines/train_encoder.py or pass the path of your checkpoint",
            )
        )
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {payload.get('format')!r}")
        config, crop = EncoderConfig(**payload["encoder"]), CropConfig(**payload["crop"])
        _network(config).load_state_dict(payload["state_dict"], strict=True)
    except Exception as exc:
        raise ConfigError(
            format_problem(
                f"{file}: not a usable sabrkit encoder checkpoint ({type(exc).__name__}: {exc})",
                f"checkpoints hold format {CHECKPOINT_FORMAT!r}, encoder and crop settings and matching weights",
                "write it with sabrkit.features.save_encoder (or retrain with pipelines/train_encoder.py)",
            )
        ) from exc
    return TrainedEncoder(config, crop, payload["state_dict"], list(payload.get("losses", [])))
