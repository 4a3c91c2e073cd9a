"""Read and write medical images (NIfTI, NRRD, MHA) with SimpleITK.

Every read names the case and the path when it fails, every write is atomic (a temporary file
in the target folder, then a rename: :func:`sabrkit.io.atomic_write`), so a crash never leaves half an image behind
for the next pipeline stage to pick up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import SimpleITK as sitk

from sabrkit.errors import ConfigError, ImageReadError, format_problem
from sabrkit.io import atomic_write

__all__ = ["SUPPORTED_SUFFIXES", "read_image", "write_image", "sha256_file"]

logger = logging.getLogger(__name__)

#: File name endings sabrkit writes and documents (SimpleITK chooses the reader from these).
SUPPORTED_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")

_HASH_CHUNK_BYTES = 1 << 20


def _suffix(path: Path) -> str:
    """Return the image suffix of ``path`` (``.nii.gz`` counts as one suffix)."""
    name = path.name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def read_image(path: str | os.PathLike[str], case_id: str, *, role: str = "image") -> sitk.Image:
    """Read one image or mask file.

    Parameters
    ----------
    path : str or path-like
        Image file (NIfTI ``.nii``/``.nii.gz``, NRRD ``.nrrd``, MetaImage ``.mha``/``.mhd``).
    case_id : str
        Pseudonymous case (lesion) ID, used in error messages only.
    role : str, default "image"
        What the file is (``"image"`` or ``"mask"``), used in error messages only.

    Returns
    -------
    SimpleITK.Image

    Raises
    ------
    ImageReadError
        The file is missing, is a folder, a ``.nii.gz`` file's gzip stream is truncated or
        corrupt, or SimpleITK cannot read it. The message names the case, the role and the path.

    Notes
    -----
    ``.nii.gz`` files are inflated by sabrkit and then read by ITK's NIfTI reader (see
    :func:`_read_inflated`): the same image as :func:`SimpleITK.ReadImage`, about twice as fast,
    and a truncated file is refused instead of read with zeros.
    """
    file = Path(path)
    if not file.is_file():
        what = "is a folder" if file.is_dir() else "does not exist"
        raise ImageReadError(
            format_problem(
                f"case {case_id}: {role} file {str(file)!r} {what}",
                f"every case needs a readable {role} file ({', '.join(SUPPORTED_SUFFIXES)})",
                f"check the {role} path in the manifest (relative paths are resolved against "
                "the cohort folder) or restore the file",
            )
        )
    try:
        image = _read_inflated(file) if _suffix(file) == ".nii.gz" else None
        if image is None:
            image = sitk.ReadImage(str(file))
    except _DamagedGzip as exc:
        raise ImageReadError(
            format_problem(
                f"case {case_id}: {role} file {str(file)!r} is damaged: its gzip stream fails ({exc})",
                "a .nii.gz file must be one complete gzip stream (a truncated copy would otherwise "
                "be read with zeros in place of the missing voxels)",
                "copy or export the file again and compare its size or SHA-256 with the source",
            )
        ) from exc
    except RuntimeError as exc:  # SimpleITK reports every I/O problem as RuntimeError
        first_line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
        raise ImageReadError(
            format_problem(
                f"case {case_id}: {role} file {str(file)!r} could not be read ({first_line})",
                f"{role} files must be valid NIfTI, NRRD or MetaImage files",
                "re-export the file from the source DICOM (it may be truncated or of another format)",
            )
        ) from exc
    logger.debug("read %s %s for case %s: size %s", role, file, case_id, image.GetSize())
    return image


@lru_cache(maxsize=1)
def _ram_folder() -> str:
    """A RAM-backed folder for short-lived files (``/dev/shm`` where writable), else the temp folder."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir()


class _DamagedGzip(Exception):
    """A ``.nii.gz`` file whose gzip stream is truncated or corrupt."""


_GZIP_MAGIC = b"\x1f\x8b"


def _read_inflated(file: Path) -> sitk.Image | None:
    """Read a ``.nii.gz`` file by inflating it with ISA-L first; ``None`` to use ITK's own path.

    Two reasons not to hand ``.nii.gz`` files to ITK directly:

    * ITK reads a truncated ``.nii.gz`` without complaint and fills the missing voxels with
      zeros (checked with SimpleITK 2.5: half a CT crop read as an image whose second half is
      0 HU), so a damaged copy would give features silently. Inflating the whole stream first
      finds the early end or the failed CRC, and the read stops with that reason.
    * ITK inflates through zlib's ``gzread`` (about 13 ms for a 2 MB CT crop here, nine tenths
      of the read); ISA-L's inflate (the ``isal`` package) takes about 5 ms.

    No maintained reader both does that and builds the image exactly as ITK does (nibabel's
    geometry is not ITK's to the last bit, and pyradiomics reads with ITK), so the inflated
    NIfTI bytes go to a RAM-backed temporary ``.nii`` file that ITK's own NIfTI reader reads:
    header, geometry and voxels are ITK's, bit for bit (tested against
    :func:`SimpleITK.ReadImage` on the original file). A file that is not gzip-compressed
    despite its name, or no room for the temporary file, falls back to ITK's path.

    Raises
    ------
    _DamagedGzip
        The gzip stream ends early or fails its CRC.
    """
    from isal import igzip

    data = file.read_bytes()
    if data[:2] != _GZIP_MAGIC:
        return None  # not gzip after all: ITK reads such files as they are
    try:
        raw = igzip.decompress(data)
    except (EOFError, OSError, ValueError) as exc:  # early end, bad CRC or invalid deflate data
        raise _DamagedGzip(str(exc) or type(exc).__name__) from exc
    del data
    try:
        with tempfile.NamedTemporaryFile(suffix=".nii", prefix="sabrkit-", dir=_ram_folder()) as tmp:
            tmp.write(raw)
            tmp.flush()
            del raw  # a CT can be hundreds of MB: hold one copy besides ITK's image, not two
            return sitk.ReadImage(tmp.name)
    except OSError as exc:  # e.g. a small /dev/shm in a container
        logger.debug("no room to inflate %s (%s); reading with ITK", file, exc)
        return None


def write_image(image: sitk.Image, path: str | os.PathLike[str], *, compress: bool = True) -> Path:
    """Write ``image`` to ``path`` atomically.

    The image goes to a temporary file beside ``path`` (same suffix, so SimpleITK picks the
    same writer), which is then renamed onto ``path`` (:func:`sabrkit.io.atomic_write`). Readers see
    either the old file or the complete new one.

    Parameters
    ----------
    image : SimpleITK.Image
    path : str or path-like
        Target file; its suffix selects the format. The parent folder is created if needed.
    compress : bool, default True
        Ask SimpleITK to compress (``.nii.gz`` is always gzip-compressed).

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    ConfigError
        The suffix is not one of :data:`SUPPORTED_SUFFIXES`.
    """
    target = Path(path)
    suffix = _suffix(target)
    if suffix not in SUPPORTED_SUFFIXES:
        raise ConfigError(
            format_problem(
                f"image path {str(target)!r} has suffix {suffix!r}",
                f"images are written as one of {', '.join(SUPPORTED_SUFFIXES)}",
                "choose a file name ending in .nii.gz",
            )
        )
    with atomic_write(target, suffix=suffix) as tmp:
        sitk.WriteImage(image, str(tmp), compress)
    return target


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex SHA-256 digest of a file's bytes (read in 1 MiB chunks).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()
