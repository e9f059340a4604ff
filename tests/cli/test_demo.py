"""``callwatch demo`` end to end: a real uvicorn service, real logs, then ``trace`` on them."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson

from tests.cli.conftest import cli_env, run_cli
from tests.integrations.conftest import need_package

TRACE_HINT = re.compile(r"callwatch trace (\S+) --log-dir")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Demo:
    """A running ``callwatch demo`` whose stdout is collected line by line."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port = _free_port()
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "callwatch.cli",
                "demo",
                "--rate",
                "120",
                "--port",
                str(self.port),
                "--log-dir",
                "logs",
                *args,
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=cli_env(),
        )
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := pattern.search(line):
                    return found
            if self.process.poll() is not None and not any(pattern.search(x) for x in self.lines):
                break
            time.sleep(0.1)
        raise AssertionError(f"{pattern.pattern!r} not printed:\n{''.join(self.lines)}")

    def finish(self, timeout: float = 90) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)


def test_demo_serves_monitoring_writes_logs_and_its_call_traces(tmp_path: Path) -> None:
    demo = _Demo(tmp_path, "--duration", "8")
    call_id = demo.wait_for(TRACE_HINT).group(1)
    base = f"http://127.0.0.1:{demo.port}"
    health = httpx.get(f"{base}/monitoring/health", timeout=10)
    # 503 is a correct answer too when the test machine's CPU is saturated.
    assert health.status_code in (200, 503)
    assert health.status_code == 503 or health.text == "OK"
    page = httpx.get(f"{base}/monitoring/dashboard", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert (
        httpx.get(f"{base}/", timeout=10, follow_redirects=True).url.path == "/monitoring/dashboard"
    )
    assert demo.finish() == 0, "".join(demo.lines)
    output = "".join(demo.lines)
    assert "dashboard" in output and f"{base}/monitoring/dashboard" in output
    assert "response time lowered for the demo" in output
    assert "demo finished" in output

    logs = tmp_path / "logs"
    assert {p.name for p in logs.iterdir()} >= {"app", "audit", "performance"}, output
    traced = run_cli("trace", call_id, "--log-dir", logs, "--json")
    assert traced.returncode == 0, traced.stderr
    answer = orjson.loads(traced.stdout)
    assert {"stt_transcription", "llm_generation", "tts_synthesis"} <= set(answer["stages"])
    messages = [r["message"] for r in answer["records"]]
    assert messages[0] == "Call started"
    assert "Call completed" in messages and "Turn completed" in messages


def test_demo_with_two_workers_reports_totals_across_workers(tmp_path: Path) -> None:
    demo = _Demo(tmp_path, "--duration", "5", "--workers", "2")
    assert demo.finish() == 0, "".join(demo.lines)
    placed = demo.wait_for(re.compile(r"demo finished: (\d+) calls placed, (\d+) completed"))
    totals = demo.wait_for(re.compile(r"service totals \(2 worker\(s\)\): (\d+) calls"))
    assert int(placed.group(1)) > 0
    assert totals.group(1) == placed.group(1)


def test_demo_as_a_pipecat_pipeline_records_turns_through_the_observer(tmp_path: Path) -> None:
    need_package("pipecat.pipeline.worker", "pipecat")
    demo = _Demo(tmp_path, "--duration", "2", "--framework", "pipecat")
    call_id = demo.wait_for(TRACE_HINT).group(1)
    assert demo.finish() == 0, "".join(demo.lines)
    traced = run_cli("trace", call_id, "--log-dir", tmp_path / "logs", "--json")
    assert traced.returncode == 0, traced.stderr
    answer = orjson.loads(traced.stdout)
    assert answer["turns"] and all(t["turn_id"].startswith(f"{call_id}:") for t in answer["turns"])
    assert {"stt", "llm", "tts"} <= set(answer["turns"][0]["stages"])
    messages = [r["message"] for r in answer["records"]]
    assert messages[0] == "Call started" and "Call ended" in messages


def test_demo_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli(
            "demo",
            "--duration",
            "2",
            "--port",
            str(taken.getsockname()[1]),
            cwd=tmp_path,
            timeout=90,
        )
    assert result.returncode == 1
    assert "could not serve" in result.stderr
