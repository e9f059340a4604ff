"""The development console: one readable line per record, coloured on a terminal."""

from __future__ import annotations

import sys
from typing import Any

import orjson

__all__ = ["pretty"]

_COLOURS = {
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;41m",
}
_RESET = "\x1b[0m"
_DIM = "\x1b[2m"
# Control characters from user text are shown escaped so nothing they carry can
# move the cursor, recolour the terminal or forge a second line.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def _clean(text: str) -> str:
    return text.translate(_ESCAPES)


def pretty(record: dict[str, Any], colour: bool | None = None) -> bytes:
    """``HH:MM:SS.mmm LEVEL [call] logger:function:line message key=value …``."""
    if colour is None:
        colour = sys.stdout.isatty()
    level = record["level"]
    time_part = record["timestamp"][11:23]
    call = f" [{record['call_id']}]" if record.get("call_id") else ""
    where = f"{record['logger']}:{record['function']}:{record['line']}"
    fields = " ".join(
        f"{_clean(str(k))}={_clean(orjson.dumps(v, default=str).decode())}"
        for k, v in (record.get("extra") or {}).items()
    )
    text = _clean(str(record["message"]))
    exception = record.get("exception")
    tail = ""
    if exception:
        frames = "".join(
            f"\n    {_clean(f['file'])}:{f['line']} in {_clean(f['function'])}"
            for f in exception.get("frames", [])
        )
        tail = f"\n  {_clean(exception['type'])}: {_clean(exception['message'])}{frames}"
    if colour:
        line = (
            f"{_DIM}{time_part}{_RESET} {_COLOURS.get(level, '')}{level:<8}{_RESET}{call} "
            f"{_DIM}{where}{_RESET} {text}" + (f" {_DIM}{fields}{_RESET}" if fields else "") + tail
        )
    else:
        line = (
            f"{time_part} {level:<8}{call} {where} {text}" + (f" {fields}" if fields else "") + tail
        )
    return (line + "\n").encode("utf-8", "backslashreplace")
