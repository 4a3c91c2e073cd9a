"""Lineage of a model run: the code's git commit and the DVC hash of the feature table.

MLflow runs are tagged with these so that every number can be traced to the code and the data
that produced it. :func:`feature_table_md5` prefers DVC's own record of the file (a
``<file>.dvc`` beside it, else the ``dvc.lock`` of the nearest enclosing project) and checks it
against the file's bytes; when DVC has no (current) record, the file's own MD5 is used and the
source says so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TableHash", "feature_table_md5", "git_commit", "git_is_dirty", "file_md5"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class TableHash:
    """``md5`` of a table and where it came from (``"dvc file"``, ``"dvc.lock"``, ``"file md5"``)."""

    md5: str
    source: str
    path: str


def file_md5(path: str | os.PathLike[str]) -> str:
    """MD5 of a file's bytes (DVC 3's hash of a file), or of a folder's sorted file hashes."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.md5()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{child.relative_to(path).as_posix()}:{file_md5(child)}\n".encode())
        return digest.hexdigest()
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _outs_md5(outs: object, relative: str) -> str | None:
    for out in outs if isinstance(outs, list) else []:
        if isinstance(out, dict) and str(out.get("path", "")).rstrip("/") == relative:
            md5 = out.get("md5")
            return str(md5) if md5 else None
    return None


def _dvc_record(path: Path) -> tuple[str, str] | None:
    import yaml

    sidecar = path.with_name(path.name + ".dvc")
    if sidecar.is_file():
        record = yaml.safe_load(sidecar.read_text()) or {}
        md5 = _outs_md5(record.get("outs"), path.name)
        if md5:
            return md5, "dvc file"
    for parent in path.parents:
        lock = parent / "dvc.lock"
        if lock.is_file():
            record = yaml.safe_load(lock.read_text()) or {}
            relative = path.relative_to(parent).as_posix()
            for stage in (record.get("stages") or {}).values():
                md5 = _outs_md5((stage or {}).get("outs"), relative)
                if md5:
                    return md5, "dvc.lock"
            return None
    return None


def feature_table_md5(path: str | os.PathLike[str]) -> TableHash:
    """DVC MD5 of the feature table at ``path`` (see the module docstring)."""
    path = Path(path).resolve()
    actual = file_md5(path)
    record = None if path.is_dir() else _dvc_record(path)
    if record is None:
        return TableHash(actual, "file md5", str(path))
    md5, source = record
    if md5 != actual:
        logger.warning(
            "%s: DVC records md5 %s but the file hashes to %s (run dvc repro/commit)", path, md5, actual
        )
        return TableHash(actual, f"file md5 ({source} out of date)", str(path))
    return TableHash(md5, source, str(path))


def _git(*args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit() -> str | None:
    """The commit of the sabrkit source tree, if it is a git checkout; None otherwise."""
    done = _git("rev-parse", "HEAD")
    if done is None:
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None


def git_is_dirty() -> bool | None:
    """Whether the source tree has uncommitted changes to tracked files (None outside git)."""
    done = _git("status", "--porcelain", "--untracked-files=no")
    if done is None or done.returncode != 0:
        return None
    return bool(done.stdout.strip())
