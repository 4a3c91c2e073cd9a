"""DICOM Segmentation (SEG) objects -> voxel masks on their source series, with highdicom.

highdicom's :meth:`~highdicom.seg.Segmentation.get_pixels_by_source_instance` returns one
mask frame per source image, in the order asked for; asking in the series' slice order gives a
volume on the series' grid directly, whatever order the SEG stores its frames in.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sabrkit.errors import EmptyMaskError, ImageReadError, format_problem

__all__ = ["SegmentInfo", "SegObject", "read_seg", "seg_masks"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentInfo:
    number: int
    label: str


@dataclass(frozen=True)
class SegObject:
    """What ingest needs from a SEG file (the highdicom object is kept for reading pixels)."""

    path: str
    patient_id: str
    study_uid: str
    referenced_series_uids: tuple[str, ...]
    segments: tuple[SegmentInfo, ...]
    segmentation: object

    @property
    def n_segments(self) -> int:
        return len(self.segments)


def read_seg(path: str | os.PathLike[str]) -> SegObject:
    """Read a DICOM SEG file with :func:`highdicom.seg.segread`.

    Raises
    ------
    ImageReadError
        The file cannot be read as a Segmentation instance.
    """
    import highdicom as hd

    file = Path(path)
    try:
        seg = hd.seg.segread(file)
    except Exception as exc:  # highdicom/pydicom raise many types for broken files
        raise ImageReadError(
            format_problem(f"DICOM SEG {str(file)!r} could not be read ({type(exc).__name__}: {exc})",
                           "the file must be a complete Segmentation Storage instance",
                           "copy it again from the archive or export it again")
        ) from exc
    referenced = tuple(
        sorted(
            {str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", [])}
            | {str(s) for s, *_ in _source_uids(seg)}
        )
    )
    segments = tuple(
        SegmentInfo(int(item.SegmentNumber), str(item.get("SegmentLabel", f"segment_{int(item.SegmentNumber)}")))
        for item in seg.SegmentSequence
    )
    return SegObject(str(file), str(seg.get("PatientID", "")), str(seg.StudyInstanceUID), referenced, segments, seg)


def _source_uids(seg: object) -> list[tuple[str, str, str]]:
    try:
        return list(seg.get_source_image_uids())  # type: ignore[attr-defined]
    except Exception:  # older SEGs without source references
        return []


def seg_masks(seg: SegObject, source_sop_uids: Sequence[str], reference: object) -> dict[int, object]:
    """Masks of every segment of ``seg`` on the grid of its source series.

    Parameters
    ----------
    seg : SegObject
    source_sop_uids : sequence of str
        SOP instance UIDs of the source series, in the slice order of ``reference``.
    reference : SimpleITK.Image
        The source series read by :func:`~sabrkit.imaging.dicom_index.read_series`.

    Returns
    -------
    dict
        Segment number -> uint8 SimpleITK mask (0/1) with ``reference``'s geometry.

    Raises
    ------
    EmptyMaskError
        A segment has no foreground voxel on this series.
    ImageReadError
        highdicom cannot map the SEG frames onto the series' instances.
    """
    import SimpleITK as sitk

    numbers = [s.number for s in seg.segments]
    try:
        pixels = seg.segmentation.get_pixels_by_source_instance(  # type: ignore[attr-defined]
            source_sop_instance_uids=list(source_sop_uids), segment_numbers=numbers, dtype=np.uint8
        )
    except Exception as exc:  # KeyError / ValueError / RuntimeError from highdicom
        raise ImageReadError(
            format_problem(f"DICOM SEG {seg.path!r}: frames cannot be matched to the series' instances ({exc})",
                           "a SEG must reference the instances of the series it segments",
                           "export the SEG from the series that was ingested")
        ) from exc
    masks: dict[int, object] = {}
    for position, info in enumerate(seg.segments):
        volume = (pixels[..., position] > 0).astype(np.uint8)
        if not volume.any():
            raise EmptyMaskError(
                format_problem(f"DICOM SEG {seg.path!r}: segment {info.number} ({info.label!r}) is empty",
                               "a segment used as a lesion mask needs at least one voxel",
                               "remove the empty segment or segment the lesion again")
            )
        mask = sitk.GetImageFromArray(volume)
        mask.CopyInformation(reference)
        masks[info.number] = mask
    return masks
