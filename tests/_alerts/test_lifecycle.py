"""The alert lifecycle: what is sent, what stays quiet, and when an alert ends."""

from __future__ import annotations

import json
import time

import pytest

from callwatch._alerts.lifecycle import Lifecycle, Spec, make_spec


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def life(clock: Clock) -> Lifecycle:
    lifecycle = Lifecycle(clock)
    lifecycle.dedup_window_sec = 900.0
    return lifecycle


def spec(metric: str = "cpu_percent", name: str = "HighCpuPercent", managed: bool = True) -> Spec:
    return make_spec(name, "High CPU usage", metric, {"metric": metric, "instance": "h"}, managed=managed)


def fire(life: Lifecycle, s: Spec, severity: str = "warning", value: float = 85, hold: float = 0.0):
    return life.fire(s, severity, value, 80, message=f"at {value}", hold_sec=hold)


def test_fingerprint_is_name_plus_labels_not_severity(life: Lifecycle) -> None:
    a = spec()
    assert a.fingerprint == spec().fingerprint
    assert a.fingerprint != spec(metric="memory_percent").fingerprint
    assert a.fingerprint != make_spec("HighCpuPercent", "t", "cpu_percent", {"metric": "cpu_percent", "instance": "other"}, managed=True).fingerprint
    warning = fire(life, a, "warning")
    critical = fire(life, a, "critical", 99)
    assert warning is not None and critical is not None
    assert warning.fingerprint == critical.fingerprint


def test_same_alert_inside_the_window_is_sent_once_then_again_after_it(life: Lifecycle, clock: Clock) -> None:
    s = spec()
    assert fire(life, s) is not None
    for _ in range(100):
        clock.advance(5)
        assert fire(life, s) is None
    clock.advance(900)
    again = fire(life, s)
    assert again is not None and again.status == "firing"
    assert len(life.history()) == 2


def test_escalation_is_sent_at_once_and_de_escalation_is_not(life: Lifecycle, clock: Clock) -> None:
    s = spec()
    assert fire(life, s, "warning") is not None
    clock.advance(1)
    escalated = fire(life, s, "critical", 99)
    assert escalated is not None and escalated.severity == "critical"
    clock.advance(1)
    assert fire(life, s, "warning", 85) is None  # still the critical's window
    clock.advance(1)
    assert fire(life, s, "critical", 99) is None  # back up: already told critical
    assert [a.severity for a in life.history()] == ["critical", "warning"]


def test_critical_suppresses_the_same_metrics_warning_until_it_ends(life: Lifecycle, clock: Clock) -> None:
    threshold_alert = spec()
    custom = spec(name="CpuSaturated", managed=False)
    assert fire(life, threshold_alert, "critical", 99) is not None
    assert fire(life, custom, "warning") is None
    assert fire(life, spec(metric="memory_percent", name="HighMemoryPercent"), "warning") is not None
    resolved = life.clear(threshold_alert.fingerprint, 50, "back")
    assert resolved is not None and resolved.status == "resolved"
    clock.advance(1)
    released = fire(life, custom, "warning")
    assert released is not None and released.alertname == "CpuSaturated"


def test_one_resolved_notification_when_the_condition_clears(life: Lifecycle, clock: Clock) -> None:
    s = spec()
    fire(life, s, "critical", 99)
    clock.advance(30)
    resolved = life.clear(s.fingerprint, 40, "back to 40")
    assert resolved is not None
    assert resolved.status == "resolved"
    assert resolved.severity == "critical"
    assert resolved.value == 40 and resolved.message == "back to 40"
    assert resolved.ends_at is not None and resolved.starts_at is not None
    assert (resolved.ends_at - resolved.starts_at).total_seconds() == 30
    assert life.clear(s.fingerprint, 40, "back") is None
    assert life.active() == []


def test_hold_for_fires_only_after_the_condition_lasted(life: Lifecycle, clock: Clock) -> None:
    s = spec()
    assert fire(life, s, hold=60) is None
    assert life.active() == []
    clock.advance(59)
    assert fire(life, s, hold=60) is None
    clock.advance(1)
    fired = fire(life, s, hold=60)
    assert fired is not None
    # Resolving also waits for the hold-for, so one dip does not end it.
    assert life.clear(s.fingerprint, 10, "ok") is None
    clock.advance(30)
    assert fire(life, s, hold=60) is None
    assert life.clear(s.fingerprint, 10, "ok") is None
    clock.advance(60)
    assert life.clear(s.fingerprint, 10, "ok") is not None


def test_a_spike_shorter_than_hold_for_sends_nothing(life: Lifecycle, clock: Clock) -> None:
    s = spec()
    assert fire(life, s, hold=60) is None
    clock.advance(10)
    assert life.clear(s.fingerprint, 10, "ok") is None
    clock.advance(60)
    assert fire(life, s, hold=60) is None
    assert life.history() == []


def test_flapping_around_the_threshold_with_hold_for_is_not_a_storm(life: Lifecycle, clock: Clock) -> None:
    s = spec()
    sent = []
    # One hour of a metric crossing its threshold every 20 s, checked every 5 s.
    for step in range(720):
        clock.advance(5)
        above = (step // 4) % 2 == 0
        note = fire(life, s, hold=60) if above else life.clear(s.fingerprint, 79, "ok")
        if note is not None:
            sent.append(note)
    assert sent == []
    # Mostly above (2 minutes) with 5-second dips: fires once and stays firing.
    life.dedup_window_sec = 7200
    for step in range(720):
        clock.advance(5)
        above = step % 25 != 24
        note = fire(life, s, hold=60) if above else life.clear(s.fingerprint, 79, "ok")
        if note is not None:
            sent.append(note)
    assert [a.status for a in sent] == ["firing"]
    assert len(life.active()) == 1


def test_nothing_sent_means_nothing_resolved(life: Lifecycle) -> None:
    s = spec()
    fire(life, spec(name="Big"), "critical", 99)
    fire(life, s, "warning")  # held back by the critical on the same metric
    assert life.clear(s.fingerprint, 1, "ok") is None


def test_history_is_newest_first_and_bounded_by_limit(life: Lifecycle, clock: Clock) -> None:
    for metric in ("a", "b", "c"):
        clock.advance(1)
        fire(life, spec(metric=metric, name=metric))
    assert [a.metric for a in life.history()] == ["c", "b", "a"]
    assert [a.metric for a in life.history(limit=2)] == ["c", "b"]


def test_active_lists_most_severe_first_and_forgets_idle_custom_alerts(life: Lifecycle, clock: Clock) -> None:
    fire(life, spec(metric="a", name="A"), "warning")
    fire(life, spec(metric="b", name="B", managed=False), "critical", 99)
    assert [a.alertname for a in life.active()] == ["B", "A"]
    clock.advance(901)
    assert [a.alertname for a in life.active()] == ["A"]  # the custom one was not sent again


def test_explicit_resolve_ignores_hold_for(life: Lifecycle) -> None:
    s = spec(managed=False)
    fire(life, s, hold=0)
    resolved = life.resolve(s.fingerprint)
    assert resolved is not None and resolved.status == "resolved"
    assert resolved.message.startswith("Resolved: ")


def test_unknown_severity_is_a_clear_error(life: Lifecycle) -> None:
    with pytest.raises(ValueError, match="critical"):
        life.fire(spec(), "fatal", 1, 1, message="x")


def test_alert_dict_is_json_safe(life: Lifecycle) -> None:
    alert = life.fire(spec(), "warning", float("nan"), 80, message="x")
    assert alert is not None
    d = alert.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["status"] == "firing" and d["ends_at"] is None and d["starts_at"].endswith("Z")
    assert set(d) >= {"fingerprint", "alertname", "severity", "status", "title", "message", "metric", "value", "threshold", "starts_at", "ends_at"}


def test_resolve_hold_and_hysteresis_band_keep_a_firing_alert(life: Lifecycle, clock: Clock) -> None:
    s = spec()
    assert life.fire(s, "warning", 85, 80, message="at 85", resolve_sec=60) is not None
    clock.advance(30)
    assert life.clear(s.fingerprint, 50, "ok") is None  # clear for 0 s
    clock.advance(45)
    life.hold(s.fingerprint, 78)  # back in the band just under the threshold: not clear
    clock.advance(30)
    assert life.clear(s.fingerprint, 50, "ok") is None  # clear again, from now
    clock.advance(59)
    assert life.clear(s.fingerprint, 50, "ok") is None
    clock.advance(1)
    assert life.clear(s.fingerprint, 50, "ok").status == "resolved"


def test_default_thresholds_hovering_error_rate_notify_once_each_way(log_dir) -> None:
    """The manager's defaults: 10 % hysteresis under the threshold and a 60 s resolve hold."""
    from callwatch._alerts.console import ConsoleHandler
    from callwatch._alerts.thresholds import thresholds
    from callwatch.alerting import alert_manager as manager

    clock = Clock()
    manager.reset()
    manager.lifecycle.clock = clock
    manager.unregister_handler("console")
    assert thresholds["error_rate"] == {"warning": 5, "critical": 10}
    sent = []
    try:
        for step in range(600):  # ten minutes around 5 %, checked every second
            clock.advance(1)
            rate = (5.2, 4.7, 4.9, 5.1, 3.9)[step % 5]  # under 4.5 now and then, for a second
            sent += manager.check({"calls": {"error_rate": rate, "window_calls": 500}})
        for _ in range(120):  # really back
            clock.advance(1)
            sent += manager.check({"calls": {"error_rate": 2.0, "window_calls": 500}})
    finally:
        manager.lifecycle.clock = time.time
        manager.reset()
        manager.register_handler(ConsoleHandler())
    assert [(a.status, a.severity) for a in sent] == [("firing", "warning"), ("resolved", "warning")]
    assert sent[1].timestamp.timestamp() - clock.now == pytest.approx(-59, abs=1)
