from __future__ import annotations

import pytest

from callwatch._alerts.pagerduty import EVENTS_URL, PagerDutyHandler
from tests._alerts.alerts import firing, resolved


def test_trigger_uses_the_fingerprint_as_dedup_key_and_maps_severity() -> None:
    handler = PagerDutyHandler("R0UT1NGKEY")
    body = handler.payload(firing("critical"))
    assert handler.url == EVENTS_URL
    assert body["routing_key"] == "R0UT1NGKEY"
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == "0123456789abcdef"
    payload = body["payload"]
    assert payload["severity"] == "critical"
    assert payload["source"] == "voice-1"
    assert payload["summary"].startswith("[CRITICAL] High CPU usage")
    assert payload["component"] == "ai_voice_agent" and payload["group"] == "production"
    assert payload["custom_details"]["value"] == 91.5
    assert handler.payload(firing("warning"))["payload"]["severity"] == "warning"


def test_resolve_needs_only_the_dedup_key() -> None:
    body = PagerDutyHandler("R0UT1NGKEY").payload(resolved())
    assert body == {"routing_key": "R0UT1NGKEY", "event_action": "resolve", "dedup_key": "0123456789abcdef"}


def test_the_routing_key_stays_out_of_repr_and_is_required() -> None:
    assert "R0UT1NGKEY" not in repr(PagerDutyHandler("R0UT1NGKEY"))
    with pytest.raises(ValueError, match="routing key"):
        PagerDutyHandler("")
