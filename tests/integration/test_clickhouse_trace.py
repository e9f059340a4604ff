"""One call across two hosts, rebuilt by `callwatch trace --clickhouse` from a real ClickHouse.

Two processes stand for two hosts (a SIP front end and a media worker), each
with its own log directory and exporting through a real rotel collector into
Debian's ClickHouse 18.16, whose tables take rotel's inserts (clickhouse18.sql).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._otel.servers import clickhouse, rotel, rotel_to_clickhouse, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CALL_ID = "ast-fleet-7'; DROP TABLE otel.otel_logs; --"  # quoting is ClickHouse's problem, not ours


def start_host(role: str, log_dir: Path, endpoint: str, host: str,
               start_at: float) -> subprocess.Popen[str]:
    env = {**os.environ, "LOG_DIR": str(log_dir), "LOG_CONSOLE": "false",
           "ENVIRONMENT": "production", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
           "OTEL_RESOURCE_ATTRIBUTES": f"host.name={host}"}
    return subprocess.Popen([sys.executable, "-m", "tests._otel.worker", CALL_ID, role, "0.3",
                             str(start_at)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def trace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callwatch.cli.main", "trace", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def count_rows(url: str) -> int:
    body = httpx.post(url, content="SELECT count() FROM otel.otel_logs", timeout=10).text
    return int(body.strip())


def test_a_two_host_call_is_one_story_from_clickhouse(tmp_path: Path) -> None:
    with clickhouse() as url, rotel(rotel_to_clickhouse(url)) as endpoint:
        start_at = time.time() + 3.0
        hosts = [start_host("front", tmp_path / "front", endpoint, "sip-front-1", start_at),
                 start_host("media", tmp_path / "media", endpoint, "media-2", start_at)]
        for host in hosts:
            assert host.wait(timeout=60) == 0, host.stderr.read() if host.stderr else ""
        wait_for(lambda: count_rows(url) >= 8)
        time.sleep(0.3)  # rotel's last batch
        from_clickhouse = trace(CALL_ID, "--clickhouse", url, "--json")
        text = trace(CALL_ID, "--clickhouse", url)
        missing = trace("nobody", "--clickhouse", url)
    assert from_clickhouse.returncode == 0, from_clickhouse.stderr
    story: dict[str, Any] = json.loads(from_clickhouse.stdout)
    records = story["records"]
    assert {r["pid"] for r in records} == {h.pid for h in hosts}

    # The same records as the two hosts' files hold, merged in time order.
    files = [json.loads(trace(CALL_ID, "--log-dir", str(tmp_path / role), "--json").stdout)
             for role in ("front", "media")]
    from_files = sorted((r for f in files for r in f["records"]), key=lambda r: r["timestamp"])
    assert records == from_files
    assert [r["timestamp"] for r in records] == sorted(r["timestamp"] for r in records)
    assert story["stages"]["llm_completion"]["count"] == 2
    assert story["stages"]["stt_transcribe"]["count"] == 1

    assert text.returncode == 0
    assert "Call started" in text.stdout and "Agent replied" in text.stdout
    assert "TTS request failed" in text.stdout
    assert missing.returncode == 1 and "not found in ClickHouse" in missing.stderr


def test_a_clear_error_when_the_server_or_the_tables_are_missing(tmp_path: Path) -> None:
    down = trace("c-1", "--clickhouse", "http://reader:pw@127.0.0.1:9")
    assert down.returncode == 2
    assert "cannot query ClickHouse at http://127.0.0.1:9" in down.stderr
    assert "pw" not in down.stderr
    with clickhouse() as url:
        httpx.post(url, content="DROP TABLE otel.otel_traces", timeout=10).raise_for_status()
        httpx.post(url, content="DROP TABLE default.otel_traces", timeout=10).raise_for_status()
        empty = trace("c-1", "--clickhouse", url)
    assert empty.returncode == 2
    assert "no otel_logs and otel_traces tables" in empty.stderr
