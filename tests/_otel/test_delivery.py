"""What the OTLP export lost is counted once, and said once per cause."""

from __future__ import annotations

import pytest

from callwatch._logging.stats import STATS
from callwatch._otel.delivery import Delivery


def test_a_batch_given_up_on_at_shutdown_is_not_counted_again_when_it_ends(
        capfd: pytest.CaptureFixture[str]) -> None:
    delivery = Delivery("http://collector:4318")
    before = STATS.otlp_dropped
    for _ in range(1000):
        delivery.accepted("records")
    delivery.sent(400, "records")
    delivery.abandon()  # shutdown: 600 still in flight
    delivery.failed(512, "records")  # a batch that was being sent fails afterwards
    delivery.sent(88, "records")  # and the last one lands
    assert STATS.otlp_dropped - before == 600
    assert delivery.delivered["records"] == 400
    assert delivery.in_flight() == 0
    err = capfd.readouterr().err
    assert err.count("600 item(s) not sent before shutdown") == 1


def test_a_forked_childs_copy_counts_and_says_nothing_of_the_parents_exports(
        capfd: pytest.CaptureFixture[str]) -> None:
    delivery = Delivery("http://collector:4318")
    for _ in range(10):
        delivery.accepted("records")
    before = STATS.otlp_dropped
    delivery.forget()
    delivery.failed(10, "records")
    delivery.abandon()
    assert STATS.otlp_dropped == before
    assert capfd.readouterr().err == ""
