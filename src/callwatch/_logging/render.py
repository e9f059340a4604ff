"""Rendering a record as exactly one line of strict JSON, whatever it carries.

The fast path is a single ``orjson.dumps``. Only when that fails (lone
surrogates, cycles, huge integers, odd keys) or the line is oversized does the
record go through :func:`sanitize`, which makes every value JSON-safe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["OPTIONS", "default", "escape_line_breakers", "render", "safe_repr", "sanitize"]

OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
_MAX_DEPTH = 32
_MAX_ITEMS = 1000
# U+2028, U+2029 and the C1 controls (U+0080-U+009F, NEL among them) are valid
# JSON but break line-oriented readers; orjson already escapes C0 controls and ESC.
_LINE_BREAKERS = re.compile(rb"\xe2\x80[\xa8\xa9]|\xc2[\x80-\x9f]")


def safe_repr(obj: object) -> str:
    """``repr`` that never raises: a failing ``__repr__`` becomes a marker."""
    try:
        return repr(obj)
    except Exception as exc:
        return f"<unrepresentable {type(obj).__name__}: {type(exc).__name__}>"


def default(obj: object) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "backslashreplace")
    if isinstance(obj, BaseException):
        return f"{type(obj).__name__}: {_safe_str(obj)}"
    return safe_repr(obj)


def _safe_str(obj: object) -> str:
    try:
        return str(obj)
    except Exception:
        return safe_repr(obj)


def _clean_text(text: str, limit: int) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates: keep valid pairs, replace the rest with U+FFFD.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if len(text) > limit:
        text = f"{text[:limit]}…[truncated {len(text) - limit} chars]"
    return text


def sanitize(value: Any, limit: int, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> Any:
    """A JSON-safe copy: cycles cut, depth and size bounded, text cleaned and truncated."""
    if isinstance(value, str):
        return _clean_text(value, limit)
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if _depth >= _MAX_DEPTH:
        return "<max depth>"
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        if id(value) in _seen:
            return "<cycle>"
        seen = _seen | {id(value)}
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for i, (key, item) in enumerate(value.items()):
                if i >= _MAX_ITEMS:
                    out["…"] = f"[{len(value) - _MAX_ITEMS} more items]"
                    break
                name = key if isinstance(key, str) else safe_repr(key)
                out[_clean_text(name, limit)] = sanitize(item, limit, _depth + 1, seen)
            return out
        items = list(value)
        cleaned = [sanitize(item, limit, _depth + 1, seen) for item in items[:_MAX_ITEMS]]
        if len(items) > _MAX_ITEMS:
            cleaned.append(f"…[{len(items) - _MAX_ITEMS} more items]")
        return cleaned
    if isinstance(value, bytes):
        return _clean_text(value.decode("utf-8", "backslashreplace"), limit)
    return _clean_text(default(value), limit)


def render(record: Mapping[str, Any], max_field_chars: int = 16384) -> bytes:
    """One JSON line ending in ``\\n``; never raises for any record content."""
    try:
        line = orjson.dumps(record, default=default, option=OPTIONS)
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        line = orjson.dumps(sanitize(record, max_field_chars), option=OPTIONS)
    else:
        if len(line) > max_field_chars:
            line = orjson.dumps(sanitize(record, max_field_chars), option=OPTIONS)
    if not line.isascii():  # ASCII lines (nearly all) cannot hold the line breakers
        line = escape_line_breakers(line)
    return line


def escape_line_breakers(line: bytes) -> bytes:
    """Escape U+2028, U+2029 and the C1 controls that orjson leaves raw."""
    return _LINE_BREAKERS.sub(_escape, line)


def _escape(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match.group().decode("utf-8"))
