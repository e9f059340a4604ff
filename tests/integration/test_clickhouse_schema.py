"""The --clickhouse SQL against the exporter's standard schema on a current ClickHouse (chdb).

Map(LowCardinality(String), String) attributes and DateTime64(9) timestamps, as the
OpenTelemetry ClickHouse exporters create them; the rows are what callwatch exports.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from callwatch._otel.attributes import parse_timestamp_ns, to_attributes
from callwatch.cli._clickhouse import count_sql, logs_sql, read_rows, tables_sql, trace_ids_sql
from callwatch.cli.trace import CallTrace
from tests._otel.support import need_module
from tests._otel.test_attributes import RECORD, as_text

pytestmark = pytest.mark.integration

STANDARD_LOGS = """
CREATE TABLE {db}.otel_logs (
  Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
  TimestampTime DateTime DEFAULT toDateTime(Timestamp),
  TraceId String CODEC(ZSTD(1)), SpanId String CODEC(ZSTD(1)), TraceFlags UInt8,
  SeverityText LowCardinality(String) CODEC(ZSTD(1)), SeverityNumber UInt8,
  ServiceName LowCardinality(String) CODEC(ZSTD(1)), Body String CODEC(ZSTD(1)),
  ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
  ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
  ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)), ScopeName String CODEC(ZSTD(1)),
  ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
  ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
  LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1))
) ENGINE = MergeTree PARTITION BY toDate(TimestampTime)
  ORDER BY (ServiceName, TimestampTime, Timestamp)
"""
STANDARD_TRACES = """
CREATE TABLE {db}.otel_traces (
  Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)), TraceId String, SpanId String,
  ParentSpanId String, TraceState String, SpanName LowCardinality(String),
  SpanKind LowCardinality(String), ServiceName LowCardinality(String),
  ResourceAttributes Map(LowCardinality(String), String), ScopeName String, ScopeVersion String,
  SpanAttributes Map(LowCardinality(String), String), Duration UInt64,
  StatusCode LowCardinality(String), StatusMessage String,
  Events Nested (Timestamp DateTime64(9), Name LowCardinality(String),
                 Attributes Map(LowCardinality(String), String)),
  Links Nested (TraceId String, SpanId String, TraceState String,
                Attributes Map(LowCardinality(String), String))
) ENGINE = MergeTree PARTITION BY toDate(Timestamp) ORDER BY (ServiceName, SpanName, Timestamp)
"""


def literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def insert(session: Any, db: str, record: dict[str, Any], category: str) -> None:
    attributes = as_text(to_attributes(record, category))
    pairs = ", ".join(f"{literal(k)}, {literal(v)}" for k, v in attributes.items())
    nanos = parse_timestamp_ns(record["timestamp"])
    session.query(
        f"INSERT INTO {db}.otel_logs (Timestamp, SeverityText, Body, ServiceName, LogAttributes) "
        f"VALUES (fromUnixTimestamp64Nano({nanos}), {literal(record['level'])}, "
        f"{literal(record['message'])}, 'agent', map({pairs}))")


@pytest.mark.parametrize("db", ["otel", "default"])
def test_the_sql_reads_the_standard_schema(db: str) -> None:
    chdb_session = need_module("chdb.session")
    session = chdb_session.Session()
    try:
        session.query("CREATE DATABASE IF NOT EXISTS otel")
        session.query(STANDARD_LOGS.format(db=db))
        session.query(STANDARD_TRACES.format(db=db))
        call_id = "ast-'quoted'\\-1"
        first = {**RECORD, "call_id": call_id, "region": "eu-west", "tenant": {"id": 7}}
        second = {**RECORD, "call_id": call_id, "timestamp": "2026-12-01T21:15:30.000001Z",
                  "message": "llm completed",
                  "extra": {"operation": "llm", "duration_ms": 310.5, "success": True}}
        other = {**RECORD, "call_id": "someone-else"}
        refund = {**RECORD, "call_id": call_id, "timestamp": "2026-12-01T21:15:31.000000Z",
                  "message": "refund.issued", "extra": {"call_id": call_id, "amount": 12},
                  "chain": {"seq": 7, "prev": "ab" * 32, "alg": "sha256", "hash": "cd" * 32}}
        insert(session, db, second, "performance")
        insert(session, db, first, "app")
        insert(session, db, other, "app")
        insert(session, db, refund, "app")  # the exporter's copy: its chain says it is audit

        tables = str(session.query(tables_sql()))
        assert f'"database":"{db}","name":"otel_logs"' in tables
        trace = CallTrace(call_id)
        rows = str(session.query(logs_sql(db, call_id))).splitlines()
        assert read_rows(rows, trace) is False
        assert [record for _, record in trace.records] == [first, second, refund]
        assert [folder for folder, _ in trace.records] == ["app", "performance", "audit"]
        assert trace.stages["llm"].count == 1

        def rows_of(sql: str) -> list[dict[str, Any]]:
            return [orjson.loads(line) for line in str(session.query(sql)).splitlines()]

        assert rows_of(count_sql(db, call_id)) == [{"n": 3}]
        since = parse_timestamp_ns(second["timestamp"]) // 1_000_000_000  # --days: whole seconds
        assert [r["Body"] for r in rows_of(logs_sql(db, call_id, since=since))] == [
            "llm completed", "refund.issued"]
        assert [r["Body"] for r in rows_of(logs_sql(db, call_id, 0, newest_first=True))] == [
            "refund.issued"]  # a limit of n reads n + 1, to tell a cut
        for trace_id, who in (("0af7651916cd43dd8448eb211c80319c", call_id), ("ff" * 16, "x")):
            session.query(
                f"INSERT INTO {db}.otel_traces (Timestamp, TraceId, SpanId, SpanName,"
                f" SpanAttributes) VALUES (now64(9), '{trace_id}', 'b7ad6b7169203331', 'call',"
                f" map('call_id', {literal(who)}))")
        assert rows_of(trace_ids_sql(db, call_id)) == [
            {"TraceId": "0af7651916cd43dd8448eb211c80319c"}]
    finally:
        session.close()
