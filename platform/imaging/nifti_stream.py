"""Write a 3-D NIfTI-1 file one z-slice at a time, with the header ITK itself writes.

Converting a DICOM series (or rasterising a structure) by building the whole volume in memory
and handing it to :func:`SimpleITK.WriteImage` holds at least one full copy of the voxels. Here
the header comes from ITK (a two-slice probe image with the same grid and pixel type is written
by SimpleITK's own NIfTI writer, and its slice count is set to the real one) and the voxels are
streamed behind it through ISA-L's gzip (``isal.igzip``) as each slice is produced, so memory
holds one slice. SimpleITK reads the result as the image ``WriteImage`` would have written:
same header bytes, same voxels (tested byte for byte after inflating both).

The file is written to a temporary name beside the target and renamed when complete; a slice
of the wrong shape or type, or a missing slice, leaves no file behind.
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from sabrkit.errors import ConfigError, format_problem

__all__ = ["NiftiSliceWriter", "itk_nifti_header"]

logger = logging.getLogger(__name__)

_DIM3_OFFSET = 46  # dim[3] (int16) in the NIfTI-1 header
_VOX_OFFSET = 108  # vox_offset (float32)
_COMPRESS_LEVEL = 2  # ISA-L levels 0-3; ~ zlib's default ratio at several times its speed


def itk_nifti_header(
    size: tuple[int, int, int],
    spacing: tuple[float, ...],
    origin: tuple[float, ...],
    direction: tuple[float, ...],
    dtype: np.dtype,
) -> bytes:
    """The bytes ITK writes before the voxels of a ``size`` image with this grid and pixel type.

    Parameters
    ----------
    size : (x, y, z)
    spacing, origin, direction : tuples
        As in SimpleITK (direction row-major 3 x 3).
    dtype : numpy dtype
        Pixel type (int16, uint8, float32 ...).

    Returns
    -------
    bytes
        Header and extension flag, up to ``vox_offset`` (352 bytes for ITK's files).
    """
    import SimpleITK as sitk

    from sabrkit.imaging.io import _ram_folder

    pixel_id = sitk.GetImageFromArray(np.zeros((1, 1), dtype=dtype)).GetPixelID()
    probe = sitk.Image([int(size[0]), int(size[1]), 2], pixel_id)
    probe.SetSpacing([float(v) for v in spacing])
    probe.SetOrigin([float(v) for v in origin])
    probe.SetDirection([float(v) for v in direction])
    with tempfile.TemporaryDirectory(prefix="sabrkit-hdr-", dir=_ram_folder()) as folder:
        path = os.path.join(folder, "probe.nii")
        sitk.WriteImage(probe, path, False)
        with open(path, "rb") as handle:
            data = handle.read(1024)
    if struct.unpack_from("<i", data, 0)[0] != 348:
        raise RuntimeError("ITK wrote a NIfTI header that is not little-endian NIfTI-1")  # pragma: no cover
    vox_offset = int(struct.unpack_from("<f", data, _VOX_OFFSET)[0])
    header = bytearray(data[:vox_offset])
    struct.pack_into("<h", header, _DIM3_OFFSET, int(size[2]))
    return bytes(header)


class NiftiSliceWriter:
    """Context manager writing a ``.nii.gz`` volume slice by slice (z order).

    Parameters
    ----------
    path : path-like
        Target ``.nii.gz`` file (parent folders are created).
    size : (x, y, z)
    spacing, origin, direction : tuples
        SimpleITK geometry of the volume.
    dtype : numpy dtype
        Pixel type of every slice written.

    Examples
    --------
    >>> with NiftiSliceWriter(path, (nx, ny, nz), spacing, origin, direction, np.int16) as out:  # doctest: +SKIP
    ...     for k in range(nz):
    ...         out.write(slice_k)  # (ny, nx) int16
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        size: tuple[int, int, int],
        spacing: tuple[float, ...],
        origin: tuple[float, ...],
        direction: tuple[float, ...],
        dtype: Any,
    ) -> None:
        self.path = Path(path)
        if not self.path.name.lower().endswith(".nii.gz"):
            raise ConfigError(
                format_problem(
                    f"streamed image path {str(self.path)!r}",
                    "slice-wise writing produces .nii.gz files",
                    "name the file .nii.gz",
                )
            )
        self.size = tuple(int(v) for v in size)
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self._header = itk_nifti_header(self.size, spacing, origin, direction, np.dtype(dtype))  # type: ignore[arg-type]
        self._written = 0
        self._atomic: Any = None  # sabrkit.io.atomic_write: temporary name, fsync, rename on success
        self._tmp: Path | None = None
        self._stream: Any = None

    def __enter__(self) -> NiftiSliceWriter:
        from isal import igzip

        from sabrkit.io import atomic_write

        self._atomic = atomic_write(self.path, suffix=".nii.gz")
        self._tmp = self._atomic.__enter__()
        self._stream = igzip.open(self._tmp, "wb", compresslevel=_COMPRESS_LEVEL)
        self._stream.write(self._header)
        return self

    def write(self, plane: np.ndarray) -> None:
        """Append the next z-slice, an array of shape (y, x) whose values fit the volume's type."""
        nx, ny, nz = self.size
        if plane.shape != (ny, nx):
            raise ValueError(f"slice {self._written} has shape {plane.shape}, expected {(ny, nx)}")
        if self._written >= nz:
            raise ValueError(f"more than {nz} slices written")
        self._stream.write(np.ascontiguousarray(plane, dtype=self.dtype).tobytes())
        self._written += 1

    def write_zeros(self, n: int = 1) -> None:
        """Append ``n`` all-zero slices."""
        zeros = np.zeros((self.size[1], self.size[0]), dtype=self.dtype)
        for _ in range(n):
            self.write(zeros)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            self._stream.close()
            if kind is None and self._written != self.size[2]:
                raise ValueError(f"{self._written} of {self.size[2]} slices written to {self.path}")
        except BaseException as failure:  # the temporary file is removed, the target left as it was
            self._atomic.__exit__(type(failure), failure, failure.__traceback__)
            raise
        self._atomic.__exit__(kind, error, trace)
