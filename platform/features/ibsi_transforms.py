"""MONAI-style transforms for the IBSI-1 chain (array form and dict form).

:class:`IBSIProcess` runs :func:`~sabrkit.features.ibsi_processing.process_roi` on an
(image, mask) pair; :class:`IBSIProcessd` does the same on a sample dict
(``{"image", "mask", "lesion_id", ...}``), adds the :class:`~sabrkit.features.ibsi_processing.ProcessedROI`
under ``roi_key`` and leaves every other key untouched, as ``sabrkit.imaging.transforms`` does.
Both subclass MONAI's :class:`~monai.transforms.Transform` / :class:`~monai.transforms.MapTransform`
so they compose with MONAI transforms (``Compose([LoadSitkd(...), IBSIProcessd(...)])``).
This module imports MONAI (and torch); the extraction path does not need it.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from typing import Any

from monai.transforms import MapTransform, Transform

from sabrkit.features.ibsi_processing import IBSIProcessing, ProcessedROI, process_roi

__all__ = ["IBSIProcess", "IBSIProcessd"]

logger = logging.getLogger(__name__)


class IBSIProcess(Transform):
    """Interpolate, re-segment and discretise one (image, mask) pair the IBSI way.

    Parameters
    ----------
    processing : IBSIProcessing or dict
        The chain's settings (a profile's ``preprocessing`` section); a dict is validated.
    bin_width, bin_count : optional
        Discretisation (one of them).
    label : int
    crop : bool
        Interpolate only the grid window around the ROI.
    """

    def __init__(
        self,
        processing: IBSIProcessing | dict[str, Any],
        *,
        bin_width: float | None = None,
        bin_count: int | None = None,
        label: int = 1,
        crop: bool = True,
    ) -> None:
        self.processing = (
            processing if isinstance(processing, IBSIProcessing) else IBSIProcessing.from_mapping(processing)
        )
        self.bin_width, self.bin_count, self.label, self.crop = bin_width, bin_count, label, crop

    def __call__(self, image: Any, mask: Any, case_id: str = "image") -> ProcessedROI:  # type: ignore[override]
        return process_roi(
            image, mask, self.processing, label=self.label, bin_width=self.bin_width, bin_count=self.bin_count,
            case_id=case_id, crop=self.crop,
        )  # fmt: skip


class IBSIProcessd(MapTransform):
    """Dict form of :class:`IBSIProcess`: reads ``image_key`` / ``mask_key``, writes ``roi_key``.

    ``lesion_id`` (when present) names the case in error messages.
    """

    def __init__(
        self,
        processing: IBSIProcessing | dict[str, Any],
        *,
        image_key: str = "image",
        mask_key: str = "mask",
        roi_key: str = "ibsi_roi",
        bin_width: float | None = None,
        bin_count: int | None = None,
        label: int = 1,
        crop: bool = True,
    ) -> None:
        super().__init__([image_key, mask_key])
        self.image_key, self.mask_key, self.roi_key = image_key, mask_key, roi_key
        self.transform = IBSIProcess(
            processing, bin_width=bin_width, bin_count=bin_count, label=label, crop=crop
        )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        out = dict(data)
        case_id = str(out.get("lesion_id", "image"))
        out[self.roi_key] = self.transform(out[self.image_key], out[self.mask_key], case_id)
        return out
