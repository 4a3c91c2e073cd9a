"""The audit key file: HMAC keys that key the chain and the Ed25519 key that signs checkpoints.

The plain SHA-256 chain of :mod:`sabrkit.audit.chain` shows an edit made by someone who cannot
recompute hashes; a database administrator can. Two secrets kept **outside the database** close
that gap:

* every entry also carries ``entry_mac = HMAC-SHA256(key, entry_hash)`` and the ``key_id`` of
  the key used, so an entry appended or recomputed without the key does not verify;
* checkpoints of the chain head (:mod:`sabrkit.audit.checkpoint`) are signed with an Ed25519
  key (``cryptography``), so a truncated or rewritten history no longer matches the last
  checkpoint written outside the database.

The key file is JSON (mode 0600)::

    {"format": "sabrkit-audit-key/1", "current": "<key id>",
     "hmac_keys": {"<key id>": "<64 hex>", ...}, "signing_key": "<64 hex, Ed25519 private>"}

where a key id is the first 16 hex digits of SHA-256 of the key. Its path is
``SABRKIT_AUDIT_KEY_FILE`` (default :data:`DEFAULT_KEY_FILE`). :func:`init_key_file` creates
it (``sabrkit audit init-key``), :func:`rotate_key_file` adds a new HMAC key and makes it
current while keeping the old ones, which verification still needs (``sabrkit audit rotate-key``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sabrkit.errors import ConfigError, format_problem
from sabrkit.io import atomic_write

__all__ = [
    "KEY_FILE_ENV",
    "DEFAULT_KEY_FILE",
    "AuditKeyError",
    "AuditKeyring",
    "key_file_path",
    "load_keyring",
    "init_key_file",
    "rotate_key_file",
    "key_id_of",
]

logger = logging.getLogger(__name__)

#: Environment variable naming the audit key file.
KEY_FILE_ENV = "SABRKIT_AUDIT_KEY_FILE"
#: Where the key file is looked for when the variable is unset (outside any project folder).
DEFAULT_KEY_FILE = Path("~/.config/sabrkit/audit-key.json")
_FORMAT = "sabrkit-audit-key/1"


class AuditKeyError(ConfigError):
    """The audit key file is missing where it is needed, unreadable, or lacks a key."""


def key_id_of(key: bytes) -> str:
    """The id of an HMAC key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:16]


def key_file_path(path: str | Path | None = None) -> Path:
    """The key file in force: ``path``, else ``SABRKIT_AUDIT_KEY_FILE``, else :data:`DEFAULT_KEY_FILE`."""
    chosen = path or os.environ.get(KEY_FILE_ENV, "").strip() or DEFAULT_KEY_FILE
    return Path(chosen).expanduser()


@dataclass(frozen=True)
class AuditKeyring:
    """The keys of one key file: HMAC keys by id (``current`` signs new entries) and the signing key."""

    path: Path
    hmac_keys: dict[str, bytes]
    current: str
    signing_key: bytes

    def mac(self, entry_hash: str, key_id: str | None = None) -> str:
        """HMAC-SHA256 (hex) of an entry hash with key ``key_id`` (default: the current key)."""
        key = self.hmac_keys[key_id or self.current]
        return hmac.new(key, entry_hash.encode("ascii"), hashlib.sha256).hexdigest()

    def mac_matches(self, entry_hash: str, key_id: str, mac: str) -> bool:
        """Whether ``mac`` is the HMAC of ``entry_hash`` under key ``key_id`` (constant time)."""
        return key_id in self.hmac_keys and hmac.compare_digest(self.mac(entry_hash, key_id), mac)

    def sign(self, message: bytes) -> str:
        """Ed25519 signature (hex) of ``message``."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(self.signing_key).sign(message).hex()

    @property
    def public_key(self) -> str:
        """The Ed25519 public key (hex, raw 32 bytes) that verifies this keyring's checkpoints."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        public = Ed25519PrivateKey.from_private_bytes(self.signing_key).public_key()
        return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _problem(path: Path, what: str) -> AuditKeyError:
    return AuditKeyError(
        format_problem(
            f"audit key file {path}: {what}",
            f"a key file written by `sabrkit audit init-key` ({_FORMAT})",
            f"point {KEY_FILE_ENV} at the right file, or restore it from its backup",
        )
    )


def load_keyring(path: str | Path | None = None) -> AuditKeyring | None:
    """Read the key file (see :func:`key_file_path`); None when it does not exist.

    Raises
    ------
    AuditKeyError
        The file exists but cannot be read or is not a key file.
    """
    file = key_file_path(path)
    if not file.is_file():
        return None
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
        keys = {key_id: bytes.fromhex(text) for key_id, text in content["hmac_keys"].items()}
        keyring = AuditKeyring(file, keys, str(content["current"]), bytes.fromhex(content["signing_key"]))
    except PermissionError:
        raise _problem(file, "cannot be read (permission denied)") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise _problem(file, "is not a readable audit key file") from None
    if content.get("format") != _FORMAT or keyring.current not in keys or len(keyring.signing_key) != 32:
        raise _problem(file, "is not a sabrkit audit key file (format, current key or signing key)")
    if any(key_id_of(key) != key_id for key_id, key in keys.items()):
        raise _problem(file, "a key does not match its id (the file was edited)")
    return keyring


def _write(file: Path, content: Mapping[str, object]) -> None:
    with atomic_write(file) as temporary:
        # readable by its owner only, from the moment it exists
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2, sort_keys=True)


def init_key_file(path: str | Path | None = None) -> AuditKeyring:
    """Create a new key file (one HMAC key, one Ed25519 signing key); refuses to overwrite one.

    Raises
    ------
    AuditKeyError
        The file already exists (rotating is :func:`rotate_key_file`; replacing the file would make
        the entries keyed so far unverifiable).
    """
    file = key_file_path(path)
    if file.exists():
        raise AuditKeyError(
            format_problem(
                f"audit key file {file} already exists",
                "a key file is created once: the entries keyed so far need its keys",
                "rotate the HMAC key with `sabrkit audit rotate-key`, or choose another "
                f"path with {KEY_FILE_ENV}",
            )
        )
    key = secrets.token_bytes(32)
    content = {
        "format": _FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "current": key_id_of(key),
        "hmac_keys": {key_id_of(key): key.hex()},
        "signing_key": secrets.token_bytes(32).hex(),
    }
    _write(file, content)
    logger.info("audit key file created at %s (key %s)", file, key_id_of(key))
    keyring = load_keyring(file)
    assert keyring is not None
    return keyring


def rotate_key_file(path: str | Path | None = None) -> AuditKeyring:
    """Add a new HMAC key to the key file and make it current; the old keys stay for verification.

    Raises
    ------
    AuditKeyError
        There is no key file yet (create one with :func:`init_key_file`).
    """
    keyring = load_keyring(path)
    file = key_file_path(path)
    if keyring is None:
        raise AuditKeyError(
            format_problem(
                f"audit key file {file} does not exist",
                "only an existing key is rotated",
                "create one with `sabrkit audit init-key`",
            )
        )
    content = json.loads(file.read_text(encoding="utf-8"))
    key = secrets.token_bytes(32)
    content["hmac_keys"][key_id_of(key)] = key.hex()
    content["current"] = key_id_of(key)
    content["rotated_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    _write(file, content)
    logger.info("audit key rotated: new entries keyed with %s", key_id_of(key))
    rotated = load_keyring(file)
    assert rotated is not None
    return rotated
