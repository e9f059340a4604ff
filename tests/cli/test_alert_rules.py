"""``callwatch alert test`` against real receivers, and ``callwatch rules``."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.cli.conftest import run_cli


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Receiver.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/alerts"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_alert_test_delivers_to_each_handler(receiver: str, tmp_path: Path) -> None:
    result = run_cli(
        "alert", "test", LOG_DIR=str(tmp_path), ALERT_WEBHOOK_URL=receiver, LOG_CONSOLE="false"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok      console" in result.stdout and "ok      webhook" in result.stdout
    assert len(_Receiver.received) == 1


def test_alert_test_reports_a_failing_handler_and_exits_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/alerts"
    result = run_cli(
        "alert",
        "test",
        LOG_DIR=str(tmp_path),
        ALERT_WEBHOOK_URL=url,
        ALERT_MAX_RETRIES="1",
        ALERT_TIMEOUT_SEC="1",
        LOG_CONSOLE="false",
    )
    assert result.returncode == 1
    assert "ok      console" in result.stdout
    assert "FAILED  webhook" in result.stdout
    assert "/alerts" not in result.stdout + result.stderr  # the URL's path is a secret


def test_rules_prints_prometheus_rules_for_the_thresholds() -> None:
    result = run_cli("rules")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("groups:")
    assert ">= 5000" in result.stdout and ">= 10000" in result.stdout  # response time


def test_rules_touch_nothing_on_disk(tmp_path: Path) -> None:
    result = run_cli("rules", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "alert: " in result.stdout
    elsewhere = tmp_path / "service-logs"
    assert run_cli("rules", cwd=tmp_path, LOG_DIR=str(elsewhere)).returncode == 0
    assert list(tmp_path.iterdir()) == []  # no ./logs, no LOG_DIR, no lock file
