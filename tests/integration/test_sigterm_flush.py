"""SIGTERM and interpreter exit flush every queued record; a user's SIGTERM handler still runs.

The workers log INFO records with a 60 s flush interval, so the records are
still queued when the signal (or the end of the script) comes: only the
shutdown path can put them on disk.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.integration._workers import LineReader, command, environment, folder_records, start

pytestmark = pytest.mark.integration

LINES = 2_000  # below the writer's wake-up mark, so nothing is written early


def _pending_indexes(log_dir: Path) -> list[int]:
    return [
        r["extra"]["index"]
        for records in folder_records(log_dir, "app").values()
        for r in records
        if r["message"] == "pending record"
    ]


def _terminate_when_ready(log_dir: Path, mode: str) -> tuple[int, str, str]:
    env = environment(log_dir, LOG_FLUSH_INTERVAL_MS="60000")
    process = start(command("sigterm", mode, str(LINES)), env)
    try:
        ready = orjson.loads(next(LineReader(process.stdout).lines(timeout=30)))
        assert ready["ready"]
        assert _pending_indexes(log_dir) == [], "records reached disk before SIGTERM"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(10)
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def test_sigterm_flushes_queued_records_and_dies_by_the_signal(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    returncode, _, err = _terminate_when_ready(log_dir, "default")

    assert returncode == -signal.SIGTERM, err[-3000:]  # the orchestrator sees a normal stop
    assert _pending_indexes(log_dir) == list(range(LINES))


def test_sigterm_runs_the_handler_installed_before_callwatch(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    returncode, out, err = _terminate_when_ready(log_dir, "chained")

    assert "previous handler ran" in out
    assert returncode == 3, err[-3000:]  # the user's handler decided how to exit
    assert _pending_indexes(log_dir) == list(range(LINES))


def test_a_chained_handler_may_log_after_callwatch_shut_down(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    returncode, out, err = _terminate_when_ready(log_dir, "chained_logging")

    assert "previous handler ran" in out, err[-3000:]
    assert returncode == 3, err[-3000:]
    assert "Traceback" not in err
    assert _pending_indexes(log_dir) == list(range(LINES))
    messages = [r["message"] for rs in folder_records(log_dir, "app").values() for r in rs]
    assert messages[-1] == "shutting down"  # logged late, still written


def test_sigterm_flushes_when_a_thread_configured_callwatch_first(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    returncode, _, err = _terminate_when_ready(log_dir, "thread_first")

    assert returncode == -signal.SIGTERM, err[-3000:]
    assert _pending_indexes(log_dir) == list(range(LINES))


def test_interpreter_exit_flushes_queued_records(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    env = environment(log_dir, LOG_FLUSH_INTERVAL_MS="60000")
    result = subprocess.run(command("sigterm", "exit", str(LINES)), env=env,
                            capture_output=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    assert _pending_indexes(log_dir) == list(range(LINES))
