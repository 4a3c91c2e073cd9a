"""Crawl a folder of DICOM files, group them into series and read image series.

The crawl reads headers only (``pydicom.dcmread(..., stop_before_pixels=True)``), so a folder
of thousands of slices is indexed in seconds; each file becomes one :class:`DicomFile`.
Image files are also checked for a complete pixel-data element: a file cut short during a
copy (a "truncated" DICOM file) is reported with its path and the missing byte count before
SimpleITK ever sees it.

:func:`group_series` collects the image files of one ``SeriesInstanceUID``;
:func:`check_series_geometry` refuses a series whose slices are not an evenly spaced stack
(a missing slice shows up as one gap twice the usual spacing); :func:`read_series` reads the
checked series with SimpleITK's :class:`~SimpleITK.ImageSeriesReader` in slice order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sabrkit.errors import CaseFailure, ImageGeometryError, ImageReadError, format_problem

__all__ = [
    "IMAGE_STORAGE_MODALITIES",
    "RTSTRUCT_SOP_CLASS",
    "SEG_SOP_CLASS",
    "DicomFile",
    "ImageSeries",
    "read_dicom_header",
    "looks_like_dicom",
    "crawl_dicom",
    "group_series",
    "check_series_geometry",
    "read_series",
    "series_grid",
    "write_series_nifti",
    "writable_array",
]

logger = logging.getLogger(__name__)

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
#: Modalities read as image series by default.
IMAGE_STORAGE_MODALITIES: tuple[str, ...] = ("CT", "MR", "PT")
_UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
_NON_IMAGE_MODALITIES = frozenset(
    {"RTSTRUCT", "SEG", "RTPLAN", "RTDOSE", "RTRECORD", "SR", "KO", "PR", "REG", "DOC"}
)
_IMAGE_REQUIRED = ("Rows", "Columns", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")


@dataclass(frozen=True)
class DicomFile:
    """Header facts of one DICOM file (no pixel data, no names or birth dates)."""

    path: str
    sop_class_uid: str
    sop_instance_uid: str
    modality: str
    patient_id: str
    study_uid: str
    study_date: str
    series_uid: str
    series_number: int | None = None
    frame_of_reference_uid: str = ""
    position: tuple[float, float, float] | None = None
    orientation: tuple[float, ...] | None = None
    pixel_spacing: tuple[float, float] | None = None
    rows: int = 0
    columns: int = 0
    manufacturer: str = ""
    model: str = ""
    #: SHA-256 of the file's bytes (what ingest's "no work twice" compares)
    sha256: str = ""

    @property
    def is_image(self) -> bool:
        return self.position is not None and self.rows > 0


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return values if len(values) == n and all(np.isfinite(values)) else None


def _expected_pixel_bytes(ds: object) -> int:
    get = ds.get  # type: ignore[attr-defined]
    frames = int(get("NumberOfFrames", 1) or 1)
    return (
        int(get("Rows", 0))
        * int(get("Columns", 0))
        * int(get("SamplesPerPixel", 1))
        * frames
        * (int(get("BitsAllocated", 16)) // 8)
    )


def read_dicom_header(path: str | os.PathLike[str]) -> DicomFile:
    """Read one file's header and check an uncompressed image file holds all its pixel bytes.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    DicomFile

    Raises
    ------
    ImageReadError
        Not a DICOM file, a header cut short (required attributes missing), or an image whose
        pixel data is shorter than ``Rows x Columns x BitsAllocated/8`` (truncated file).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    file = Path(path)
    try:
        with open(file, "rb") as handle:
            ds = pydicom.dcmread(handle, stop_before_pixels=True)
            pixel_start = handle.tell()
            size = os.fstat(handle.fileno()).st_size
            handle.seek(0)
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError) as exc:
        raise ImageReadError(
            format_problem(
                f"DICOM file {str(file)!r} could not be read ({type(exc).__name__}: {exc})",
                "every file of an export must be a complete DICOM Part 10 file",
                "copy the file again from the archive, or remove it from the folder",
            )
        ) from exc
    for key in ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "Modality"):
        if key not in ds:
            raise ImageReadError(
                format_problem(
                    f"DICOM file {str(file)!r} lacks {key} (header cut short or not a composite instance)",
                    "every instance needs SOP Class/Instance, Study, Series UIDs and Modality",
                    "copy the file again from the archive (it may be truncated), or remove it",
                )
            )
    modality = str(ds.Modality)
    is_image = modality not in _NON_IMAGE_MODALITIES
    if is_image:
        missing = [k for k in _IMAGE_REQUIRED if k not in ds]
        if missing:
            raise ImageReadError(
                format_problem(
                    f"DICOM image {str(file)!r} lacks {missing}",
                    "image slices need Rows, Columns and the image plane attributes",
                    "copy the file again from the archive (the header may be truncated)",
                )
            )
        transfer_syntax = str(getattr(ds.file_meta, "TransferSyntaxUID", "1.2.840.10008.1.2"))
        expected = _expected_pixel_bytes(ds)
        available = size - pixel_start - 8  # the pixel element's tag and length (implicit VR)
        if transfer_syntax in _UNCOMPRESSED and available < expected:
            raise ImageReadError(
                format_problem(
                    f"DICOM image {str(file)!r} is truncated: pixel data needs {expected} bytes, "
                    f"the file holds at most {max(available, 0)}",
                    "every slice must hold Rows x Columns x BitsAllocated/8 pixel bytes",
                    "copy the file again from the archive",
                )
            )
    number = ds.get("SeriesNumber")
    return DicomFile(
        path=str(file),
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        modality=modality,
        patient_id=str(ds.get("PatientID", "")),
        study_uid=str(ds.StudyInstanceUID),
        study_date=str(ds.get("StudyDate", "") or ""),
        series_uid=str(ds.SeriesInstanceUID),
        series_number=int(number) if number not in (None, "") else None,
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        position=_floats(ds.get("ImagePositionPatient"), 3) if is_image else None,  # type: ignore[arg-type]
        orientation=_floats(ds.get("ImageOrientationPatient"), 6) if is_image else None,
        pixel_spacing=_floats(ds.get("PixelSpacing"), 2) if is_image else None,  # type: ignore[arg-type]
        rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0),
        manufacturer=str(ds.get("Manufacturer", "") or ""),
        model=str(ds.get("ManufacturerModelName", "") or ""),
        sha256=digest,
    )


def looks_like_dicom(path: Path) -> bool:
    """True for ``.dcm``/``.dicom``/``.ima`` files and files with the ``DICM`` marker at byte 128."""
    if path.suffix.lower() in (".dcm", ".dicom", ".ima"):
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def crawl_dicom(
    root: str | os.PathLike[str],
    known: dict[str, tuple[int, int, DicomFile]] | None = None,
    *,
    known_key: Callable[[str], str] = str,
) -> tuple[list[DicomFile], list[CaseFailure], dict[str, tuple[int, int, DicomFile]]]:
    """Index every DICOM file under ``root`` (recursively, sorted by path).

    Parameters
    ----------
    root : path-like
    known : dict, optional
        A previous index ``{key: (size, mtime_ns, DicomFile)}``; files whose size and
        modification time are unchanged are not read again (their record is taken with the
        file's current path).
    known_key : callable, default str
        Maps a path to its key in ``known`` (ingest stores paths with hospital numbers redacted).

    Returns
    -------
    files : list of DicomFile
    failures : list of CaseFailure
        One per unreadable file (``case_id`` is the path, ``stage`` ``"read"``).
    index : dict
        The new ``{path: (size, mtime_ns, DicomFile)}`` index to pass next time.
    """
    known = known or {}
    files: list[DicomFile] = []
    failures: list[CaseFailure] = []
    index: dict[str, tuple[int, int, DicomFile]] = {}
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file() and not p.name.startswith(".")):
        if not looks_like_dicom(path):
            continue
        stat = path.stat()
        cached = known.get(known_key(str(path)))
        if cached is not None and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
            record = dataclasses.replace(cached[2], path=str(path))
        else:
            try:
                record = read_dicom_header(path)
            except ImageReadError as exc:
                failures.append(CaseFailure(str(path), "read", str(exc)))
                continue
        index[str(path)] = (stat.st_size, stat.st_mtime_ns, record)
        files.append(record)
    logger.info("crawled %d DICOM file(s), %d unreadable", len(files), len(failures))
    return files, failures, index


@dataclass
class ImageSeries:
    """The image files of one series, sorted along the slice normal."""

    series_uid: str
    files: list[DicomFile] = field(default_factory=list)

    @property
    def first(self) -> DicomFile:
        return self.files[0]

    def normal(self) -> np.ndarray:
        row, col = np.asarray(self.first.orientation[:3]), np.asarray(self.first.orientation[3:])  # type: ignore[index]
        return np.cross(row, col)

    def slice_positions(self) -> np.ndarray:
        """Distance of each slice along the normal (mm), in file order."""
        return np.array([float(np.dot(f.position, self.normal())) for f in self.files])  # type: ignore[arg-type]


def group_series(
    files: Iterable[DicomFile], modalities: Sequence[str] = IMAGE_STORAGE_MODALITIES
) -> dict[str, ImageSeries]:
    """Group image files of the given modalities by series UID, slices sorted along the normal."""
    series: dict[str, ImageSeries] = {}
    for record in files:
        if record.is_image and record.modality in modalities:
            series.setdefault(record.series_uid, ImageSeries(record.series_uid)).files.append(record)
    for item in series.values():
        order = np.argsort(item.slice_positions(), kind="stable")
        item.files = [item.files[i] for i in order]
    return series


def check_series_geometry(series: ImageSeries, relative_tolerance: float = 0.01) -> float:
    """Check that a series is an evenly spaced stack of parallel, same-size slices.

    Parameters
    ----------
    series : ImageSeries
    relative_tolerance : float, default 0.01
        Largest allowed deviation of any slice gap from the median gap, as a fraction of it.

    Returns
    -------
    float
        The slice spacing (median gap, mm).

    Raises
    ------
    ImageGeometryError
        Fewer than two slices, mixed orientations or sizes, two slices at one position, or
        uneven gaps (naming the gap, the files on both sides and, when a gap is a multiple of
        the spacing, how many slices are missing).
    """
    where = f"series {series.series_uid} ({len(series.files)} slice(s), first file {series.first.path!r})"
    if len(series.files) < 2:
        raise ImageGeometryError(
            format_problem(where, "a volume needs at least two slices", "export the whole series")
        )
    shapes = {(f.rows, f.columns, f.pixel_spacing) for f in series.files}
    orientations = np.array([f.orientation for f in series.files], dtype=float)
    if len(shapes) > 1 or np.abs(orientations - orientations[0]).max() > 1e-4:
        raise ImageGeometryError(
            format_problem(
                f"{where}: slices differ in size, pixel spacing or orientation",
                "every slice of a series must share rows, columns, pixel spacing and orientation",
                "split the series (e.g. a scout or a reformat mixed in) and export each part alone",
            )
        )
    gaps = np.diff(series.slice_positions())
    spacing = float(np.median(gaps))
    if spacing <= 0 or np.any(gaps <= 1e-6 * max(spacing, 1.0)):
        k = int(np.argmin(gaps))
        raise ImageGeometryError(
            format_problem(
                f"{where}: two slices at one position ({series.files[k].path!r}, {series.files[k + 1].path!r})",
                "each slice position appears once",
                "remove duplicated files or split the series by acquisition",
            )
        )
    bad = np.flatnonzero(np.abs(gaps - spacing) > relative_tolerance * spacing)
    if bad.size:
        k = int(bad[0])
        ratio = gaps[k] / spacing
        hint = (
            f" ({round(ratio) - 1} slice(s) missing)"
            if abs(ratio - round(ratio)) < 0.05 and ratio > 1.5
            else ""
        )
        raise ImageGeometryError(
            format_problem(
                f"{where}: uneven slice spacing, gap {gaps[k]:.4g} mm between {series.files[k].path!r} and "
                f"{series.files[k + 1].path!r} vs {spacing:.4g} mm elsewhere{hint}",
                f"slice gaps must agree within {relative_tolerance:.0%}",
                "export the complete series again; a series with variable spacing must be resampled by "
                "the scanner software first",
            )
        )
    return spacing


def read_series(series: ImageSeries) -> object:
    """Read a checked series with SimpleITK (rescale slope/intercept applied; CT as int16 HU).

    Raises
    ------
    ImageReadError
        SimpleITK cannot read a file of the series (the message names the series).
    """
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([f.path for f in series.files])
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        first_line = next((ln for ln in str(exc).splitlines() if "ERROR" in ln), str(exc).splitlines()[0])
        raise ImageReadError(
            format_problem(
                f"series {series.series_uid} (first file {series.first.path!r}) could not be read ({first_line.strip()})",
                "SimpleITK must be able to decode every slice",
                "check the transfer syntax is supported by GDCM, or re-export uncompressed",
            )
        ) from exc
    if series.first.modality == "CT" and image.GetPixelID() != sitk.sitkInt16:
        values = sitk.GetArrayViewFromImage(image)
        if np.all(np.mod(values, 1) == 0) and values.min() >= -32768 and values.max() <= 32767:
            image = sitk.Cast(image, sitk.sitkInt16)
    return image


def writable_array(image: Any) -> np.ndarray:
    """A writable NumPy view of a SimpleITK image's own pixel buffer (z, y, x).

    SimpleITK offers a read-only view (:func:`SimpleITK.GetArrayViewFromImage`) and copying
    constructors only; filling a freshly allocated image slice by slice through this view is what
    keeps a series conversion at one copy of the voxels. The image must outlive the view.
    """
    import ctypes

    import SimpleITK as sitk

    view = sitk.GetArrayViewFromImage(image)  # also makes the buffer unique to this image
    address = view.__array_interface__["data"][0]
    raw = (ctypes.c_char * view.nbytes).from_address(address)
    return np.frombuffer(raw, dtype=view.dtype).reshape(view.shape)  # type: ignore[call-overload]


def _read_slice(record: DicomFile) -> np.ndarray:
    """One slice's rescaled pixels (rows, columns), decoded by SimpleITK/GDCM."""
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(record.path)
    except RuntimeError as exc:
        first_line = next((ln for ln in str(exc).splitlines() if "ERROR" in ln), str(exc).splitlines()[0])
        raise ImageReadError(
            format_problem(
                f"DICOM slice {record.path!r} could not be decoded ({first_line.strip()})",
                "SimpleITK (GDCM) must be able to decode every slice",
                "check the transfer syntax is supported by GDCM, or re-export uncompressed",
            )
        ) from exc
    pixels = sitk.GetArrayFromImage(image)
    if pixels.ndim != 3 or pixels.shape[0] != 1 or pixels.shape[1:] != (record.rows, record.columns):
        raise ImageReadError(
            format_problem(
                f"DICOM slice {record.path!r} decodes to shape {pixels.shape}, not one {record.rows}x{record.columns} frame",
                "image series are single-frame slices",
                "export the series as single-frame CT/MR Image Storage",
            )
        )
    return pixels[0]


def _fits(values: np.ndarray, dtype: np.dtype) -> bool:
    if np.issubdtype(dtype, np.floating):
        return True
    if np.issubdtype(values.dtype, np.floating) and not np.all(np.mod(values, 1) == 0):
        return False
    info = np.iinfo(dtype)
    return values.size == 0 or (values.min() >= info.min and values.max() <= info.max)


def series_grid(
    series: ImageSeries,
) -> tuple[tuple[int, int, int], tuple[float, float, float], tuple[float, ...], tuple[float, ...]]:
    """Size (x, y, z), spacing, origin and direction of a checked series, as ITK's series reader sets them.

    Spacing along the normal is (last - first) / (n - 1) slice positions; the direction's columns
    are the row cosine, the column cosine and their cross product.
    """
    first = series.first
    positions = series.slice_positions()
    n = len(series.files)
    dz = float((positions[-1] - positions[0]) / (n - 1)) if n > 1 else 1.0
    row = np.asarray(first.orientation[:3], dtype=float)  # type: ignore[index]
    col = np.asarray(first.orientation[3:], dtype=float)  # type: ignore[index]
    normal = np.cross(row, col)
    direction = tuple(float(v) for v in np.column_stack([row, col, normal]).reshape(-1))
    spacing = (float(first.pixel_spacing[1]), float(first.pixel_spacing[0]), dz)  # type: ignore[index]
    position = first.position if first.position is not None else (0.0, 0.0, 0.0)
    return (first.columns, first.rows, n), spacing, tuple(float(v) for v in position), direction


class _SliceDoesNotFit(Exception):
    """A slice holds values the chosen pixel type cannot store exactly."""


def _pixel_type(series: ImageSeries, first: np.ndarray) -> np.dtype:
    if series.first.modality == "CT" and _fits(first, np.dtype(np.int16)):
        return np.dtype(np.int16)
    if np.issubdtype(first.dtype, np.floating) or series.first.modality == "CT":
        return np.dtype(np.float32)
    return first.dtype


def write_series_nifti(series: ImageSeries, path: str | os.PathLike[str]) -> Path:
    """Convert a checked series to one ``.nii.gz`` file, streaming one slice at a time.

    Each slice is decoded by SimpleITK (GDCM: rescale slope and intercept applied) and appended
    to the file by :class:`~sabrkit.imaging.nifti_stream.NiftiSliceWriter` (ITK's own header,
    :func:`series_grid`'s geometry), so memory holds about one slice, whatever the series' size.
    CT is stored as int16 HU when every value is a whole number in the int16 range, else float32;
    other modalities keep the first slice's pixel type (float64 becomes float32). Should a later
    slice not fit that type, the file is written again as float32.

    Returns
    -------
    pathlib.Path
        The written file (complete or absent: written under a temporary name, then renamed).

    Raises
    ------
    ImageReadError
        A slice cannot be decoded or is not a single frame of the series' size.
    """
    from sabrkit.imaging.nifti_stream import NiftiSliceWriter

    size, spacing, origin, direction = series_grid(series)
    first = _read_slice(series.files[0])
    dtype = _pixel_type(series, first)
    if dtype == np.float64:
        dtype = np.dtype(np.float32)
    target = Path(path)
    while True:
        try:
            with NiftiSliceWriter(target, size, spacing, origin, direction, dtype) as out:
                for k, record in enumerate(series.files):
                    values = first if k == 0 else _read_slice(record)
                    if not _fits(values, dtype):
                        raise _SliceDoesNotFit(k)
                    out.write(values)
            return target
        except _SliceDoesNotFit as exc:
            if dtype == np.float32:  # pragma: no cover - float32 holds every decoded value
                raise
            logger.info(
                "series %s: slice %s does not fit %s; written again as float32", series.series_uid, exc, dtype
            )
            dtype = np.dtype(np.float32)
