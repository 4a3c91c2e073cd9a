"""Read and write medical images (NIfTI, NRRD, MHA) with SimpleITK.

Every read names the case and the path when it fails, every write is atomic (a temporary file
in the target folder, then :func:`os.replace`), so a crash never leaves half an image behind
for the next pipeline stage to pick up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

import SimpleITK as sitk

from sabrkit.errors import ConfigError, ImageReadError, format_problem

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
        The file is missing, is a folder, or SimpleITK cannot read it. The message names the
        case, the role and the path.
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
        image = sitk.ReadImage(str(file))
    except RuntimeError as exc:  # SimpleITK reports every I/O problem as RuntimeError
        first_line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
        raise ImageReadError(
            format_problem(
                f"case {case_id}: {role} file {str(file)!r} could not be read ({first_line})",
                f"{role} files must be valid NIfTI, NRRD or MetaImage files",
                "re-export the file from the source DICOM (it may be truncated or of another "
                "format)",
            )
        ) from exc
    logger.debug("read %s %s for case %s: size %s", role, file, case_id, image.GetSize())
    return image


def write_image(image: sitk.Image, path: str | os.PathLike[str], *, compress: bool = True) -> Path:
    """Write ``image`` to ``path`` atomically.

    The image goes to a temporary file beside ``path`` (same suffix, so SimpleITK picks the
    same writer), which is then renamed onto ``path`` with :func:`os.replace`. Readers see
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
    target.parent.mkdir(parents=True, exist_ok=True)
    stem = target.name[: len(target.name) - len(suffix)]
    tmp = target.with_name(f".{stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}")
    try:
        sitk.WriteImage(image, str(tmp), compress)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
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
