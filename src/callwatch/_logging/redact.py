"""Redaction of secrets, payment card numbers and (optionally) PII.

Runs in the caller's thread on every record, so the common case (a text with
nothing to hide) must cost almost nothing: texts already known to be clean are
remembered in a bounded set, and a new text only reaches the regular expressions
when it holds one of the few characters every rule needs (a digit, ``:``, ``=``,
``-``, ``_``, ``A``, ``J``; ``@`` with PII on) or looks like spoken digits.

Markers: ``[REDACTED]`` for secrets, ``[CARD]`` for card numbers (nothing of the
number is kept), ``[EMAIL]`` and ``[PHONE]`` for PII. Redacting twice gives the
same text as redacting once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import itertools
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from callwatch._logging.render import safe_repr

__all__ = [
    "CARD",
    "EMAIL",
    "PHONE",
    "REDACTED",
    "RedactProcessor",
    "is_secret_key",
    "redact_text",
    "redact_url",
    "redact_value",
]

REDACTED = "[REDACTED]"
CARD = "[CARD]"
EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CYCLE = "[CYCLE]"

# ---------------------------------------------------------------- secret keys

# A key is secret when one of its words is always secret, when its last word is
# (``access_token`` but not ``token_count`` or ``max_tokens``), or when two
# neighbouring words are (``api_key``, ``card_number``).
_ALWAYS_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "credential",
        "credentials",
        "apikey",
        "authorization",
        "privatekey",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "ssn",
    }
)
_LAST_SECRET_WORDS = frozenset(
    {"token", "auth", "cookie", "session", "sessionid", "signature", "sig", "pin", "pan", "jwt"}
)
_SECRET_PAIRS = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("private", "key"),
        ("secret", "key"),
        ("signing", "key"),
        ("encryption", "key"),
        ("master", "key"),
        ("session", "id"),
        ("card", "number"),
        ("card", "no"),
        ("card", "num"),
        ("auth", "header"),
        ("security", "code"),
        ("pin", "code"),
    }
)
_CAMEL_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_KEY_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_CACHE_LIMIT = 4096


class _SecretKeyCache(dict[Any, bool]):
    """key -> is it secret; computed on first sight, bounded by starting over."""

    def __missing__(self, key: Any) -> bool:
        secret = type(key) is str and _classify_key(key)
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        self[key] = secret
        return secret


_secret_keys = _SecretKeyCache()


def _classify_key(key: str) -> bool:
    spaced = _CAMEL.sub(r"\1_\2", _CAMEL_ACRONYM.sub(r"\1_\2", key)).lower()
    words = [word for word in _KEY_WORD_SPLIT.split(spaced) if word]
    if not words:
        return False
    if words[-1] in _LAST_SECRET_WORDS or not _ALWAYS_SECRET_WORDS.isdisjoint(words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def is_secret_key(key: str) -> bool:
    """Whether values under ``key`` are secrets (case, ``_``/``-``/``.`` and camelCase ignored)."""
    return _secret_keys[key]


# ------------------------------------------------------------------ text rules

_COOKIE_HEADER = re.compile(
    r"(?i)\b((?:set-)?cookie[\"']?\s*+:\s*+)(?![\"']?\[REDACTED\])[^\r\n\"']+"
)
_URL_USERINFO = re.compile(r"(?<=://)(?!\[REDACTED\]@)[^\s/?#@]+@")
_URL = re.compile(r"(?i)\b(https?://[^\s/?#\"'<>]+)([/?#][^\s\"'<>]*)")
_KEY_VALUE = re.compile(
    r"(?<![\w.-])(?P<key>[A-Za-z_][\w.-]{0,63}+)(?P<sep>[\"']?\s*+[:=]\s*+)"
    r"(?P<value>(?![\"']?\[REDACTED\])(?:(?i:bearer|basic|digest|token)\s+)?"
    r"(?:\"[^\"\r\n]*\"|'[^'\r\n]*'|[^\s\"'&,;]+))"
)
_BEARER = re.compile(r"(?i)\b(bearer\s++)(?!\[REDACTED\])[A-Za-z0-9\-._~+/]{8,}=*")
_TOKEN_SHAPES = re.compile(
    r"\bsk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}"  # OpenAI, Anthropic
    r"|\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe secret and restricted keys
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}|\bxapp-[A-Za-z0-9\-]{10,}"  # Slack
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"  # AWS access key ids
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|\bAIza[0-9A-Za-z_\-]{35}"  # Google
    r"|\beyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"  # JWT
)

# Card numbers: runs of digit tokens (digit groups, spoken digits, "double four")
# joined by short separators. Letter look-arounds instead of \b keep the token
# boundaries the same after a marker is inserted, which keeps redaction idempotent.
_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_WORD = r"(?<![A-Za-z])(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)(?![A-Za-z])"
_SINGLE = rf"(?:{_WORD}|[0-9](?![0-9]))"
_TOKEN = rf"(?:(?<![A-Za-z])(?:double|triple)[\s\-]+{_SINGLE}|{_WORD}|[0-9]+)"
_SEP = r"[\s,.\-]{1,3}"
_CARD_TOKEN = re.compile(_TOKEN, re.I)
_CARD_RUN = re.compile(rf"{_TOKEN}(?:{_SEP}{_TOKEN})*", re.I)
_NUMERIC_RUN = re.compile(r"[0-9]+(?:[\s,.\-]{1,3}[0-9]+)*")
_NUMERIC_TOKEN = re.compile(r"[0-9]+")

# Byte tables for counting in C: letters lowercased (everything else a space) to
# find digit words, and digits to "0" to count them.
_WORD_TABLE = bytes(c | 0x20 if chr(c).isascii() and chr(c).isalpha() else 0x20 for c in range(256))
_DIGIT_TABLE = bytes(0x30 if chr(c).isdigit() and c < 128 else 0x61 for c in range(256))
_NUMBER_WORDS = frozenset(w.encode() for w in (*_DIGIT_WORDS, "double", "triple"))
_SPOKEN_MIN_CHARS = 38  # thirteen "oh"s and their separators

_EMAIL = re.compile(r"(?<![\w.+\-])[\w.+\-]++@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+[0-9]{1,3}[\s.\-]?\(?[0-9]{1,4}\)?(?:[\s.\-]?[0-9]{2,4}){2,4}"  # +44 20 7946 0958
    r"|\+[0-9]{7,15}"  # E.164
    r"|\([0-9]{3}\)\s?[0-9]{3}[\s.\-][0-9]{4}"  # (415) 555-1234
    r"|(?:1[\s.\-])?[0-9]{3}([.\-])[0-9]{3}\1[0-9]{4}"  # 415-555-1234, 1.415.555.1234
    r"|[0-9]{3} [0-9]{3} [0-9]{4}"  # 415 555 1234
    r"|0[0-9]{2,4}[\s\-][0-9]{3,4}[\s\-]?[0-9]{3,4}"  # 020 7946 0958, 07700 900123
    r")(?![0-9])"
)

# Characters one of which every rule needs; all others map to "a" so that
# ``bytes.isalpha()`` answers "nothing to look at" in one C loop.
_TRIGGERS = "0123456789:=-_AJ"
_TABLE = bytes(0x30 if chr(c) in _TRIGGERS else 0x61 for c in range(256))
_TABLE_PII = bytes(0x30 if chr(c) in _TRIGGERS + "@" else 0x61 for c in range(256))

_clean: set[str] = set()
_clean_pii: set[str] = set()
_CLEAN_MAX_CHARS = 512


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index & 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _token_digits(token: str) -> str:
    lowered = token.lower()
    if lowered[0].isdigit():
        return lowered
    if lowered.startswith(("double", "triple")):
        last = lowered.split()[-1].split("-")[-1]
        digit = _DIGIT_WORDS.get(last, last)
        return digit * (2 if lowered.startswith("double") else 3)
    return _DIGIT_WORDS[lowered]


def _card_spans(
    token_pattern: re.Pattern[str], text: str, start: int, end: int
) -> list[tuple[int, int]]:
    """Token spans in text[start:end] whose digits form a Luhn-valid 13-19 digit number.

    From each token the longest valid span wins, so trailing spoken digits of a
    card are not left behind.
    """
    tokens = [
        (m.start(), m.end(), _token_digits(m.group()))
        for m in token_pattern.finditer(text, start, end)
    ]
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        digits = ""
        best = -1
        for j in range(i, len(tokens)):
            digits += tokens[j][2]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and _luhn(digits):
                best = j
        if best >= 0:
            spans.append((tokens[i][0], tokens[best][1]))
            i = best + 1
        else:
            i += 1
    return spans


def _counts(text: str) -> tuple[int, int]:
    """(ASCII digits, spoken digit words) in ``text``, cheaply."""
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # lone surrogates
        raw = text.encode("utf-8", "replace")
    words = raw.translate(_WORD_TABLE).split()
    return raw.translate(_DIGIT_TABLE).count(0x30), sum(map(_NUMBER_WORDS.__contains__, words))


def _redact_cards(text: str) -> str:
    digits, words = _counts(text)
    # A spoken word stands for at most three digits ("triple one").
    if words and digits + 3 * words >= 13:
        runs, tokens = _CARD_RUN, _CARD_TOKEN
    elif digits >= 13:
        runs, tokens = _NUMERIC_RUN, _NUMERIC_TOKEN
    else:
        return text
    pieces: list[str] = []
    last = 0
    for run in runs.finditer(text):
        if run.end() - run.start() < 13:
            continue
        for span_start, span_end in _card_spans(tokens, text, run.start(), run.end()):
            pieces.append(text[last:span_start])
            pieces.append(CARD)
            last = span_end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _key_value(match: re.Match[str]) -> str:
    if not is_secret_key(match.group("key")):
        # "error: password=x": the value of a harmless key may hold a pair of its own.
        value = match.group("value")
        inner = _KEY_VALUE.sub(_key_value, value) if ("=" in value or ":" in value) else value
        if inner is value:
            return match.group()
        return f"{match.group('key')}{match.group('sep')}{inner}"
    value = match.group("value")
    quote = value[0] if value[0] in "\"'" and len(value) > 1 and value[-1] == value[0] else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{REDACTED}{quote}"


def _url(match: re.Match[str]) -> str:
    base, rest = match.group(1), match.group(2)
    if rest == "/" + REDACTED or "hook" not in match.group().lower():
        return match.group()
    return f"{base}/{REDACTED}"


def _may_hold_token(text: str) -> bool:
    return (
        "sk-" in text
        or "k_" in text
        or "xox" in text
        or "xapp-" in text
        or "gh" in text
        or "AKIA" in text
        or "ASIA" in text
        or "AIza" in text
        or "eyJ" in text
    )


def _redact_slow(text: str, pii: bool) -> str:
    # Cards first: their marker may expose a key=value pair that was glued to the
    # digits, and no later marker creates digits. Each rule is skipped unless a
    # literal it cannot match without is present.
    text = _redact_cards(text)
    if ":" in text or "=" in text:
        if "ookie" in text or "OOKIE" in text:
            text = _COOKIE_HEADER.sub(r"\1" + REDACTED, text)
        if "://" in text:
            text = _URL.sub(_url, _URL_USERINFO.sub(REDACTED + "@", text))
        text = _KEY_VALUE.sub(_key_value, text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(r"\1" + REDACTED, text)
    if _may_hold_token(text):
        text = _TOKEN_SHAPES.sub(REDACTED, text)
    if pii:
        if "@" in text:
            text = _EMAIL.sub(EMAIL, text)
        if _counts(text)[0] >= 7:
            text = _PHONE.sub(PHONE, text)
    return text


def _may_hold_something(text: str, pii: bool) -> bool:
    try:
        classes = text.encode().translate(_TABLE_PII if pii else _TABLE)
    except UnicodeEncodeError:  # lone surrogates: let the regular expressions decide
        return True
    if not classes.isalpha():
        return True
    if "earer" in text or "EARER" in text:
        return True
    # Letters and punctuation only: a card can only be spoken, in thirteen digits.
    return len(text) >= _SPOKEN_MIN_CHARS and _counts(text)[1] >= 5


def redact_text(text: str, *, pii: bool = False) -> str:
    """``text`` with secrets, card numbers (and phone numbers and e-mails if ``pii``) masked.

    Returns the very same object when nothing was masked.
    """
    clean = _clean_pii if pii else _clean
    if text in clean:
        return text
    if _may_hold_something(text, pii):
        redacted = _redact_slow(text, pii)
        if redacted != text:
            return redacted
    if len(text) <= _CLEAN_MAX_CHARS:
        if len(clean) >= _CACHE_LIMIT:
            clean.clear()
        clean.add(text)
    return text


def redact_url(url: str) -> str:
    """Scheme and host (and port) only: webhook URLs carry their secret in the path."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return REDACTED
    if not parts.scheme or not host:
        return REDACTED
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}"


# ----------------------------------------------------------- structured values

_SCALARS = frozenset({int, float, bool, type(None)})
# What the JSON renderer writes natively, with no repr that could carry a secret.
_JSON_NATIVE = (dt.date, dt.time, uuid.UUID, enum.Enum)
_SEQUENCES = (list, tuple, set, frozenset)


def _secret_placeholder(value: Any) -> Any:
    # An absent secret says something useful ("no token configured") and hides nothing.
    return value if value is None or (type(value) is str and not value) else REDACTED


def _redact_any(value: Any, pii: bool, path: set[int] | None) -> Any:
    kind = type(value)
    if kind is str:
        return redact_text(value, pii=pii)
    if kind in _SCALARS:
        return value
    if isinstance(value, dict):
        return _redact_dict(value, pii, path)
    if isinstance(value, _SEQUENCES):
        return _redact_items(value, pii, path)
    return _redact_object(value, pii, path)


def _redact_object(value: Any, pii: bool, path: set[int] | None) -> Any:
    """Objects the renderer shows as text (``repr``, bytes, exceptions) are redacted as
    that text; dataclasses as their fields. Types JSON renders natively pass unchanged."""
    if isinstance(value, _JSON_NATIVE):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
        redacted = _redact_dict(fields, pii, path)
        return value if redacted is fields else redacted
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("utf-8", "backslashreplace")
    elif isinstance(value, BaseException):
        text = f"{type(value).__name__}: {_safe_str(value)}"
    else:
        text = safe_repr(value)
    redacted_text = redact_text(text, pii=pii)
    return value if redacted_text is text else redacted_text


def _safe_str(value: BaseException) -> str:
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


def _redact_dict(mapping: dict[Any, Any], pii: bool, path: set[int] | None) -> Any:
    """``mapping`` redacted by key and by shape; a copy only if something changed.

    The loop reads the two caches itself because it runs for every extra of every record.
    """
    if path is not None and id(mapping) in path:
        return CYCLE
    clean = _clean_pii if pii else _clean
    secret_keys = _secret_keys
    inner: set[int] | None = None
    copy: dict[Any, Any] | None = None
    for key, value in mapping.items():
        if secret_keys[key]:
            new = _secret_placeholder(value)
        elif type(value) is str:
            if value in clean:
                continue
            new = redact_text(value, pii=pii)
        elif type(value) in _SCALARS:
            continue
        else:
            if inner is None:
                inner = set() if path is None else path
                inner.add(id(mapping))
            new = _redact_any(value, pii, inner)
        if new is not value:
            if copy is None:
                copy = dict(mapping)
            copy[key] = new
    if inner is not None:
        inner.discard(id(mapping))
    return mapping if copy is None else copy


def _redact_items(items: Any, pii: bool, path: set[int] | None) -> Any:
    inner = set() if path is None else path
    if id(items) in inner:
        return CYCLE
    inner.add(id(items))
    try:
        new_items = [_redact_any(item, pii, inner) for item in items]
    finally:
        inner.discard(id(items))
    if all(new is old for new, old in zip(new_items, items, strict=True)):
        return items
    return tuple(new_items) if isinstance(items, tuple) else new_items


def redact_value(key: Any, value: Any, *, pii: bool = False) -> Any:
    """``value`` as it may be logged under ``key``: masked by key, then by shape, recursively.

    Containers are copied only where something changed; the caller's objects are
    never modified.
    """
    if type(key) is str and is_secret_key(key):
        return _secret_placeholder(value)
    return _redact_any(value, pii, None)


class RedactProcessor:
    """Pipeline processor masking the message, every extra and the exception text.

    The record dict belongs to the pipeline and is updated in place; the user's
    ``extra`` dict (and anything inside it) is copied on write, never changed.
    """

    __slots__ = ("_clean", "pii")

    def __init__(self, pii: bool) -> None:
        self.pii = pii
        self._clean = _clean_pii if pii else _clean

    def __call__(self, logger: Any, method_name: str, record: dict[str, Any]) -> dict[str, Any]:
        pii, clean = self.pii, self._clean
        message = record.get("message")
        if type(message) is str and message not in clean:
            record["message"] = redact_text(message, pii=pii)
        extra = record.get("extra")
        if type(extra) is dict:
            # A cheap pass first: most extras are known-clean texts and numbers.
            secret_keys = _secret_keys
            for key, value in extra.items():
                kind = type(value)
                if secret_keys[key] or not (value in clean if kind is str else kind in _SCALARS):
                    record["extra"] = _redact_dict(extra, pii, None)
                    break
        elif extra:
            record["extra"] = _redact_any(extra, pii, None)
        exception = record.get("exception")
        if exception:
            record["exception"] = _redact_any(exception, pii, None)
        return record
