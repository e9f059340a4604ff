from __future__ import annotations

import dataclasses

from callwatch._alerts.slack import COLORS, SlackHandler
from tests._alerts.alerts import firing, resolved

URL = "https://hooks.slack.com/services/T0/B0/SECRET"


def test_payload_has_a_text_fallback_and_an_attachment_coloured_by_severity() -> None:
    body = SlackHandler(URL).payload(firing("critical", 97.25))
    assert body["text"].startswith("[CRITICAL] High CPU usage: cpu_percent is 97.25")
    (attachment,) = body["attachments"]
    assert attachment["color"] == COLORS["critical"]
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields == {
        "Metric": "cpu_percent", "Value": "97.25", "Threshold": "80", "Host": "voice-1",
        "App": "ai_voice_agent", "Environment": "production",
    }
    assert SlackHandler(URL).payload(firing("warning"))["attachments"][0]["color"] == COLORS["warning"]


def test_resolved_is_green_and_says_so() -> None:
    body = SlackHandler(URL).payload(resolved())
    assert body["text"].startswith("[RESOLVED] High CPU usage")
    assert body["attachments"][0]["color"] == COLORS["resolved"]


def test_markup_characters_are_escaped_and_the_url_is_not_in_repr() -> None:
    body = SlackHandler(URL).payload(dataclasses.replace(firing(), message="<!channel> & co"))
    assert "&lt;!channel&gt; &amp; co" in body["text"]
    assert "SECRET" not in repr(SlackHandler(URL))
