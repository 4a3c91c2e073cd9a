"""The state file that lets ingest skip work it has already done.

``<out>/.ingest_state.json`` holds the crawl index (path -> size, mtime, header facts and the
SHA-256 of the file) and, for every work unit (an image series, a structure set, a SEG, a NIfTI
pair), a fingerprint of its inputs and the rows/failures it produced. The crawl re-reads only
files whose size or modification time changed; a unit is redone only when its fingerprint
changed (the SOP instance UIDs and content hashes of its files, so copying or re-writing an
identical export does no work) or one of its output files is missing. The fingerprint of a structure set
includes the fingerprints of the series it references and the ingest configuration, so a
changed series or ROI pattern re-converts exactly the masks it affects.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sabrkit.errors import CaseFailure
from sabrkit.imaging.dicom_index import DicomFile
from sabrkit.io import atomic_write_text

__all__ = ["STATE_FILE", "STATE_VERSION", "UnitResult", "IngestState", "fingerprint"]

logger = logging.getLogger(__name__)

STATE_FILE = ".ingest_state.json"
STATE_VERSION = 4  # 4: series rows gained series_number (follow-up pairing)


def fingerprint(parts: Iterable[object]) -> str:
    """SHA-256 (hex, 32 characters kept) of the ``repr`` of each part, in order."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:32]


@dataclass
class UnitResult:
    """What one work unit produced: manifest rows, series rows, failures, files written."""

    fingerprint: str
    source: str = ""
    lesions: list[dict[str, Any]] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    oars: list[dict[str, Any]] = field(default_factory=list)
    failures: list[CaseFailure] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["failures"] = [dataclasses.asdict(f) for f in self.failures]
        return out

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> UnitResult:
        value = dict(value)
        value["failures"] = [CaseFailure(**f) for f in value.get("failures", [])]
        return cls(**value)


@dataclass
class IngestState:
    """Crawl index and unit results of previous runs (see the module docstring)."""

    files: dict[str, tuple[int, int, DicomFile]] = field(default_factory=dict)
    units: dict[str, UnitResult] = field(default_factory=dict)

    @classmethod
    def load(cls, out_dir: Path, key_print: str = "") -> IngestState:
        """The state of the previous run; its crawl index only when the key table is unchanged.

        The crawl index stores each file's study ID in place of its PatientID, so a changed key
        table (``key_print``) means every header is read again.
        """
        path = out_dir / STATE_FILE
        if not path.is_file():
            return cls()
        try:
            raw = json.loads(path.read_text())
            if raw.get("version") != STATE_VERSION:
                return cls()
            same_key = raw.get("key_print", "") == key_print
            files = (
                {
                    p: (int(size), int(mtime), DicomFile(**_tuples(record)))
                    for p, (size, mtime, record) in raw["files"].items()
                }
                if same_key
                else {}
            )
            units = {key: UnitResult.from_json(value) for key, value in raw["units"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring unreadable ingest state %s (%s); everything is redone", path, exc)
            return cls()
        return cls(files, units)

    def save(
        self,
        out_dir: Path,
        key_print: str = "",
        *,
        redact: Callable[[str], str] = str,
        study_id_of: Callable[[str], str | None] | None = None,
    ) -> None:
        """Write the state atomically; source paths pass through ``redact`` and PatientIDs become study IDs.

        A file whose PatientID has no study ID is stored with an empty PatientID (it is
        refused on every run until the key table lists it, and then the changed ``key_print``
        makes the crawl read it again).
        """

        def stored(rec: DicomFile) -> dict[str, Any]:
            patient = (study_id_of(rec.patient_id) or "") if study_id_of is not None else rec.patient_id
            return dataclasses.asdict(dataclasses.replace(rec, path=redact(rec.path), patient_id=patient))

        raw = {
            "version": STATE_VERSION,
            "key_print": key_print,
            "files": {redact(p): [size, mtime, stored(rec)] for p, (size, mtime, rec) in self.files.items()},
            "units": {key: unit.to_json() for key, unit in sorted(self.units.items())},
        }
        atomic_write_text(out_dir / STATE_FILE, json.dumps(raw, sort_keys=True))

    def reusable(self, key: str, print_: str, out_dir: Path) -> UnitResult | None:
        """The stored result of ``key`` when its fingerprint matches and its outputs exist."""
        unit = self.units.get(key)
        if unit is None or unit.fingerprint != print_:
            return None
        if not all((out_dir / rel).is_file() for rel in unit.outputs):
            return None
        return unit


def _tuples(record: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in record.items()}
