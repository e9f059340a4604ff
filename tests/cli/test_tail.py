"""``callwatch tail``: last records, filters, and following across midnight and truncation."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

import orjson

from callwatch.cli.tail import Filter, Follower, last_records
from tests.cli.conftest import cli_env, record, run_cli, write_lines


def _today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def _records(n: int, call_id: str = "ast-1") -> list[dict]:
    return [
        record(
            f"2024-01-05T10:00:{i:02d}.000000Z",
            f"message {i}",
            call_id,
            level="WARNING" if i % 3 == 0 else "INFO",
        )
        for i in range(n)
    ]


def test_last_n_records_of_todays_file(cli_log_dir: Path) -> None:
    write_lines(cli_log_dir / f"app/app_{_today()}.log", _records(30))
    result = run_cli("tail", "--log-dir", cli_log_dir, "-n", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert "message 27" in lines[0] and "message 29" in lines[2]


def test_filters_level_call_and_logger(cli_log_dir: Path) -> None:
    rows = _records(12) + _records(3, call_id="ast-2")
    rows[1]["logger"] = "app.telephony.asterisk_ari"
    rows[2]["logger"] = "app.telephonyx"
    write_lines(cli_log_dir / f"app/app_{_today()}.log", rows)
    warn = run_cli(
        "tail", "--log-dir", cli_log_dir, "-n", "100", "--level", "warning", "--call-id", "ast-1"
    )
    assert warn.returncode == 0, warn.stderr
    assert [line.split("]  ")[1] for line in warn.stdout.splitlines()] == [
        "message 0",
        "message 3",
        "message 6",
        "message 9",
    ]
    by_logger = run_cli("tail", "--log-dir", cli_log_dir, "--logger", "app.telephony")
    assert by_logger.stdout.count("\n") == 1 and "message 1" in by_logger.stdout


def test_bad_level_is_a_usage_error(cli_log_dir: Path) -> None:
    assert run_cli("tail", "--log-dir", cli_log_dir, "--level", "LOUD").returncode == 2


def test_no_file_yet_prints_nothing(cli_log_dir: Path) -> None:
    result = run_cli("tail", "--log-dir", cli_log_dir)
    assert (result.returncode, result.stdout) == (0, "")


def test_backlog_reads_past_block_boundaries(tmp_path: Path) -> None:
    big = [record("2024-01-05T10:00:00.000000Z", "x" * 5000 + str(i), "ast-1") for i in range(400)]
    write_lines(tmp_path / "app/app_2024-01-05.log", big)
    follower = Follower(tmp_path, today=lambda: "2024-01-05")
    found = last_records(follower, Filter(), 300)
    assert [r["message"][-3:] for r in found[:2]] == ["100", "101"]
    assert found[-1]["message"].endswith("399")


def test_follow_picks_up_new_lines_partial_writes_and_the_next_day(tmp_path: Path) -> None:
    day = ["2024-01-05"]
    first = tmp_path / "app/app_2024-01-05.log"
    write_lines(first, _records(2))
    follower = Follower(tmp_path, today=lambda: day[0])
    assert len(last_records(follower, Filter(), 10)) == 2
    assert follower.poll() == []
    line = orjson.dumps(record("2024-01-05T23:59:59.000000Z", "late", "ast-1"))
    with first.open("ab") as handle:
        handle.write(line[:20])  # the writer is mid-line
    assert follower.poll() == []
    with first.open("ab") as handle:
        handle.write(line[20:] + b"\n")
    assert follower.poll() == [line]
    # Midnight: one more line lands in the old file, then the new day's file appears.
    with first.open("ab") as handle:
        handle.write(b'{"message":"last of day"}\n')
    write_lines(tmp_path / "app/app_2024-01-06.log", [b'{"message":"first of day"}'])
    day[0] = "2024-01-06"
    assert follower.poll() == [b'{"message":"last of day"}', b'{"message":"first of day"}']


def test_follow_starts_over_when_the_file_is_truncated(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "app/app_2024-01-05.log", _records(5))
    follower = Follower(tmp_path, today=lambda: "2024-01-05")
    last_records(follower, Filter(), 0)
    path.write_bytes(b'{"message":"fresh"}\n')
    assert follower.poll() == [b'{"message":"fresh"}']


def test_the_date_and_z_show_when_the_utc_day_changes(cli_log_dir: Path) -> None:
    rows = [
        record("2024-01-05T23:59:58.000000Z", "before", "ast-1"),
        record("2024-01-05T23:59:59.250000Z", "just before", "ast-1"),
        record("2024-01-06T00:00:01.500000Z", "after", "ast-1"),
    ]
    write_lines(cli_log_dir / f"app/app_{_today()}.log", rows)
    lines = run_cli("tail", "--log-dir", cli_log_dir).stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        "2024-01-05T23:59:58.000Z",
        "23:59:59.250",
        "2024-01-06T00:00:01.500Z",
    ]
    full = run_cli("tail", "--log-dir", cli_log_dir, "--full-time").stdout.splitlines()
    assert full[1].split()[0] == "2024-01-05T23:59:59.250Z"


def test_follow_waits_for_the_log_directory_and_file(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    argv = [sys.executable, "-m", "callwatch.cli", "tail", "-f", "--log-dir", str(log_dir)]
    child = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(), text=True
    )
    try:
        out, err = _lines_of(child.stdout), _lines_of(child.stderr)
        assert f"waiting for {log_dir} to appear" in err.get(timeout=30)
        assert "waiting for" in err.get(timeout=30)  # then for today's file
        assert child.poll() is None  # still there, not exited
        write_lines(
            log_dir / f"app/app_{_today()}.log",
            [record(f"{_today()}T10:00:00.000000Z", "first record", "ast-1")],
        )
        assert "first record" in out.get(timeout=30)
    finally:
        child.send_signal(signal.SIGINT)
        code = child.wait(timeout=30)
    assert code == 0


def _lines_of(stream: IO[str] | None) -> queue.Queue[str]:
    """A child's output line by line; ``get(timeout=…)`` fails instead of hanging."""
    assert stream is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines
