"""``callwatch trace`` on hand-made log directories in the logging core's format."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from callwatch.cli import trace
from tests.cli.conftest import record, run_cli, run_python, write_lines


def _perf(ts: str, call_id: str, operation: str, ms: float, ok: bool = True) -> dict:
    return record(
        ts, f"{operation} completed", call_id, operation=operation, duration_ms=ms, success=ok
    )


def _call_over_two_days(logs: Path) -> None:
    """ast-1 starts before midnight (a gzipped past day) and ends after it."""
    started = record("2024-01-04T23:59:59.500000Z", "Call started", "ast-1", caller="+1")
    stt = _perf("2024-01-04T23:59:59.900000Z", "ast-1", "stt_transcription", 400.0)
    other = record("2024-01-04T23:59:59.950000Z", "Call started", "ast-10")
    llm = _perf("2024-01-05T00:00:00.700000Z", "ast-1", "llm_generation", 800.0)
    llm2 = _perf("2024-01-05T00:00:01.500000Z", "ast-1", "llm_generation", 700.0, ok=False)
    failed = record("2024-01-05T00:00:01.600000Z", "Call failed", "ast-1", level="ERROR")
    failed["exception"] = {
        "type": "LLMError",
        "message": "503 upstream",
        "frames": [{"file": "agent.py", "line": 9, "function": "generate"}],
    }
    audit = record("2024-01-05T00:00:01.700000Z", "Call failed", None)
    audit["extra"] = {"call_id": "ast-1", "success": False}  # audit_log(call_id=...) fields
    chained = {**audit, "chain": {"seq": 7, "prev": "aa", "hash": "bb"}}
    write_lines(logs / "app/app_2024-01-04.log", [started, stt, other], gz=True)
    write_lines(logs / "performance/performance_2024-01-04.log", [stt], gz=True)
    # app/ holds every record, so each one below also sits in a second folder.
    write_lines(logs / "app/app_2024-01-05.log", [llm, audit, llm2, failed])
    write_lines(logs / "performance/performance_2024-01-05.log", [llm, llm2])
    write_lines(logs / "errors/error_2024-01-05.log", [failed])
    write_lines(logs / "audit/audit_2024-01-05.log", [chained])


def test_json_merges_folders_and_days_in_time_order_without_duplicates(cli_log_dir: Path) -> None:
    _call_over_two_days(cli_log_dir)
    result = run_cli("trace", "ast-1", "--log-dir", cli_log_dir, "--json")
    assert result.returncode == 0, result.stderr
    answer = orjson.loads(result.stdout)
    messages = [r["message"] for r in answer["records"]]
    assert messages == [
        "Call started",
        "stt_transcription completed",
        "llm_generation completed",
        "llm_generation completed",
        "Call failed",
        "Call failed",
    ]
    assert answer["records"][-1]["chain"]["seq"] == 7  # the audit copy, chain kept
    assert answer["stages"]["llm_generation"] == {
        "count": 2,
        "total_ms": 1500.0,
        "mean_ms": 750.0,
        "max_ms": 800.0,
        "failures": 1,
    }
    assert answer["stage_total_ms"] == 1900.0
    assert answer["total_ms"] == 2200.0
    assert answer["first"] == "2024-01-04T23:59:59.500000Z"


def test_a_read_past_its_deadline_stops_and_says_how_far_it_got(cli_log_dir: Path) -> None:
    _call_over_two_days(cli_log_dir)
    whole = trace.collect(cli_log_dir, "ast-1", until=time.monotonic() + 60)
    assert whole.read_cut is None and whole.records
    cut = trace.collect(cli_log_dir, "ast-1", until=time.monotonic() - 1)
    assert cut.read_cut == "out of time after 0 of 6 files"
    assert not cut.records


def test_json_says_what_was_read_and_who_wrote_the_call(cli_log_dir: Path) -> None:
    _call_over_two_days(cli_log_dir)
    spanned = {**record("2024-01-05T00:00:02.000000Z", "Call ended", "ast-1"),
               "host": "media-2", "pid": 31, "trace_id": "0af7651916cd43dd8448eb211c80319c",
               "span_id": "b7ad6b7169203331"}
    write_lines(cli_log_dir / "app/app_2024-01-06.log", [spanned])
    answer = orjson.loads(run_cli("trace", "ast-1", "--log-dir", cli_log_dir, "--json").stdout)
    assert (answer["source"], answer["read_from"], answer["read_cut"]) == (
        "files", str(cli_log_dir), None)
    assert len(answer["records"]) == 7
    assert answer["rows_read"] == 12  # the copies in app/ are read too
    assert answer["hosts"] == ["?", "media-2"]  # hand-made records without a host
    assert answer["processes"] == 2
    assert answer["trace_ids"] == ["0af7651916cd43dd8448eb211c80319c"]
    text = run_cli("trace", "ast-1", "--log-dir", cli_log_dir).stdout
    assert "trace 0af7651916cd43dd8448eb211c80319c" in text


def test_pretty_output_shows_stages_total_and_exception(cli_log_dir: Path) -> None:
    _call_over_two_days(cli_log_dir)
    result = run_cli("trace", "ast-1", "--log-dir", cli_log_dir)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Call ast-1" in out and "6 records" in out
    assert "LLMError: 503 upstream" in out
    assert "llm_generation" in out and "1500.0" in out
    assert "total (first to last record): 2.200 s" in out
    assert "ast-10" not in out


def test_plain_output_without_rich(cli_log_dir: Path) -> None:
    _call_over_two_days(cli_log_dir)
    code = (
        "import sys; sys.modules['rich'] = None; from callwatch.cli.main import main; "
        f"sys.exit(main(['trace', 'ast-1', '--log-dir', {str(cli_log_dir)!r}]))"
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert "total (first to last record): 2.200 s" in result.stdout


def test_unknown_call_exits_1(cli_log_dir: Path) -> None:
    _call_over_two_days(cli_log_dir)
    result = run_cli("trace", "ast-404", "--log-dir", cli_log_dir)
    assert result.returncode == 1
    assert "ast-404 not found" in result.stderr
    as_json = run_cli("trace", "ast-404", "--log-dir", cli_log_dir, "--json")
    assert as_json.returncode == 1
    assert orjson.loads(as_json.stdout)["found"] is False


def test_torn_lines_and_broken_gzip_are_skipped_and_counted(cli_log_dir: Path) -> None:
    whole = record("2024-01-05T10:00:00.000000Z", "Call started", "ast-2")
    after = record("2024-01-05T10:00:01.000000Z", "Turn completed", "ast-2")
    torn = b'{"timestamp":"2024-01-05T09:59:59.0Z","call_id":"ast-2","mess'
    glued = torn + orjson.dumps(after)  # a crash mid-write, then the next record on that line
    write_lines(cli_log_dir / "app/app_2024-01-05.log", [whole, torn, glued, b"[1]"])
    (cli_log_dir / "app/app_2024-01-04.log.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    result = run_cli("trace", "ast-2", "--log-dir", cli_log_dir, "--json")
    assert result.returncode == 0, result.stderr
    answer = orjson.loads(result.stdout)
    assert [r["message"] for r in answer["records"]] == ["Call started", "Turn completed"]
    assert answer["skipped_lines"] == 2
    assert "app_2024-01-04.log.gz" in result.stderr


def test_call_id_needing_json_escapes(cli_log_dir: Path) -> None:
    odd = 'call "quoted" \\ é'
    write_lines(
        cli_log_dir / "app/app_2024-01-05.log",
        [record("2024-01-05T10:00:00.000000Z", "Call started", odd)],
    )
    result = run_cli("trace", odd, "--log-dir", cli_log_dir, "--json")
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["records"][0]["call_id"] == odd


def test_missing_log_dir_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("trace", "ast-1", "--log-dir", tmp_path / "nope")
    assert result.returncode == 2
    assert "no log directory" in result.stderr


def test_log_dir_defaults_to_LOG_DIR(cli_log_dir: Path) -> None:
    _call_over_two_days(cli_log_dir)
    result = run_cli("trace", "ast-1", "--json", LOG_DIR=str(cli_log_dir))
    assert result.returncode == 0, result.stderr


def test_any_source_feeds_the_engine_through_add() -> None:
    """A source other than log files builds the same story, in time order, without copies."""
    from callwatch.cli.trace import CallTrace, as_json

    trace = CallTrace("ast-7")
    late = _perf("2024-01-05T10:00:02.000000Z", "ast-7", "llm_generation", 300.0, ok=False)
    early = record("2024-01-05T10:00:00.000000Z", "Call started", "ast-7")
    assert trace.add("performance", late) is True
    assert trace.add("app", early) is True
    assert trace.add("app", dict(late)) is False  # the app/ copy of a record already taken
    answer = as_json(trace)
    assert [r["message"] for r in answer["records"]] == ["Call started", "llm_generation completed"]
    assert [folder for folder, _ in trace.records] == ["app", "performance"]
    assert answer["stages"]["llm_generation"]["failures"] == 1
    assert (answer["found"], answer["total_ms"]) == (True, 2000.0)
    assert orjson.loads(orjson.dumps(answer)) == answer


def test_days_limits_the_reading_to_the_last_utc_days(cli_log_dir: Path) -> None:
    today = datetime.now(timezone.utc)
    old_day = (today - timedelta(days=3)).strftime("%Y-%m-%d")
    day = today.strftime("%Y-%m-%d")
    write_lines(
        cli_log_dir / f"app/app_{old_day}.log",
        [record(f"{old_day}T10:00:00.000000Z", "Call started", "ast-9")],
    )
    write_lines(
        cli_log_dir / f"app/app_{day}.log", [record(f"{day}T10:00:00.000000Z", "Call ended", "ast-9")]
    )
    every = orjson.loads(run_cli("trace", "ast-9", "--log-dir", cli_log_dir, "--json").stdout)
    assert [r["message"] for r in every["records"]] == ["Call started", "Call ended"]
    recent = run_cli("trace", "ast-9", "--log-dir", cli_log_dir, "--json", "--days", "3")
    answer = orjson.loads(recent.stdout)
    assert [r["message"] for r in answer["records"]] == ["Call ended"]
    assert answer["files_scanned"] == 1
