"""Settings: read from the environment once, validated, frozen.

Modules never read the environment themselves; they receive a ``Settings``.
A value that cannot be parsed is a :class:`ConfigError` naming the variable,
never a silent default.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["ConfigError", "Settings", "load_settings"]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ENVIRONMENTS = ("development", "production", "staging", "test")
QUEUE_POLICIES = ("drop", "block")

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Retention:
    """Days each category of log file is kept (the guide's 30/90/365/30)."""

    app: int = 30
    errors: int = 90
    audit: int = 365
    performance: int = 30


@dataclass(frozen=True)
class Settings:
    """Everything callwatch is configured with, as one immutable value."""

    environment: str = "development"
    log_level: str = "INFO"
    log_dir: Path = Path("./logs")
    app_name: str = "ai_voice_agent"
    alert_webhook_url: str | None = field(default=None, repr=False)
    slack_webhook_url: str | None = field(default=None, repr=False)
    monitoring_token: str | None = field(default=None, repr=False)
    audit_hmac_key: str | None = field(default=None, repr=False)
    redact_pii: bool = False
    console: bool = True
    files: bool = True
    retention: Retention = field(default_factory=Retention)
    queue_size: int = 65536
    queue_policy: str = "drop"
    queue_block_ms: float = 5.0
    flush_interval_ms: float = 50.0
    max_field_chars: int = 16384
    otlp: bool = True  # OTLP export, when an OTEL_EXPORTER_OTLP_* endpoint is set
    # Monitoring.
    max_call_age_sec: float = 4 * 3600.0
    error_rate_window_sec: float = 300.0
    health_check_timeout_sec: float = 1.0
    health_cache_ttl_sec: float = 1.0
    prometheus_multiproc_dir: Path | None = None
    # Alerting.
    alert_dedup_window_sec: float = 900.0
    alert_min_calls: int = 10
    alert_timeout_sec: float = 5.0
    alert_max_retries: int = 5
    alert_queue_size: int = 1000

    @property
    def development(self) -> bool:
        return self.environment == "development"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _text(name: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ConfigError(f"{name} is set but empty")
    return value


def _choice(choices: tuple[str, ...], *, upper: bool = False) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if upper and value == "WARN":
            value = "WARNING"
        if value not in choices:
            raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")
        return value

    return parse


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (true/false)")


def _positive(kind: type[T]) -> Callable[[str, str], T]:
    def parse(name: str, raw: str) -> T:
        try:
            value = kind(raw.strip())  # type: ignore[call-arg]
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a {kind.__name__}") from None
        if not (value > 0 and math.isfinite(value)):  # type: ignore[operator,arg-type]
            raise ConfigError(f"{name}={raw!r} must be a positive finite number")
        return value

    return parse


def _url(name: str, raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("http://", "https://")) or len(value) < 10:
        # The URL itself is a secret: never echo it back.
        raise ConfigError(f"{name} is not an http(s) URL")
    return value


def _path(name: str, raw: str) -> Path:
    return Path(_text(name, raw))


# variable -> (Settings field, parser)
_VARIABLES: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "ENVIRONMENT": ("environment", _choice(ENVIRONMENTS)),
    "LOG_LEVEL": ("log_level", _choice(LEVELS, upper=True)),
    "LOG_DIR": ("log_dir", _path),
    "APP_NAME": ("app_name", _text),
    "ALERT_WEBHOOK_URL": ("alert_webhook_url", _url),
    "SLACK_WEBHOOK_URL": ("slack_webhook_url", _url),
    "MONITORING_TOKEN": ("monitoring_token", _text),
    "AUDIT_HMAC_KEY": ("audit_hmac_key", _text),
    "LOG_REDACT_PII": ("redact_pii", _bool),
    "LOG_CONSOLE": ("console", _bool),
    "LOG_FILES": ("files", _bool),
    "LOG_QUEUE_SIZE": ("queue_size", _positive(int)),
    "LOG_QUEUE_POLICY": ("queue_policy", _choice(QUEUE_POLICIES)),
    "LOG_QUEUE_BLOCK_MS": ("queue_block_ms", _positive(float)),
    "LOG_FLUSH_INTERVAL_MS": ("flush_interval_ms", _positive(float)),
    "LOG_MAX_FIELD_CHARS": ("max_field_chars", _positive(int)),
    "CALLWATCH_OTLP": ("otlp", _bool),
    "MAX_CALL_AGE_SEC": ("max_call_age_sec", _positive(float)),
    "ERROR_RATE_WINDOW_SEC": ("error_rate_window_sec", _positive(float)),
    "HEALTH_CHECK_TIMEOUT_SEC": ("health_check_timeout_sec", _positive(float)),
    "HEALTH_CACHE_TTL_SEC": ("health_cache_ttl_sec", _positive(float)),
    "PROMETHEUS_MULTIPROC_DIR": ("prometheus_multiproc_dir", _path),
    "ALERT_DEDUP_WINDOW_SEC": ("alert_dedup_window_sec", _positive(float)),
    "ALERT_MIN_CALLS": ("alert_min_calls", _positive(int)),
    "ALERT_TIMEOUT_SEC": ("alert_timeout_sec", _positive(float)),
    "ALERT_MAX_RETRIES": ("alert_max_retries", _positive(int)),
    "ALERT_QUEUE_SIZE": ("alert_queue_size", _positive(int)),
}

_RETENTION_VARIABLES = {
    "LOG_RETENTION_APP_DAYS": "app",
    "LOG_RETENTION_ERRORS_DAYS": "errors",
    "LOG_RETENTION_AUDIT_DAYS": "audit",
    "LOG_RETENTION_PERFORMANCE_DAYS": "performance",
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read every variable once; keyword overrides win over the environment."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for variable, (name, parse) in _VARIABLES.items():
        raw = env.get(variable)
        if raw is not None:
            values[name] = parse(variable, raw)
    retention: dict[str, int] = {}
    for variable, name in _RETENTION_VARIABLES.items():
        raw = env.get(variable)
        if raw is not None:
            retention[name] = _positive(int)(variable, raw)
    values["retention"] = Retention(**retention)
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    if isinstance(overrides.get("log_dir"), str):
        overrides["log_dir"] = Path(overrides["log_dir"])
    if isinstance(overrides.get("retention"), Mapping):
        overrides["retention"] = Retention(**overrides["retention"])
    values.update(overrides)
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if settings.log_level not in LEVELS:
        raise ConfigError(f"log_level={settings.log_level!r} is not one of {', '.join(LEVELS)}")
    if settings.environment not in ENVIRONMENTS:
        raise ConfigError(
            f"environment={settings.environment!r} is not one of {', '.join(ENVIRONMENTS)}"
        )
    if settings.queue_policy not in QUEUE_POLICIES:
        raise ConfigError(f"queue_policy={settings.queue_policy!r} is not one of drop, block")
