"""Signed checkpoints of the audit chain's head, written outside the database.

A checkpoint records the newest entry of a database's audit log (its id, hash and MAC) and the
time, signed with the Ed25519 key of the audit key file (:mod:`sabrkit.audit.keys`). It is a
small JSON file in the checkpoint folder (``SABRKIT_AUDIT_CHECKPOINT_DIR``, default
``checkpoints/`` beside the key file), one sub-folder per database. ``sabrkit audit verify``
reads the latest one: a log that ends before the checkpointed entry was **truncated**; a log
whose entry at that id has another hash was **rewritten** (even with every hash recomputed).

Checkpoints are written after every import (registry folder or REDCap export, biobank sample
file) when a key is configured, and on demand (``sabrkit audit checkpoint``). Copy the folder
to a place the database's administrators cannot write (a backup server, the DVC remote): a
checkpoint is evidence only as long as it is out of their reach.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from sabrkit.audit.chain import canonical_json
from sabrkit.audit.keys import KEY_FILE_ENV, AuditKeyError, AuditKeyring, key_file_path
from sabrkit.audit.tables import AuditLogEntry
from sabrkit.errors import ValidationError, format_problem
from sabrkit.io import atomic_write_text

__all__ = [
    "CHECKPOINT_DIR_ENV",
    "Checkpoint",
    "checkpoint_dir",
    "database_label",
    "write_checkpoint",
    "checkpoint_if_keyed",
    "read_checkpoint",
    "latest_checkpoint",
]

logger = logging.getLogger(__name__)

#: Environment variable naming the checkpoint folder.
CHECKPOINT_DIR_ENV = "SABRKIT_AUDIT_CHECKPOINT_DIR"
_FORMAT = "sabrkit-audit-checkpoint/1"
_LATEST = "latest.json"


@dataclass(frozen=True)
class Checkpoint:
    """The signed head of one database's audit chain."""

    database: str
    entry_id: int
    entry_hash: str
    entry_mac: str | None
    key_id: str | None
    written_at: str
    public_key: str
    signature: str
    format: str = _FORMAT

    def payload(self) -> bytes:
        """The signed bytes: canonical JSON of every field but the signature."""
        fields = {k: v for k, v in asdict(self).items() if k != "signature"}
        return canonical_json(fields).encode("utf-8")

    def signature_valid(self, public_key_hex: str | None = None) -> bool:
        """Whether the signature verifies under ``public_key_hex`` (default: the key it names)."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex or self.public_key))
            key.verify(bytes.fromhex(self.signature), self.payload())
        except (InvalidSignature, ValueError):
            return False
        return True

    def __str__(self) -> str:
        return f"checkpoint of {self.written_at}: entry {self.entry_id} ({self.entry_hash[:12]}...)"


def checkpoint_dir(folder: str | Path | None = None) -> Path:
    """The checkpoint folder: ``folder``, else ``SABRKIT_AUDIT_CHECKPOINT_DIR``, else ``checkpoints/`` by the key file."""
    chosen = folder or os.environ.get(CHECKPOINT_DIR_ENV, "").strip()
    return Path(chosen).expanduser() if chosen else key_file_path().parent / "checkpoints"


def database_label(db: Any) -> str:
    """How checkpoints name a database: its URL without password (a SQLite file's absolute path)."""
    from sabrkit.db.engine import sqlite_file

    path = sqlite_file(db.url)
    if path is not None:
        return f"sqlite:///{path.expanduser().resolve()}"
    return str(db.url.render_as_string(hide_password=True))


def _database_folder(label: str, folder: str | Path | None) -> Path:
    return checkpoint_dir(folder) / hashlib.sha256(label.encode("utf-8")).hexdigest()[:16]


def _head(db: Any) -> tuple[int, str, str | None, str | None] | None:
    log = AuditLogEntry.__table__
    with db.session() as session:
        row = session.execute(
            select(log.c.id, log.c.entry_hash, log.c.entry_mac, log.c.key_id)
            .order_by(log.c.id.desc())
            .limit(1)
        ).first()
        if row is not None and session.scalar(select(func.count()).select_from(log)) != row[0]:
            logger.warning("audit log: ids are not contiguous; run sabrkit audit verify")
    return None if row is None else (int(row[0]), str(row[1]), row[2], row[3])


def _write_json(file: Path, content: dict[str, Any]) -> None:
    atomic_write_text(file, json.dumps(content, indent=2, sort_keys=True))


def write_checkpoint(
    db: Any, *, keyring: AuditKeyring | None = None, folder: str | Path | None = None
) -> Checkpoint:
    """Sign the chain head of ``db`` and write it to the checkpoint folder (and as its ``latest.json``).

    Parameters
    ----------
    db : sabrkit.db.Database
    keyring : AuditKeyring, optional
        Default: the database's (:meth:`sabrkit.db.Database.audit_keyring`).
    folder : path, optional
        Default: :func:`checkpoint_dir`.

    Raises
    ------
    AuditKeyError
        No key file (create one with ``sabrkit audit init-key``).
    ValidationError
        The audit log is empty (nothing to vouch for yet).
    """
    keyring = keyring or db.audit_keyring()
    if keyring is None:
        raise AuditKeyError(
            format_problem(
                f"no audit key file at {key_file_path()}",
                "checkpoints are signed with the audit key",
                f"create one with `sabrkit audit init-key` (or set {KEY_FILE_ENV})",
            )
        )
    head = _head(db)
    if head is None:
        raise ValidationError(
            format_problem(
                "the audit log is empty",
                "a checkpoint vouches for the newest entry",
                "write a checkpoint after the first import or entry",
            )
        )
    entry_id, entry_hash, entry_mac, key_id = head
    label = database_label(db)
    unsigned = Checkpoint(
        label,
        entry_id,
        entry_hash,
        entry_mac,
        key_id,
        dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        keyring.public_key,
        "",
    )
    checkpoint = Checkpoint(**{**asdict(unsigned), "signature": keyring.sign(unsigned.payload())})
    target = _database_folder(label, folder)
    stamp = checkpoint.written_at.replace(":", "").replace("-", "").replace("+0000", "Z")
    content = asdict(checkpoint)
    _write_json(target / f"checkpoint-{entry_id:012d}-{stamp}.json", content)
    latest = target / _LATEST
    try:
        newer = latest.is_file() and read_checkpoint(latest).entry_id > entry_id  # a concurrent writer's
    except ValidationError:
        newer = False
    if not newer:
        _write_json(latest, content)
    logger.info("audit checkpoint written: entry %d, %s", entry_id, target)
    return checkpoint


def checkpoint_if_keyed(db: Any) -> Checkpoint | None:
    """Write a checkpoint when the database has an audit key (after an import); else None.

    The import has committed when this runs, so a checkpoint that cannot be written (a folder
    without write permission) is logged as a warning naming the fix, not raised.
    """
    if db.audit_keyring() is None:
        logger.debug("no audit key: no checkpoint written")
        return None
    try:
        return write_checkpoint(db)
    except OSError as exc:
        logger.warning(
            "audit checkpoint not written (%s: %s); fix: make %s writable, then run "
            "`sabrkit audit checkpoint`",
            type(exc).__name__,
            exc.strerror,
            checkpoint_dir(),
        )
        return None


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint file.

    Raises
    ------
    ValidationError
        The file cannot be read or is not a checkpoint.
    """
    file = Path(path)
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
        checkpoint = Checkpoint(**content)
    except (OSError, ValueError, TypeError) as exc:
        raise ValidationError(
            format_problem(
                f"checkpoint file {file} cannot be read ({type(exc).__name__})",
                f"a file written by `sabrkit audit checkpoint` ({_FORMAT})",
                "give the path of a checkpoint-*.json or latest.json file",
            )
        ) from None
    if checkpoint.format != _FORMAT:
        raise ValidationError(
            format_problem(
                f"checkpoint file {file}",
                f"format {_FORMAT}",
                "give a file written by `sabrkit audit checkpoint`",
            )
        )
    return checkpoint


def latest_checkpoint(db: Any, folder: str | Path | None = None) -> Checkpoint | None:
    """The latest checkpoint written for ``db`` (None when there is none)."""
    file = _database_folder(database_label(db), folder) / _LATEST
    return read_checkpoint(file) if file.is_file() else None
