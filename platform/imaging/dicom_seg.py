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

__all__ = [
    "OCCUPANCY_THRESHOLD",
    "SegmentInfo",
    "SegObject",
    "read_seg",
    "seg_masks",
    "segment_voxels",
    "segmentation_kind",
]

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
            format_problem(
                f"DICOM SEG {str(file)!r} could not be read ({type(exc).__name__}: {exc})",
                "the file must be a complete Segmentation Storage instance",
                "copy it again from the archive or export it again",
            )
        ) from exc
    referenced = tuple(
        sorted(
            {str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", [])}
            | {str(s) for s, *_ in _source_uids(seg)}
        )
    )
    segments = tuple(
        SegmentInfo(
            int(item.SegmentNumber), str(item.get("SegmentLabel", f"segment_{int(item.SegmentNumber)}"))
        )
        for item in seg.SegmentSequence
    )
    return SegObject(
        str(file), str(seg.get("PatientID", "")), str(seg.StudyInstanceUID), referenced, segments, seg
    )


def _source_uids(seg: object) -> list[tuple[str, str, str]]:
    try:
        return list(seg.get_source_image_uids())  # type: ignore[attr-defined]
    except Exception:  # older SEGs without source references
        return []


#: A voxel of an OCCUPANCY fractional segment is inside when at least this fraction of it is covered.
OCCUPANCY_THRESHOLD = 0.5


def segmentation_kind(seg: SegObject) -> tuple[str, str]:
    """``(SegmentationType, SegmentationFractionalType)`` of a SEG (the second empty for BINARY)."""
    data = seg.segmentation
    kind = str(data.get("SegmentationType", "BINARY")).upper()  # type: ignore[attr-defined]
    fractional = str(data.get("SegmentationFractionalType", "")).upper() if kind == "FRACTIONAL" else ""  # type: ignore[attr-defined]
    return kind, fractional


def _check_supported(seg: SegObject) -> str:
    kind, fractional = segmentation_kind(seg)
    if kind == "FRACTIONAL" and fractional != "OCCUPANCY":
        raise ImageReadError(
            format_problem(
                f"DICOM SEG {seg.path!r} is FRACTIONAL with SegmentationFractionalType {fractional or '(missing)'}",
                "sabrkit converts BINARY segments and FRACTIONAL OCCUPANCY segments (voxels covered >= 50 %); a "
                "PROBABILITY map is a model output, and where to cut it is the user's choice",
                "threshold the map yourself and save a BINARY SEG (e.g. highdicom Segmentation with "
                "segmentation_type=BINARY), or supply the RTSTRUCT",
            )
        )
    if kind not in ("BINARY", "FRACTIONAL"):
        raise ImageReadError(
            format_problem(
                f"DICOM SEG {seg.path!r} has SegmentationType {kind}",
                "sabrkit converts BINARY and FRACTIONAL (OCCUPANCY) segmentations",
                "export a BINARY segmentation (a LABELMAP SEG can be converted with highdicom)",
            )
        )
    return kind


def segment_voxels(seg: SegObject, source_sop_uids: Sequence[str], number: int) -> np.ndarray:
    """One segment as a (z, y, x) uint8 0/1 array in the order of ``source_sop_uids``.

    BINARY segments are taken as they are. FRACTIONAL segments of type OCCUPANCY (the
    fraction of each voxel the structure covers) become the voxels covered at least half
    (:data:`OCCUPANCY_THRESHOLD`: for a boundary straight at voxel scale that is the voxel
    centre inside, the rule RTSTRUCT contours are filled by). FRACTIONAL segments of type
    PROBABILITY (a model's output) are refused: a threshold would be a modelling choice sabrkit
    cannot make for the user.

    Raises
    ------
    EmptyMaskError
        The segment has no foreground voxel on this series.
    ImageReadError
        A PROBABILITY segmentation, an unknown segmentation type, or highdicom cannot map the
        SEG frames onto the series' instances.
    """
    kind = _check_supported(seg)
    try:
        raw = seg.segmentation.get_pixels_by_source_instance(  # type: ignore[attr-defined]
            source_sop_instance_uids=list(source_sop_uids),
            segment_numbers=[int(number)],
            rescale_fractional=False,
            dtype=np.uint8,
        )[..., 0]
    except Exception as exc:  # KeyError / ValueError / RuntimeError from highdicom
        raise ImageReadError(
            format_problem(
                f"DICOM SEG {seg.path!r}: frames cannot be matched to the series' instances ({exc})",
                "a SEG must reference the instances of the series it segments",
                "export the SEG from the series that was ingested",
            )
        ) from exc
    if kind == "FRACTIONAL":
        maximum = float(seg.segmentation.get("MaximumFractionalValue", 255))  # type: ignore[attr-defined]
        inside = raw >= OCCUPANCY_THRESHOLD * maximum
    else:
        inside = raw > 0
    if not inside.any():
        label = next((s.label for s in seg.segments if s.number == number), "")
        raise EmptyMaskError(
            format_problem(
                f"DICOM SEG {seg.path!r}: segment {number} ({label!r}) is empty",
                "a segment used as a mask needs at least one voxel",
                "remove the empty segment or segment the structure again",
            )
        )
    return inside.astype(np.uint8)


def seg_masks(
    seg: SegObject,
    source_sop_uids: Sequence[str],
    reference: object,
    *,
    segment_numbers: Sequence[int] | None = None,
) -> dict[int, object]:
    """Masks of the segments of ``seg`` on the grid of its source series (see :func:`segment_voxels`).

    Parameters
    ----------
    seg : SegObject
    source_sop_uids : sequence of str
        SOP instance UIDs of the source series, in slice order (z of ``reference``).
    reference : SimpleITK.Image or ImageGrid
        The source series' grid.
    segment_numbers : sequence of int, optional
        Segments to convert (default all).

    Returns
    -------
    dict
        Segment number -> uint8 SimpleITK mask (0/1) with ``reference``'s geometry.
    """
    from sabrkit.imaging.rtstruct import ImageGrid

    grid = reference if isinstance(reference, ImageGrid) else ImageGrid.of(reference)
    numbers = [s.number for s in seg.segments] if segment_numbers is None else list(segment_numbers)
    masks: dict[int, object] = {}
    for number in numbers:
        inside = segment_voxels(seg, source_sop_uids, number)
        mask, voxels = grid.empty_mask()
        voxels[...] = inside
        del voxels
        masks[number] = mask
    return masks
