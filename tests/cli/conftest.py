"""Helpers for running the ``callwatch`` command as a subprocess, as users run it."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest

_OWN_VARIABLES = (
    "LOG_DIR",
    "ENVIRONMENT",
    "LOG_LEVEL",
    "MONITORING_TOKEN",
    "AUDIT_HMAC_KEY",
    "ALERT_WEBHOOK_URL",
    "SLACK_WEBHOOK_URL",
    "PROMETHEUS_MULTIPROC_DIR",
)


def cli_env(**overrides: str) -> dict[str, str]:
    """The test's environment without any callwatch variable, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if k not in _OWN_VARIABLES}
    env.update(overrides)
    return env


def run_cli(
    *args: str | Path, timeout: float = 60, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``callwatch ARGS...`` in a fresh interpreter; output captured as text."""
    return run_python("-m", "callwatch.cli", *map(str, args), timeout=timeout, cwd=cwd, **env)


def run_python(
    *args: str, timeout: float = 60, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter with ``args``; output captured as text."""
    return subprocess.run(
        [sys.executable, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**env),
        cwd=cwd,
    )


def record(
    timestamp: str, message: str, call_id: str | None, level: str = "INFO", **extra: Any
) -> dict[str, Any]:
    """A record in the format the logging core writes."""
    return {
        "timestamp": timestamp,
        "level": level,
        "logger": "app.voice",
        "function": "handle",
        "line": 1,
        "message": message,
        "app": "ai_voice_agent",
        "environment": "production",
        "call_id": call_id,
        "extra": extra,
    }


def write_lines(path: Path, lines: Iterable[dict[str, Any] | bytes], *, gz: bool = False) -> Path:
    """One JSON object (or raw bytes) per line into ``path`` (gzipped when ``gz``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(
        (line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines
    )
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def cli_log_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "logs"
    for folder in ("app", "errors", "audit", "performance"):
        (directory / folder).mkdir(parents=True)
    return directory
