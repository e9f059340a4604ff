from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

from callwatch._alerts.http import retry_after_seconds


def test_retry_after_as_seconds_or_http_date() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(" 0.5 ") == 0.5
    assert retry_after_seconds("-3") == 0.0
    now = 1_700_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 120, timezone.utc), usegmt=True)
    assert retry_after_seconds(date, now=now) == 120.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
