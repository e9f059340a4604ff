"""The command on log directories written by real callwatch processes.

Two processes log calls as a service would; the first one's files are then
moved to an earlier day and gzipped, as retention leaves them, so ``trace``
has to merge a gzipped day with today's plain files.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from tests.cli.conftest import cli_env, run_cli, run_python

FIRST_PROCESS = """
import time
from callwatch.logger import audit_log, clear_context, log, perf_timer, set_call_id
set_call_id("ast-100")
log.info("Call started", extra={"caller": "+15550100"})
with perf_timer("stt_transcription"):
    time.sleep(0.02)
clear_context()
"""

SECOND_PROCESS = """
import time
from callwatch.logger import audit_log, clear_context, log, perf_timer, set_call_id
set_call_id("ast-100")
with perf_timer("llm_generation"):
    time.sleep(0.03)
with perf_timer("tts_synthesis"):
    time.sleep(0.01)
audit_log("Call completed", call_id="ast-100", duration_sec=1.5, success=True)
clear_context()
set_call_id("ast-200")
log.info("Call started", extra={"caller": "+15550200"})
try:
    with perf_timer("llm_generation"):
        raise TimeoutError("model did not answer")
except TimeoutError:
    log.exception("Call failed")
audit_log("Call failed", call_id="ast-200", success=False)
clear_context()
"""


def _day(days_ago: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days_ago)).strftime("%Y-%m-%d")


def _log(code: str, log_dir: Path) -> None:
    done = run_python(
        "-c", code, LOG_DIR=str(log_dir), ENVIRONMENT="production", LOG_CONSOLE="false"
    )
    assert done.returncode == 0, done.stderr


def _move_to_day(log_dir: Path, day: str) -> None:
    """Make today's files and records those of an earlier ``day``, gzipped as retention does."""
    for path in list(log_dir.glob(f"*/*_{_day(0)}.log")):
        data = path.read_bytes().replace(f'"{_day(0)}T'.encode(), f'"{day}T'.encode())
        target = path.with_name(path.name.replace(_day(0), day) + ".gz")
        target.write_bytes(gzip.compress(data))
        path.unlink()


@pytest.fixture(scope="module")
def real_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log_dir = tmp_path_factory.mktemp("real") / "logs"
    _log(FIRST_PROCESS, log_dir)
    _move_to_day(log_dir, _day(2))
    _log(SECOND_PROCESS, log_dir)
    return log_dir


def _copy(real_logs: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(real_logs, tmp_path / "logs"))


def test_trace_merges_a_gzipped_day_and_today(real_logs: Path) -> None:
    result = run_cli("trace", "ast-100", "--log-dir", real_logs, "--json")
    assert result.returncode == 0, result.stderr
    answer = orjson.loads(result.stdout)
    assert [r["message"] for r in answer["records"]] == [
        "Call started",
        "stt_transcription completed",
        "llm_generation completed",
        "tts_synthesis completed",
        "Call completed",
    ]
    assert answer["records"][0]["timestamp"].startswith(_day(2))
    assert set(answer["stages"]) == {"stt_transcription", "llm_generation", "tts_synthesis"}
    assert answer["stages"]["llm_generation"]["total_ms"] >= 30
    assert "chain" in answer["records"][-1]  # the audit copy of the record
    assert answer["total_ms"] > 86_400_000  # the call spans two days
    assert answer["skipped_lines"] == 0


def test_trace_shows_the_failed_call_with_its_exception(real_logs: Path) -> None:
    result = run_cli("trace", "ast-200", "--log-dir", real_logs)
    assert result.returncode == 0, result.stderr
    assert "TimeoutError: model did not answer" in result.stdout
    assert result.stdout.count("Call failed") == 2  # the error and the audit record
    assert "ast-100" not in result.stdout


def test_trace_of_an_unknown_call_exits_1(real_logs: Path) -> None:
    assert run_cli("trace", "ast-999", "--log-dir", real_logs).returncode == 1


def test_trace_skips_a_line_torn_by_a_crash(real_logs: Path, tmp_path: Path) -> None:
    logs = _copy(real_logs, tmp_path)
    app = logs / f"app/app_{_day(0)}.log"
    with app.open("ab") as handle:
        handle.write(b'{"timestamp":"' + _day(0).encode() + b'T23:59:59Z","call_id":"ast-200","mes')
    result = run_cli("trace", "ast-200", "--log-dir", logs, "--json")
    assert result.returncode == 0
    assert orjson.loads(result.stdout)["skipped_lines"] == 1
    assert "skipped 1 malformed line" in result.stderr


def test_tail_shows_todays_records_filtered(real_logs: Path) -> None:
    result = run_cli("tail", "--log-dir", real_logs, "--level", "ERROR")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 3  # the record, its exception and where it was raised
    assert "Call failed" in result.stdout and "TimeoutError" in result.stdout
    assert "ast-100" in run_cli("tail", "--log-dir", real_logs, "--call-id", "ast-100").stdout


def test_tail_follow_prints_records_another_process_writes(real_logs: Path, tmp_path: Path) -> None:
    logs = _copy(real_logs, tmp_path)
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "callwatch.cli",
            "tail",
            "-f",
            "-n",
            "0",
            "--log-dir",
            str(logs),
            "--call-id",
            "ast-300",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        time.sleep(1.0)  # let it reach the end of the file before new records arrive
        _log(
            'from callwatch.logger import log, set_call_id\nset_call_id("ast-300")\n'
            'log.warning("Caller on hold", extra={"seconds": 12})\n',
            logs,
        )
        deadline = time.monotonic() + 20
        line = ""
        while "Caller on hold" not in line and time.monotonic() < deadline:
            line = follower.stdout.readline() if follower.stdout else ""
        assert "Caller on hold" in line and "seconds=12" in line
    finally:
        follower.terminate()
        follower.wait(10)


def test_prune_compresses_past_days_and_deletes_expired(real_logs: Path, tmp_path: Path) -> None:
    logs = _copy(real_logs, tmp_path)
    today = logs / f"app/app_{_day(0)}.log"
    shutil.copy(today, logs / f"app/app_{_day(3)}.log")
    shutil.copy(today, logs / f"app/app_{_day(40)}.log")
    result = run_cli("logs", "prune", "--log-dir", logs)
    assert result.returncode == 0, result.stderr
    assert "compressed: 1 file(s)" in result.stdout and "deleted: 1 file(s)" in result.stdout
    assert (logs / f"app/app_{_day(3)}.log.gz").exists()
    assert not (logs / f"app/app_{_day(40)}.log").exists()
    assert today.exists()
    # The compressed day is still traced.
    assert run_cli("trace", "ast-100", "--log-dir", logs).returncode == 0


def test_audit_verify_passes_then_catches_tampering(real_logs: Path, tmp_path: Path) -> None:
    logs = _copy(real_logs, tmp_path)
    ok = run_cli("audit", "verify", "--log-dir", logs)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    audit = logs / f"audit/audit_{_day(0)}.log"
    lines = audit.read_bytes().splitlines(keepends=True)
    assert len(lines) == 2
    lines[0] = lines[0].replace(b'"duration_sec":1.5', b'"duration_sec":0.5')
    audit.write_bytes(b"".join(lines))
    bad = run_cli("audit", "verify", "--log-dir", logs)
    assert bad.returncode == 1
    assert "TAMPERED" in bad.stdout and "first bad line 1" in bad.stdout
    assert run_cli("audit", "verify", audit).returncode == 1
    assert run_cli("audit", "verify", logs / "audit" / "nope.log").returncode == 2


def test_audit_verify_reads_gzipped_days_and_uses_the_hmac_key(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    code = (
        "from callwatch.logger import audit_log\n"
        "for n in range(3):\n"
        '    audit_log("Payment processed", user_id=n, amount=9.99, currency="USD")\n'
    )
    done = run_python(
        "-c",
        code,
        LOG_DIR=str(logs),
        ENVIRONMENT="production",
        LOG_CONSOLE="false",
        AUDIT_HMAC_KEY="k" * 32,
    )
    assert done.returncode == 0, done.stderr
    audit = logs / f"audit/audit_{_day(0)}.log"
    audit.with_name(audit.name + ".gz").write_bytes(gzip.compress(audit.read_bytes()))
    audit.unlink()
    signed = run_cli("audit", "verify", "--log-dir", logs, AUDIT_HMAC_KEY="k" * 32)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert "3 records" in signed.stdout
    keyless = run_cli("audit", "verify", "--log-dir", logs)
    assert keyless.returncode == 1
    assert "AUDIT_HMAC_KEY" in keyless.stdout
    wrong = run_cli("audit", "verify", "--log-dir", logs, AUDIT_HMAC_KEY="x" * 32)
    assert wrong.returncode == 1 and "first bad line 1" in wrong.stdout


def test_audit_verify_without_audit_files_exits_1(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    result = run_cli("audit", "verify", "--log-dir", tmp_path / "logs")
    assert result.returncode == 1 and "no audit files" in result.stderr
    assert run_cli("audit", "verify", "--log-dir", tmp_path / "nope").returncode == 2
