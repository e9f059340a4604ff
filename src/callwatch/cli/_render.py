"""Terminal output for the command: rich when installed, plain text otherwise.

Every command prints through :class:`Output`, so colours, progress bars and
the plain fallback are decided in one place; output piped to a file is plain.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import orjson

try:  # rich is the optional `cli` extra: without it, output is plain text.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    HAVE_RICH = True
except ImportError:  # exercised by the no-rich test in a subprocess
    HAVE_RICH = False

__all__ = ["LEVEL_STYLES", "Output", "Segment", "format_record", "parse_timestamp"]

Segment = tuple[str, str]  # (text, rich style; "" for none)

LEVEL_STYLES = {
    "DEBUG": "dim",
    "INFO": "green",
    "WARNING": "yellow",
    "ERROR": "bold red",
    "CRITICAL": "bold white on red",
}
_MAX_VALUE = 160
_MAX_TEXT = 4000  # a message or exception text longer than a screen is cut


class Output:
    """stdout/stderr for one command run."""

    def __init__(self) -> None:
        self._out: Any = None
        self._err: Any = None
        if not HAVE_RICH:
            return
        self._out = Console(highlight=False, soft_wrap=True)
        self._err = Console(stderr=True, highlight=False, soft_wrap=True)

    @property
    def rich(self) -> bool:
        return self._out is not None

    def line(self, *segments: Segment) -> None:
        """One line made of styled segments."""
        if self._out is None:
            print("".join(text for text, _ in segments), flush=True)
            return
        self._out.print(Text.assemble(*[(t, s) if s else t for t, s in segments]))

    def text(self, text: str, style: str = "") -> None:
        self.line((text, style))

    def raw(self, text: str) -> None:
        """Unstyled text for machines (JSON, YAML): never wrapped or highlighted."""
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()

    def error(self, message: str) -> None:
        if self._err is None:
            print(f"callwatch: {message}", file=sys.stderr, flush=True)
            return
        self._err.print(Text.assemble(("callwatch: ", "bold red"), message))

    def note(self, message: str) -> None:
        """A remark on stderr that does not belong to the command's answer."""
        if self._err is None:
            print(message, file=sys.stderr, flush=True)
        else:
            self._err.print(message, style="dim", markup=False)

    @contextmanager
    def progress(
        self, description: str, total: float, *, min_total: float = 0
    ) -> Iterator[Callable[[float], None]]:
        """A transient progress bar on an interactive stderr for work of at least ``min_total``."""
        if self._err is None or not self._err.is_terminal or total < min_total:
            yield lambda _amount: None
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self._err, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda amount: bar.advance(task, amount)

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        """A spinner for work whose size is unknown in advance."""
        if self._err is None or not self._err.is_terminal:
            yield
            return
        with self._err.status(message):
            yield


def parse_timestamp(value: object) -> datetime | None:
    """The record's UTC timestamp, or ``None`` when absent or malformed."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def format_record(
    record: dict[str, Any], *, show_call_id: bool = True, full_time: bool = False
) -> list[Segment]:
    """A record as one readable line: time, level, logger, call id, message, extra fields.

    The time is the UTC clock (``10:00:00.123``), or with ``full_time`` the UTC
    date and time (``2024-01-05T10:00:00.123Z``). Every part is cut to a
    screenful, so a hostile record cannot flood the terminal.
    """
    stamp = parse_timestamp(record.get("timestamp"))
    clock = _short(str(record.get("timestamp", "?")))
    if stamp is not None:
        stamp = stamp.astimezone(timezone.utc)
        clock = stamp.strftime("%Y-%m-%dT%H:%M:%S.%f" if full_time else "%H:%M:%S.%f")[:-3]
        clock += "Z" if full_time else ""
    level = _short(str(record.get("level", "?")))
    segments: list[Segment] = [
        (clock, "dim"),
        (" ", ""),
        (f"{level:<8}", LEVEL_STYLES.get(level, "")),
        (" ", ""),
        (_short(str(record.get("logger", ""))), "cyan"),
    ]
    call_id = record.get("call_id")
    if show_call_id and call_id:
        segments.append((f" [{_short(str(call_id))}]", "magenta"))
    message = _short(record.get("message", ""), _MAX_TEXT)
    segments.append((f"  {message}", "bold" if level != "DEBUG" else ""))
    extra = record.get("extra")
    if isinstance(extra, dict) and extra:
        pairs = " ".join(f"{_short(key)}={_short(value)}" for key, value in extra.items())
        segments.append((f"  {_short(pairs, _MAX_TEXT)}", "dim"))
    exception = record.get("exception")
    if isinstance(exception, dict):
        what = _short(f"{exception.get('type')}: {exception.get('message')}", _MAX_TEXT)
        segments.append((f"\n    {what}", "red"))
        frames = exception.get("frames")
        if isinstance(frames, list) and frames and isinstance(frames[-1], dict):
            last = frames[-1]
            where = f"{last.get('file', last.get('filename', '?'))}:{last.get('line', '?')}"
            at = _short(f"at {where} in {last.get('function', '?')}", _MAX_TEXT)
            segments.append((f"\n    {at}", "dim red"))
    return segments


def _short(value: object, limit: int = _MAX_VALUE) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"
