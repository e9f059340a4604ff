"""``callwatch trace CALL_ID``: everything one call left in the logs, in time order.

Records of a call are spread over four folders and over days, some gzipped,
and the same record sits in ``app/`` and in ``errors/``/``audit/``/
``performance/``. Lines are prefiltered with a bytes search for the call id,
so only the call's own lines are ever JSON-parsed.

The engine is reusable and does not care where records come from:

- :class:`CallTrace` is one call's story. :meth:`CallTrace.add` is the one
  way a record enters it, from any source (log files, a database): it drops a
  copy already taken (compared without the audit ``chain``, so a source should
  offer the most specific copy first), sums the record's stage and keeps it;
  :attr:`CallTrace.records` is the kept records in time order. Memory is
  bounded: past ``max_records`` only the first and last halves are kept and
  :attr:`CallTrace.not_shown` counts the rest (stages and times count all).
  It also notes what the reading found, whatever the source: ``source`` and
  ``read_from`` (set by the source), the records read (copies included), the
  hosts and processes that wrote them, and their OpenTelemetry trace ids.
- :func:`collect` is the log-file source: it streams every file under a log
  directory (or those of the last ``days`` UTC days) and feeds the call's
  records to a new :class:`CallTrace`; it never raises for what it reads,
  problems land in ``trace.stats``.
- :func:`as_json` is the story as ``callwatch trace CALL_ID --json`` prints
  it, a plain ``dict`` ready for any JSON encoder.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from callwatch.cli._files import (
    MAX_LINE,
    LogFile,
    ReadStats,
    find_log_files,
    parse_line,
    read_ahead,
)
from callwatch.cli._render import Output, format_record, parse_timestamp
from callwatch.cli._turns import print_turns, turns_of

__all__ = ["DEFAULT_MAX_RECORDS", "CallTrace", "Stage", "add_parser", "as_json", "collect", "run"]

DEFAULT_MAX_RECORDS = 2000

_SOURCE_TAGS = {"app": "app", "errors": "err", "audit": "audit", "performance": "perf"}
_PROGRESS_MIN_BYTES = 64 << 20
_THREADS = 4
_MAX_SEEN = 1 << 18
_MAX_ORIGINS = 1024  # processes and trace ids noted per call; a call has a handful
_NEVER = datetime.min.replace(tzinfo=timezone.utc)


@dataclass
class Stage:
    """Every timed run of one operation within the call."""

    count: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "total_ms": round(self.total_ms, 3),
            "mean_ms": round(self.total_ms / self.count, 3) if self.count else 0.0,
            "max_ms": round(self.max_ms, 3),
            "failures": self.failures,
        }


@dataclass
class CallTrace:
    """The records of one call and what they add up to.

    Copies are recognised among up to 262,144 records remembered at once
    (then the memory starts afresh), far more than any call makes.
    """

    call_id: str
    max_records: int = DEFAULT_MAX_RECORDS
    source: str = "files"
    read_from: str = ""
    stages: dict[str, Stage] = field(default_factory=dict)
    stats: ReadStats = field(default_factory=ReadStats)
    not_shown: int = 0
    rows_read: int = 0
    read_cut: str | None = None
    """Why reading stopped before the end of the call (``None``: everything was read)."""
    _processes: set[tuple[str, str]] = field(default_factory=set, repr=False)
    _trace_ids: set[str] = field(default_factory=set, repr=False)
    _records: list[tuple[str, dict[str, Any]]] = field(default_factory=list, repr=False)
    _seen: set[int] = field(default_factory=set, repr=False)
    _sorted: bool = field(default=True, repr=False)
    _earliest: datetime | None = field(default=None, repr=False)
    _latest: datetime | None = field(default=None, repr=False)

    def add(self, folder: str, record: dict[str, Any]) -> bool:
        """Take one record of the call found in ``folder``; ``False`` for a copy already taken."""
        self.rows_read += 1
        key = hash(
            orjson.dumps(
                {k: v for k, v in record.items() if k != "chain"}, option=orjson.OPT_SORT_KEYS
            )
        )
        if key in self._seen:
            return False
        if len(self._seen) >= _MAX_SEEN:
            self._seen.clear()
        self._seen.add(key)
        self._records.append((folder, record))
        self._sorted = False
        self._add_stage(record)
        self._add_origin(record)
        stamp = parse_timestamp(record.get("timestamp"))
        if stamp is not None:
            self._earliest = min(stamp, self._earliest or stamp)
            self._latest = max(stamp, self._latest or stamp)
        if len(self._records) > 2 * self.max_records:
            self._trim()
        return True

    @property
    def records(self) -> list[tuple[str, dict[str, Any]]]:
        """``(folder, record)`` pairs in time order; equal stamps keep the order they came in.

        When records were left out, they sit between ``records[:shown_before_gap]``
        and the rest.
        """
        if not self._sorted:
            self._trim()
        return self._records

    @property
    def shown_before_gap(self) -> int:
        """How many of :attr:`records` come before the ones left out."""
        return self.max_records - self.max_records // 2 if self.not_shown else len(self._records)

    @property
    def total_ms(self) -> float | None:
        """Wall time from the call's first record to its last."""
        if self._earliest is None or self._latest is None:
            return None
        return (self._latest - self._earliest).total_seconds() * 1000.0

    def _trim(self) -> None:
        """Sort, and keep the first and last halves of ``max_records``."""
        self._records.sort(key=_time_of)
        self._sorted = True
        extra = len(self._records) - self.max_records
        if extra > 0:
            head = self.max_records - self.max_records // 2
            del self._records[head : head + extra]
            self.not_shown += extra

    def add_trace_id(self, trace_id: object) -> None:
        """Note a trace the call's spans belong to (a record's ``trace_id``, a stored span's)."""
        if isinstance(trace_id, str) and trace_id and len(self._trace_ids) < _MAX_ORIGINS:
            self._trace_ids.add(trace_id)

    @property
    def trace_ids(self) -> list[str]:
        return sorted(self._trace_ids)

    @property
    def hosts(self) -> list[str]:
        """The hosts that wrote the call's records."""
        return sorted({host for host, _ in self._processes})

    @property
    def processes(self) -> int:
        """How many processes (host and pid) wrote the call's records."""
        return len(self._processes)

    def _add_origin(self, record: dict[str, Any]) -> None:
        self.add_trace_id(record.get("trace_id"))
        if len(self._processes) < _MAX_ORIGINS:
            self._processes.add((str(record.get("host") or "?"), str(record.get("pid") or "?")))

    @property
    def stage_total_ms(self) -> float:
        return sum(stage.total_ms for stage in self.stages.values())

    def _add_stage(self, record: dict[str, Any]) -> None:
        extra = record.get("extra")
        if not isinstance(extra, dict):
            return
        operation, duration = extra.get("operation"), extra.get("duration_ms")
        if not isinstance(operation, str) or not isinstance(duration, (int, float)):
            return
        stage = self.stages.setdefault(operation, Stage())
        stage.count += 1
        stage.total_ms += float(duration)
        stage.max_ms = max(stage.max_ms, float(duration))
        if extra.get("success") is False:
            stage.failures += 1


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "trace",
        help="every record of one call, merged in time order, with stage durations",
        description=(
            "Show every record of CALL_ID from app/, errors/, audit/ and performance/, "
            "plain and gzipped days, merged in time order, with each stage's duration "
            "and the call's total. Exit 1 when the call is not found."
        ),
    )
    parser.add_argument("call_id", metavar="CALL_ID", help="the call id to reconstruct")
    parser.add_argument("--log-dir", type=Path, help="log root (default: LOG_DIR or ./logs)")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object for machines instead"
    )
    parser.add_argument(
        "--max-records",
        type=_positive,
        default=DEFAULT_MAX_RECORDS,
        metavar="N",
        help=f"records shown at most: the first and last halves ({DEFAULT_MAX_RECORDS})",
    )
    parser.add_argument(
        "--days",
        type=_positive,
        metavar="N",
        help="read only the last N UTC days, today included (default: every day kept)",
    )
    parser.add_argument(
        "--clickhouse", metavar="URL",
        help="read the fleet's records from this ClickHouse (HTTP, e.g. "
        "http://user:password@ch:8123) instead of log files: the otel_logs and otel_traces "
        "tables of database otel or default",
    )
    parser.set_defaults(handler=run)


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def run(args: argparse.Namespace, out: Output) -> int:
    if args.clickhouse:
        from callwatch.cli._clickhouse import run_clickhouse  # noqa: PLC0415

        return run_clickhouse(args, out, _answer)
    log_dir: Path = args.log_dir
    if not log_dir.is_dir():
        out.error(f"no log directory at {log_dir}")
        return 2
    total = sum(f.size for f in _files(log_dir, args.days))
    with out.progress("tracing", total, min_total=_PROGRESS_MIN_BYTES) as advance:
        trace = collect(
            log_dir, args.call_id, advance, max_records=args.max_records, days=args.days
        )
    _report_reading(trace.stats, args.call_id, out)
    return _answer(trace, args, out, f"{trace.stats.files} file(s) under {log_dir}")


def _answer(trace: CallTrace, args: argparse.Namespace, out: Output, searched: str) -> int:
    """Print the story (text or ``--json``); exit 1 when the call left nothing in ``searched``."""
    if args.json:
        out.raw(orjson.dumps(as_json(trace)).decode())
    elif trace.records:
        _print(trace, out)
    if trace.stats.unreadable:
        return 2
    if not trace.records:
        if not args.json:
            out.error(f"call {args.call_id} not found in {searched}")
        return 1
    return 0


def _report_reading(stats: ReadStats, call_id: str, out: Output) -> None:
    """One line on stderr per thing that could not be read."""
    for problem in stats.unreadable:
        out.error(f"cannot read {problem}")
    for path in stats.special_files:
        out.note(f"not a regular file, skipped: {path}")
    for problem in stats.broken_files:
        out.note(f"damaged file skipped: {problem}")
    if stats.bad_lines:
        out.note(f"skipped {stats.bad_lines} malformed line(s) mentioning {call_id}")
    if stats.long_lines:
        out.note(f"skipped {stats.long_lines} line(s) longer than {MAX_LINE >> 20} MiB")


def collect(
    log_dir: Path,
    call_id: str,
    advance: Callable[[float], None] = lambda _bytes: None,
    *,
    max_records: int = DEFAULT_MAX_RECORDS,
    days: int | None = None,
    until: float | None = None,
) -> CallTrace:
    """Read the log files under ``log_dir`` and keep the records of ``call_id``.

    ``days`` limits the reading to the files of the last ``days`` UTC days,
    today included, which bounds the work on a directory that keeps months.
    Past ``until`` (a ``time.monotonic()`` instant) reading stops and
    ``read_cut`` says how far it got.
    """
    trace = CallTrace(call_id, max_records, read_from=str(log_dir))
    # The id as a whole JSON string, quotes and escapes included: ast-1 is not ast-10.
    needle = orjson.dumps(call_id)
    files = _files(log_dir, days, trace.stats)
    done = 0
    # Files are read ahead on threads but added in file order, so the audit copy wins.
    with closing(read_ahead(files, needle, trace.stats, _THREADS)) as batches:
        for log_file, lines in batches:
            if until is not None and time.monotonic() > until:
                trace.read_cut = f"out of time after {done} of {len(files)} files"
                break
            if not lines:
                done += 1
                advance(log_file.size)
            for line in lines:
                record = parse_line(line, trace.stats)
                if record is not None and _belongs(record, call_id):
                    trace.add(log_file.category, record)
    return trace


def _files(log_dir: Path, days: int | None, stats: ReadStats | None = None) -> list[LogFile]:
    files = find_log_files(log_dir, stats=stats)
    if days is None:
        return files
    first = (datetime.now(timezone.utc).date() - timedelta(days=days - 1)).isoformat()
    return [f for f in files if f.day >= first]


def _belongs(record: dict[str, Any], call_id: str) -> bool:
    if record.get("call_id") == call_id:
        return True
    extra = record.get("extra")
    return isinstance(extra, dict) and extra.get("call_id") == call_id


def _time_of(item: tuple[str, dict[str, Any]]) -> datetime:
    return parse_timestamp(item[1].get("timestamp")) or _NEVER


def as_json(trace: CallTrace) -> dict[str, Any]:
    """The call's story as ``callwatch trace CALL_ID --json`` prints it."""
    records = trace.records
    stamps = [r.get("timestamp") for _, r in records]
    return {
        "call_id": trace.call_id,
        "found": bool(trace.records),
        "first": stamps[0] if stamps else None,
        "last": stamps[-1] if stamps else None,
        "total_ms": None if trace.total_ms is None else round(trace.total_ms, 3),
        "stages": {name: stage.as_dict() for name, stage in trace.stages.items()},
        "stage_total_ms": round(trace.stage_total_ms, 3),
        "turns": turns_of(records),
        "records": [record for _, record in records],
        "records_not_shown": trace.not_shown,
        "records_not_shown_at": trace.shown_before_gap if trace.not_shown else None,
        "trace_ids": trace.trace_ids,
        "source": trace.source,
        "read_from": trace.read_from,
        "read_cut": trace.read_cut,
        "rows_read": trace.rows_read,
        "hosts": trace.hosts,
        "processes": trace.processes,
        "files_scanned": trace.stats.files,
        "bytes_scanned": trace.stats.bytes,
        "skipped_lines": trace.stats.bad_lines + trace.stats.long_lines,
        "unreadable": trace.stats.unreadable,
    }


def _print(trace: CallTrace, out: Output) -> None:
    first = parse_timestamp(trace.records[0][1].get("timestamp"))
    total = trace.total_ms
    out.line(
        ("Call ", "bold"),
        (trace.call_id, "bold magenta"),
        (f"  {len(trace.records) + trace.not_shown} records", ""),
        (f"  from {first:%Y-%m-%d %H:%M:%S} UTC" if first else "", "dim"),
        (f"  total {total / 1000:.3f} s" if total is not None else "", "bold"),
    )
    if trace.trace_ids:
        ids = trace.trace_ids
        more = f" and {len(ids) - 3} more" if len(ids) > 3 else ""
        out.text(f"trace {', '.join(ids[:3])}{more} (the call's spans in a tracing backend)", "dim")
    for index, (category, record) in enumerate(trace.records):
        if trace.not_shown and index == trace.shown_before_gap:
            out.text(
                f"   … {trace.not_shown} more records not shown (--max-records "
                f"{trace.max_records}) …",
                "bold yellow",
            )
        stamp = parse_timestamp(record.get("timestamp"))
        offset = (stamp - first).total_seconds() if stamp and first else 0.0
        out.line(
            (f"{offset:+9.3f}s ", "dim"),
            (f"{_SOURCE_TAGS.get(category, category):<5} ", "blue"),
            *format_record(record, show_call_id=False),
        )
    if trace.stages:
        out.text("")
        out.text(
            f"{'stage':<28}{'count':>6}{'total ms':>12}{'mean ms':>10}{'max ms':>10}  failed",
            "bold",
        )
        for name, stage in sorted(trace.stages.items(), key=lambda kv: -kv[1].total_ms):
            row = stage.as_dict()
            out.line(
                (f"{name:<28}{row['count']:>6}{row['total_ms']:>12.1f}", ""),
                (f"{row['mean_ms']:>10.1f}{row['max_ms']:>10.1f}", ""),
                (f"  {row['failures']}", "red" if row["failures"] else "dim"),
            )
        out.text(f"{'sum of stages':<34}{trace.stage_total_ms:>12.1f}", "bold")
    print_turns(turns_of(trace.records), out)
    if total is not None:
        out.text(f"total (first to last record): {total / 1000:.3f} s", "bold")
