"""Atomic file and folder writes: the one place sabrkit renames a finished output into place.

A writer puts its bytes into a temporary file (or folder) beside the target, with a name no
other writer can pick (process id plus random token), flushes it to disk, and renames it onto
the target with :func:`os.replace`. Readers therefore see either the previous output or the
complete new one, never half a file, and two writers of the same target cannot overwrite each
other's temporary file: the last rename wins with a complete file.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_bytes", "atomic_directory"]

logger = logging.getLogger(__name__)


def _temporary_name(target: Path, kind: str, suffix: str) -> Path:
    """A name beside ``target`` that no other process or thread will choose."""
    stem = (
        target.name[: len(target.name) - len(suffix)]
        if suffix and target.name.endswith(suffix)
        else target.name
    )
    return target.with_name(f".{stem}.{kind}-{os.getpid()}-{secrets.token_hex(6)}{suffix}")


def _fsync_path(path: Path) -> None:
    """Flush a written file (or a folder's entries) to disk."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:  # some file systems do not let a folder be opened; nothing to flush then
        return
    try:
        os.fsync(fd)
    except OSError:  # fsync of a folder is not supported everywhere (e.g. some network mounts)
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            _fsync_path(Path(folder) / name)
        _fsync_path(Path(folder))


@contextmanager
def atomic_write(path: str | os.PathLike[str], *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success flush it and rename it onto ``path``.

    Parameters
    ----------
    path : str or path-like
        The file to write. Its folder is created if needed.
    suffix : str, default ""
        Ending kept on the temporary name, for writers that choose the format by suffix
        (SimpleITK: ``".nii.gz"``). Without it the temporary name ends in a random token.

    Yields
    ------
    pathlib.Path
        Where the caller writes (the file does not exist yet).

    Notes
    -----
    If the ``with`` block raises, the temporary file is removed and ``path`` is left as it
    was. The rename is :func:`os.replace` within one folder, atomic on POSIX and Windows.

    Examples
    --------
    >>> with atomic_write(out / "table.parquet") as tmp:  # doctest: +SKIP
    ...     frame.to_parquet(tmp)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(target, "tmp", suffix)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, target)
        _fsync_path(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`); return the path."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`); return the path."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; on success swap it in as ``path``.

    A previous folder at ``path`` is moved aside and deleted only after the new one is in
    place. If the ``with`` block raises, the staging folder is deleted and ``path`` is left
    as it was.

    Parameters
    ----------
    path : str or path-like
        The folder to (re)write as a whole.

    Yields
    ------
    pathlib.Path
        The staging folder (mode 0o755) to fill.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        staging.chmod(0o755)
        yield staging
        _fsync_tree(staging)
        if target.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, trash / target.name)
            os.replace(staging, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, target)
        _fsync_path(target.parent)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
