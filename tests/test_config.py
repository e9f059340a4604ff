from __future__ import annotations

from pathlib import Path

import pytest

from callwatch.config import BOUNDS, MIN_TOKEN_CHARS, ZERO_ALLOWED, ConfigError, load_settings


def test_defaults_follow_the_contract() -> None:
    settings = load_settings({})
    assert settings.environment == "development"
    assert settings.log_level == "INFO"
    assert settings.log_dir == Path("./logs")
    assert settings.app_name == "ai_voice_agent"
    assert (settings.retention.app, settings.retention.errors) == (30, 90)
    assert (settings.retention.audit, settings.retention.performance) == (365, 30)


def test_environment_variables_are_read_once_and_parsed() -> None:
    settings = load_settings(
        {
            "ENVIRONMENT": "production",
            "LOG_LEVEL": "warn",
            "LOG_DIR": "/var/log/agent",
            "APP_NAME": "agent",
            "LOG_REDACT_PII": "true",
            "LOG_RETENTION_AUDIT_DAYS": "400",
        }
    )
    assert settings.environment == "production"
    assert settings.log_level == "WARNING"
    assert settings.log_dir == Path("/var/log/agent")
    assert settings.redact_pii is True
    assert settings.retention.audit == 400


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LOG_LEVEL", "LOUD"),
        ("ENVIRONMENT", "prod-ish"),
        ("LOG_REDACT_PII", "maybe"),
        ("LOG_QUEUE_SIZE", "lots"),
        ("LOG_QUEUE_SIZE", "-5"),
        ("LOG_RETENTION_APP_DAYS", "0"),
        ("MAX_CALL_AGE_SEC", "nan"),
        ("APP_NAME", "  "),
        ("LOG_RETENTION_AUDIT_DAYS", "999999"),
        ("LOG_FLUSH_INTERVAL_MS", "1e13"),
        ("LOG_FLUSH_INTERVAL_MS", "inf"),
        ("LOG_QUEUE_SIZE", "100000000000"),
        ("LOG_QUEUE_BLOCK_MS", "86400000"),
        ("HEALTH_CACHE_TTL_SEC", "1e300"),
        ("ALERT_TIMEOUT_SEC", "1e9"),
        ("ALERT_DEDUP_WINDOW_SEC", "1e12"),
        ("ALERT_QUEUE_SIZE", "0"),
        ("MONITORING_TOKEN", "short-token"),
        ("MONITORING_TOKEN", "jeton-très-secret-à-rallonge"),
    ],
)
def test_an_unparseable_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings({variable: value})


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_every_bounded_number_is_refused_past_its_bound_from_code_too(name: str) -> None:
    owner, _, attribute = name.rpartition(".")
    too_large = BOUNDS[name] * 10 + 1
    overrides = {"retention": {attribute: int(too_large)}} if owner else {attribute: too_large}
    with pytest.raises(ConfigError, match=attribute):
        load_settings({}, **overrides)


def test_zero_is_refused_except_where_it_means_at_once() -> None:
    assert load_settings({"ALERT_RESOLVE_SEC": "0"}).alert_resolve_sec == 0
    with pytest.raises(ConfigError, match="ALERT_RESOLVE_SEC"):
        load_settings({"ALERT_RESOLVE_SEC": "-1"})
    for name in sorted(set(BOUNDS) - ZERO_ALLOWED - {n for n in BOUNDS if "." in n}):
        with pytest.raises(ConfigError, match=name):
            load_settings({}, **{name: 0})


def test_the_largest_allowed_numbers_start_callwatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At their bounds the writer and pruning work (past them they used to crash)."""
    import callwatch
    from callwatch.logger import log, prune_logs
    from tests.helpers import read_records

    monkeypatch.setenv("LOG_RETENTION_AUDIT_DAYS", str(int(BOUNDS["retention.audit"])))
    monkeypatch.setenv("LOG_FLUSH_INTERVAL_MS", str(BOUNDS["flush_interval_ms"]))
    callwatch.configure(log_dir=tmp_path, console=False)
    try:
        log.info("still written")
        assert [r["message"] for r in read_records(tmp_path, "app")] == ["still written"]
        assert prune_logs()["deleted"] == []
    finally:
        callwatch.shutdown()


@pytest.mark.parametrize(
    "url",
    [
        "hooks.example/T000/secret-part",
        "ftp://hooks.example/T000/secret-part",
        "https:///T000/secret-part",
        "https://hooks.example/T000/secret part",
        "https://hooks.example/T000/\x07secret-part",
        "https://hooks.example:99999/T000/secret-part",
        "https://[hooks.example/T000/secret-part",
    ],
)
def test_a_bad_webhook_url_is_refused_at_start_up_without_echoing_it(url: str) -> None:
    for variable in ("SLACK_WEBHOOK_URL", "ALERT_WEBHOOK_URL"):
        with pytest.raises(ConfigError, match=variable) as caught:
            load_settings({variable: url})
        assert "secret" not in str(caught.value)
    with pytest.raises(ConfigError, match="alert_webhook_url") as caught:
        load_settings({}, alert_webhook_url=url)
    assert "secret" not in str(caught.value)


def test_a_good_webhook_url_is_kept_as_given() -> None:
    url = "https://hooks.slack.com:443/services/T000/B000/XXXX?x=1"
    assert load_settings({"SLACK_WEBHOOK_URL": f"  {url} "}).slack_webhook_url == url


def test_a_monitoring_token_must_be_sendable_and_long_enough() -> None:
    token = "T0ken-that-is-long-enough"
    assert load_settings({"MONITORING_TOKEN": token}).monitoring_token == token
    for bad in ("x" * (MIN_TOKEN_CHARS - 1), "tok en" * 4, "jeton-très-secret-à-rallonge"):
        with pytest.raises(ConfigError, match="MONITORING_TOKEN") as caught:
            load_settings({}, monitoring_token=bad)
        assert bad not in str(caught.value)


def test_secrets_stay_out_of_the_settings_repr() -> None:
    settings = load_settings({"MONITORING_TOKEN": "tok-1234567890abcdef", "AUDIT_HMAC_KEY": "k-456"})
    assert "tok-1234567890abcdef" not in repr(settings)
    assert "k-456" not in repr(settings)


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(ConfigError, match="log_levle"):
        load_settings({}, log_levle="DEBUG")
