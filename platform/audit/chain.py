"""Canonical JSON of rows and entries, and the hash that chains audit entries.

One serialisation is used when an entry is written and when :func:`sabrkit.audit.verify_audit`
reads a row back from the database, so "the row equals its last logged state" is a comparison
of two strings. Values are normalised by column type first (a ``Float`` column holds ``50.0``
whether ``50`` or ``50.0`` was assigned), dates and date-times become ISO text (aware
date-times in UTC), decimals their normalised text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from sqlalchemy import Boolean, Column, Date, DateTime, Float, Integer, Numeric, String, Table
from sqlalchemy.orm import Mapper

from sabrkit.audit.tables import GENESIS_HASH

__all__ = [
    "canonical_json",
    "entry_hash",
    "chain_hashes",
    "plain_value",
    "python_value",
    "AuditedTable",
    "audited_table",
    "GENESIS_HASH",
    "REDACTED_PREFIX",
]

#: Prefix of a redacted value in the log: ``salted-sha256:<salt hex>:<digest hex>``.
REDACTED_PREFIX = "salted-sha256:"


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
#: JSON text of one string, as the encoder writes it with ``ensure_ascii=False``.
_json_string = json.encoder.encode_basestring


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no spaces and UTF-8 text (the same object gives the same string)."""
    return _ENCODER.encode(value)


def plain_value(value: Any, column: Column[Any] | None = None) -> Any:
    """A column value as a JSON-ready plain value, normalised by the column's type.

    ``None`` stays ``None``; ``Float`` -> float; ``Integer`` -> int; ``Boolean`` -> bool;
    ``Numeric`` and :class:`decimal.Decimal` -> normalised text; dates -> ``YYYY-MM-DD``;
    date-times -> ISO 8601 with microseconds (aware ones converted to UTC); bytes -> hex.
    """
    if value is None:
        return None
    column_type = column.type if column is not None else None
    if isinstance(column_type, Boolean) or isinstance(value, bool):
        return bool(value)
    if isinstance(column_type, Float) and not getattr(column_type, "asdecimal", False):
        return float(value)
    if isinstance(value, decimal.Decimal) or isinstance(column_type, Numeric):
        number = decimal.Decimal(str(value)).normalize()
        return format(number, "f")
    if isinstance(column_type, Integer):
        return int(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, float | int | str | list | dict):
        return value
    return str(value)


def python_value(value: Any, column: Column[Any]) -> Any:
    """The inverse of :func:`plain_value` for one column: a logged value as the column holds it.

    Used to rebuild a deleted row from its last logged values (``sabrkit registry restore``):
    ``plain_value(python_value(v, c), c) == v`` for every value :func:`plain_value` writes for a
    column of a type listed there. Redacted values (:func:`redact`) cannot be inverted; the
    caller refuses them.
    """
    if value is None:
        return None
    column_type = column.type
    if isinstance(column_type, Boolean):
        return bool(value)
    if isinstance(column_type, Float) and not getattr(column_type, "asdecimal", False):
        return float(value)
    if isinstance(column_type, Numeric):
        return decimal.Decimal(str(value))
    if isinstance(column_type, Integer):
        return int(value)
    if isinstance(column_type, DateTime):
        return dt.datetime.fromisoformat(str(value))  # aware values were logged in UTC, with "+00:00"
    if isinstance(column_type, Date):
        return dt.date.fromisoformat(str(value))
    return value


def _converter(column: Column[Any]) -> Callable[[Any], Any]:
    """A fast :func:`plain_value` for one column (the type tests are done once)."""
    column_type = column.type
    if isinstance(column_type, Boolean):
        return lambda value: None if value is None else bool(value)
    if isinstance(column_type, Float) and not getattr(column_type, "asdecimal", False):
        return lambda value: None if value is None else float(value)
    if isinstance(column_type, Integer):
        return lambda value: None if value is None else int(value)
    if isinstance(column_type, String) and not isinstance(column_type, Numeric):
        return lambda value: value if value is None or type(value) is str else plain_value(value, column)
    if isinstance(column_type, Date) and not isinstance(column_type, DateTime):
        return lambda value: value.isoformat() if type(value) is dt.date else plain_value(value, column)
    if isinstance(column_type, DateTime):
        return lambda value: (
            value.isoformat(timespec="microseconds")
            if type(value) is dt.datetime and value.tzinfo is None
            else plain_value(value, column)
        )
    return lambda value: plain_value(value, column)


def plain_type(column: Column[Any]) -> type | None:
    """The Python type a value of ``column`` already has when :func:`plain_value` would return it
    unchanged (``str`` for text, ``int``, ``float``, ``bool``), or None when it always converts."""
    column_type = column.type
    if isinstance(column_type, Boolean):
        return bool
    if isinstance(column_type, Float) and not getattr(column_type, "asdecimal", False):
        return float
    if isinstance(column_type, Integer):
        return int
    if isinstance(column_type, String) and not isinstance(column_type, Numeric):
        return str
    return None


def redact(value: Any, salt: str | None = None) -> str | None:
    """``salted-sha256:<salt>:<sha256(salt | value)>`` for a value that must not enter the log."""
    if value is None:
        return None
    salt = salt or secrets.token_hex(16)
    digest = hashlib.sha256(f"{salt}|{canonical_json(value)}".encode()).hexdigest()
    return f"{REDACTED_PREFIX}{salt}:{digest}"


def redacted_matches(logged: Any, value: Any) -> bool:
    """Whether a redacted logged value is the digest of ``value`` (its salt is in the text)."""
    if logged is None or value is None:
        return logged is None and value is None
    if not isinstance(logged, str) or not logged.startswith(REDACTED_PREFIX):
        return False
    salt = logged[len(REDACTED_PREFIX) :].split(":", 1)[0]
    return redact(value, salt) == logged


def entry_hash(entry: Mapping[str, Any], prev_hash: str) -> str:
    """SHA-256 (hex) of the canonical JSON of ``entry`` (without ``entry_hash``) followed by ``prev_hash``.

    ``entry`` holds ``id, recorded_at, actor, action, table_name, row_key, old_values,
    new_values, reason, prev_hash`` (``key_id`` and ``entry_mac`` are ignored: the MAC is over this hash); ``recorded_at`` is a :class:`datetime.datetime` or ISO text.
    The JSON is built field by field (the same text as :func:`canonical_json` of the dict,
    which a test checks) because the bulk import hashes one entry per row.
    """
    recorded_at = entry["recorded_at"]
    if isinstance(recorded_at, dt.datetime):
        recorded_at = plain_value(recorded_at)
    fields = {**entry, "recorded_at": recorded_at}
    for outside in ("entry_hash", "key_id", "entry_mac"):  # the MAC covers the hash, not the other way
        fields.pop(outside, None)
    if set(fields) != _ENTRY_KEYS_SET or not isinstance(fields["id"], int):
        return hashlib.sha256((canonical_json(fields) + prev_hash).encode()).hexdigest()
    parts = []
    for key in _ENTRY_KEYS:
        value = fields[key]
        text = _json_string(value) if isinstance(value, str) else "null" if value is None else str(int(value))
        parts.append(f'"{key}":{text}')
    return hashlib.sha256(("{" + ",".join(parts) + "}" + prev_hash).encode()).hexdigest()


def chain_hashes(
    pending: list[tuple[str, str, str, str | None, str | None]],
    *,
    first_id: int,
    recorded_at: dt.datetime,
    actor: str,
    reason: str | None,
    prev_hash: str,
) -> list[str]:
    """The entry hashes of consecutive entries (the fast path of bulk writes).

    Same result as calling :func:`entry_hash` entry by entry (a test checks it); the canonical
    JSON is assembled directly because the entries differ only in a few fields.
    """
    actor_text = _json_string(actor)
    reason_text = "null" if reason is None else _json_string(reason)
    time_text = _json_string(plain_value(recorded_at))
    digests = []
    prev = prev_hash
    for offset, (action, table_name, row_key, old_values, new_values) in enumerate(pending):
        text = (
            f'{{"action":{_json_string(action)},"actor":{actor_text},"id":{first_id + offset},'
            f'"new_values":{"null" if new_values is None else _json_string(new_values)},'
            f'"old_values":{"null" if old_values is None else _json_string(old_values)},'
            f'"prev_hash":{_json_string(prev)},"reason":{reason_text},"recorded_at":{time_text},'
            f'"row_key":{_json_string(row_key)},"table_name":{_json_string(table_name)}}}'
        )
        prev = hashlib.sha256((text + prev).encode()).hexdigest()
        digests.append(prev)
    return digests


#: The keys of an entry in canonical (sorted) order.
_ENTRY_KEYS = (
    "action",
    "actor",
    "id",
    "new_values",
    "old_values",
    "prev_hash",
    "reason",
    "recorded_at",
    "row_key",
    "table_name",
)
_ENTRY_KEYS_SET = frozenset(_ENTRY_KEYS)


@dataclass(frozen=True)
class AuditedTable:
    """How one audited model's rows are keyed and serialised.

    ``columns`` pairs each mapped attribute key with its table column; ``key_columns`` are the
    primary-key column names; the row key is the primary-key value as text (several primary-key
    columns: their canonical JSON list).
    """

    table_name: str
    columns: tuple[tuple[str, Column[Any]], ...]
    key_columns: tuple[str, ...]
    label_columns: tuple[str, ...]
    redacted_columns: frozenset[str]
    converters: tuple[tuple[str, str, Callable[[Any], Any]], ...] = ()

    def row_key(self, values: Mapping[str, Any]) -> str:
        """The row key of a row given its plain values by column name."""
        keys = [values[name] for name in self.key_columns]
        return str(keys[0]) if len(keys) == 1 else canonical_json(keys)

    def plain_row(self, get: Callable[[str, Column[Any]], Any]) -> dict[str, Any]:
        """Plain values by column name; ``get(attribute_key, column)`` reads one value."""
        return {column.name: plain_value(get(key, column), column) for key, column in self.columns}

    def plain_mapping(self, row: Mapping[Any, Any]) -> dict[str, Any]:
        """Plain values of a row given by column name (a result row's mapping): the fast path."""
        return {name: convert(row[name]) for _, name, convert in self.converters}

    def logged_row(self, plain: Mapping[str, Any]) -> dict[str, Any]:
        """The row as written to the log: redacted columns replaced by their salted digest."""
        if not self.redacted_columns:
            return dict(plain)
        return {
            name: redact(value) if name in self.redacted_columns else value for name, value in plain.items()
        }

    def label(self, values: Mapping[str, Any] | None) -> str:
        """``visits row 17 (study_id=SABR-RCC-001, visit_number=3)``: how messages name a row."""
        if values is None:
            return self.table_name
        text = f"{self.table_name} row {self.row_key(values)}"
        described = [f"{name}={values.get(name)}" for name in self.label_columns if name in values]
        return f"{text} ({', '.join(described)})" if described else text


@cache
def audited_table(mapper: Mapper[Any]) -> AuditedTable:
    """The :class:`AuditedTable` of an audited model's mapper (computed once per mapper)."""
    model = mapper.class_
    columns = tuple(
        (prop.key, prop.columns[0]) for prop in mapper.column_attrs if isinstance(prop.columns[0], Column)
    )
    table = cast(Table, mapper.local_table)  # a declarative class maps one Table
    return AuditedTable(
        table_name=str(table.name),
        columns=columns,
        converters=tuple((key, column.name, _converter(column)) for key, column in columns),
        key_columns=tuple(column.name for column in mapper.primary_key),
        label_columns=tuple(getattr(model, "__audit_label_columns__", ())),
        redacted_columns=frozenset(getattr(model, "__audit_redacted_columns__", ())),
    )
