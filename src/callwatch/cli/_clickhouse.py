"""A call's records from a fleet's ClickHouse: the tables an OTel ClickHouse exporter writes.

Every host and worker exports its records as OTLP log records; a ClickHouse
exporter (rotel, the OpenTelemetry Collector's) stores them in ``otel_logs``
beside ``otel_traces``, in the database ``otel`` or ``default``. One query, run
over ClickHouse's HTTP interface, finds the call's records by their ``call_id``
attribute; they are rebuilt as written (see :mod:`callwatch._otel.attributes`)
and fed to the trace engine like records read from files. ``otel_traces`` gives
the ids of the traces the call's spans belong to, to open in a tracing backend.

The SQL runs on a current ClickHouse with the exporter's standard schema
(``Map`` attributes, ``DateTime64(9)`` timestamps) and on ClickHouse 18.16
with maps kept as ``X.keys``/``X.values`` arrays and ``UInt64`` nanoseconds:
no ``m['k']``, no query parameters. The call id reaches the SQL only as hex
inside ``unhex('…')``, so no value can change the query.

Reading is bounded like the files': at most :data:`MAX_RECORDS` rows (or
``--max-records``) from the call's start, then its last ``max_records // 2``,
so the story shown is the call's first and last records either way; and at
most ``timeout`` seconds in all. Credentials given in the URL are sent as
HTTP basic auth and never printed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import orjson

from callwatch._otel.attributes import record_from_attributes
from callwatch.cli._render import Output
from callwatch.cli.trace import DEFAULT_MAX_RECORDS, CallTrace

__all__ = [
    "MAX_RECORDS",
    "ClickHouseError",
    "Server",
    "collect",
    "count_sql",
    "describe",
    "logs_sql",
    "read_rows",
    "run_clickhouse",
    "trace_ids_sql",
]

DATABASES = ("otel", "default")
TABLES = ("otel_logs", "otel_traces")
MAX_RECORDS = 100_000
TIMEOUT_SEC = 30.0
MAX_TRACE_IDS = 64
# ClickHouse's codes for a refused login (unknown user, wrong or missing password,
# address not allowed, and the newer servers' single code).
_READ_ONLY = ("Code: 164,", "Code: 164.")  # a read-only user may not change settings
_AUTH_CODES = ("Code: 192,", "Code: 193,", "Code: 194,", "Code: 195,", "Code: 516.", "Code: 516,")


class ClickHouseError(Exception):
    """The server cannot be reached, refused the query, or holds no OTel tables."""


@dataclass(frozen=True)
class Server:
    """A ClickHouse HTTP interface as given by the user, split for safe use.

    ``url`` holds neither the user nor the password (they travel as basic auth),
    ``where`` is what may be printed, ``secrets`` are scrubbed from any text the
    server sends back before it is shown.
    """

    url: str
    params: tuple[tuple[str, str], ...]
    auth: tuple[str, str] | None
    where: str
    secrets: tuple[str, ...]

    @classmethod
    def parse(cls, url: str) -> Server:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ClickHouseError(_NOT_A_URL) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClickHouseError(_NOT_A_URL)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        netloc = f"{host}:{port}" if port else host
        params = tuple(parse_qsl(parts.query))
        secrets = [value for key, value in params if key == "password" and value]
        auth = None
        if parts.username is not None or parts.password is not None:
            auth = (unquote(parts.username or ""), unquote(parts.password or ""))
            secrets += [auth[1], parts.password or ""]
        return cls(
            url=urlunsplit((parts.scheme, netloc, parts.path or "/", "", "")),
            params=params,
            auth=auth,
            where=f"{parts.scheme}://{netloc}",
            secrets=tuple(secret for secret in secrets if secret),
        )

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


_NOT_A_URL = "--clickhouse needs ClickHouse's HTTP address, e.g. http://user:password@host:8123"


def describe(url: str) -> str:
    """The server as it may be printed: scheme, host and port, never credentials."""
    try:
        return Server.parse(url).where
    except ClickHouseError:
        return "the address given"


def tables_sql() -> str:
    names = ", ".join(f"'{name}'" for name in TABLES)
    databases = ", ".join(f"'{name}'" for name in DATABASES)
    # Fixed names only.
    return (
        f"SELECT database, name FROM system.tables WHERE database IN ({databases}) "  # noqa: S608
        f"AND name IN ({names}) FORMAT JSONEachRow"
    )


def _attribute(column: str, key: str) -> str:
    return f"arrayElement({column}.values, indexOf({column}.keys, '{key}'))"


def _the_call(column: str, call_id: str) -> str:
    """The condition naming the call in the attribute map ``column``."""
    wanted = f"unhex('{call_id.encode().hex()}')"
    return (
        f"({_attribute(column, 'call_id')} = {wanted}"
        f" OR {_attribute(column, 'extra.call_id')} = {wanted})"
    )


def _logs_of(call_id: str, since: int | None) -> str:
    """The WHERE of the call's log records; ``since`` (epoch seconds) bounds the days read."""
    where = _the_call("LogAttributes", call_id)
    return where if since is None else f"{where} AND TimestampTime >= toDateTime({int(since)})"


def _checked(database: str) -> str:
    if database not in DATABASES:
        raise ValueError(f"database must be one of {', '.join(DATABASES)}")
    return database


def logs_sql(
    database: str,
    call_id: str,
    limit: int = MAX_RECORDS,
    *,
    since: int | None = None,
    newest_first: bool = False,
) -> str:
    """The call's log records, oldest first (or newest), at most ``limit`` + 1 (to tell a cut)."""
    # A fixed database name, the call id as hex: nothing a caller gives reaches the SQL as text.
    return (
        "SELECT Timestamp, toTypeName(Timestamp) AS type, timezone() AS tz, SeverityText, Body,"  # noqa: S608
        " TraceId, LogAttributes.keys AS keys, LogAttributes.values AS values"
        f" FROM {_checked(database)}.otel_logs"
        f" WHERE {_logs_of(call_id, since)}"
        f" ORDER BY Timestamp{' DESC' if newest_first else ''} LIMIT {int(limit) + 1}"
        " FORMAT JSONEachRow"
    )


def count_sql(database: str, call_id: str, *, since: int | None = None) -> str:
    """How many log records the call has."""
    return (
        f"SELECT count() AS n FROM {_checked(database)}.otel_logs"  # noqa: S608
        f" WHERE {_logs_of(call_id, since)}"
        " FORMAT JSONEachRow"
    )


def trace_ids_sql(database: str, call_id: str) -> str:
    """The traces holding spans of the call (its ``call`` span, timers, frameworks' spans)."""
    return (
        f"SELECT DISTINCT TraceId FROM {_checked(database)}.otel_traces"  # noqa: S608
        f" WHERE {_the_call('SpanAttributes', call_id)}"
        f" LIMIT {MAX_TRACE_IDS} FORMAT JSONEachRow"
    )


def read_rows(
    lines: Iterable[bytes | str],
    trace: CallTrace,
    limit: int = MAX_RECORDS,
    deadline: float = float("inf"),
) -> bool:
    """Feed the rows of :func:`logs_sql` to ``trace``; ``True`` when there were more than
    ``limit``, or time ran out (the rest is left out)."""
    count = 0
    for line in lines:
        if not line.strip():
            continue
        if count == limit or time.monotonic() > deadline:
            return True
        count += 1
        try:
            row = orjson.loads(line)
            nanos = _nanos(row["Timestamp"], str(row.get("type", "")), str(row.get("tz") or "UTC"))
            attributes = dict(zip(row["keys"], row["values"], strict=False))
            folder, record = record_from_attributes(
                nanos, str(row["SeverityText"]), str(row["Body"]), attributes
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            trace.stats.bad_lines += 1
            continue
        trace.add(folder, record)
        trace.add_trace_id(row.get("TraceId"))
    return False


def collect(
    url: str,
    call_id: str,
    max_records: int = DEFAULT_MAX_RECORDS,
    timeout: float = TIMEOUT_SEC,
    days: int | None = None,
) -> CallTrace:
    """The call's story from the ClickHouse at ``url``; ``trace.read_cut`` says when not
    every record was read (the trace keeps ``max_records``: the first and last halves)."""
    server = Server.parse(url)
    since = None
    if days is not None:
        first = datetime.now(timezone.utc).date() - timedelta(days=days - 1)
        since = int(datetime.combine(first, datetime.min.time(), timezone.utc).timestamp())
    deadline = time.monotonic() + timeout
    with _session(server, timeout, deadline) as (query, downloaded):
        database = _database(query, server)
        trace = CallTrace(call_id, max_records, source="clickhouse",
                          read_from=f"{server.where} {database}.otel_logs")
        limit = max(MAX_RECORDS, max_records)
        with query(logs_sql(database, call_id, limit, since=since)) as rows:
            cut = read_rows(rows, trace, limit, deadline)
        if cut:
            _read_the_end(query, trace, database, since, limit, deadline)
        with query(trace_ids_sql(database, call_id)) as ids:
            for line in ids:
                if line.strip():
                    trace.add_trace_id(orjson.loads(line).get("TraceId"))
        trace.stats.bytes = downloaded()
    return trace


def _read_the_end(
    query: _Query, trace: CallTrace, database: str, since: int | None, limit: int,
    deadline: float,
) -> None:
    """After a cut: the call's last records, and the count of those never read between."""
    why = "time ran out" if time.monotonic() > deadline else f"past {limit:,} records"
    read = trace.rows_read
    with query(count_sql(database, trace.call_id, since=since)) as lines:
        total = next((int(orjson.loads(line)["n"]) for line in lines if line.strip()), read)
    tail = trace.max_records // 2
    newest: list[bytes | str] = []
    if tail:
        with query(logs_sql(database, trace.call_id, tail - 1, since=since,
                            newest_first=True)) as lines:
            newest = [line for line in lines if line.strip()]
    kept_before = len(trace.records) + trace.not_shown
    read_rows(reversed(newest), trace, tail)
    added = len(trace.records) + trace.not_shown - kept_before
    unread = max(0, total - read - added)
    if unread:  # else the end read made up for the cut
        trace.not_shown += unread
        trace.read_cut = f"{why}: {unread:,} records between the first and the last not read"


_Query = Callable[[str], Any]


@contextmanager
def _session(
    server: Server, timeout: float, deadline: float
) -> Iterator[tuple[_Query, Callable[[], int]]]:
    """``query(sql)``, a context giving the answer's lines, and the bytes the answers took;
    every failure a ClickHouseError.

    Each query may run on the server for what is left of the time allowed; a read-only
    user, who may not set that limit, is then asked without it (the reading stays
    bounded on this side).
    """
    limited = [True]
    downloaded = [0]

    def send(sql: str) -> httpx.Response:
        params = dict(server.params)
        if limited[0]:
            params["max_execution_time"] = str(max(1, int(deadline - time.monotonic())))
        response = client.send(
            client.build_request("POST", server.url, content=sql, params=params), stream=True
        )
        if limited[0] and response.status_code != 200:
            response.read()
            if response.text.startswith(_READ_ONLY):
                downloaded[0] += response.num_bytes_downloaded
                response.close()
                limited[0] = False
                return send(sql)
        return response

    @contextmanager
    def query(sql: str) -> Iterator[Iterator[str]]:
        response = send(sql)
        try:
            _check(response, server)
            yield response.iter_lines()
        finally:
            downloaded[0] += response.num_bytes_downloaded
            response.close()

    try:
        with httpx.Client(timeout=timeout, auth=server.auth, follow_redirects=False) as client:
            yield query, lambda: downloaded[0]
    except httpx.HTTPError as exc:
        raise ClickHouseError(
            f"cannot query ClickHouse at {server.where}: {_reason(exc)}"
        ) from None
    except orjson.JSONDecodeError:
        raise ClickHouseError(
            f"{server.where} does not answer like ClickHouse's HTTP interface "
            "(is it the HTTP port, 8123 by default?)"
        ) from None


def run_clickhouse(
    args: argparse.Namespace,
    out: Output,
    answer: Callable[[CallTrace, argparse.Namespace, Output, str], int],
) -> int:
    """``callwatch trace CALL_ID --clickhouse URL``: exit 2 when the server or tables fail."""
    try:
        trace = collect(args.clickhouse, args.call_id, args.max_records, days=args.days)
    except ClickHouseError as exc:
        out.error(str(exc))
        return 2
    if trace.read_cut:
        out.note(f"not every record of {args.call_id} was read ({trace.read_cut})")
    if trace.stats.bad_lines:
        out.note(f"skipped {trace.stats.bad_lines} row(s) that are not callwatch records")
    return answer(trace, args, out, f"ClickHouse at {describe(args.clickhouse)}")


def _database(query: _Query, server: Server) -> str:
    """``otel`` when it has both tables, else ``default``; an error naming what is missing."""
    found: dict[str, set[str]] = {}
    with query(tables_sql()) as lines:
        for line in lines:
            if line.strip():
                row = orjson.loads(line)
                found.setdefault(row["database"], set()).add(row["name"])
    for database in DATABASES:
        if found.get(database, set()) >= set(TABLES):
            return database
    raise ClickHouseError(
        f"ClickHouse at {server.where} has no otel_logs and otel_traces tables in database "
        "otel or default: point an OpenTelemetry ClickHouse exporter (rotel, the "
        "Collector's) at it first"
    )


def _check(response: httpx.Response, server: Server) -> None:
    """Raise for anything but ClickHouse's 200, saying what the user can do about it."""
    if not any(name.lower().startswith("x-clickhouse-") for name in response.headers):
        raise ClickHouseError(
            f"{server.where} answered {response.status_code} but is not ClickHouse's HTTP "
            "interface (is it the HTTP port, 8123 by default?)"
        )
    if response.status_code == 200:
        return
    response.read()
    text = response.text.strip()
    first = server.scrub(text.splitlines()[0][:300] if text else "")
    if response.status_code in (401, 403) or text.startswith(_AUTH_CODES):
        raise ClickHouseError(
            f"ClickHouse at {server.where} refused the login: {first} (give the user and "
            "password in the URL: http://USER:PASSWORD@host:8123)"
        )
    raise ClickHouseError(
        f"ClickHouse at {server.where} answered {response.status_code}: {first}".rstrip(": ")
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
        if "SSL" in str(exc) or "certificate" in str(exc).lower():
            return "the TLS handshake failed (check https:// and the certificate)"
        return "connection refused or host unreachable"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.DecodingError)):
        return "the server does not speak HTTP there (is it the HTTP port, 8123 by default?)"
    return type(exc).__name__
