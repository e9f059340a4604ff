"""Redaction of secrets, payment card data and (optionally) PII.

Runs in the caller's thread on every record, so the common case (a text with
nothing to hide) must cost almost nothing: texts already known to be clean are
remembered in a bounded set, and a new text only reaches the regular expressions
when it holds one of the few characters every rule needs (a digit, ``:``, ``=``,
``-``, ``_``, ``A``, ``J``; ``@`` with PII on), a keyword of card data or looks like spoken digits.

Redaction cannot run away or fail open: every rule is linear in its input, a
field is cut to its size limit before it is scanned, nesting is bounded, and a
value whose redaction raises becomes ``[REDACTION FAILED]``, never its raw text.

The rules live beside this module: secrets in ``secret_rules``, card numbers
and their CVV and expiry in ``cards``; here they are applied to texts, to
structured values and, by :class:`RedactProcessor`, to every record.

Markers: ``[REDACTED]`` for secrets (and a card's CVV and expiry), ``[CARD]``
for card numbers (nothing of the number is kept), ``[EMAIL]`` and ``[PHONE]``
for PII. Redacting twice gives the same text as redacting once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import itertools
import re
import threading
import unicodedata
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from callwatch._logging.cards import (
    CARD,
    CARD_DATA_HINTS,
    REDACTED,
    CallDigits,
    count_digits,
    redact_card_data,
    redact_card_ids,
    redact_cards,
)
from callwatch._logging.render import safe_repr
from callwatch._logging.secret_rules import (
    CACHE_LIMIT,
    CACHE_MAX_CHARS,
    is_secret_key,
    redact_secrets,
)

__all__ = [
    "CARD",
    "EMAIL",
    "FAILED",
    "PHONE",
    "REDACTED",
    "RedactProcessor",
    "is_secret_key",
    "redact_id",
    "redact_name",
    "redact_text",
    "redact_url",
    "redact_value",
    "register_secret",
]

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CYCLE = "[CYCLE]"
FAILED = "[REDACTION FAILED]"
# What the renderer shows for what it would not render either.
MAX_DEPTH = 30
MAX_ITEMS = 1000
DEPTH_MARKER = "<max depth>"
MAX_NAME_CHARS = 200
# A field is scanned this far past its cut, so a card or secret straddling the
# cut is recognised whole and no fragment of it is kept.
_CUT_MARGIN = 1024
# key -> is it secret, for keys whose own text holds nothing to mask.
_plain_keys: dict[Any, bool] = {}

_SPOKEN_MIN_CHARS = 14  # five two-letter digit words and their separators

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
# Literals some rule needs although the table does not see them.
_WORD_HINTS = ("earer", "EARER", "oken", "OKEN", *CARD_DATA_HINTS)

# Invisible characters that could split a number or a key, and digits of every script.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]")
_UNICODE_DIGIT = re.compile(r"(?![0-9])\d")
# Fullwidth ASCII (U+FF01-U+FF5E) and the ideographic space, as their ASCII forms.
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

_MAX_PASSES = 4

_clean: set[str] = set()
_clean_pii: set[str] = set()
_clean_ids: set[str] = set()
_clean_ids_pii: set[str] = set()

# ------------------------------------------------------------ registered secrets

_MIN_SECRET_CHARS = 6
_MAX_SECRETS = 256
_URL_SECRET_PART_CHARS = 12
_registered: dict[str, None] = {}  # in the order registered
_registering = threading.Lock()
# What texts are scrubbed of, longest first so a URL is masked whole before its path;
# replaced, never changed, so redaction in other threads reads it without a lock.
_secrets: tuple[str, ...] = ()


def register_secret(text: str) -> None:
    """Mask ``text`` wherever it appears verbatim from now on (a configured token, a webhook URL).

    A URL registers its path and query too, and each long path segment or query
    value, since errors often quote them without the host. Texts shorter than
    six characters are ignored: masking them everywhere would mask words.
    """
    parts = [text]
    if "://" in text:
        try:
            url = urlsplit(text)
        except ValueError:
            url = None
        if url is not None and url.netloc:
            path = url.path + (f"?{url.query}" if url.query else "")
            parts.append(path)
            parts.extend(url.path.split("/"))
            parts.extend(value for _, value in parse_qsl(url.query))
            parts = [text, *(p for p in parts[1:] if len(p) >= _URL_SECRET_PART_CHARS)]
    global _secrets
    with _registering:
        for part in parts:
            if len(part) >= _MIN_SECRET_CHARS and part not in _registered:
                _registered[part] = None
                if len(_registered) > _MAX_SECRETS:
                    del _registered[next(iter(_registered))]
        _secrets = tuple(sorted(_registered, key=len, reverse=True))
        # Texts remembered as clean may hold the new secret.
        _clean.clear()
        _clean_pii.clear()
        _plain_keys.clear()


def _scrub_registered(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


# ------------------------------------------------------------------ text rules


def _redact_slow(text: str, pii: bool, identifier: bool) -> str:
    # A marker can bring two pieces together that no rule matched apart ("001Password=0"
    # once its CVV is masked): repeat until nothing changes, so masking is idempotent.
    for _ in range(_MAX_PASSES):
        masked = _redact_pass(text, pii, identifier)
        if masked == text:
            break
        text = masked
    return text


def _redact_pass(text: str, pii: bool, identifier: bool) -> str:
    # Card numbers first: their marker may expose a key=value pair that was glued
    # to the digits, and no later marker creates digits; the CVV and expiry last.
    digits, words = count_digits(text)
    cards = redact_card_ids(text) if identifier else redact_cards(text, digits, words)
    text = redact_secrets(cards)
    if pii:
        if "@" in text:
            text = _EMAIL.sub(EMAIL, text)
        if digits >= 7:
            text = _PHONE.sub(PHONE, text)
    return text if identifier else redact_card_data(text)


def _may_hold_something(text: str, pii: bool) -> bool:
    try:
        classes = text.encode().translate(_TABLE_PII if pii else _TABLE)
    except UnicodeEncodeError:  # lone surrogates: let the regular expressions decide
        return True
    if not classes.isalpha():
        return True
    if any(hint in text for hint in _WORD_HINTS):
        return True
    # Letters and punctuation only: a card can only be spoken, in thirteen digits.
    return len(text) >= _SPOKEN_MIN_CHARS and count_digits(text)[1] >= 5


def _normalise(text: str) -> str:
    """Fullwidth forms folded, every script's decimal digits as ASCII, invisible
    characters removed: what a reader sees is what the rules match.

    Not NFKC: it turns ``¼`` into ``1⁄4`` and ``²`` into ``2``, whose digits then
    glue onto a card number next to them and hide it from the Luhn check.
    """
    text = _INVISIBLE.sub("", text).translate(_FULLWIDTH)
    return _UNICODE_DIGIT.sub(lambda m: str(unicodedata.decimal(m.group(), 0)), text)


def _redact_text(text: str, pii: bool, identifier: bool = False) -> str:
    clean = _clean_pii if pii else _clean
    if text in clean:
        return text
    # What is clean as text is clean as an identifier (whose card rule is narrower), not
    # the other way round: identifiers are remembered apart.
    known = (_clean_ids_pii if pii else _clean_ids) if identifier else clean
    if identifier and text in known:
        return text
    scrubbed = _scrub_registered(text) if _secrets else text
    folded = scrubbed if scrubbed.isascii() else _normalise(scrubbed)
    quiet = not _may_hold_something(folded, pii)
    redacted = folded if quiet else _redact_slow(folded, pii, identifier)
    if scrubbed is not text or redacted != folded:
        return redacted
    # Nothing masked: the text as it was, not its folded form.
    _remember(known, text)
    return text


def _remember(texts: set[str], text: str) -> None:
    """Add a short ``text`` to a cache of texts, which starts over when full."""
    if len(text) <= CACHE_MAX_CHARS:
        if len(texts) >= CACHE_LIMIT:
            texts.clear()
        texts.add(text)


def redact_text(text: str, *, pii: bool = False) -> str:
    """``text`` with secrets, card data (and phone numbers and e-mails if ``pii``) masked.

    Returns the very same object when nothing was masked, and ``[REDACTION
    FAILED]`` rather than the text if redaction itself fails.
    """
    try:
        return _redact_text(text, pii)
    except Exception:
        return FAILED


def redact_id(text: str, *, pii: bool = False) -> str:
    """``text``, an identifier (call id, logger, timer or error name), with secrets masked
    and card numbers masked where written as cards (see ``redact_card_ids``)."""
    try:
        return _redact_text(text, pii, identifier=True)
    except Exception:
        return FAILED


def _cut(text: str, keep: int, pii: bool, suffix: str, identifier: bool = False) -> str:
    """The first ``keep`` characters of redacted ``text``, then ``suffix``.

    Redaction reads a little past the cut, so what straddles it is masked whole.
    """
    redact = redact_id if identifier else redact_text
    return redact(text[: keep + _CUT_MARGIN], pii=pii)[:keep] + suffix


def _cut_field(text: str, limit: int, pii: bool, identifier: bool = False) -> str:
    """``text`` cut to ``limit`` characters, marker included, as the renderer marks a cut."""
    keep = max(limit - 19 - len(str(len(text))), 0)
    return _cut(text, keep, pii, f"…[truncated {len(text) - keep} chars]", identifier)


def _safe_text(value: object) -> str:
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


def redact_name(value: object, *, pii: bool = False, limit: int = MAX_NAME_CHARS) -> str:
    """An identifier (timer name, error type, call id, logger name) made safe to show anywhere.

    Any object becomes text, at most ``limit`` characters (a cut one ends in
    ``…``), with secrets and card data masked. Never raises.
    """
    try:
        text = _safe_text(value)
        if len(text) > limit:
            return _cut(text, max(limit - 1, 0), pii, "…", identifier=True)
        return redact_id(text, pii=pii)
    except Exception:
        return FAILED


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


_ID_SUFFIXES = ("_id", "-id", ".id", "Id")


def _is_id_key(key: object) -> bool:
    """Whether values under ``key`` are identifiers (``id``, ``turn_id``, ``callId``)."""
    return type(key) is str and (key.lower() == "id" or key.endswith(_ID_SUFFIXES))


class _Redactor:
    """Walks one value: texts cut to ``limit`` then redacted, containers bounded and copied
    only where something changed, any failure turning that value into a marker."""

    __slots__ = ("clean", "limit", "pii")

    def __init__(self, pii: bool, limit: int | None) -> None:
        self.pii = pii
        self.limit = limit
        self.clean = _clean_pii if pii else _clean

    def text(self, text: str, identifier: bool = False) -> str:
        """Free text, or with ``identifier`` an id field's value (``turn_id``)."""
        if self.limit is not None and len(text) > self.limit:
            return _cut_field(text, self.limit, self.pii, identifier)
        return (redact_id if identifier else redact_text)(text, pii=self.pii)

    def value(self, value: Any, depth: int, path: set[int]) -> Any:
        try:
            kind = type(value)
            if kind is str:
                return self.text(value)
            if kind in _SCALARS:
                return value
            if depth >= MAX_DEPTH:
                return DEPTH_MARKER
            if isinstance(value, dict):
                return self.mapping(value, depth, path)
            if isinstance(value, _SEQUENCES):
                return self.items(value, depth, path)
            return self.object(value, depth, path)
        except Exception:
            return FAILED

    def object(self, value: Any, depth: int, path: set[int]) -> Any:
        """Objects the renderer shows as text (``repr``, bytes, exceptions) are redacted as
        that text; dataclasses as their fields. Types JSON renders natively pass unchanged."""
        if isinstance(value, _JSON_NATIVE):
            return value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
            redacted = self.mapping(fields, depth, path)
            return value if redacted is fields else redacted
        if isinstance(value, (bytes, bytearray)):
            text = bytes(value).decode("utf-8", "backslashreplace")
        elif isinstance(value, BaseException):
            text = f"{type(value).__name__}: {_safe_text(value)}"
        else:
            text = safe_repr(value)
        redacted_text = self.text(text)
        return value if redacted_text is text else redacted_text

    def key(self, key: Any) -> tuple[Any, bool]:
        """(the key as it may be shown, whether its value is secret)."""
        secret = _plain_keys.get(key)
        if secret is not None:
            return key, secret
        if type(key) is str:
            shown, secret = self.text(key), is_secret_key(key)
        else:
            # Shown as the renderer will write it: numbers as text, other keys by repr.
            text = str(key) if type(key) in _SCALARS else safe_repr(key)
            redacted = self.text(text)
            shown, secret = (key if redacted is text else redacted), False
        # Utterance keys are never remembered as plain, so the processor's cheap pass
        # leaves a record holding one to the slow path, which also follows the call.
        if shown is key and (
            type(key) is not str or (len(key) <= CACHE_MAX_CHARS and key not in _UTTERANCE_KEYS)
        ):
            if len(_plain_keys) >= CACHE_LIMIT:
                _plain_keys.clear()
            _plain_keys[key] = secret
        return shown, secret

    def mapping(self, mapping: dict[Any, Any], depth: int, path: set[int]) -> Any:
        """``mapping`` redacted by key and by shape; a copy only if something changed."""
        if id(mapping) in path:
            return CYCLE
        path.add(id(mapping))
        try:
            return self._mapping(mapping, depth, path)
        finally:
            path.discard(id(mapping))

    def _mapping(self, mapping: dict[Any, Any], depth: int, path: set[int]) -> Any:
        clean = self.clean
        copy: dict[Any, Any] | None = None
        for index, (key, value) in enumerate(mapping.items()):
            if index >= MAX_ITEMS:
                copy = dict(itertools.islice(mapping.items(), index)) if copy is None else copy
                copy["…"] = f"[{len(mapping) - MAX_ITEMS} more items]"
                break
            shown, secret = self.key(key)
            if secret:
                new = _secret_placeholder(value)
            elif (value in clean) if type(value) is str else (type(value) in _SCALARS):
                new = value
            elif type(value) is str and _is_id_key(key):
                new = self.text(value, identifier=True)
            else:
                new = self.value(value, depth + 1, path)
            if new is value and shown is key:
                if copy is not None:
                    copy[key] = value
                continue
            if copy is None:
                copy = dict(itertools.islice(mapping.items(), index))
            if shown is not key:
                copy.pop(key, None)
                shown = _free_key(copy, mapping, shown)
            copy[shown] = new
        return mapping if copy is None else copy

    def items(self, items: Any, depth: int, path: set[int]) -> Any:
        if id(items) in path:
            return CYCLE
        path.add(id(items))
        try:
            new_items = [
                self.value(item, depth + 1, path) for item in itertools.islice(items, MAX_ITEMS)
            ]
        finally:
            path.discard(id(items))
        if len(items) > MAX_ITEMS:
            new_items.append(f"…[{len(items) - MAX_ITEMS} more items]")
        elif all(new is old for new, old in zip(new_items, items, strict=True)):
            return items
        return tuple(new_items) if isinstance(items, tuple) else new_items


def _free_key(copy: dict[Any, Any], mapping: dict[Any, Any], key: Any) -> Any:
    """``key``, or ``key#2``, ``key#3``… when two keys are masked alike: no value is lost."""
    if key not in copy and key not in mapping:
        return key
    for number in itertools.count(2):
        candidate = f"{key}#{number}"
        if candidate not in copy and candidate not in mapping:
            return candidate
    raise AssertionError("unreachable")


_redactors = {pii: _Redactor(pii, None) for pii in (False, True)}


def redact_value(key: Any, value: Any, *, pii: bool = False) -> Any:
    """``value`` as it may be logged under ``key``: masked by key, then by shape, recursively.

    Containers are copied only where something changed; the caller's objects are
    never modified. Nesting deeper than 30 levels becomes ``<max depth>``.
    """
    try:
        if type(key) is str and is_secret_key(key):
            return _secret_placeholder(value)
        return _redactors[pii].value(value, 0, set())
    except Exception:
        return FAILED


# ----------------------------------------------------------------- processor

# Keys under which voice applications log what the caller said.
_UTTERANCE_KEYS = frozenset(
    {"text", "transcript", "transcription", "utterance", "speech", "said", "user_text",
     "user_said", "user_input", "input", "content", "query", "prompt"}
)  # fmt: skip


class RedactProcessor:
    """Pipeline processor masking the message, logger name, call id, every extra (keys too)
    and the exception text, each cut to ``max_field_chars`` (``LOG_MAX_FIELD_CHARS``) first.

    The record dict belongs to the pipeline and is updated in place; the user's
    ``extra`` dict (and anything inside it) is copied on write, never changed.
    Per call (the record's ``call_id``) it remembers the last digits said, so a
    card spoken across two records is masked in the second.
    """

    __slots__ = ("_calls", "_clean", "_clean_ids", "_quiet", "_redactor", "pii")

    def __init__(self, pii: bool, max_field_chars: int = 16384) -> None:
        self.pii = pii
        self._clean = _clean_pii if pii else _clean
        self._clean_ids = _clean_ids_pii if pii else _clean_ids
        self._redactor = _Redactor(pii, max_field_chars)
        self._calls = CallDigits()
        # Texts holding no digit and no card word: nothing a call needs to remember.
        self._quiet: set[str] = set()

    def __call__(self, logger: Any, method_name: str, record: dict[str, Any]) -> dict[str, Any]:
        # Unrolled and inlined: this runs for every record, and most hold nothing to mask.
        clean, redactor = self._clean, self._redactor
        message = record.get("message")
        if type(message) is str and message not in clean:
            record["message"] = redactor.text(message)
        # The logger name and the call id are identifiers: their card rule is narrower.
        ids = self._clean_ids
        name = record.get("logger")
        if type(name) is str and name not in clean and name not in ids:
            record["logger"] = redact_name(name, pii=self.pii)
        call_id = record.get("call_id")
        if call_id is not None and not (
            type(call_id) is str and (call_id in clean or call_id in ids)
        ):
            record["call_id"] = call_id = redact_name(call_id, pii=self.pii)
        extra = record.get("extra")
        unusual_extra = False
        if type(extra) is dict:
            # A cheap pass first: most extras are known-clean texts and numbers under known keys.
            plain_keys = _plain_keys
            for key, value in extra.items():
                kind = type(value)
                if plain_keys.get(key) is not False or not (
                    value in clean if kind is str else kind in _SCALARS
                ):
                    record["extra"] = redactor.value(extra, 0, set())
                    unusual_extra = True
                    break
        elif extra:
            record["extra"] = redactor.value(extra, 0, set())
        exception = record.get("exception")
        if exception:
            record["exception"] = redactor.value(exception, 0, set())
        if type(call_id) is str and (
            (type(message) is str and message not in self._quiet)
            or (unusual_extra and not _UTTERANCE_KEYS.isdisjoint(record["extra"]))
        ):
            self._follow_call(call_id, record)
        return record

    def _follow_call(self, call_id: str, record: dict[str, Any]) -> None:
        """Mask what completes or continues a card begun in an earlier record of the call."""
        try:
            message = record.get("message")
            if type(message) is str and not self._is_quiet(message):
                record["message"] = self._calls.redact(call_id, message)
            extra = record.get("extra")
            if type(extra) is not dict:
                return
            for key, value in list(extra.items()):
                if key in _UTTERANCE_KEYS and type(value) is str and not self._is_quiet(value):
                    masked = self._calls.redact(call_id, value)
                    if masked != value:
                        record["extra"] = extra = {**extra, key: masked}
        except Exception:
            record["message"] = FAILED

    def _is_quiet(self, text: str) -> bool:
        if text in self._quiet:
            return True
        if self._calls.relevant(text):
            return False
        _remember(self._quiet, text)
        return True
