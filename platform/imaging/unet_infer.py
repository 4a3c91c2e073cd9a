"""Sliding-window inference with the lesion U-Net, Dice evaluation, and whole-image segmentation.

Dice coefficient of a predicted mask :math:`P` and a reference :math:`G`:

.. math::

    \\mathrm{Dice}(P, G) = \\frac{2 |P \\cap G|}{|P| + |G|}

(1 when both are empty). The prediction keeps only the largest connected component
(26-connectivity): lesion crops hold one lesion, and stray voxels would only lower Dice.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy import ndimage as ndi

__all__ = ["dice_coefficient", "predict_mask", "evaluate_unet", "segment_image"]

logger = logging.getLogger(__name__)


def dice_coefficient(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Dice of two binary arrays (see the module docstring)."""
    p, g = np.asarray(prediction, bool), np.asarray(reference, bool)
    total = int(p.sum()) + int(g.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(p, g).sum()) / total


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a binary array (the array itself when empty)."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3, 3), bool))
    if n <= 1:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def predict_mask(model: Any, image: np.ndarray, config: Any, *, keep_largest: bool = True) -> np.ndarray:
    """Lesion mask (bool, z, y, x) of one scaled channel-first array ``[1, z, y, x]``."""
    import torch
    from monai.inferers import sliding_window_inference

    device = next(model.parameters()).device
    shape = image.shape[1:]
    pad = [max(0, p - s) for p, s in zip(config.patch_size, shape)]
    padded = np.pad(image, [(0, 0)] + [(0, q) for q in pad], mode="edge") if any(pad) else image
    with torch.no_grad():
        tensor = torch.as_tensor(padded[None], dtype=torch.float32, device=device)
        logits = sliding_window_inference(
            tensor,
            roi_size=config.patch_size,
            sw_batch_size=4,
            predictor=model,
            overlap=config.sw_overlap,
            mode="gaussian",
        )
    mask = (
        torch.as_tensor(logits)
        .argmax(dim=1)[0]
        .cpu()
        .numpy()
        .astype(bool)[: shape[0], : shape[1], : shape[2]]
    )
    return largest_component(mask) if keep_largest else mask


def evaluate_unet(model: Any, lesions: list[dict[str, Any]], config: Any) -> dict[str, Any]:
    """Mean / median / minimum Dice over ``lesions`` (from :func:`~sabrkit.imaging.unet.lesion_arrays`)."""
    model.eval()
    per_lesion: dict[str, float] = {}
    for lesion in lesions:
        predicted = predict_mask(model, lesion["image"], config)
        per_lesion[lesion.get("lesion_id", str(len(per_lesion)))] = dice_coefficient(
            predicted, lesion["label"][0] > 0
        )
    values = np.array(list(per_lesion.values()), dtype=float)
    return {
        "mean_dice": float(values.mean()) if values.size else float("nan"),
        "median_dice": float(np.median(values)) if values.size else float("nan"),
        "min_dice": float(values.min()) if values.size else float("nan"),
        "n_lesions": int(values.size),
        "per_lesion": per_lesion,
    }


def segment_image(model: Any, config: Any, image: Any, spacing_mm: float = 1.0) -> Any:
    """Segment the lesion in a whole SimpleITK image; the mask comes back on the image's grid.

    The image is resampled to ``spacing_mm`` isotropic (linear), scaled to the U-Net's HU
    window, segmented by sliding window (largest component kept) and the mask is resampled
    back with nearest neighbour.
    """
    import SimpleITK as sitk

    from sabrkit.imaging.transforms import ResampleToSpacing
    from sabrkit.imaging.unet import scale_hu

    resampled = ResampleToSpacing(spacing_mm, "linear")(image)
    array = scale_hu(sitk.GetArrayFromImage(resampled), config.hu_window)[None]
    mask = predict_mask(model, array, config).astype(np.uint8)
    small = sitk.GetImageFromArray(mask)
    small.CopyInformation(resampled)
    back = sitk.Resample(small, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return back
