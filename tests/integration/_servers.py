"""Start real servers on 127.0.0.1 for the integration tests, bounded in time."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def start_app(port: int, env: dict[str, str], workers: int = 1) -> subprocess.Popen[bytes]:
    """uvicorn serving _monitoring_app on 127.0.0.1:port."""
    command = [sys.executable, "-m", "uvicorn", "_monitoring_app:app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]
    if workers > 1:
        command += ["--workers", str(workers)]
    return subprocess.Popen(command, cwd=HERE, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def start_prometheus(
    directory: Path, target_port: int, metrics_path: str = "/prometheus"
) -> tuple[subprocess.Popen[bytes], str]:
    """A real Prometheus scraping 127.0.0.1:target_port every second: (process, its URL)."""
    from tests.conftest import need

    binary = need("prometheus")  # before anything starts: a skip leaves nothing running
    port = free_port()
    config = directory / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: callwatch\n    metrics_path: {metrics_path}\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
    )
    process = subprocess.Popen(
        [binary, f"--config.file={config}",
         f"--storage.tsdb.path={directory / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return process, f"http://127.0.0.1:{port}"
