"""A record as the parts of an OTLP log record, and back again.

The record's fields and its ``extra`` become flat log attributes under their own
names (an ``extra`` key that would clash with a field gets an ``extra.`` prefix),
``message`` the body, ``level`` the severity, ``timestamp`` the time. Stores that
keep attributes as text (ClickHouse's ``Map(String, String)``) lose the types, so
``callwatch.json`` lists the attributes whose text is JSON: a record read back
from such a store is the record that was written.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "CATEGORY",
    "JSON_KEYS",
    "SEVERITY",
    "format_timestamp",
    "parse_timestamp_ns",
    "record_from_attributes",
    "to_attributes",
]

SEVERITY = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}
JSON_KEYS = "callwatch.json"
CATEGORY = "callwatch.category"  # the folder of the record's file: app, errors, performance, audit
# Top-level fields kept as attributes, in the order a record holds them.
_FIELDS = ("logger", "function", "line", "app", "environment", "host", "pid", "call_id")
_AFTER_EXTRA = ("exception", "trace_id", "span_id", "chain")  # an audit record's hash chain last
_RESERVED = frozenset(
    (*_FIELDS, *_AFTER_EXTRA, JSON_KEYS, CATEGORY, "exception.type", "exception.message")
)
_EXTRA_PREFIX = "extra."
_FIELD_PREFIX = "callwatch.field."  # a top-level field a user's processor added
_PREFIXES = (_EXTRA_PREFIX, _FIELD_PREFIX)
_KNOWN = frozenset((*_FIELDS, *_AFTER_EXTRA, "timestamp", "level", "message", "extra"))
_INT64 = 1 << 63

_second: tuple[str, int] = ("", 0)


def parse_timestamp_ns(stamp: str) -> int:
    """Nanoseconds since the epoch of a record's ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    global _second
    prefix = stamp[:19]
    cached, seconds = _second
    if prefix != cached:
        seconds = calendar.timegm(time.strptime(prefix, "%Y-%m-%dT%H:%M:%S"))
        _second = (prefix, seconds)
    fraction = stamp[20:-1] if len(stamp) > 20 else ""
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0")[:9] or 0)


def format_timestamp(nanos: int) -> str:
    """The record's timestamp text for ``nanos`` (microsecond precision, UTC)."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{rest // 1000:06d}Z"


def to_attributes(record: Mapping[str, Any], category: str) -> dict[str, Any]:
    """The log attributes of a record (everything but timestamp, level and message)."""
    attributes: dict[str, Any] = {}
    typed: list[str] = []
    for key in _FIELDS:
        value = record.get(key)
        if value is not None:
            _put(attributes, typed, key, value)
    extra = record.get("extra")
    if isinstance(extra, Mapping):
        for key, value in extra.items():
            name = str(key)
            if name in _RESERVED or name.startswith(_PREFIXES):
                name = _EXTRA_PREFIX + name
            _put(attributes, typed, name, value)
    exception = record.get("exception")
    if isinstance(exception, Mapping):
        attributes["exception.type"] = str(exception.get("type", ""))
        attributes["exception.message"] = str(exception.get("message", ""))
    for key in _AFTER_EXTRA:
        value = record.get(key)
        if value is not None:
            _put(attributes, typed, key, value)
    if not _KNOWN.issuperset(record):  # rare: a processor added a top-level field
        for key in record.keys() - _KNOWN:
            _put(attributes, typed, _FIELD_PREFIX + str(key), record[key])
    if "call_id" not in attributes and isinstance(extra, Mapping):
        call_id = extra.get("call_id")
        if isinstance(call_id, str):
            attributes["call_id"] = call_id
    attributes[CATEGORY] = "audit" if "chain" in record else category
    if typed:
        attributes[JSON_KEYS] = orjson.dumps(typed).decode()
    return attributes


def _put(attributes: dict[str, Any], typed: list[str], key: str, value: Any) -> None:
    kind = type(value)
    if kind is str:
        attributes[key] = value
        return
    typed.append(key)
    if kind is bool or kind is float or (kind is int and -_INT64 <= value < _INT64):
        attributes[key] = value
    elif kind is int:  # beyond OTLP's 64 bits: its decimal text
        attributes[key] = str(value)
    else:  # None, objects, arrays: their JSON text
        attributes[key] = orjson.dumps(value, default=str).decode()


def record_from_attributes(
    nanos: int, level: str, message: str, attributes: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """(category, record) rebuilt from a stored log record, in the record's field order."""
    try:
        typed = set(orjson.loads(attributes.get(JSON_KEYS) or "[]"))
    except orjson.JSONDecodeError:
        typed = set()
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    added: dict[str, Any] = {}
    for key, raw in attributes.items():
        value = _decode(raw) if key in typed else raw
        if key.startswith(_EXTRA_PREFIX):
            extra[key[len(_EXTRA_PREFIX) :]] = value
        elif key.startswith(_FIELD_PREFIX):
            added[key[len(_FIELD_PREFIX) :]] = value
        elif key in _RESERVED:
            fields[key] = value
        else:
            extra[key] = value
    record: dict[str, Any] = {"timestamp": format_timestamp(nanos), "level": level}
    for key in _FIELDS[:3]:
        record[key] = fields.get(key)
    record["message"] = message
    for key in _FIELDS[3:]:
        if key in fields or key == "call_id":
            record[key] = fields.get(key)
    record["extra"] = extra
    for key in _AFTER_EXTRA:
        if key in fields:
            record[key] = fields[key]
    record.update(added)
    category = str(fields.get(CATEGORY) or "app")
    return category, record


def _decode(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
