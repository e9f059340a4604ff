"""Prices of the services a voice agent pays for, read from ``CALLWATCH_PRICES_FILE`` (TOML).

Usage (tokens, characters, audio seconds) is what the frameworks report;
money is what a person asks about. The file is read and checked once, at
start-up, so a typo in a price is a start-up error naming the file and the
key, never a silently zero cost::

    [llm.default]            # or [llm."<model name as the framework reports it>"]
    input_per_mtok = 0.15    # USD per million prompt tokens
    output_per_mtok = 0.60
    [tts.default]
    per_1k_chars = 0.03
    [stt.default]
    per_minute = 0.0043
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callwatch.config import ConfigError

__all__ = ["DEFAULT", "Prices", "load_prices"]

DEFAULT = "default"
VARIABLE = "CALLWATCH_PRICES_FILE"
# service -> the rates a model of that service may have
_RATES: dict[str, tuple[str, ...]] = {
    "llm": ("input_per_mtok", "output_per_mtok"),
    "tts": ("per_1k_chars",),
    "stt": ("per_minute",),
}


@dataclass(frozen=True)
class Prices:
    """Rates by service and model; a model without its own rates pays the service's default."""

    rates: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)
    source: str = ""

    def _rate(self, service: str, model: str | None, name: str) -> float:
        models = self.rates.get(service, {})
        rates = models.get(model or DEFAULT) or models.get(DEFAULT) or {}
        return rates.get(name, 0.0)

    def llm(self, model: str | None, prompt_tokens: float, completion_tokens: float) -> float:
        return (prompt_tokens * self._rate("llm", model, "input_per_mtok")
                + completion_tokens * self._rate("llm", model, "output_per_mtok")) / 1e6

    def tts(self, model: str | None, characters: float) -> float:
        return characters * self._rate("tts", model, "per_1k_chars") / 1000.0

    def stt(self, model: str | None, audio_seconds: float) -> float:
        return audio_seconds / 60.0 * self._rate("stt", model, "per_minute")


def load_prices(path: Path) -> Prices:
    """Read and check the price file; a :class:`ConfigError` names the file and the key."""
    toml = _toml()
    try:
        with path.open("rb") as handle:
            document = toml.load(handle)
    except OSError as exc:
        raise ConfigError(f"{VARIABLE}: cannot read {path}: {exc.strerror or exc}") from None
    except toml.TOMLDecodeError as exc:
        raise ConfigError(f"{VARIABLE}: {path} is not valid TOML: {exc}") from None
    return Prices(_check(document, path), str(path))


def _check(document: dict[str, Any], path: Path) -> dict[str, dict[str, dict[str, float]]]:
    rates: dict[str, dict[str, dict[str, float]]] = {}
    for service, models in document.items():
        allowed = _RATES.get(service)
        if allowed is None:
            raise ConfigError(
                f"{VARIABLE}: {path}: unknown section [{service}] (use {', '.join(_RATES)})")
        if not isinstance(models, dict):
            raise ConfigError(f"{VARIABLE}: {path}: {service} must be a table of models")
        rates[service] = {}
        for model, values in models.items():
            key = f"{service}.{model}"
            if not isinstance(values, dict):
                raise ConfigError(f"{VARIABLE}: {path}: [{key}] must be a table of rates")
            rates[service][model] = {
                name: _rate(f"{key}.{name}", value, allowed, path) for name, value in values.items()
            }
    return rates


def _rate(key: str, value: object, allowed: tuple[str, ...], path: Path) -> float:
    if key.rsplit(".", 1)[-1] not in allowed:
        raise ConfigError(f"{VARIABLE}: {path}: unknown rate {key} (use {', '.join(allowed)})")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{VARIABLE}: {path}: {key} must be a number of USD, not {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{VARIABLE}: {path}: {key} must be a finite number, 0 or more")
    return float(value)


def _toml() -> Any:
    """``tomllib`` (Python 3.11+) or, on 3.10, the ``tomli`` package it came from."""
    if sys.version_info >= (3, 11):
        import tomllib  # noqa: PLC0415

        return tomllib
    try:
        import tomli  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            f"{VARIABLE} needs Python 3.11+ or the tomli package (pip install tomli)"
        ) from None
    return tomli
