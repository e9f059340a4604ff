"""A record survives the trip through log attributes, even through a store that keeps text."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from callwatch._otel.attributes import (
    CATEGORY,
    format_timestamp,
    parse_timestamp_ns,
    record_from_attributes,
    to_attributes,
)

RECORD: dict[str, Any] = {
    "timestamp": "2026-12-01T21:15:29.123456Z",
    "level": "INFO",
    "logger": "agent",
    "function": "handle",
    "line": 42,
    "message": "Call processed",
    "app": "ai_voice_agent",
    "environment": "production",
    "host": "sip-1",
    "pid": 4242,
    "call_id": "ast-1",
    "extra": {"caller": "+15551234", "extension": "100", "turn": 3, "ok": True,
              "score": 0.25, "stages": {"llm": {"ttfb_ms": 310}}, "none": None,
              "host": "the caller's host", "extra.x": 1},
}


def as_text(attributes: dict[str, Any]) -> dict[str, str]:
    """What a ClickHouse exporter stores: every value as text."""
    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    return {key: text(value) for key, value in attributes.items()}


def rebuild(record: dict[str, Any], category: str = "app") -> tuple[str, dict[str, Any]]:
    attributes = as_text(to_attributes(record, category))
    nanos = parse_timestamp_ns(record["timestamp"])
    return record_from_attributes(nanos, record["level"], record["message"], attributes)


def test_fields_and_extra_become_flat_attributes() -> None:
    attributes = to_attributes(RECORD, "app")
    assert attributes["call_id"] == "ast-1"
    assert attributes["caller"] == "+15551234"
    assert attributes["turn"] == 3
    assert attributes["host"] == "sip-1"
    assert attributes["extra.host"] == "the caller's host"  # an extra key never hides a field
    assert attributes["stages"] == '{"llm":{"ttfb_ms":310}}'
    assert attributes[CATEGORY] == "app"
    assert "message" not in attributes and "timestamp" not in attributes


def test_a_record_read_back_from_text_attributes_is_the_record_written() -> None:
    category, record = rebuild(RECORD, "performance")
    assert category == "performance"
    assert record == RECORD
    assert list(record) == list(RECORD)


def test_exceptions_keep_their_frames_and_give_the_semantic_attributes() -> None:
    failing = {**RECORD, "level": "ERROR", "exception": {
        "type": "ValueError", "message": "bad", "frames": [{"file": "a.py", "line": 1}]}}
    attributes = to_attributes(failing, "errors")
    assert attributes["exception.type"] == "ValueError"
    assert attributes["exception.message"] == "bad"
    assert rebuild(failing, "errors") == ("errors", failing)


def test_timestamps_round_trip_at_microsecond_precision() -> None:
    nanos = parse_timestamp_ns("2026-12-01T21:15:29.000007Z")
    assert nanos % 1_000_000_000 == 7000
    assert format_timestamp(nanos) == "2026-12-01T21:15:29.000007Z"


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda f: round(f, 3)),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)


@given(st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=6))
def test_any_extra_survives_a_text_store(extra: dict[str, Any]) -> None:
    record = {**RECORD, "extra": extra}
    assert rebuild(record)[1] == orjson.loads(orjson.dumps(record))
