"""Done-when: an import file with many kinds of bad rows reports all of them in one run and
changes nothing; the corrected file commits every row in one transaction."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import event, func, select

from sabrkit.audit import AuditLogEntry, verify_audit
from sabrkit.errors import ImportValidationError
from sabrkit.registry import load_registry_folder, validate_registry_folder

#: (file, row index, column, bad value, words expected in the rule) - nine kinds of problem
BAD_CELLS = [
    ("patients.csv", 1, "sex", "X", "Input should be 'F' or 'M'"),  # vocabulary
    ("visits.csv", 0, "vrs_pain", "7", "less than or equal to 4"),  # range
    ("visits.csv", 3, "visit_date", "2024/09/01", "YYYY-MM-DD"),  # date format
    ("deaths.csv", 0, "death_date", "2025-02-01", "on or after the last contact"),  # date order
    ("lesions.csv", 2, "study_id", "SABR-RCC-099", "unknown patient"),  # reference
    ("adverse_events.csv", 0, "grade", "4", "CTCAE v5.0 defines grades 1, 2, 3 for 'Fatigue'"),  # CTCAE grade
    ("adverse_events.csv", 1, "term", "Pneumonia-ish", "not a CTCAE v5.0 term"),  # CTCAE term
    ("visits.csv", 1, "visit_date", "2024-07-02", "is visit 1"),  # visit window
    ("patients.csv", 1, "age_years", "17", "greater than or equal to 18"),  # range (age)
]


def _counts(db) -> dict[str, int]:
    from sabrkit.registry.load import REGISTRY_FILES

    with db.session() as session:
        counts = {
            m.__tablename__: session.scalar(select(func.count()).select_from(m))
            for _, m in REGISTRY_FILES.values()
        }
        counts["audit_log"] = session.scalar(select(func.count()).select_from(AuditLogEntry))
    return counts


def test_every_bad_row_is_reported_in_one_run_and_nothing_changes(
    db, registry_tables, write_registry, tmp_path
):
    bad = copy.deepcopy(registry_tables)
    for name, index, column, value, _ in BAD_CELLS:
        bad[name][index][column] = value
    folder = write_registry(tmp_path / "bad", bad)
    before = _counts(db)
    with pytest.raises(ImportValidationError) as caught:
        validate_registry_folder(db, folder)  # the --dry-run path
    with pytest.raises(ImportValidationError):
        load_registry_folder(db, folder)
    errors = caught.value.errors
    for name, _, column, value, words in BAD_CELLS:
        matching = [e for e in errors if e.column == f"{name}:{column}" and words in e.rule]
        assert matching, (name, column, words, [str(e) for e in errors])
        assert str(matching[0].value) == value or value in str(matching[0].value)
    assert all(e.row >= 2 for e in errors)
    assert _counts(db) == before
    assert verify_audit(db).ok


def test_corrected_file_commits_every_row_in_one_transaction(db, registry_tables, write_registry, tmp_path):
    folder = write_registry(tmp_path / "good", registry_tables)
    validate_registry_folder(db, folder)
    commits: list[int] = []

    def count_commit(connection) -> None:
        commits.append(1)

    event.listen(db.engine, "commit", count_commit)
    try:
        summary = load_registry_folder(db, folder, actor="importer")
    finally:
        event.remove(db.engine, "commit", count_commit)
    assert len(commits) == 1
    expected = {name: len(rows) for name, rows in registry_tables.items()}
    assert summary.total == sum(expected.values())
    counts = _counts(db)
    assert counts["audit_log"] == summary.total
    with db.session() as session:
        actors = set(session.scalars(select(AuditLogEntry.actor)))
    assert actors == {"importer"}
    assert verify_audit(db).ok
