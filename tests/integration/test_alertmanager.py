"""A real Alertmanager on loopback receives callwatch's alerts, forwards them and hears the resolve."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import callwatch
from callwatch.alerting import alert_manager, alertmanager_alert_handler, check_and_alert
from tests.conftest import need
from tests.integration.receivers import Receiver

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def alertmanager(tmp_path: Path, webhook: Receiver) -> Iterator[str]:
    binary = need("prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "global:\n  resolve_timeout: 1m\n"
        "route:\n  receiver: hook\n  group_by: [alertname, instance]\n"
        "  group_wait: 100ms\n  group_interval: 300ms\n  repeat_interval: 1h\n"
        "receivers:\n  - name: hook\n    webhook_configs:\n"
        f"      - url: {webhook.url}/alertmanager\n        send_resolved: true\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(base + "/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"alertmanager did not start: {process.stderr.read() if process.stderr else ''}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(autouse=True)
def configured(tmp_path: Path) -> Iterator[None]:
    callwatch.configure(log_dir=tmp_path / "logs", console=False, environment="production", app_name="voice_bot",
                        alert_resolve_sec=0)  # resolved at the first clear check
    alert_manager.reset()
    try:
        yield
    finally:
        alert_manager.unregister_handler("alertmanager")
        alert_manager.reset()
        callwatch.shutdown()


async def eventually(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def am_alerts(base: str) -> list[dict]:
    return httpx.get(base + "/api/v2/alerts", params={"active": "true", "silenced": "false", "inhibited": "false"}, timeout=5).json()


def forwarded(webhook: Receiver) -> list[tuple[str, str]]:
    return [(a["status"], a["labels"]["severity"]) for message in webhook.accepted for a in message["alerts"]]


async def test_alerts_reach_alertmanager_are_forwarded_and_resolve(alertmanager: str, webhook: Receiver) -> None:
    alert_manager.register_handler(alertmanager_alert_handler(alertmanager, resend_sec=1.0))
    await check_and_alert({"system": {"cpu_percent": 85}})

    await eventually(lambda: len(am_alerts(alertmanager)) == 1)
    (posted,) = am_alerts(alertmanager)
    labels = posted["labels"]
    assert labels["alertname"] == "HighCpuPercent"
    assert labels["severity"] == "warning"
    assert labels["app"] == "voice_bot" and labels["environment"] == "production"
    assert labels["instance"] and labels["metric"] == "cpu_percent"
    assert posted["annotations"]["summary"] == "High CPU usage"
    await eventually(lambda: ("firing", "warning") in forwarded(webhook))

    # While firing, the alert is re-sent, so Alertmanager keeps extending its end.
    first_end = posted["endsAt"]
    await eventually(lambda: am_alerts(alertmanager)[0]["endsAt"] > first_end, timeout=10)

    # Escalation: the critical replaces the warning there too.
    await check_and_alert({"system": {"cpu_percent": 99}})
    await eventually(lambda: [a["labels"]["severity"] for a in am_alerts(alertmanager)] == ["critical"])
    await eventually(lambda: ("firing", "critical") in forwarded(webhook))

    await check_and_alert({"system": {"cpu_percent": 20}})
    await eventually(lambda: am_alerts(alertmanager) == [])
    await eventually(lambda: ("resolved", "critical") in forwarded(webhook))
