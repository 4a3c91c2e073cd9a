"""Session events that write the audit log inside the transaction that makes the change.

:func:`install_audit` attaches three listeners to a ``sessionmaker`` (``Database`` does it for
its own); they act only on instances of :class:`~sabrkit.audit.tables.Audited` models:

``before_flush``
    snapshots the old state of every changed or deleted audited row and refuses (with
    :class:`~sabrkit.audit.errors.AuditError`) an update or delete without a reason, and any
    change of a primary key;
``after_flush``
    writes one entry per inserted, updated (with a real change) or deleted row, in one batch,
    chained to the newest entry (:func:`append_entries`);
``do_orm_execute``
    refuses ORM bulk ``insert()/update()/delete()`` statements on audited models, which would
    bypass the flush (use :func:`insert_audited` for fast bulk inserts).

Who and why come from ``session.info["audit_actor"]`` and ``session.info["audit_reason"]``
(set by ``Database.transaction(actor=..., reason=...)`` or :func:`set_audit_context`).

Writers are serialised so the chain never forks: on PostgreSQL by a transaction-level advisory
lock taken before the newest entry is read; on SQLite by the database's single write lock, held
from the flush's first write (``Database.transaction`` also begins with ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Integer, Table, event, inspect, select, text
from sqlalchemy.orm import InstanceState, ORMExecuteState, Session, sessionmaker

from sabrkit.audit.chain import AuditedTable, audited_table, canonical_json, chain_hashes, plain_type
from sabrkit.audit.errors import AuditError
from sabrkit.audit.tables import GENESIS_HASH, Audited, AuditLogEntry
from sabrkit.db.database import DEFAULT_ACTOR, Database
from sabrkit.errors import format_problem

__all__ = [
    "AUDIT_ACTOR",
    "AUDIT_REASON",
    "DEFAULT_ACTOR",
    "install_audit",
    "open_database",
    "set_audit_context",
    "append_entries",
    "insert_audited",
    "insert_audited_rows",
    "PendingEntry",
]

logger = logging.getLogger(__name__)

AUDIT_ACTOR = "audit_actor"
AUDIT_REASON = "audit_reason"
_OLD_STATES = "_sabrkit_audit_old_states"
_INSTALLED = "_sabrkit_audit_installed"
_BYPASS_OPTION = "sabrkit_audited"
_AUDIT_COLUMNS = (
    "id",
    "recorded_at",
    "actor",
    "action",
    "table_name",
    "row_key",
    "old_values",
    "new_values",
    "reason",
    "prev_hash",
    "entry_hash",
    "key_id",
    "entry_mac",
)
#: ``session.info`` key holding the :class:`~sabrkit.audit.keys.AuditKeyring` (set by ``Database``).
AUDIT_KEYRING = "audit_keyring"
#: First key of the PostgreSQL advisory lock that serialises writers of the audit log; the
#: second is ``hashtext(current_schema())``, so each schema's chain has its own lock and a
#: transaction left open in another schema of the same database never blocks this one.
POSTGRES_AUDIT_LOCK_CLASS = 72_620_130

#: One entry before it is chained: action, table, row key, old and new values (JSON text).
PendingEntry = tuple[str, str, str, str | None, str | None]


def install_audit(target: sessionmaker[Any] | type[Session]) -> None:
    """Attach the audit listeners to a ``sessionmaker`` (or a Session class); idempotent.

    The target is marked rather than asked with ``event.contains``: SQLAlchemy keys its event
    registry by ``id()``, and a new sessionmaker's class may reuse the id of a collected one.
    """
    if getattr(target, _INSTALLED, False):
        return
    for name, listener in (
        ("before_flush", _before_flush),
        ("after_flush", _after_flush),
        ("do_orm_execute", _refuse_bulk_statements),
    ):
        event.listen(target, name, listener)
    setattr(target, _INSTALLED, True)


def open_database(
    url: str | URL,
    *,
    actor: str | None = None,
    audit_key_file: str | Path | None = None,
    **engine_kwargs: Any,
) -> Database:
    """Open the database at ``url`` with the audit log attached to every session it hands out.

    The one way entry points (CLI, web app, pipelines, tests) build a
    :class:`~sabrkit.db.Database`: changes to :class:`~sabrkit.audit.Audited` models are then
    logged in the same transaction. The schema is neither checked nor migrated here.

    Parameters
    ----------
    url : str or sqlalchemy.URL
        SQLAlchemy URL (see :func:`sabrkit.db.make_engine` for ``engine_kwargs``).
    actor : str, optional
        Who makes the changes when a transaction is not told (default ``"unknown"``).
    audit_key_file : path, optional
        The audit key file (:mod:`sabrkit.audit.keys`); default ``SABRKIT_AUDIT_KEY_FILE``, else
        the default location. Read at the first write.
    """
    return Database.from_url(
        url, actor=actor, session_hooks=(install_audit,), audit_key_file=audit_key_file, **engine_kwargs
    )


def set_audit_context(session: Session, *, actor: str | None = None, reason: str | None = None) -> None:
    """Set who makes the session's next changes and why (``reason`` is required for edits)."""
    if actor is not None:
        session.info[AUDIT_ACTOR] = actor
    if reason is not None:
        session.info[AUDIT_REASON] = reason


def _reason(session: Session) -> str | None:
    reason = session.info.get(AUDIT_REASON)
    return reason.strip() if isinstance(reason, str) and reason.strip() else None


def _table(state: InstanceState[Any]) -> AuditedTable:
    return audited_table(state.mapper)


def _current_row(session: Session, obj: Any, table: AuditedTable) -> dict[str, Any]:
    """Plain values of an object as it is now (expired attributes are loaded)."""
    state = inspect(obj)
    loaded = state.dict

    def get(key: str, column: Any) -> Any:
        if key in loaded:
            return loaded[key]
        with session.no_autoflush:
            return getattr(obj, key)

    return table.plain_row(get)


def _database_row(session: Session, state: InstanceState[Any], table: AuditedTable) -> dict[str, Any]:
    """Plain values of the row of a persistent object as the database holds it now."""
    sql_table = state.mapper.local_table
    identity = state.identity or ()
    condition = [sql_table.c[name] == value for name, value in zip(table.key_columns, identity, strict=True)]
    row = session.connection().execute(select(sql_table).where(*condition)).mappings().one()
    return {column.name: row[column.name] for _, column in table.columns}


def _old_row(session: Session, state: InstanceState[Any], table: AuditedTable) -> dict[str, Any]:
    """The committed (pre-change) values of a persistent object."""
    from sqlalchemy.orm.base import NO_VALUE

    committed = state.committed_state
    values: dict[str, Any] = {}
    for key, column in table.columns:
        if key in committed:
            if committed[key] is NO_VALUE:
                database = _database_row(session, state, table)
                return table.plain_row(lambda k, c: database[c.name])  # noqa: B023 - called before the loop goes on
            values[column.name] = committed[key]
        elif key in state.dict:
            values[column.name] = state.dict[key]
        else:
            database = _database_row(session, state, table)
            return table.plain_row(lambda k, c: database[c.name])  # noqa: B023 - called before the loop goes on
    return table.plain_row(lambda k, c: values[c.name])


def _refuse(table: AuditedTable, row: Mapping[str, Any], what: str, rule: str, fix: str) -> AuditError:
    return AuditError(format_problem(f"{what} of {table.label(row)}", rule, fix))


def _before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    old_states: dict[InstanceState[Any], tuple[str, dict[str, Any]]] = {}
    reason = _reason(session)
    for obj in list(session.dirty):
        if not isinstance(obj, Audited) or not session.is_modified(obj, include_collections=False):
            continue
        state = inspect(obj)
        table = _table(state)
        old = _old_row(session, state, table)
        new = _current_row(session, obj, table)
        if old == new:
            continue
        if table.row_key(old) != table.row_key(new):
            raise _refuse(
                table,
                old,
                "a change of the primary key",
                "the primary key of an audited row never changes",
                "delete the row (with a reason) and enter it again under its new key",
            )
        if reason is None:
            raise _refuse(
                table,
                old,
                "an update",
                "every change after first entry needs a reason",
                "pass reason=... to Database.transaction (CLI: --reason)",
            )
        old_states[state] = ("update", old)
    for obj in list(session.deleted):
        if not isinstance(obj, Audited):
            continue
        state = inspect(obj)
        table = _table(state)
        old = _old_row(session, state, table)
        if reason is None:
            raise _refuse(
                table,
                old,
                "a delete",
                "every deletion needs a reason",
                "pass reason=... to Database.transaction (CLI: --reason)",
            )
        old_states[state] = ("delete", old)
    session.info[_OLD_STATES] = old_states


def _after_flush(session: Session, flush_context: Any) -> None:
    old_states: dict[InstanceState[Any], tuple[str, dict[str, Any]]] = session.info.pop(_OLD_STATES, {})
    pending: list[PendingEntry] = []
    for obj in session.new:
        if isinstance(obj, Audited):
            table = _table(inspect(obj))
            new = _current_row(session, obj, table)
            pending.append(
                ("insert", table.table_name, table.row_key(new), None, canonical_json(table.logged_row(new)))
            )
    for state, (action, old) in old_states.items():
        table = _table(state)
        logged_old = canonical_json(table.logged_row(old))
        if action == "delete":
            pending.append(("delete", table.table_name, table.row_key(old), logged_old, None))
            continue
        obj = state.obj()
        new = _current_row(session, obj, table) if obj is not None else old
        if new != old:
            pending.append(
                (
                    "update",
                    table.table_name,
                    table.row_key(new),
                    logged_old,
                    canonical_json(table.logged_row(new)),
                )
            )
    if pending:
        append_entries(session, pending)


def _refuse_bulk_statements(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    if state.execution_options.get(_BYPASS_OPTION):
        return
    mapper = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, Audited):
        verb = "INSERT" if state.is_insert else "UPDATE" if state.is_update else "DELETE"
        raise AuditError(
            format_problem(
                f"ORM bulk {verb} on audited table {mapper.persist_selectable.description}",
                "changes to audited tables go through the session's flush, which writes the audit log",
                "change objects in a Database.transaction(...) block, or use sabrkit.audit.insert_audited for bulk inserts",
            )
        )


def _chain_tail(session: Session) -> tuple[int, str, str | None]:
    """Lock the chain (PostgreSQL) and return the newest entry's id, hash and key id."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"),
            {"key": POSTGRES_AUDIT_LOCK_CLASS},
        )
    log = AuditLogEntry.__table__
    tail = connection.execute(
        select(log.c.id, log.c.entry_hash, log.c.key_id).order_by(log.c.id.desc()).limit(1)
    ).first()
    return (0, GENESIS_HASH, None) if tail is None else (int(tail[0]), str(tail[1]), tail[2])


def _keyring(session: Session) -> Any:
    """The session's audit keyring (``Database`` puts it in ``session.info``), else the key file in force."""
    if AUDIT_KEYRING in session.info:
        return session.info[AUDIT_KEYRING]
    from sabrkit.audit.keys import load_keyring

    return load_keyring()


def append_entries(session: Session, pending: Sequence[PendingEntry]) -> int:
    """Chain and insert audit entries in the session's transaction; returns how many.

    Parameters
    ----------
    session : Session
        Inside a transaction; ``session.info`` names the actor and the reason.
    pending : sequence of (action, table_name, row_key, old_values, new_values)
        Values as canonical JSON text (or None).
    """
    if not pending:
        return 0
    actor = str(session.info.get(AUDIT_ACTOR) or DEFAULT_ACTOR)
    reason = _reason(session)
    recorded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    last_id, prev, tail_key = _chain_tail(session)
    keyring = _keyring(session)
    if keyring is None and tail_key is not None:
        from sabrkit.audit.keys import KEY_FILE_ENV, AuditKeyError, key_file_path

        raise AuditKeyError(
            format_problem(
                f"a write to the audit log without the audit key ({key_file_path()} does not exist)",
                f"the chain is keyed (its newest entry, {last_id}, carries key {tail_key}): every later entry must be too",
                f"set {KEY_FILE_ENV} to the key file (or restore it from its backup); nothing was written",
            )
        )
    connection = session.connection()
    stored_at: Any = recorded_at
    if connection.dialect.name == "sqlite":  # SQLAlchemy's DateTime storage format on SQLite
        stored_at = recorded_at.strftime("%Y-%m-%d %H:%M:%S.%f")
    digests = chain_hashes(
        list(pending),
        first_id=last_id + 1,
        recorded_at=recorded_at,
        actor=actor,
        reason=reason,
        prev_hash=prev,
    )
    key_id = keyring.current if keyring is not None else None
    macs = [keyring.mac(digest) for digest in digests] if keyring is not None else [None] * len(digests)
    rows = [
        (
            last_id + offset,
            stored_at,
            actor,
            action,
            table_name,
            row_key,
            old_values,
            new_values,
            reason,
            digests[offset - 2] if offset > 1 else prev,
            digests[offset - 1],
            key_id,
            macs[offset - 1],
        )
        for offset, (action, table_name, row_key, old_values, new_values) in enumerate(pending, start=1)
    ]
    # one driver-level executemany: the audit rows are plain values, SQLAlchemy's per-row
    # parameter processing would double the cost of a bulk import
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    connection.exec_driver_sql(
        f"INSERT INTO audit_log ({', '.join(_AUDIT_COLUMNS)}) "
        f"VALUES ({', '.join([marker] * len(_AUDIT_COLUMNS))})",
        rows,
    )
    logger.debug("audit: %d entr(ies) %d-%d by %s", len(rows), last_id + 1, last_id + len(rows), actor)
    return len(rows)


def insert_audited(session: Session, model: type[Any], rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert many rows of an audited model at once, with their audit entries (fast path).

    See :func:`insert_audited_rows`, which also returns the new rows' primary keys.

    Returns
    -------
    int
        Rows inserted.
    """
    return len(insert_audited_rows(session, model, rows))


def insert_audited_rows(session: Session, model: type[Any], rows: Iterable[Mapping[str, Any]]) -> list[Any]:
    """Insert many rows of an audited model at once, with their audit entries; returns their keys.

    Two ways, same log:

    * models with a single integer primary key whose column defaults are constants (the
      biobank's samples and custody events, most registry tables): the keys are reserved first
      (PostgreSQL: the column's sequence; SQLite: above the largest key, under the write lock
      the transaction holds), defaults and the column types' bind processing are applied here,
      and the rows go to the driver as one ``executemany``; the log is built from those values.
    * any other model (computed defaults such as BED and EQD2): one multi-row
      ``INSERT ... RETURNING`` per batch, the log built from the returned rows, so the values
      the database computed are logged as stored.

    Objects already in the session do not see these rows until they are queried.

    Parameters
    ----------
    session : Session
        Inside a ``Database.transaction``.
    model : Audited model class
    rows : iterable of mappings
        Column values by column name.

    Returns
    -------
    list
        The primary key of each row, in the order given (a tuple for composite keys).
    """
    if not issubclass(model, Audited):
        raise TypeError(f"{model.__name__} is not an Audited model")
    batch = [dict(row) for row in rows]
    if not batch:
        return []
    table = audited_table(inspect(model))
    connection = session.connection()
    sql_table: Table = model.__table__  # type: ignore[attr-defined]  # Audited is a mixin of mapped classes
    plan = _direct_insert_plan(sql_table, connection.dialect)
    if plan is not None and not any(plan.key in row for row in batch):
        return _insert_direct(session, table, plan, batch)
    statement = sql_table.insert().returning(*sql_table.c)
    result = session.execute(statement, batch, execution_options={_BYPASS_OPTION: True})
    pending: list[PendingEntry] = []
    keys: list[Any] = []
    plain = table.plain_mapping
    for returned in result.mappings():
        new = plain(returned)
        keys.append(
            new[table.key_columns[0]]
            if len(table.key_columns) == 1
            else tuple(new[name] for name in table.key_columns)
        )
        pending.append(
            ("insert", table.table_name, table.row_key(new), None, canonical_json(table.logged_row(new)))
        )
    append_entries(session, pending)
    return keys


class _DirectPlan:
    """How rows of one table are written by the driver directly (see :func:`insert_audited_rows`)."""

    __slots__ = ("binders", "defaults", "key", "names", "sql", "table", "table_name")

    def __init__(
        self,
        table: Any,
        names: tuple[str, ...],
        key: str,
        defaults: dict[str, Any],
        binders: tuple[Callable[[Any], Any] | None, ...],
        sql: str,
    ) -> None:
        self.table, self.table_name, self.names, self.key, self.defaults = (
            table,
            str(table.name),
            names,
            key,
            defaults,
        )
        self.binders, self.sql = binders, sql


_DIRECT_PLANS: dict[tuple[Any, str], _DirectPlan | None] = {}


def _direct_insert_plan(sql_table: Any, dialect: Any) -> _DirectPlan | None:
    """The direct-insert plan of a table, or None when it needs ``INSERT ... RETURNING``."""
    cache_key = (sql_table, dialect.name)
    if cache_key in _DIRECT_PLANS:
        return _DIRECT_PLANS[cache_key]
    plan = None
    primary = list(sql_table.primary_key.columns)
    simple_key = (
        len(primary) == 1
        and primary[0].type._type_affinity is Integer
        and primary[0].autoincrement in (True, "auto")
        and primary[0].default is None
        and primary[0].server_default is None
    )
    defaults: dict[str, Any] = {}
    constant = simple_key and dialect.name in ("sqlite", "postgresql")
    for column in sql_table.columns if constant else ():
        if column is primary[0]:
            continue
        if column.default is not None:
            if not getattr(column.default, "is_scalar", False):
                constant = False
                break
            defaults[column.name] = column.default.arg
        elif column.server_default is not None:
            constant = False
            break
    if constant:
        names = tuple(column.name for column in sql_table.columns)
        binders = tuple(_binder(column, dialect) for column in sql_table.columns)
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        quoted = [dialect.identifier_preparer.quote(name) for name in names]
        sql = (
            f"INSERT INTO {dialect.identifier_preparer.format_table(sql_table)} ({', '.join(quoted)}) "
            f"VALUES ({', '.join([marker] * len(names))})"
        )
        plan = _DirectPlan(sql_table, names, primary[0].name, defaults, binders, sql)
    _DIRECT_PLANS[cache_key] = plan
    return plan


def _binder(column: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """The column type's bind processing for this dialect (what SQLAlchemy applies to parameters).

    SQLite's ``DATETIME`` in its default storage format (``YYYY-MM-DD HH:MM:SS.ffffff``) is the
    ISO text of a naive date-time with a space for the "T" (:class:`_SqliteDateTimeBinder`), which
    is several times faster than the general formatter; anything else goes through SQLAlchemy.
    """
    impl = column.type.dialect_impl(dialect)
    processor = impl.bind_processor(dialect)
    if processor is None or dialect.name != "sqlite":
        return processor
    from sqlalchemy.dialects.sqlite import DATETIME

    if type(impl) is DATETIME and impl._storage_format == DATETIME._storage_format:
        return _SqliteDateTimeBinder(processor)
    return processor


class _SqliteDateTimeBinder:
    """SQLite ``DATETIME`` binding that reuses the ISO text the audit log already made."""

    __slots__ = ("general",)

    def __init__(self, general: Callable[[Any], Any]) -> None:
        self.general = general

    def __call__(self, value: Any, plain: Any = None) -> Any:
        if type(value) is dt.datetime and value.tzinfo is None:
            # the log's plain value is isoformat(timespec="microseconds"): "T" -> " " is the storage text
            return plain.replace("T", " ", 1) if type(plain) is str else value.isoformat(" ", "microseconds")
        return self.general(value)


def _reserve_keys(session: Session, plan: _DirectPlan, count: int) -> list[int]:
    """``count`` new primary keys: from the key's sequence (PostgreSQL) or above the largest (SQLite)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        rows = connection.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, :column)) FROM generate_series(1, :n)"),
            {"table": plan.table_name, "column": plan.key, "n": count},
        )
        return [int(value) for (value,) in rows]
    # SQLite: Database.transaction holds the write lock (BEGIN IMMEDIATE) and flushes write
    # first, so no other writer can take these keys; SQLite itself would pick max + 1 too
    (largest,) = connection.exec_driver_sql(
        f'SELECT coalesce(max("{plan.key}"), 0) FROM "{plan.table_name}"'
    ).one()
    return list(range(int(largest) + 1, int(largest) + 1 + count))


def _insert_direct(
    session: Session, table: AuditedTable, plan: _DirectPlan, batch: list[dict[str, Any]]
) -> list[int]:
    keys = _reserve_keys(session, plan, len(batch))
    converters = {name: convert for _, name, convert in table.converters}
    # only values not already of their column's plain type go through a converter (most text and
    # integer values are): the per-value calls are most of a bulk import's Python time
    columns = {column.name: column for column in plan.table.columns}
    conversions = tuple((name, plain_type(columns[name]), converters[name]) for name in plan.names)
    names_defaults = tuple((name, plan.defaults.get(name)) for name in plan.names)
    bound = tuple(
        (index, name, bind)
        for index, (name, bind) in enumerate(zip(plan.names, plan.binders))
        if bind is not None and not isinstance(bind, _SqliteDateTimeBinder)
    )
    datetimes = tuple(
        (index, name, bind)
        for index, (name, bind) in enumerate(zip(plan.names, plan.binders))
        if isinstance(bind, _SqliteDateTimeBinder)
    )
    redacts = bool(table.redacted_columns)
    pending: list[PendingEntry] = []
    parameters = []
    names, key_name, table_name = plan.names, plan.key, table.table_name
    for key, row in zip(keys, batch, strict=True):
        row[key_name] = key
        get = row.get
        values = [get(name, default) for name, default in names_defaults]
        new = dict(zip(names, values))
        for name, exact, convert in conversions:
            value = new[name]
            if value is not None and type(value) is not exact:
                new[name] = convert(value)
        pending.append(
            ("insert", table_name, str(key), None, canonical_json(table.logged_row(new) if redacts else new))
        )
        for index, _name, bind in bound:
            value = values[index]
            if value is not None:
                values[index] = bind(value)
        for index, name, bind in datetimes:
            value = values[index]
            if value is not None:
                values[index] = bind(value, new[name])
        parameters.append(tuple(values))
    session.connection().exec_driver_sql(plan.sql, parameters)
    append_entries(session, pending)
    return keys
