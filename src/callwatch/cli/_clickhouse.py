"""A call's records from a fleet's ClickHouse: the tables an OTel ClickHouse exporter writes.

Every host and worker exports its records as OTLP log records; a ClickHouse
exporter (rotel, the OpenTelemetry Collector's) stores them in ``otel_logs``
beside ``otel_traces``, in the database ``otel`` or ``default``. One query, run
over ClickHouse's HTTP interface, finds the call's records by their ``call_id``
attribute; they are rebuilt as written (see :mod:`callwatch._otel.attributes`)
and fed to the trace engine like records read from files.

The SQL runs on a current ClickHouse with the exporter's standard schema
(``Map`` attributes, ``DateTime64(9)`` timestamps) and on ClickHouse 18.16
with maps kept as ``X.keys``/``X.values`` arrays and ``UInt64`` nanoseconds:
no ``m['k']``, no query parameters. The call id reaches the SQL only as hex
inside ``unhex('…')``, so no value can change the query.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import orjson

from callwatch._otel.attributes import record_from_attributes
from callwatch.cli._render import Output
from callwatch.cli.trace import CallTrace

__all__ = [
    "MAX_RECORDS",
    "ClickHouseError",
    "collect",
    "describe",
    "logs_sql",
    "read_rows",
    "run_clickhouse",
]

DATABASES = ("otel", "default")
TABLES = ("otel_logs", "otel_traces")
MAX_RECORDS = 100_000
TIMEOUT_SEC = 30.0


class ClickHouseError(Exception):
    """The server cannot be reached, refused the query, or holds no OTel tables."""


def describe(url: str) -> str:
    """The server as it may be printed: scheme, host and port, never credentials."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def tables_sql() -> str:
    names = ", ".join(f"'{name}'" for name in TABLES)
    databases = ", ".join(f"'{name}'" for name in DATABASES)
    # Fixed names only.
    return (
        f"SELECT database, name FROM system.tables WHERE database IN ({databases}) "  # noqa: S608
        f"AND name IN ({names}) FORMAT JSONEachRow"
    )


def logs_sql(database: str, call_id: str, limit: int = MAX_RECORDS) -> str:
    """The call's log records, oldest first, at most ``limit`` + 1 (to tell a cut)."""
    if database not in DATABASES:
        raise ValueError(f"database must be one of {', '.join(DATABASES)}")
    wanted = f"unhex('{call_id.encode().hex()}')"

    def attribute(key: str) -> str:
        return f"arrayElement(LogAttributes.values, indexOf(LogAttributes.keys, '{key}'))"

    # A fixed database name, the call id as hex: nothing a caller gives reaches the SQL as text.
    return (
        "SELECT Timestamp, toTypeName(Timestamp) AS type, timezone() AS tz, SeverityText, Body,"  # noqa: S608
        " LogAttributes.keys AS keys, LogAttributes.values AS values"
        f" FROM {database}.otel_logs"
        f" WHERE {attribute('call_id')} = {wanted} OR {attribute('extra.call_id')} = {wanted}"
        f" ORDER BY Timestamp LIMIT {int(limit) + 1} FORMAT JSONEachRow"
    )


def read_rows(lines: Iterable[bytes | str], trace: CallTrace, limit: int = MAX_RECORDS) -> bool:
    """Feed the rows of :func:`logs_sql` to ``trace``; ``True`` when there were more than
    ``limit`` (the rest is left out)."""
    count = 0
    for line in lines:
        if not line.strip():
            continue
        if count == limit:
            return True
        count += 1
        row = orjson.loads(line)
        nanos = _nanos(row["Timestamp"], str(row.get("type", "")), str(row.get("tz") or "UTC"))
        attributes = dict(zip(row["keys"], row["values"], strict=False))
        folder, record = record_from_attributes(
            nanos, str(row["SeverityText"]), str(row["Body"]), attributes
        )
        trace.add(folder, record)
    return False


def collect(
    url: str, call_id: str, max_records: int = MAX_RECORDS, timeout: float = TIMEOUT_SEC
) -> tuple[CallTrace, bool]:
    """The call's story from the ClickHouse at ``url``, and whether the query was cut at
    :data:`MAX_RECORDS` (the trace itself keeps ``max_records``: the first and last halves)."""
    trace = CallTrace(call_id, max_records)
    where = describe(url)
    try:
        with httpx.Client(timeout=timeout) as client:
            database = _database(client, url, where)
            with client.stream(
                "POST", url, content=logs_sql(database, call_id),
                params={"max_execution_time": str(int(timeout))},
            ) as response:
                _check(response, where)
                cut = read_rows(response.iter_lines(), trace)
    except httpx.HTTPError as exc:
        raise ClickHouseError(f"cannot query ClickHouse at {where}: {_reason(exc)}") from None
    return trace, cut


def run_clickhouse(
    args: argparse.Namespace,
    out: Output,
    answer: Callable[[CallTrace, argparse.Namespace, Output, str], int],
) -> int:
    """``callwatch trace CALL_ID --clickhouse URL``: exit 2 when the server or tables fail."""
    where = describe(args.clickhouse)
    try:
        trace, cut = collect(args.clickhouse, args.call_id, args.max_records)
    except ClickHouseError as exc:
        out.error(str(exc))
        return 2
    if cut:
        out.note(f"only the first {MAX_RECORDS} records of {args.call_id} were read")
    return answer(trace, args, out, f"ClickHouse at {where}")


def _database(client: httpx.Client, url: str, where: str) -> str:
    """``otel`` when it has both tables, else ``default``; an error naming what is missing."""
    response = client.post(url, content=tables_sql())
    _check(response, where)
    found: dict[str, set[str]] = {}
    for line in response.text.splitlines():
        if line.strip():
            row = orjson.loads(line)
            found.setdefault(row["database"], set()).add(row["name"])
    for database in DATABASES:
        if found.get(database, set()) >= set(TABLES):
            return database
    raise ClickHouseError(
        f"ClickHouse at {where} has no otel_logs and otel_traces tables in database "
        "otel or default: point an OpenTelemetry ClickHouse exporter (rotel, the "
        "Collector's) at it first"
    )


def _check(response: httpx.Response, where: str) -> None:
    if response.status_code != 200:
        response.read()
        first = response.text.strip().splitlines()[0][:300] if response.text.strip() else ""
        raise ClickHouseError(
            f"ClickHouse at {where} answered {response.status_code}: {first}".rstrip(": ")
        )


def _nanos(value: Any, kind: str, tz: str) -> int:
    """UInt64 nanoseconds, or a DateTime64(9) as text in the column's (or server's) zone."""
    if not kind.startswith("DateTime64"):
        return int(value)
    zone_name = kind.split("'")[1] if "'" in kind else tz
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    text = str(value)
    whole, _, fraction = text.partition(".")
    moment = datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
    return int(moment.timestamp()) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9] or 0)


def _reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unreachable"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return type(exc).__name__
