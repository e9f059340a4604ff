from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import socket
from pathlib import Path

import pytest

import callwatch
from callwatch.logger import (
    add_handler,
    audit_log,
    bind_call,
    clear_context,
    get_call_id,
    log,
    perf_timer,
    set_call_id,
)
from callwatch.testing import capture_logs
from tests.helpers import read_records

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
SCHEMA = [
    "timestamp",
    "level",
    "logger",
    "function",
    "line",
    "message",
    "app",
    "environment",
    "host",
    "pid",
    "call_id",
    "extra",
]


def test_a_record_has_the_guides_production_schema(log_dir: Path) -> None:
    set_call_id("ast-123-456")
    log.info("Call started", extra={"caller_number": "+1234567890", "extension": "100"})
    line_of_call = test_a_record_has_the_guides_production_schema.__code__.co_firstlineno + 2
    clear_context()

    (record,) = read_records(log_dir, "app")
    assert list(record) == SCHEMA
    assert TIMESTAMP.match(record["timestamp"])
    assert record["level"] == "INFO"
    assert record["logger"] == __name__
    assert record["function"] == "test_a_record_has_the_guides_production_schema"
    assert record["line"] == line_of_call
    assert record["message"] == "Call started"
    assert record["app"] == "ai_voice_agent"
    assert record["environment"] == "production"
    assert record["host"] == socket.gethostname()
    assert record["pid"] == os.getpid()
    assert record["call_id"] == "ast-123-456"
    assert record["extra"] == {"caller_number": "+1234567890", "extension": "100"}


def test_a_forked_worker_writes_its_own_pid(log_dir: Path) -> None:
    log.error("from the parent")
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        try:
            log.error("from the child")
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    pids = {r["message"]: r["pid"] for r in read_records(log_dir, "errors")}
    assert pids == {"from the parent": os.getpid(), "from the child": child}


def test_keyword_fields_join_extra_and_percent_args_interpolate(log_dir: Path) -> None:
    log.info("Turn %d of %s", 3, "ast-1", extra={"a": 1}, stage="llm")
    (record,) = read_records(log_dir, "app")
    assert record["message"] == "Turn 3 of ast-1"
    assert record["extra"] == {"a": 1, "stage": "llm"}


def test_each_category_file_holds_its_own_records(log_dir: Path) -> None:
    log.debug("not written at INFO")
    log.info("info line")
    log.warning("warning line")
    log.error("error line")
    log.critical("critical line")
    with perf_timer("stt_transcription"):
        pass
    audit_log("Call completed", call_id="c-1", cost_usd=0.02)

    app = [r["message"] for r in read_records(log_dir, "app")]
    assert app == [
        "info line",
        "warning line",
        "error line",
        "critical line",
        "stt_transcription completed",
        "Call completed",
    ]
    assert [r["message"] for r in read_records(log_dir, "errors")] == [
        "error line",
        "critical line",
    ]
    (timer,) = read_records(log_dir, "performance")
    assert timer["extra"]["operation"] == "stt_transcription"
    assert timer["extra"]["success"] is True
    assert timer["extra"]["duration_ms"] >= 0
    (audit,) = read_records(log_dir, "audit")
    assert audit["message"] == "Call completed"
    assert audit["extra"] == {"call_id": "c-1", "cost_usd": 0.02}
    assert set(audit["chain"]) >= {"seq", "prev", "hash"}


def test_files_are_named_by_utc_day(log_dir: Path) -> None:
    log.error("boom")
    (record,) = read_records(log_dir, "errors")
    day = record["timestamp"][:10]
    assert (log_dir / "app" / f"app_{day}.log").is_file()
    assert (log_dir / "errors" / f"error_{day}.log").is_file()


def test_log_level_is_the_minimum_written_anywhere(tmp_path: Path) -> None:
    callwatch.configure(log_dir=tmp_path, console=False, log_level="WARNING")
    try:
        log.info("dropped")
        with perf_timer("op"):
            pass
        log.warning("kept")
        assert [r["message"] for r in read_records(tmp_path, "app")] == ["kept"]
        assert read_records(tmp_path, "performance") == []
    finally:
        callwatch.shutdown()


def test_exception_is_structured_without_local_variables(log_dir: Path) -> None:
    def failing() -> None:
        secret_local = "do-not-log-me"  # noqa: F841 - locals must never reach the record
        raise ValueError("bad audio frame")

    try:
        failing()
    except ValueError:
        log.exception("Call failed")
    (record,) = read_records(log_dir, "errors")
    exception = record["exception"]
    assert record["level"] == "ERROR"
    assert exception["type"] == "ValueError"
    assert exception["message"] == "bad audio frame"
    assert exception["frames"][-1]["function"] == "failing"
    assert "do-not-log-me" not in str(record)


def test_exception_causes_are_kept(log_dir: Path) -> None:
    try:
        try:
            raise TimeoutError("stt timed out")
        except TimeoutError as inner:
            raise RuntimeError("turn failed") from inner
    except RuntimeError:
        log.exception("Call failed")
    (record,) = read_records(log_dir, "errors")
    assert record["exception"]["cause"]["type"] == "TimeoutError"


def test_call_id_follows_the_context_and_is_cleared(log_dir: Path) -> None:
    assert get_call_id() is None
    set_call_id("c-9")
    assert get_call_id() == "c-9"
    log.info("inside")
    clear_context()
    log.info("outside")
    assert [r["call_id"] for r in read_records(log_dir, "app")] == ["c-9", None]


async def test_concurrent_calls_keep_their_own_ids(log_dir: Path) -> None:
    async def call(call_id: str) -> None:
        async with bind_call(call_id, caller="+15550001"):
            await asyncio.sleep(0.01)
            log.info("turn")
            await asyncio.sleep(0.01)

    await asyncio.gather(*(call(f"c-{i}") for i in range(5)))
    records = read_records(log_dir, "app")
    assert sorted(r["call_id"] for r in records) == [f"c-{i}" for i in range(5)]
    assert all(r["extra"] == {"caller": "+15550001"} for r in records)
    assert get_call_id() is None


def test_bind_call_nests_and_restores(log_dir: Path) -> None:
    with bind_call("outer", region="eu"):
        with bind_call("inner", turn=2):
            log.info("nested")
        log.info("back")
    log.info("none")
    records = read_records(log_dir, "app")
    assert [(r["call_id"], r["extra"]) for r in records] == [
        ("inner", {"region": "eu", "turn": 2}),
        ("outer", {"region": "eu"}),
        (None, {}),
    ]


def test_bind_call_decorates_sync_and_async_functions(log_dir: Path) -> None:
    @bind_call("deco-sync")
    def handle() -> None:
        log.info("sync")

    @bind_call("deco-async")
    async def handle_async() -> None:
        log.info("async")

    handle()
    asyncio.run(handle_async())
    assert [r["call_id"] for r in read_records(log_dir, "app")] == ["deco-sync", "deco-async"]


async def test_perf_timer_in_every_form(log_dir: Path) -> None:
    with perf_timer("stt_transcription"):
        pass
    timer = perf_timer("llm_generation")
    with timer:
        pass
    with timer:  # reusable
        pass
    async with perf_timer("tts_synthesis"):
        await asyncio.sleep(0)

    @perf_timer("decorated")
    def work() -> int:
        return 7

    @perf_timer("decorated_async")
    async def work_async() -> int:
        return 8

    assert work() == 7
    assert await work_async() == 8
    with pytest.raises(KeyError), perf_timer("failing"):
        raise KeyError("x")

    operations = [
        (r["extra"]["operation"], r["extra"]["success"])
        for r in read_records(log_dir, "performance")
    ]
    assert operations == [
        ("stt_transcription", True),
        ("llm_generation", True),
        ("llm_generation", True),
        ("tts_synthesis", True),
        ("decorated", True),
        ("decorated_async", True),
        ("failing", False),
    ]


def test_a_failed_perf_timer_block_is_a_warning_with_its_exception_type(
    tmp_path: Path,
) -> None:
    callwatch.configure(log_dir=tmp_path, console=False, log_level="WARNING")
    try:
        with perf_timer("stt_transcription"):
            pass
        with pytest.raises(TimeoutError), perf_timer("llm_generation"):
            raise TimeoutError("upstream")
        (record,) = read_records(tmp_path, "performance")
    finally:
        callwatch.shutdown()
    assert record["level"] == "WARNING"
    assert record["message"] == "llm_generation failed"
    assert record["extra"]["error_type"] == "TimeoutError"
    assert record["extra"]["success"] is False


def test_a_call_id_given_as_a_field_is_the_records_call_id(log_dir: Path) -> None:
    audit_log("Call completed", call_id="c-9", duration_sec=1.5)  # the guide's sample
    log.info("Turn", extra={"call_id": "c-10"})
    with bind_call("bound-1"):
        log.info("Bound wins", extra={"call_id": "other"})
    (audit,) = read_records(log_dir, "audit")
    assert audit["call_id"] == "c-9"
    assert audit["extra"]["call_id"] == "c-9"
    app = read_records(log_dir, "app")
    assert [r["call_id"] for r in app] == ["c-9", "c-10", "bound-1"]


def test_call_ids_are_bounded_and_redacted_before_they_reach_records(log_dir: Path) -> None:
    from callwatch.context import MAX_CALL_ID_CHARS

    set_call_id("x" * 1_000_000)
    log.info("long id")
    set_call_id("4111 1111 1111 1111")
    log.info("card as id")
    with bind_call("password=hunter2"):
        log.info("secret as id")
    audit_log("Call completed", call_id=["4111111111111111"])
    clear_context()
    app = read_records(log_dir, "app")
    assert len(app[0]["call_id"]) == MAX_CALL_ID_CHARS
    assert get_call_id() is None
    assert [r["call_id"] for r in app[1:3]] == ["[CARD]", "password=[REDACTED]"]
    (audit,) = read_records(log_dir, "audit")
    assert "4111111111111111" not in audit["call_id"]


def test_perf_timer_feeds_operation_metrics(log_dir: Path) -> None:
    from callwatch._metrics.operations import snapshot

    before = snapshot().get("metrics_feed_op")
    with perf_timer("metrics_feed_op"):
        pass
    after = snapshot()["metrics_feed_op"]
    assert after.count == (before.count if before else 0) + 1


def test_stdlib_loggers_flow_into_the_pipeline(log_dir: Path) -> None:
    set_call_id("std-1")
    logging.getLogger("httpx").info("HTTP Request: %s", "POST /v1/chat", extra={"status": 200})
    logging.getLogger("myapp.telephony").error("ARI socket closed")
    clear_context()
    app = read_records(log_dir, "app")
    assert [(r["logger"], r["message"], r["call_id"]) for r in app] == [
        ("httpx", "HTTP Request: POST /v1/chat", "std-1"),
        ("myapp.telephony", "ARI socket closed", "std-1"),
    ]
    assert app[0]["extra"] == {"status": 200}
    assert [r["message"] for r in read_records(log_dir, "errors")] == ["ARI socket closed"]


def test_stdlib_logger_names_are_redacted(log_dir: Path) -> None:
    logging.getLogger("tenant.4111111111111111").warning("named after a card")
    logging.getLogger("sk-" + "a" * 40).warning("named after a key")
    names = [r["logger"] for r in read_records(log_dir, "app")]
    assert names == ["tenant.[CARD]", "[REDACTED]"]


def test_add_handler_receives_the_json_line(log_dir: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    add_handler(handler, level="WARNING")
    try:
        log.info("below the handler's level")
        log.warning("shipped", extra={"k": "v"})
        callwatch.logger.prune_logs()  # flushes the writer
    finally:
        callwatch.logger.remove_handler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert '"message":"shipped"' in lines[0]
    assert '"extra":{"k":"v"}' in lines[0]


def test_with_handler_level_validation() -> None:
    with pytest.raises(ValueError, match="LOUD"):
        add_handler(logging.NullHandler(), level="LOUD")


def test_a_logging_call_never_raises(log_dir: Path) -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no str")

        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    log.info(Hostile())
    log.info("%d items", "not-a-number")
    log.info("fields", extra=Hostile())
    log.info("extra", extra={"obj": Hostile()})
    records = read_records(log_dir, "app")
    assert len(records) == 4
    assert records[1]["message"].startswith("%d items")
    assert records[3]["extra"]["obj"].startswith("<unrepresentable Hostile")


def test_capture_logs_collects_records_without_files(log_dir: Path) -> None:
    with capture_logs() as records:
        set_call_id("cap-1")
        log.warning("Low confidence", extra={"confidence": 0.31})
        clear_context()
    assert records[0]["message"] == "Low confidence"
    assert records[0]["call_id"] == "cap-1"
    assert records[0]["extra"] == {"confidence": 0.31}
    assert read_records(log_dir, "app") == []


def test_development_console_is_readable(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    callwatch.configure(log_dir=tmp_path, environment="development")
    try:
        with bind_call("dev-1"):
            log.info("Call started\x1b[31m", extra={"caller": "+1555"})
        callwatch.logger.prune_logs()
    finally:
        callwatch.shutdown()
    out = capfd.readouterr().out
    assert "INFO" in out
    assert "[dev-1]" in out
    assert "Call started\\x1b[31m" in out  # escapes are shown, never obeyed
    assert 'caller="+1555"' in out
    assert not out.lstrip().startswith("{")


def test_the_development_console_shows_only_redacted_text(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    callwatch.configure(log_dir=tmp_path, environment="development")
    try:
        with bind_call("4111 1111 1111 1111"):
            log.info("card 4111 1111 1111 1111", extra={"password": "hunter2", "n": "5555555555554444"})
        logging.getLogger("x.4111111111111111").error("via stdlib")
    finally:
        callwatch.shutdown()
    out = capfd.readouterr().out
    assert "[CARD]" in out and "via stdlib" in out
    for secret in ("4111 1111", "4111111111111111", "hunter2", "5555555555554444"):
        assert secret not in out


def test_production_console_is_json(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    callwatch.configure(log_dir=tmp_path, environment="production")
    try:
        log.info("json please")
    finally:
        callwatch.shutdown()
    out = capfd.readouterr().out.strip().splitlines()
    assert out[-1].startswith("{") and '"message":"json please"' in out[-1]


def test_unwritable_log_dir_is_said_once_and_console_goes_on(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    callwatch.configure(log_dir=blocker / "logs", environment="production")
    try:
        for i in range(50):
            log.info("still logging %d", i)
        callwatch.logger.prune_logs()
    finally:
        callwatch.shutdown()
    captured = capfd.readouterr()
    assert captured.err.count("not writable") == 1
    assert str(blocker / "logs") in captured.err
    assert captured.out.count("still logging") == 50


def test_shutdown_flushes_queued_records(tmp_path: Path) -> None:
    callwatch.configure(log_dir=tmp_path, console=False, flush_interval_ms=60_000)
    for i in range(100):
        log.info("queued %d", i)
    callwatch.shutdown()
    lines = (tmp_path / "app").glob("*.log")
    assert sum(len(p.read_bytes().splitlines()) for p in lines) == 100


def test_uvicorn_log_config_routes_uvicorn_records_into_callwatch(log_dir: Path) -> None:
    import logging.config

    from callwatch.logger import uvicorn_log_config

    logging.config.dictConfig(uvicorn_log_config())
    logging.getLogger("uvicorn.access").info(
        '127.0.0.1:5000 - "GET /monitoring/health HTTP/1.1" 200'
    )
    (record,) = read_records(log_dir, "app")
    assert record["logger"] == "uvicorn.access"
    assert "GET /monitoring/health" in record["message"]


def test_errors_below_log_level_are_not_written_but_audit_always_is(tmp_path: Path) -> None:
    callwatch.configure(log_dir=tmp_path, console=False, log_level="CRITICAL")
    try:
        log.error("below CRITICAL")
        logging.getLogger("myapp").error("stdlib below CRITICAL")
        audit_log("Refund issued", amount=5)
        log.critical("kept")
        assert [r["message"] for r in read_records(tmp_path, "errors")] == ["kept"]
        assert [r["message"] for r in read_records(tmp_path, "audit")] == ["Refund issued"]
        assert [r["message"] for r in read_records(tmp_path, "app")] == ["kept"]
    finally:
        callwatch.shutdown()


def test_records_logged_after_shutdown_are_still_written(tmp_path: Path) -> None:
    callwatch.configure(log_dir=tmp_path, console=False)
    callwatch.shutdown()
    log.info("late, from an atexit hook")
    lines = b"".join(p.read_bytes() for p in (tmp_path / "app").glob("*.log"))
    assert b"late, from an atexit hook" in lines


def test_the_guides_cloudwatch_sample_runs_with_its_imports(log_dir: Path) -> None:
    import json
    import types

    from callwatch.logger import logger

    shipped: list[str] = []

    class CloudWatchLogHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            shipped.append(record.getMessage())

    watchtower = types.SimpleNamespace(CloudWatchLogHandler=CloudWatchLogHandler)
    handler = watchtower.CloudWatchLogHandler()
    # The guide's sample, verbatim:
    logger.add(handler, format=lambda record: json.dumps(record), level="INFO")  # noqa: PLW0108
    try:
        log.info("to cloudwatch", extra={"k": 1})
        callwatch.logger.prune_logs()
    finally:
        logger.remove(handler)
    assert json.loads(shipped[0])["message"] == "to cloudwatch"
    assert json.loads(shipped[0])["extra"] == {"k": 1}


def test_keys_of_extra_are_redacted_like_values(log_dir: Path) -> None:
    log.info(
        "keys",
        extra={"4111111111111111": "a", 5555555555554444: "b", "password=hunter2": "c", "ok": 1},
    )
    logging.getLogger("stdlib").info("keys", extra={"token=abcdef0123456789": 1})
    first, second = read_records(log_dir, "app")
    assert first["extra"] == {"[CARD]": "a", "[CARD]#2": "b", "password=[REDACTED]": "[REDACTED]", "ok": 1}
    assert second["extra"] == {"token=[REDACTED]": 1}



def test_a_stdlib_record_that_cannot_be_read_becomes_a_marker_not_a_stderr_dump(
    log_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from callwatch._logging.pipeline import UNBUILDABLE

    record = logging.LogRecord(
        "payments", logging.ERROR, __file__, 1, "password=hunter2", None,
        (ValueError, ValueError("x"), 42),  # a traceback that is not one
    )
    bridge = next(h for h in logging.getLogger().handlers if type(h).__name__ == "BridgeHandler")
    bridge.handle(record)  # pytest's own capture handler would choke on it first
    (marker,) = read_records(log_dir, "errors")
    assert marker["message"] == UNBUILDABLE
    assert marker["logger"] == "payments"
    err = capfd.readouterr().err
    assert "Logging error" not in err and "hunter2" not in err
