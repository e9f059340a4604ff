"""Redaction of the keys of ``extra``: a key can carry a card number or a secret too.

``log.info("x", extra={"4111111111111111": 1})`` or a stdlib record with
``extra={"password=hunter2": ...}`` would otherwise put the secret in the file
as a field name. Keys repeat far more than values, so each distinct key is
redacted once and remembered (the set is bounded by starting over).
"""

from __future__ import annotations

from typing import Any

from callwatch._logging.redact import redact_text
from callwatch._logging.render import safe_repr

__all__ = ["KeyRedactor"]

_CLEAN_LIMIT = 4096
_CLEAN_MAX_CHARS = 256


class KeyRedactor:
    """Pipeline processor: the record's ``extra`` with every key redacted as text."""

    __slots__ = ("_clean", "_pii")

    def __init__(self, pii: bool) -> None:
        self._pii = pii
        self._clean: set[Any] = set()

    def __call__(self, logger: Any, method_name: str, record: dict[str, Any]) -> dict[str, Any]:
        extra = record.get("extra")
        if type(extra) is dict:
            clean = self._clean
            for key in extra:
                if key not in clean:
                    record["extra"] = self._redacted(extra)
                    break
        return record

    def forget(self) -> None:
        """Start over: a secret registered since may make a remembered key unsafe."""
        self._clean = set()

    def _redacted(self, extra: dict[Any, Any]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        changed = False
        for key, value in extra.items():
            text = key if type(key) is str else safe_repr(key)
            redacted = redact_text(text, pii=self._pii)
            if redacted is text and type(key) in (str, int, float, bool):
                out[key] = value
                self._remember(key)
            else:
                shown, number = redacted, 1
                while shown in out or shown in extra:  # two keys masked alike: keep both
                    number += 1
                    shown = f"{redacted}#{number}"
                out[shown] = value
                changed = True
        return out if changed else extra

    def _remember(self, key: Any) -> None:
        if type(key) is str and len(key) > _CLEAN_MAX_CHARS:
            return
        if len(self._clean) >= _CLEAN_LIMIT:
            self._clean.clear()
        self._clean.add(key)
