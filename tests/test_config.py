from __future__ import annotations

from pathlib import Path

import pytest

from callwatch.config import ConfigError, load_settings


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
    ],
)
def test_an_unparseable_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings({variable: value})


def test_a_bad_webhook_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match="SLACK_WEBHOOK_URL") as caught:
        load_settings({"SLACK_WEBHOOK_URL": "hooks.example/T000/secret-part"})
    assert "secret-part" not in str(caught.value)


def test_secrets_stay_out_of_the_settings_repr() -> None:
    settings = load_settings({"MONITORING_TOKEN": "tok-123", "AUDIT_HMAC_KEY": "k-456"})
    assert "tok-123" not in repr(settings)
    assert "k-456" not in repr(settings)


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(ConfigError, match="log_levle"):
        load_settings({}, log_levle="DEBUG")
