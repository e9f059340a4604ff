"""One call across two hosts, rebuilt by `callwatch trace --clickhouse` from a real ClickHouse.

Two processes stand for two hosts (a SIP front end and a media worker) writing one
shared log directory and exporting through a real rotel collector into Debian's
ClickHouse 18.16, whose tables take rotel's inserts (clickhouse18.sql): the story
from ClickHouse is then the files' story, field by field.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from callwatch.cli import _clickhouse
from callwatch.cli.trace import as_json
from tests._otel.servers import OtlpReceiver, clickhouse, rotel, rotel_to_clickhouse, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CALL_ID = "ast-fleet-7'; DROP TABLE otel.otel_logs; --"  # quoting is ClickHouse's problem, not ours
RECORDS = 9
# What may differ between the two sources: where and how much was read, and the trace
# ids, which only the export knows (no span was active while these records were logged).
SOURCE_SPECIFIC = {"source", "read_from", "rows_read", "files_scanned", "bytes_scanned",
                   "trace_ids"}
PASSWORD = "s3cret-pw"


def start_host(role: str, log_dir: Path, endpoint: str, start_at: float) -> subprocess.Popen[str]:
    env = {**os.environ, "LOG_DIR": str(log_dir), "LOG_CONSOLE": "false",
           "ENVIRONMENT": "production", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
           "OTEL_RESOURCE_ATTRIBUTES": f"host.name={role}-1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration._clickhouse_host", CALL_ID, role, "0.3",
         str(start_at)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def trace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callwatch.cli.main", "trace", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def select(url: str, sql: str) -> list[str]:
    response = httpx.post(url, content=sql, timeout=10)
    response.raise_for_status()
    return response.text.split()


def test_a_two_host_call_is_the_files_story_from_clickhouse(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    with clickhouse() as url, rotel(rotel_to_clickhouse(url)) as endpoint:
        start_at = time.time() + 3.0
        hosts = [start_host(role, log_dir, endpoint, start_at) for role in ("front", "media")]
        for host in hosts:
            assert host.wait(timeout=60) == 0, host.stderr.read() if host.stderr else ""
        wait_for(lambda: len(_clickhouse.collect(url, CALL_ID).records) >= RECORDS)
        from_clickhouse = trace(CALL_ID, "--clickhouse", url, "--json")
        text = trace(CALL_ID, "--clickhouse", url)
        missing = trace("nobody", "--clickhouse", url)
        span_traces = set(select(url, "SELECT DISTINCT TraceId FROM otel.otel_traces"))
        log_traces = set(select(url, "SELECT DISTINCT TraceId FROM otel.otel_logs"
                                     " WHERE TraceId != ''"))
    from_files = trace(CALL_ID, "--log-dir", str(log_dir), "--json")
    assert from_clickhouse.returncode == 0, from_clickhouse.stderr
    story: dict[str, Any] = json.loads(from_clickhouse.stdout)
    files: dict[str, Any] = json.loads(from_files.stdout)

    # Field by field the files' story: a script reading --json works on either source.
    assert set(story) == set(files)
    assert {k: v for k, v in story.items() if k not in SOURCE_SPECIFIC} == {
        k: v for k, v in files.items() if k not in SOURCE_SPECIFIC}
    assert len(story["records"]) == RECORDS
    assert story["processes"] == 2 and {r["pid"] for r in story["records"]} == {
        h.pid for h in hosts}
    assert story["hosts"] == [socket.gethostname()]
    assert story["read_cut"] is None
    assert {r["region"] for r in story["records"]} == {"front-eu", "media-eu"}
    assert story["stages"]["llm_completion"]["count"] == 2
    assert story["stages"]["stt_transcribe"]["count"] == 1
    # ... and what is the source's own: ClickHouse holds each record once, the files twice.
    assert (story["source"], files["source"]) == ("clickhouse", "files")
    assert story["read_from"] == f"{url} otel.otel_logs"
    assert files["read_from"] == str(log_dir)
    assert story["rows_read"] == RECORDS < files["rows_read"]
    assert story["files_scanned"] == 0 < files["files_scanned"]
    assert story["bytes_scanned"] > 0

    # The audit event comes back as the audit copy, hash chain and all.
    refund = next(r for r in story["records"] if r["message"] == "Refund issued")
    assert refund["chain"]["seq"] == 1 and len(refund["chain"]["hash"]) == 64
    assert re.search(r"audit .*Refund issued", text.stdout)

    # otel_traces adds the traces no log record names: the media host's timers, which
    # ran outside any call span there.
    assert log_traces < span_traces
    assert set(story["trace_ids"]) == span_traces and files["trace_ids"] == []
    assert all(trace_id in text.stdout for trace_id in sorted(span_traces)[:3])

    assert text.returncode == 0
    assert "Call started" in text.stdout and "Agent replied" in text.stdout
    assert "TTS request failed" in text.stdout
    assert missing.returncode == 1 and "not found in ClickHouse" in missing.stderr


def test_a_long_call_is_cut_as_the_files_cut_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_clickhouse, "MAX_RECORDS", 1000)  # rows read before the cut
    total = _clickhouse.MAX_RECORDS + 50
    start = time.time_ns() - total * 1000
    with clickhouse() as url:
        httpx.post(url, timeout=60, content=(
            "INSERT INTO otel.otel_logs (Timestamp, TimestampTime, SeverityText, Body,"
            " `LogAttributes.keys`, `LogAttributes.values`)"
            f" SELECT {start} + number * 1000, toDateTime(intDiv({start} + number * 1000,"
            " 1000000000)), 'INFO', concat('step ', toString(number)),"
            " ['call_id', 'callwatch.category'], ['long-call', 'app']"
            f" FROM system.numbers LIMIT {total}")).raise_for_status()
        story = as_json(_clickhouse.collect(url, "long-call", max_records=10))
        # A read-only user may not set the server-side time limit: asked without it.
        httpx.post(url, params={"session_id": "reader"}, content="SET readonly = 1",
                   timeout=10).raise_for_status()
        read_only = as_json(_clickhouse.collect(f"{url}/?session_id=reader", "long-call",
                                                max_records=10))
        # The call's last 100 records include the 50 past the cut: nothing went unread.
        whole = as_json(_clickhouse.collect(url, "long-call", max_records=200))
    shown = [*range(5), *range(total - 5, total)]
    assert [r["message"] for r in story["records"]] == [f"step {n}" for n in shown]
    assert story["records_not_shown"] == total - 10
    assert story["records_not_shown_at"] == 5
    assert story["read_cut"] == (
        "past 1,000 records: 45 records between the first and the last not read")
    assert story["rows_read"] == 1000 + 5
    assert read_only["records"] == story["records"]
    assert whole["read_cut"] is None and whole["records_not_shown"] == total - 200
    assert [r["message"] for r in whole["records"][-2:]] == [f"step {total - 2}",
                                                             f"step {total - 1}"]

    # The same records in a log file give the same story.
    log_file = tmp_path / "logs" / "app" / f"app_{time.strftime('%Y-%m-%d', time.gmtime())}.log"
    log_file.parent.mkdir(parents=True)
    with log_file.open("w") as out:
        first = story["records"][0]
        for number in range(total):
            line = {**first, "message": f"step {number}", "timestamp": _stamp(start + number * 1000)}
            out.write(json.dumps(line) + "\n")
    files = json.loads(trace("long-call", "--log-dir", str(tmp_path / "logs"), "--max-records",
                             "10", "--json").stdout)
    for key in ("records", "records_not_shown", "records_not_shown_at", "first", "last",
                "total_ms"):
        assert story[key] == files[key], key


def _stamp(nanos: int) -> str:
    seconds, rest = divmod(nanos, 1_000_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{rest // 1000:06d}Z"


def test_clear_errors_that_never_show_the_password() -> None:
    outcomes = {
        "down": trace("c-1", "--clickhouse", f"http://reader:{PASSWORD}@127.0.0.1:9"),
        "not_a_url": trace("c-1", "--clickhouse", f"reader:{PASSWORD}@clickhouse:8123"),
    }
    receiver = OtlpReceiver()  # an HTTP server, but not ClickHouse
    try:
        outcomes["not_clickhouse"] = trace("c-1", "--clickhouse", receiver.url)
    finally:
        receiver.close()
    with clickhouse() as url:
        port = urlsplit(url).port
        outcomes["wrong_password"] = trace(
            "c-1", "--clickhouse", f"http://default:{PASSWORD}@127.0.0.1:{port}")
        outcomes["unknown_user"] = trace(
            "c-1", "--clickhouse", f"http://127.0.0.1:{port}/?user=nobody&password={PASSWORD}")
        httpx.post(url, content="DROP TABLE otel.otel_traces", timeout=10).raise_for_status()
        httpx.post(url, content="DROP TABLE default.otel_traces", timeout=10).raise_for_status()
        outcomes["no_tables"] = trace("c-1", "--clickhouse", url)
    errors = {name: result.stderr for name, result in outcomes.items()}
    assert all(result.returncode == 2 for result in outcomes.values()), errors
    assert not any(PASSWORD in r.stderr + r.stdout for r in outcomes.values()), errors
    assert "Traceback" not in "".join(errors.values())
    assert "cannot query ClickHouse at http://127.0.0.1:9: connection refused" in errors["down"]
    assert "needs ClickHouse's HTTP address" in errors["not_a_url"]
    assert f"{receiver.url} answered 404 but is not ClickHouse's HTTP" in errors["not_clickhouse"]
    assert f"127.0.0.1:{port} refused the login" in errors["wrong_password"]
    assert "Wrong password for user default" in errors["wrong_password"]
    assert "Unknown user nobody" in errors["unknown_user"]
    assert "no otel_logs and otel_traces tables" in errors["no_tables"]
