"""Settings: read from the environment once, validated, frozen.

Modules never read the environment themselves; they receive a ``Settings``.
A value that cannot be parsed, or lies outside its bounds, is a
:class:`ConfigError` naming the variable, never a silent default: a number too
large for a timer or a date would otherwise kill a background thread much later.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from callwatch._prices import Prices

__all__ = [
    "BOUNDS",
    "MIN_TOKEN_CHARS",
    "ZERO_ALLOWED",
    "ConfigError",
    "Settings",
    "load_settings",
]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ENVIRONMENTS = ("development", "production", "staging", "test")
QUEUE_POLICIES = ("drop", "block")

T = TypeVar("T")

# Settings field -> largest allowed value (every number must also be positive and finite);
# retention days are "retention.<category>". Larger values overflow timers and dates.
BOUNDS: dict[str, float] = {
    "retention.app": 36500,
    "retention.errors": 36500,
    "retention.audit": 36500,
    "retention.performance": 36500,
    "queue_size": 4_194_304,
    "queue_block_ms": 10_000,
    "flush_interval_ms": 60_000,
    "max_field_chars": 4_194_304,
    "max_call_age_sec": 7 * 86400,
    "error_rate_window_sec": 86400,
    "health_check_timeout_sec": 60,
    "health_cache_ttl_sec": 3600,
    "alert_dedup_window_sec": 7 * 86400,
    "alert_resolve_sec": 86400,
    "alert_min_calls": 1_000_000,
    "alert_timeout_sec": 300,
    "alert_max_retries": 100,
    "alert_queue_size": 1_000_000,
    "history_days": 3660,
    "turn_budget_ms": 600_000,
}
# Numbers for which zero means something ("at once").
ZERO_ALLOWED = frozenset({"alert_resolve_sec"})
MIN_TOKEN_CHARS = 16
_URL_FIELDS = ("alert_webhook_url", "slack_webhook_url", "prometheus_url")


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
    history_days: int = 7
    prometheus_url: str | None = None
    # Alerting.
    alert_dedup_window_sec: float = 900.0
    alert_resolve_sec: float = 60.0  # a firing threshold alert must be clear this long
    alert_min_calls: int = 10
    alert_timeout_sec: float = 5.0
    alert_max_retries: int = 5
    alert_queue_size: int = 1000
    # Voice frameworks: prices turning usage into cost; the wait for first bot audio that alerts.
    prices: Prices | None = None
    turn_budget_ms: float = 2000.0

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


def _number(kind: type[T]) -> Callable[[str, str], T]:
    """Parse only: the bounds are checked once for every source, in :func:`_validate`."""

    def parse(name: str, raw: str) -> T:
        try:
            return kind(raw.strip())  # type: ignore[call-arg]
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a {kind.__name__}") from None

    return parse


def _url(name: str, raw: str) -> str:
    value = raw.strip()
    _check_url(name, value)
    return value


def _check_url(name: str, value: object) -> None:
    """An http(s) URL with a host and nothing a client would choke on at delivery time.

    The URL itself is a secret (its path is the webhook's key): never echoed back.
    """
    if not isinstance(value, str):
        raise ConfigError(f"{name} is not a text URL")
    if any(char.isspace() or not char.isprintable() for char in value):
        raise ConfigError(f"{name} holds spaces or control characters")
    try:
        parts = urlsplit(value)
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise ConfigError(f"{name} is not a valid URL (bad host or port)") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"{name} is not an http(s) URL")
    if not host:
        raise ConfigError(f"{name} has no host")


def _check_token(name: str, value: object) -> None:
    """A bearer token that a client can send at all, and that is not trivially guessed."""
    if not isinstance(value, str):
        raise ConfigError(f"{name} is not text")
    if not all("!" <= char <= "~" for char in value):
        raise ConfigError(
            f"{name} must be printable ASCII without spaces: an HTTP client cannot send it"
        )
    if len(value) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{name} is {len(value)} characters long: use {MIN_TOKEN_CHARS} or more")


def _path(name: str, raw: str) -> Path:
    return Path(_text(name, raw))


def _prices(name: str, raw: str) -> Prices:
    from callwatch._prices import load_prices  # noqa: PLC0415  (the file is read only when set)

    return load_prices(_path(name, raw))


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
    "LOG_QUEUE_SIZE": ("queue_size", _number(int)),
    "LOG_QUEUE_POLICY": ("queue_policy", _choice(QUEUE_POLICIES)),
    "LOG_QUEUE_BLOCK_MS": ("queue_block_ms", _number(float)),
    "LOG_FLUSH_INTERVAL_MS": ("flush_interval_ms", _number(float)),
    "LOG_MAX_FIELD_CHARS": ("max_field_chars", _number(int)),
    "CALLWATCH_OTLP": ("otlp", _bool),
    "MAX_CALL_AGE_SEC": ("max_call_age_sec", _number(float)),
    "ERROR_RATE_WINDOW_SEC": ("error_rate_window_sec", _number(float)),
    "HEALTH_CHECK_TIMEOUT_SEC": ("health_check_timeout_sec", _number(float)),
    "HEALTH_CACHE_TTL_SEC": ("health_cache_ttl_sec", _number(float)),
    "PROMETHEUS_MULTIPROC_DIR": ("prometheus_multiproc_dir", _path),
    "CALLWATCH_HISTORY_DAYS": ("history_days", _number(int)),
    "CALLWATCH_PROMETHEUS_URL": ("prometheus_url", _url),
    "ALERT_DEDUP_WINDOW_SEC": ("alert_dedup_window_sec", _number(float)),
    "ALERT_RESOLVE_SEC": ("alert_resolve_sec", _number(float)),
    "ALERT_MIN_CALLS": ("alert_min_calls", _number(int)),
    "ALERT_TIMEOUT_SEC": ("alert_timeout_sec", _number(float)),
    "ALERT_MAX_RETRIES": ("alert_max_retries", _number(int)),
    "ALERT_QUEUE_SIZE": ("alert_queue_size", _number(int)),
    "CALLWATCH_PRICES_FILE": ("prices", _prices),
    "CALLWATCH_TURN_BUDGET_MS": ("turn_budget_ms", _number(float)),
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
            retention[name] = _number(int)(variable, raw)
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
    for name, largest in BOUNDS.items():
        owner, _, attribute = name.rpartition(".")
        value = getattr(settings.retention if owner else settings, attribute)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{_variable(name)} is not a number")
        smallest_ok = value >= 0 if name in ZERO_ALLOWED else value > 0
        if not (math.isfinite(value) and smallest_ok and value <= largest):
            kind = "zero or more" if name in ZERO_ALLOWED else "positive"
            raise ConfigError(f"{_variable(name)}={value!r} must be {kind} and at most {largest:g}")
    for name in _URL_FIELDS:
        if getattr(settings, name) is not None:
            _check_url(_variable(name), getattr(settings, name))
    if settings.monitoring_token is not None:
        _check_token(_variable("monitoring_token"), settings.monitoring_token)


def _variable(name: str) -> str:
    """The environment variable behind a settings field, as the error names it."""
    for variable, (field_name, _parse) in _VARIABLES.items():
        if field_name == name:
            return f"{variable} ({name})"
    for variable, category in _RETENTION_VARIABLES.items():
        if name == f"retention.{category}":
            return f"{variable} ({name})"
    return name
