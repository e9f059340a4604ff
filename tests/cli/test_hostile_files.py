"""The command on hostile log directories: FIFOs, folders the OS refuses, huge lines, huge calls.

Every case runs the real command in a subprocess with a timeout, so a read
that blocks on a FIFO fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from callwatch.cli.trace import CallTrace
from tests.cli.conftest import record, run_cli, run_python, write_lines

_MB = 1 << 20


def _today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def _one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2 and a single line on stderr naming what was refused, never a traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    problem = [line for line in result.stderr.splitlines() if line.startswith("callwatch:")]
    assert len(problem) == 1, result.stderr
    for word in words:
        assert word in problem[0]


def _max_rss_kib(*argv: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the command in a child that reports its own peak resident memory last on stderr.

    ``VmHWM`` is the peak of the child's own memory; ``ru_maxrss`` would also
    count the test process it was forked from.
    """
    code = (
        "import sys\n"
        "from callwatch.cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        "status = open('/proc/self/status').read()\n"
        "print(status.split('VmHWM:')[1].split()[0], file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    result = run_python("-c", code, *argv)
    return result, int(result.stderr.split()[-1])


# ---------------------------------------------------------------- special files


def test_trace_and_tail_skip_a_fifo_instead_of_blocking(cli_log_dir: Path) -> None:
    os.mkfifo(cli_log_dir / f"app/app_{_today()}.log")
    os.mkfifo(cli_log_dir / "errors/error_2024-01-05.log")
    write_lines(
        cli_log_dir / "app/app_2024-01-05.log",
        [record("2024-01-05T10:00:00.000000Z", "Call started", "ast-1")],
    )
    trace = run_cli("trace", "ast-1", "--log-dir", cli_log_dir, "--json", timeout=30)
    assert trace.returncode == 0, trace.stderr
    assert [r["message"] for r in orjson.loads(trace.stdout)["records"]] == ["Call started"]
    assert "not a regular file, skipped" in trace.stderr and "error_2024-01-05.log" in trace.stderr
    tail = run_cli("tail", "--log-dir", cli_log_dir, timeout=30)
    assert (tail.returncode, tail.stdout) == (0, "")
    assert "not a regular file, skipped" in tail.stderr


def test_a_folder_under_a_log_file_name_is_skipped(cli_log_dir: Path) -> None:
    (cli_log_dir / "audit/audit_2024-01-05.log").mkdir()
    write_lines(
        cli_log_dir / "app/app_2024-01-05.log",
        [record("2024-01-05T10:00:00.000000Z", "Call started", "ast-1")],
    )
    trace = run_cli("trace", "ast-1", "--log-dir", cli_log_dir)
    assert trace.returncode == 0, trace.stderr
    assert "audit_2024-01-05.log" in trace.stderr
    verify = run_cli("audit", "verify", cli_log_dir / "audit/audit_2024-01-05.log")
    _one_line_error(verify, "audit_2024-01-05.log")


# ---------------------------------------------------------------- OS errors


@pytest.mark.parametrize(
    "words",
    [["trace", "ast-1"], ["tail"], ["tail", "-f"], ["audit", "verify"], ["logs", "prune"]],
    ids=" ".join,
)
def test_an_os_error_is_one_line_and_exit_2(words: list[str], tmp_path: Path) -> None:
    too_long = tmp_path / ("x" * 300)  # ENAMETOOLONG, which even root cannot get past
    _one_line_error(run_cli(*words, "--log-dir", too_long, timeout=30), "File name too long")


def _refusing(path: Path) -> Path:
    """A log file the OS refuses to read, even to root: reading ``/proc/self/mem`` at offset 0
    fails with EIO, while ``stat`` says it is a regular file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to("/proc/self/mem")
    return path


def _looping(path: Path) -> Path:
    """A folder or file name the OS cannot resolve (ELOOP): a symlink to itself."""
    path.symlink_to(path.name)
    return path


def test_files_and_folders_the_os_refuses_are_named_never_a_traceback(cli_log_dir: Path) -> None:
    day = _today()
    started = record(f"{day}T10:00:00.000000Z", "Call started", "ast-1")
    write_lines(cli_log_dir / "audit/audit_2024-01-05.log", [started])
    _refusing(cli_log_dir / "audit/audit_2024-01-06.log")

    verify = run_cli("audit", "verify", "--log-dir", cli_log_dir)
    assert verify.returncode == 1, verify.stdout + verify.stderr  # the unchained file: TAMPERED
    (refused,) = [line for line in verify.stdout.splitlines() if "audit_2024-01-06" in line]
    assert refused.startswith("UNREADABLE") and "Input/output error" in refused
    assert "1 unreadable" in verify.stdout
    alone = run_cli("audit", "verify", cli_log_dir / "audit/audit_2024-01-06.log")
    assert alone.returncode == 2 and "UNREADABLE" in alone.stdout and "TAMPERED" not in alone.stdout

    (cli_log_dir / "audit/audit_2024-01-06.log").unlink()
    write_lines(cli_log_dir / f"app/app_{day}.log", [started])
    shutil.rmtree(cli_log_dir / "performance")
    _looping(cli_log_dir / "performance")
    trace = run_cli("trace", "ast-1", "--log-dir", cli_log_dir, "--json")
    _one_line_error(trace, "performance", "Too many levels of symbolic links")
    assert orjson.loads(trace.stdout)["records"][0]["message"] == "Call started"
    _refusing(cli_log_dir / "errors/error_2024-01-07.log")
    trace = run_cli("trace", "ast-1", "--log-dir", cli_log_dir)
    assert trace.returncode == 2 and "Traceback" not in trace.stderr
    assert "error_2024-01-07.log: Input/output error" in trace.stderr

    shutil.rmtree(cli_log_dir / "audit")
    _looping(cli_log_dir / "audit")
    _one_line_error(run_cli("audit", "verify", "--log-dir", cli_log_dir), "audit")
    (cli_log_dir / f"app/app_{day}.log").unlink()
    _looping(cli_log_dir / f"app/app_{day}.log")
    _one_line_error(run_cli("tail", "--log-dir", cli_log_dir), f"app_{day}.log")


# ---------------------------------------------------------------- huge lines


def test_tail_skips_a_huge_last_line_in_bounded_memory(cli_log_dir: Path) -> None:
    path = cli_log_dir / f"app/app_{_today()}.log"
    rows = [record(f"2024-01-05T10:00:{i:02d}.000000Z", f"message {i}", "ast-1") for i in range(50)]
    write_lines(path, rows)
    small, small_rss = _max_rss_kib("tail", "-n", "1", "--log-dir", str(cli_log_dir))
    assert small.returncode == 0 and "message 49" in small.stdout
    huge = record("2024-01-05T10:01:00.000000Z", "x" * (24 * _MB), "ast-1")
    with path.open("ab") as handle:
        handle.write(orjson.dumps(huge) + b"\n")
    result, rss = _max_rss_kib("tail", "-n", "1", "--log-dir", str(cli_log_dir))
    assert result.returncode == 0, result.stderr
    assert "message 49" in result.stdout
    assert "skipped 1 line(s) longer than 4 MiB" in result.stderr
    # Holding the 24 MB line even once would show; reading it in 1 MB blocks does not.
    assert rss - small_rss < 12 * 1024, (small_rss, rss)


def test_a_huge_record_is_shown_cut_to_a_screenful(cli_log_dir: Path) -> None:
    huge = record(
        "2024-01-05T10:00:00.000000Z",
        "y" * _MB,
        "c" * (_MB // 4),
        **{f"field_{i}": "v" * 1000 for i in range(1000)},
    )  # about 3 MB: under the 4 MiB a line may take, so it is shown, cut
    huge["logger"] = "l" * 100_000
    huge["exception"] = {"type": "E" * 100_000, "message": "m" * (_MB // 2), "frames": []}
    write_lines(cli_log_dir / f"app/app_{_today()}.log", [huge])
    result = run_cli("tail", "-n", "1", "--log-dir", cli_log_dir)
    assert result.returncode == 0, result.stderr
    assert "yyy…" in result.stdout and "ccc…" in result.stdout and "EEE…" in result.stdout
    assert len(result.stdout) < 20_000


def test_trace_skips_a_huge_line_and_keeps_the_rest(cli_log_dir: Path) -> None:
    started = record("2024-01-05T10:00:00.000000Z", "Call started", "ast-1")
    huge = record("2024-01-05T10:00:01.000000Z", "z" * (12 * _MB), "ast-1")
    ended = record("2024-01-05T10:00:02.000000Z", "Call ended", "ast-1")
    write_lines(cli_log_dir / "app/app_2024-01-05.log", [started, huge, ended])
    write_lines(cli_log_dir / "app/app_2024-01-04.log", [started, huge, ended], gz=True)
    result = run_cli("trace", "ast-1", "--log-dir", cli_log_dir, "--json")
    assert result.returncode == 0, result.stderr
    answer = orjson.loads(result.stdout)
    assert [r["message"] for r in answer["records"]] == ["Call started", "Call ended"]
    assert "skipped 2 line(s) longer than 4 MiB" in result.stderr


# ---------------------------------------------------------------- huge calls


def test_trace_keeps_the_first_and_last_records_of_a_huge_call(cli_log_dir: Path) -> None:
    count = 40_000
    rows = [
        record(
            f"2024-01-05T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000000Z",
            f"step {i}",
            "ast-1",
            operation="llm_generation",
            duration_ms=1.0,
        )
        for i in range(count)
    ]
    write_lines(cli_log_dir / "performance/performance_2024-01-05.log", rows)
    write_lines(cli_log_dir / "app/app_2024-01-05.log", rows)  # every record twice
    argv = ["trace", "ast-1", "--log-dir", str(cli_log_dir), "--json", "--max-records", "10"]
    result, rss = _max_rss_kib(*argv)
    assert result.returncode == 0, result.stderr
    answer = orjson.loads(result.stdout)
    shown = [r["message"] for r in answer["records"]]
    assert shown == [f"step {i}" for i in (0, 1, 2, 3, 4, *range(count - 5, count))]
    assert (answer["records_not_shown"], answer["records_not_shown_at"]) == (count - 10, 5)
    assert answer["stages"]["llm_generation"]["count"] == count
    assert answer["total_ms"] == (count - 1) * 1000.0
    # 80,000 parsed records would take well over 100 MB; kept ones are ten.
    assert rss < 100 * 1024, rss
    pretty = run_cli("trace", "ast-1", "--log-dir", cli_log_dir, "--max-records", "10")
    assert f"{count - 10} more records not shown" in pretty.stdout
    assert f"{count} records" in pretty.stdout


def test_any_arrival_order_keeps_the_exact_first_and_last_halves() -> None:
    stamps = [f"2024-01-05T10:{i // 60:02d}:{i % 60:02d}.000000Z" for i in range(1000)]
    shuffled = stamps[:]
    random.Random(7).shuffle(shuffled)
    trace = CallTrace("ast-1", max_records=7)
    for stamp in shuffled:
        trace.add("app", record(stamp, stamp, "ast-1"))
    kept = [r["timestamp"] for _, r in trace.records]
    assert kept == stamps[:4] + stamps[-3:]
    assert (trace.not_shown, trace.shown_before_gap) == (993, 4)
