"""A record that cannot be built is still written, as a redacted marker, and counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from callwatch._logging import pipeline
from callwatch._logging.audit import verify_dir
from callwatch._logging.pipeline import UNBUILDABLE
from callwatch._logging.stats import STATS
from callwatch._logging.writer import BATCH_SINKS, Item
from callwatch.logger import add_processor, audit_log, log, set_call_id
from tests.helpers import read_records

CARD = "4111 1111 1111 1111"
SECRET_MESSAGE = f"card {CARD} password=hunter2"


def _explode(logger: Any, method: str, record: dict[str, Any]) -> dict[str, Any]:
    raise RecursionError("maximum recursion depth exceeded: " + str(record["message"]))


@pytest.fixture
def failing_processor(log_dir: Path) -> Iterator[Path]:
    add_processor(_explode)
    try:
        yield log_dir
    finally:
        pipeline.processors.remove(_explode)


def _leaks(text: str) -> bool:
    return "hunter2" in text or CARD in text or CARD.replace(" ", "") in text


def test_an_unbuildable_error_is_written_as_a_redacted_marker_and_counted(
    failing_processor: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    before = STATS.internal_errors
    set_call_id("ast-77")
    try:
        log.error(SECRET_MESSAGE, extra={"password": "hunter2"})
        log.info(SECRET_MESSAGE)
    finally:
        set_call_id(None)
    assert STATS.internal_errors - before == 2
    (error,) = read_records(failing_processor, "errors")
    assert error["message"] == UNBUILDABLE
    assert error["level"] == "ERROR"
    assert error["logger"] == __name__
    assert error["call_id"] == "ast-77"
    assert error["extra"] == {"error_type": "RecursionError"}
    app = read_records(failing_processor, "app")
    assert [r["level"] for r in app] == ["ERROR", "INFO"]
    assert all(r["message"] == UNBUILDABLE for r in app)
    captured = capfd.readouterr()
    assert "RecursionError" in captured.err
    assert not _leaks(captured.err + captured.out)
    for folder in ("app", "errors"):
        assert not any(_leaks(p.read_text()) for p in (failing_processor / folder).iterdir())


def test_an_unbuildable_audit_record_stays_in_the_chain(failing_processor: Path) -> None:
    audit_log("refund.issued", call_id="c-9", card=CARD)
    (record,) = read_records(failing_processor, "audit")
    assert record["message"] == UNBUILDABLE
    assert record["chain"]["seq"] == 1
    assert not _leaks(str(record))
    assert all(result.ok for _, result in verify_dir(failing_processor))


def test_an_audit_record_is_one_chained_line_in_app_and_for_exporters(log_dir: Path) -> None:
    handed: list[Item] = []
    BATCH_SINKS.append(handed.extend)
    try:
        audit_log("refund.issued", call_id="c-9", amount_cents=1200)
    finally:
        BATCH_SINKS.remove(handed.extend)
    (audit,) = read_records(log_dir, "audit")
    assert audit["chain"]["seq"] == 1
    assert [r for r in read_records(log_dir, "app") if r["message"] == "refund.issued"] == [audit]
    exported = [orjson.loads(line) for _, _, line, _, _ in handed if b"refund.issued" in line]
    assert exported == [audit]
    assert all(result.ok for _, result in verify_dir(log_dir))


@pytest.mark.parametrize(
    "hostile",
    [
        "q=" + "a=" * 500,
        "a:" * 600,
    ],
)
def test_hostile_text_is_written_one_way_or_the_other_and_leaks_nothing(
    log_dir: Path, capfd: pytest.CaptureFixture[str], hostile: str
) -> None:
    log.error(f"{hostile} {SECRET_MESSAGE}")
    nested: dict[str, Any] = {"password": "hunter2"}
    for _ in range(600):
        nested = {"n": nested}
    log.error("deep", extra={"payload": nested, "card": CARD})
    records = read_records(log_dir, "errors")
    assert len(records) == 2
    assert not any(_leaks(str(record)) for record in records)
    assert not _leaks(capfd.readouterr().err)


def test_configured_secrets_are_masked_wherever_they_are_quoted(tmp_path: Path) -> None:
    import callwatch

    token = "Tok3n-" + "x7" * 12
    hook = "https://hooks.example.com/T0/B0/" + "s3" * 12
    key = "hmac-key-" + "k9" * 12
    callwatch.configure(log_dir=tmp_path, console=False, environment="production",
                        monitoring_token=token, alert_webhook_url=hook, audit_hmac_key=key)
    try:
        log.error(f"POST {hook} failed", extra={"auth": f"Bearer {token}", "note": key})
        log.warning("path only: " + hook.split("example.com", 1)[1])
        records = read_records(tmp_path, "app")
    finally:
        callwatch.shutdown()
    text = str(records)
    assert len(records) == 2
    for secret in (token, hook, key, "s3" * 12):
        assert secret not in text


def test_a_log_call_that_fails_before_its_record_is_built_leaves_a_marker(
    log_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    before = STATS.internal_errors
    log.error(SECRET_MESSAGE, exc_info=(ValueError, ValueError("x"), 42))  # 42: no traceback
    (marker,) = read_records(log_dir, "errors")
    assert marker["message"] == UNBUILDABLE
    assert marker["extra"] == {"error_type": "AttributeError"}
    assert STATS.internal_errors - before == 1
    assert not _leaks(capfd.readouterr().err)
