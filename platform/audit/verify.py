"""Verify the audit log: the hash chain, and every audited row against its last logged state.

:func:`verify_audit` makes two checks:

1. **Chain.** Entries are read in ``id`` order; ids must run 1, 2, 3 ...; each ``prev_hash``
   must equal the previous entry's ``entry_hash``; each ``entry_hash`` must equal the hash
   recomputed from the entry (:func:`sabrkit.audit.chain.entry_hash`). An entry edited, deleted
   or inserted by hand breaks the chain at that entry.
2. **State.** For every table of an :class:`~sabrkit.audit.tables.Audited` model, the latest
   entry of each row (by row key) must describe the row exactly as the database holds it: a
   row without entries was inserted behind the platform's back, a logged row that is missing
   was deleted, a row whose values differ was updated (the differing columns are named).

Any SQL statement that bypasses sabrkit's sessions (a ``UPDATE visits SET ...`` in a SQL
shell) is therefore reported, naming the table and the row.

Someone who can write the database can also recompute the plain chain. Two more checks need
secrets kept outside the database (:mod:`sabrkit.audit.keys`, :mod:`sabrkit.audit.checkpoint`):

3. **Keys.** Each keyed entry's ``entry_mac`` must be the HMAC of its hash under its key; an
   entry without a MAC after a keyed one was appended without the key. An entry appended with a
   valid plain hash, or a history recomputed, is named by the first entry whose MAC fails.
4. **Checkpoint.** The entry named by the latest signed checkpoint must still exist with the
   checkpointed hash: a log that ends earlier was truncated, another hash means a rewrite.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from sabrkit.audit.chain import AuditedTable, audited_table, canonical_json, entry_hash, redacted_matches
from sabrkit.audit.tables import GENESIS_HASH, Audited, AuditLogEntry

__all__ = ["AuditProblem", "AuditReport", "verify_audit", "audited_models", "audit_history"]

logger = logging.getLogger(__name__)

_BATCH = 20_000


@dataclass(frozen=True)
class AuditProblem:
    """One finding: ``kind`` is ``chain``, ``key``, ``checkpoint``, ``inserted``, ``updated`` or ``deleted``."""

    kind: str
    table_name: str
    row_key: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.detail}"


@dataclass
class AuditReport:
    """Result of :func:`verify_audit`; ``ok`` is True when no problem was found."""

    n_entries: int = 0
    n_rows: int = 0
    tables: list[str] = field(default_factory=list)
    problems: list[AuditProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    n_keyed: int = 0
    checkpoint: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = (
            f"audit log: {self.n_entries} entr(ies); {self.n_rows} row(s) in {len(self.tables)} audited "
            f"table(s) checked: "
        )
        if self.ok:
            keyed = f"{self.n_keyed} keyed entr(ies) verified" if self.n_keyed else "no keyed entries"
            against = f"; matches the {self.checkpoint}" if self.checkpoint else ""
            return head + f"OK (chain intact, {keyed}{against}, every row matches its last logged state)"
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        return head + f"{len(self.problems)} problem(s):\n{lines}"


def audited_models() -> list[type[Any]]:
    """Every mapped :class:`Audited` model (registry, biobank, ...), sorted by table name."""
    from sabrkit.db.migrate import target_metadata

    target_metadata()  # imports every room's models
    from sabrkit.db.base import Base

    models = [mapper.class_ for mapper in Base.registry.mappers if issubclass(mapper.class_, Audited)]
    return sorted(models, key=lambda model: model.__tablename__)


def _entries(session: Any) -> Iterator[Any]:
    """Every entry in id order, read in keyset-paginated batches (no server-side cursor)."""
    log = AuditLogEntry.__table__
    last = None
    while True:
        statement = select(log).order_by(log.c.id).limit(_BATCH)
        if last is not None:
            statement = statement.where(log.c.id > last)
        batch = session.execute(statement).mappings().all()
        if not batch:
            return
        yield from batch
        last = batch[-1]["id"]


#: MAC failures named one by one; beyond this many the rest are counted in one problem.
MAX_NAMED_MAC_FAILURES = 20


def _link_problems(entry: Any, where: str, expected_id: int, prev: str) -> list[AuditProblem]:
    """The entry's place in the chain: its id follows the last one, it links to it, its hash holds."""
    found = []
    if entry["id"] != expected_id:
        found.append(f"expected id {expected_id}; entries were deleted or inserted")
    if entry["prev_hash"] != prev:
        found.append("prev_hash does not match the entry before it")
    recomputed = entry_hash({k: v for k, v in entry.items() if k != "entry_hash"}, entry["prev_hash"])
    if recomputed != entry["entry_hash"]:
        found.append("entry_hash does not match its content; the entry was edited")
    return [AuditProblem("chain", "audit_log", str(entry["id"]), f"{where}: {text}") for text in found]


@dataclass
class _MacTally:
    """The MACs along the chain: checked entry by entry, summarised once the walk is done."""

    keyring: Any
    first_keyed: int | None = None
    mac_failures: int = 0
    unknown_keys: set[str] = field(default_factory=set)
    unkeyed: int = 0

    def check(self, entry: Any, where: str, report: AuditReport) -> None:
        """One entry: keyed when the chain is, and its MAC verifies under a key of the key file."""
        key_id, mac = entry.get("key_id"), entry.get("entry_mac")
        if key_id is None or mac is None:
            if self.first_keyed is not None:
                report.problems.append(
                    AuditProblem(
                        "key",
                        "audit_log",
                        str(entry["id"]),
                        f"{where}: has no MAC though the chain is keyed since entry {self.first_keyed}: "
                        "appended or rewritten without the audit key",
                    )
                )
            else:
                self.unkeyed += 1
            return
        self.first_keyed = self.first_keyed or entry["id"]
        report.n_keyed += 1
        if self.keyring is None:
            return
        if key_id not in self.keyring.hmac_keys:
            self.unknown_keys.add(key_id)
        elif not self.keyring.mac_matches(entry["entry_hash"], key_id, mac):
            self.mac_failures += 1
            if self.mac_failures <= MAX_NAMED_MAC_FAILURES:
                report.problems.append(
                    AuditProblem(
                        "key",
                        "audit_log",
                        str(entry["id"]),
                        f"{where}: MAC does not verify under key {key_id}: the entry was forged, or the "
                        "history recomputed, without the audit key",
                    )
                )

    def summarise(self, report: AuditReport) -> None:
        """The problems and warnings about the chain as a whole (counted failures, keys, no key file)."""
        if self.mac_failures > MAX_NAMED_MAC_FAILURES:
            report.problems.append(
                AuditProblem(
                    "key",
                    "audit_log",
                    "*",
                    f"{self.mac_failures - MAX_NAMED_MAC_FAILURES} more entr(ies) whose MAC does not verify",
                )
            )
        if self.unknown_keys:
            report.problems.append(
                AuditProblem(
                    "key",
                    "audit_log",
                    "*",
                    "entries keyed with key(s) "
                    f"{', '.join(sorted(self.unknown_keys))} that the key file "
                    f"{self.keyring.path} lacks: use the key file that wrote them",
                )
            )
        if self.first_keyed is not None and self.keyring is None:
            from sabrkit.audit.keys import KEY_FILE_ENV, key_file_path

            report.problems.append(
                AuditProblem(
                    "key",
                    "audit_log",
                    "*",
                    f"the chain is keyed since entry {self.first_keyed} "
                    f"but no audit key file is at {key_file_path()}: MACs not checked; set "
                    f"{KEY_FILE_ENV} to the key file",
                )
            )
        if self.unkeyed:
            report.warnings.append(
                f"{self.unkeyed} entr(ies) carry no MAC (written before an audit key existed): they are "
                "protected against a database administrator only by a later checkpoint"
            )


def _check_chain(
    session: Any, report: AuditReport, keyring: Any = None, checkpoint: Any = None
) -> dict[tuple[str, str], str | None]:
    """Walk the chain (hashes, MACs, the checkpointed entry); return the latest ``new_values`` per row."""
    latest: dict[tuple[str, str], str | None] = {}
    prev, expected_id = GENESIS_HASH, 1
    macs = _MacTally(keyring)
    checkpointed_hash: str | None = None
    last_id = 0
    for entry in _entries(session):
        report.n_entries += 1
        where = (
            f"audit_log entry {entry['id']} ({entry['action']} {entry['table_name']} row {entry['row_key']})"
        )
        report.problems.extend(_link_problems(entry, where, expected_id, prev))
        macs.check(entry, where, report)
        if checkpoint is not None and entry["id"] == checkpoint.entry_id:
            checkpointed_hash = entry["entry_hash"]
        prev, expected_id, last_id = entry["entry_hash"], entry["id"] + 1, entry["id"]
        latest[(entry["table_name"], entry["row_key"])] = entry["new_values"]
    macs.summarise(report)
    if checkpoint is not None:
        _check_checkpoint(report, checkpoint, checkpointed_hash, last_id, keyring)
    return latest


def _check_checkpoint(
    report: AuditReport, checkpoint: Any, found_hash: str | None, last_id: int, keyring: Any
) -> None:
    where = f"audit_log entry {checkpoint.entry_id}"
    trusted = keyring.public_key if keyring is not None else None
    if trusted is not None and checkpoint.public_key != trusted:
        report.problems.append(
            AuditProblem(
                "checkpoint",
                "audit_log",
                str(checkpoint.entry_id),
                f"the {checkpoint} is signed by another key than the key file's",
            )
        )
    elif not checkpoint.signature_valid(trusted):
        report.problems.append(
            AuditProblem(
                "checkpoint",
                "audit_log",
                str(checkpoint.entry_id),
                f"the {checkpoint} has an invalid signature: the file was edited",
            )
        )
        return
    if trusted is None:
        report.warnings.append(
            "no audit key file: the checkpoint's signature was checked against the public key "
            "it names, not against the key file"
        )
    if found_hash is None:
        report.problems.append(
            AuditProblem(
                "checkpoint",
                "audit_log",
                str(checkpoint.entry_id),
                f"{where} is missing: the log ends at entry {last_id} but the {checkpoint} recorded entry "
                f"{checkpoint.entry_id}; the log was truncated",
            )
        )
    elif found_hash != checkpoint.entry_hash:
        report.problems.append(
            AuditProblem(
                "checkpoint",
                "audit_log",
                str(checkpoint.entry_id),
                f"{where} has hash {found_hash[:12]}... but the {checkpoint} recorded {checkpoint.entry_hash[:12]}...: "
                "the history up to it was rewritten",
            )
        )
    else:
        report.checkpoint = str(checkpoint)


def _differences(table: AuditedTable, logged: dict[str, Any], current: dict[str, Any]) -> list[str]:
    changed = []
    for name in sorted(set(logged) | set(current)):
        old, new = logged.get(name), current.get(name)
        if name in table.redacted_columns:
            if not redacted_matches(old, new):
                changed.append(f"{name} (redacted) differs")
        elif old != new:
            changed.append(f"{name}: logged {old!r}, database {new!r}")
    return changed


def _check_table(
    session: Any, model: type[Any], latest: dict[tuple[str, str], str | None], report: AuditReport
) -> None:
    table = audited_table(sa_inspect(model))
    sql_table = model.__table__
    seen: set[str] = set()
    for row in session.execute(select(sql_table)).mappings():
        report.n_rows += 1
        current = table.plain_mapping(row)
        key = table.row_key(current)
        seen.add(key)
        logged_text = latest.get((table.table_name, key))
        if logged_text is None:
            what = "has no audit entry" if (table.table_name, key) not in latest else "is logged as deleted"
            report.problems.append(
                AuditProblem(
                    "inserted",
                    table.table_name,
                    key,
                    f"{table.label(current)} {what}: inserted behind the platform's back",
                )
            )
            continue
        if not table.redacted_columns and canonical_json(current) == logged_text:
            continue
        changed = _differences(table, json.loads(logged_text), current)
        if changed:
            report.problems.append(
                AuditProblem(
                    "updated",
                    table.table_name,
                    key,
                    f"{table.label(current)} changed behind the platform's back: " + "; ".join(changed),
                )
            )
    for (table_name, key), logged_text in latest.items():
        if table_name == table.table_name and logged_text is not None and key not in seen:
            logged = json.loads(logged_text)
            report.problems.append(
                AuditProblem(
                    "deleted",
                    table_name,
                    key,
                    f"{table.label(logged)} is in the audit log but not in the "
                    "database: deleted behind the platform's back",
                )
            )


def verify_audit(
    db: Any, *, checkpoint: Any = None, use_latest_checkpoint: bool = True, keyring: Any = None
) -> AuditReport:
    """Recompute the audit chain, check its MACs and checkpoint, and compare every audited row.

    Parameters
    ----------
    db : sabrkit.db.Database
        A migrated database.
    checkpoint : Checkpoint or path, optional
        Verify against this checkpoint (a restore: the checkpoint written before the backup);
        default: the latest checkpoint written for this database, if any.
    use_latest_checkpoint : bool
        Look up the latest checkpoint when none is given (False: check hashes and MACs only).
    keyring : AuditKeyring, optional
        Default: the database's (:meth:`sabrkit.db.Database.audit_keyring`).

    Returns
    -------
    AuditReport
        ``ok`` is True when the chain is intact and every audited row equals its latest logged
        state; otherwise ``problems`` name the entry or the table and row key.
    """
    from sabrkit.audit.checkpoint import latest_checkpoint, read_checkpoint

    report = AuditReport()
    keyring = keyring or (db.audit_keyring() if hasattr(db, "audit_keyring") else None)
    if checkpoint is not None and not hasattr(checkpoint, "entry_id"):
        checkpoint = read_checkpoint(checkpoint)
    elif checkpoint is None and use_latest_checkpoint:
        checkpoint = latest_checkpoint(db)
        if checkpoint is None and keyring is not None:
            report.warnings.append(
                "no checkpoint has been written for this database: truncation cannot be "
                "detected (write one: sabrkit audit checkpoint)"
            )
    models = audited_models()
    with db.session() as session:
        present = set(sa_inspect(session.connection()).get_table_names())
        latest = _check_chain(session, report, keyring, checkpoint)
        known = {model.__tablename__ for model in models}
        for model in models:
            if model.__tablename__ not in present:
                logged = any(t == model.__tablename__ and v is not None for (t, _), v in latest.items())
                if logged:
                    report.problems.append(
                        AuditProblem(
                            "deleted",
                            model.__tablename__,
                            "*",
                            f"table {model.__tablename__} has logged rows but is missing from the database",
                        )
                    )
                else:
                    report.warnings.append(
                        f"table {model.__tablename__} is not in the database "
                        "(migrate it: sabrkit registry migrate)"
                    )
                continue
            report.tables.append(model.__tablename__)
            _check_table(session, model, latest, report)
    unknown = sorted({table_name for table_name, _ in latest} - known)
    if unknown:
        report.warnings.append(f"audit entries for table(s) no audited model maps: {', '.join(unknown)}")
    logger.info("%s", str(report).splitlines()[0])
    return report


def audit_history(db: Any, table_name: str, row_key: str | None = None) -> list[AuditLogEntry]:
    """The audit entries of a table (or of one row), oldest first."""
    statement = select(AuditLogEntry).where(AuditLogEntry.table_name == table_name)
    if row_key is not None:
        statement = statement.where(AuditLogEntry.row_key == row_key)
    with db.session() as session:
        return list(session.scalars(statement.order_by(AuditLogEntry.id)))
