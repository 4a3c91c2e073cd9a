"""Tamper evidence against someone who can write the database but lacks the audit key.

The three forgeries of issue 18, each made with full write access to the database (the
append-only triggers dropped first), each named by ``verify_audit`` through the HMAC of the
entries (:mod:`sabrkit.audit.keys`) or the signed checkpoint (:mod:`sabrkit.audit.checkpoint`):

* truncation: the last entry and its row deleted (the plain chain and the state check pass);
* an appended entry with a correctly computed plain hash, a made-up actor and a backdated time;
* a rewritten history with every hash recomputed.

Plus: a restore from a backup verifies against the checkpoint written with the backup; key
rotation; the behaviour without a key file.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select, text

from sabrkit.audit import AuditLogEntry, entry_hash, verify_audit
from sabrkit.audit.checkpoint import checkpoint_dir, latest_checkpoint, read_checkpoint, write_checkpoint
from sabrkit.audit.keys import AuditKeyError, init_key_file, key_file_path, load_keyring, rotate_key_file
from sabrkit.db import Database
from sabrkit.registry import Visit


@pytest.fixture
def keyed_registry(db: Database, request: pytest.FixtureRequest) -> Database:
    """The audit conftest's registry, written after an audit key file was created."""
    init_key_file()
    db.forget_audit_keyring()
    registry = request.getfixturevalue("registry")
    write_checkpoint(registry)
    return registry


def _drop_append_only_triggers(db: Database) -> None:
    with db.engine.begin() as connection:
        if db.dialect_name == "sqlite":
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_update_delete ON audit_log"))


def _entries(db: Database) -> list[dict]:
    log = AuditLogEntry.__table__
    with db.engine.connect() as connection:
        return [dict(row) for row in connection.execute(select(log).order_by(log.c.id)).mappings()]


def _plain_chain_ok(db: Database) -> bool:
    """What `audit verify` said before issue 18: the plain hash chain and the rows only."""
    report = verify_audit(db, use_latest_checkpoint=False, keyring=load_keyring())
    return not [p for p in report.problems if p.kind not in ("key", "checkpoint")]


def test_keyed_registry_verifies_against_key_and_checkpoint(keyed_registry: Database):
    report = verify_audit(keyed_registry)
    assert report.ok, str(report)
    assert report.n_keyed == report.n_entries == 8
    assert report.checkpoint is not None and "entry 8" in report.checkpoint
    assert "8 keyed entr(ies) verified" in str(report)
    assert all(
        e["key_id"] == load_keyring().current and len(e["entry_mac"]) == 64 for e in _entries(keyed_registry)
    )


def test_truncation_is_detected_naming_the_entry(keyed_registry: Database):
    db = keyed_registry
    _drop_append_only_triggers(db)
    last = _entries(db)[-1]
    table, key = last["table_name"], last["row_key"]
    key_column = {
        "deaths": "id",
        "progression_events": "id",
        "adverse_events": "id",
        "visits": "id",
        "sabr_courses": "id",
    }.get(table, "id")
    with db.engine.begin() as connection:
        connection.execute(text(f"DELETE FROM {table} WHERE {key_column} = :key"), {"key": int(key)})
        connection.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": last["id"]})
    assert _plain_chain_ok(db)  # the forgery the plain chain cannot see
    report = verify_audit(db)
    assert not report.ok
    assert [(p.kind, p.row_key) for p in report.problems] == [("checkpoint", "8")]
    assert "audit_log entry 8 is missing" in str(report) and "truncated" in str(report)
    assert "the log ends at entry 7" in str(report)


@pytest.mark.parametrize("copy_mac", [False, True], ids=["no-mac", "copied-mac"])
def test_appended_entry_with_a_valid_plain_hash_is_detected(keyed_registry: Database, copy_mac: bool):
    db = keyed_registry
    entries = _entries(db)
    tail = entries[-1]
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO visits (id, study_id, visit_number, visit_date, vrs_pain) "
                "VALUES (900, 'SABR-RCC-001', 2, '2024-08-01', 0)"
            )
        )
    with db.session() as session:
        visit = session.get(Visit, 900)
        from sqlalchemy import inspect as sa_inspect

        from sabrkit.audit.chain import audited_table, canonical_json

        table = audited_table(sa_inspect(Visit))
        new_values = canonical_json(table.plain_row(lambda key, column: getattr(visit, key)))
    forged = {
        "id": tail["id"] + 1,
        "recorded_at": dt.datetime(2024, 8, 1, 9, 0),
        "actor": "dr-made-up",
        "action": "insert",
        "table_name": "visits",
        "row_key": "900",
        "old_values": None,
        "new_values": new_values,
        "reason": None,
        "prev_hash": tail["entry_hash"],
    }
    forged["entry_hash"] = entry_hash(forged, tail["entry_hash"])
    forged["key_id"] = tail["key_id"] if copy_mac else None
    forged["entry_mac"] = tail["entry_mac"] if copy_mac else None
    columns = ", ".join(forged)
    with db.engine.begin() as connection:
        connection.execute(
            text(f"INSERT INTO audit_log ({columns}) VALUES ({', '.join(':' + k for k in forged)})"), forged
        )
    assert _plain_chain_ok(db)  # hash chain intact and the row matches its (forged) entry
    report = verify_audit(db)
    assert [(p.kind, p.row_key) for p in report.problems] == [("key", "9")]
    expected = "MAC does not verify" if copy_mac else "has no MAC though the chain is keyed since entry 1"
    assert "audit_log entry 9 (insert visits row 900)" in str(report) and expected in str(report)


def test_recomputed_history_is_detected_naming_the_first_rewritten_entry(keyed_registry: Database):
    db = keyed_registry
    _drop_append_only_triggers(db)
    entries = _entries(db)
    prev = entries[2]["entry_hash"]
    rewritten = []
    for entry in entries[3:]:  # rewrite entry 4 (the actor), then recompute 4..8 so the plain chain holds
        fields = {k: v for k, v in entry.items() if k not in ("entry_hash", "key_id", "entry_mac")}
        if entry["id"] == 4:
            fields["actor"] = "someone-else"
        fields["prev_hash"] = prev
        prev = entry_hash(fields, prev)
        rewritten.append({**fields, "entry_hash": prev})
    with db.engine.begin() as connection:
        for entry in rewritten:
            connection.execute(
                text(
                    "UPDATE audit_log SET actor = :actor, prev_hash = :prev_hash, "
                    "entry_hash = :entry_hash WHERE id = :id"
                ),
                entry,
            )
    assert _plain_chain_ok(db)
    report = verify_audit(db)
    kinds = [(p.kind, p.row_key) for p in report.problems]
    assert kinds == [
        ("key", "4"),
        ("key", "5"),
        ("key", "6"),
        ("key", "7"),
        ("key", "8"),
        ("checkpoint", "8"),
    ]
    assert "audit_log entry 4" in str(report) and "history up to it was rewritten" in str(report)
    # the same rewrite with the MACs removed (posing as an unkeyed log) is still caught by the checkpoint
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET key_id = NULL, entry_mac = NULL"))
    report = verify_audit(db)
    assert [(p.kind, p.row_key) for p in report.problems] == [("checkpoint", "8")]


def test_restore_from_a_backup_verifies_against_its_checkpoint(keyed_registry: Database, tmp_path: Path):
    db = keyed_registry
    if db.dialect_name != "sqlite":
        pytest.skip("the backup here is a copy of the SQLite file (PostgreSQL: pg_dump, same procedure)")
    from sabrkit.db.engine import sqlite_file

    path = sqlite_file(db.url)
    db.dispose()
    backup_checkpoint = tmp_path / "backup-checkpoint.json"
    (latest_file,) = checkpoint_dir().rglob("latest.json")
    shutil.copyfile(latest_file, backup_checkpoint)  # kept with the backup
    shutil.copyfile(path, tmp_path / "backup.db")
    with db.transaction(actor="nurse") as session:  # work after the backup, then a checkpoint
        session.add(
            Visit(study_id="SABR-RCC-001", visit_number=2, visit_date=dt.date(2024, 9, 1), vrs_pain=0)
        )
    write_checkpoint(db)
    db.dispose()
    shutil.copyfile(tmp_path / "backup.db", path)  # the restore
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    restored = verify_audit(db, checkpoint=backup_checkpoint)
    assert restored.ok, str(restored)
    assert restored.checkpoint == str(read_checkpoint(backup_checkpoint))
    # against the latest checkpoint, the restore is named for what it lost
    latest = verify_audit(db)
    assert [(p.kind, p.row_key) for p in latest.problems] == [("checkpoint", "9")]


def test_checkpoint_file_edits_are_detected(keyed_registry: Database, tmp_path: Path):
    import json

    checkpoint = latest_checkpoint(keyed_registry)
    edited = tmp_path / "edited.json"
    content = {**checkpoint.__dict__, "entry_id": 7}
    edited.write_text(json.dumps(content), encoding="utf-8")
    report = verify_audit(keyed_registry, checkpoint=edited)
    assert [(p.kind, p.row_key) for p in report.problems] == [("checkpoint", "7")]
    assert "invalid signature" in str(report)


def test_key_rotation_keeps_old_entries_verifiable(keyed_registry: Database):
    old = load_keyring().current
    rotate_key_file()
    keyed_registry.forget_audit_keyring()
    with keyed_registry.transaction(actor="nurse") as session:
        session.add(
            Visit(study_id="SABR-RCC-001", visit_number=2, visit_date=dt.date(2024, 9, 1), vrs_pain=0)
        )
    entries = _entries(keyed_registry)
    assert entries[0]["key_id"] == old and entries[-1]["key_id"] == load_keyring().current != old
    assert verify_audit(keyed_registry).ok


def test_without_a_key_file_writes_work_unkeyed_until_the_chain_is_keyed(registry: Database):
    report = verify_audit(registry)
    assert report.ok and report.n_keyed == 0
    assert any("carry no MAC" in warning for warning in report.warnings)
    init_key_file()
    registry.forget_audit_keyring()
    with registry.transaction(actor="nurse") as session:
        session.add(
            Visit(study_id="SABR-RCC-001", visit_number=2, visit_date=dt.date(2024, 9, 1), vrs_pain=0)
        )
    assert verify_audit(registry).ok
    key_file_path().rename(key_file_path().with_suffix(".moved"))
    registry.forget_audit_keyring()
    with pytest.raises(AuditKeyError, match="the chain is keyed"):
        with registry.transaction(actor="nurse") as session:
            session.add(
                Visit(study_id="SABR-RCC-001", visit_number=3, visit_date=dt.date(2024, 10, 1), vrs_pain=0)
            )
    report = verify_audit(registry)
    assert [p.kind for p in report.problems] == ["key"] and "no audit key file" in str(report)
    with pytest.raises(AuditKeyError, match="already exists"):
        key_file_path().with_suffix(".moved").rename(key_file_path())
        init_key_file()
