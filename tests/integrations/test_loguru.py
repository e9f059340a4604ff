"""loguru's records in callwatch's pipeline: schema, redaction, files, the current call id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import read_records
from tests.integrations.conftest import need_package

need_package("loguru", "loguru")

from loguru import logger  # noqa: E402

from callwatch.context import bind_call  # noqa: E402
from callwatch.integrations import loguru as bridge  # noqa: E402


@pytest.fixture(autouse=True)
def installed(log_dir: Path) -> Iterator[None]:
    bridge.install()
    yield
    bridge.uninstall()


def test_records_carry_the_call_id_bound_where_they_were_logged(log_dir: Path) -> None:
    with bind_call("lg-1", caller="+15550111"):
        logger.bind(service="tts").info("synthesis started for {}", "turn 1")
    logger.warning("outside any call")
    records = [r for r in read_records(log_dir, "app") if r["logger"] == __name__]
    first, second = records
    assert first["message"] == "synthesis started for turn 1"
    assert first["call_id"] == "lg-1" and first["level"] == "INFO"
    assert first["extra"] == {"caller": "+15550111", "service": "tts"}
    assert first["function"] == "test_records_carry_the_call_id_bound_where_they_were_logged"
    assert second["call_id"] is None and second["level"] == "WARNING"


def test_errors_go_to_errors_with_the_exception_and_card_numbers_never_reach_disk(
    log_dir: Path,
) -> None:
    try:
        raise RuntimeError("tts socket closed")
    except RuntimeError:
        logger.exception("card 4111 1111 1111 1111 declined")
    (record,) = [r for r in read_records(log_dir, "errors") if r["logger"] == __name__]
    assert record["level"] == "ERROR"
    assert record["exception"]["type"] == "RuntimeError"
    on_disk = b"".join(p.read_bytes() for p in log_dir.rglob("*.log"))
    assert b"4111 1111 1111 1111" not in on_disk and b"4111111111111111" not in on_disk


def test_existing_sinks_are_left_alone_and_install_is_idempotent(log_dir: Path) -> None:
    seen: list[str] = []
    own = logger.add(seen.append, format="{message}")
    try:
        assert bridge.install() == bridge.install()
        logger.info("both hear this")
    finally:
        logger.remove(own)
    assert seen == ["both hear this\n"]
    assert any(r["message"] == "both hear this" for r in read_records(log_dir, "app"))


def test_trace_and_levels_below_log_level_are_left_out(log_dir: Path) -> None:
    logger.trace("too fine")
    logger.debug("below INFO")
    assert not [r for r in read_records(log_dir, "app") if r["logger"] == __name__]
