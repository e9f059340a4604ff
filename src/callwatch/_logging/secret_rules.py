"""What a secret looks like: secret keys, and secrets written in text.

Keys are classified by their words; in text, ``key=value`` pairs under a secret
key, authorization headers, header lists, URLs' credentials and webhook paths,
and API keys by their shape (OpenAI, Stripe, Slack, AWS, GitHub, Google, JWT,
and the voice stack: ElevenLabs, Twilio, Deepgram). Every rule is linear in the
text and idempotent: its marker never matches it again.
"""

from __future__ import annotations

import itertools
import re

from callwatch._logging.cards import REDACTED

__all__ = ["CACHE_LIMIT", "CACHE_MAX_CHARS", "is_secret_key", "redact_secrets"]

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
# Every secret key (and query key) holds one of these, lowercased: a text holding
# none has no pair to mask.
_SECRET_KEY_HINTS = (
    *("pass", "pwd", "secret", "credential", "key", "auth", "cvv", "cvc", "ssn", "token"),
    *("cookie", "session", "sig", "pin", "pan", "jwt", "card", "code"),
)
# In a URL's query these name a secret too (``?key=…`` for API keys, ``?code=…`` in OAuth).
_QUERY_SECRET_KEYS = frozenset({"key", "code"})
_CAMEL_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_KEY_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
# Caches of keys and texts start over at this size and remember texts this short.
CACHE_LIMIT = 4096
CACHE_MAX_CHARS = 512

_secret_keys: dict[str, bool] = {}  # key -> is it secret


def _classify_key(key: str) -> bool:
    spaced = _CAMEL.sub(r"\1_\2", _CAMEL_ACRONYM.sub(r"\1_\2", key[:CACHE_MAX_CHARS])).lower()
    words = [word for word in _KEY_WORD_SPLIT.split(spaced) if word]
    if not words:
        return False
    if words[-1] in _LAST_SECRET_WORDS or not _ALWAYS_SECRET_WORDS.isdisjoint(words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def is_secret_key(key: str) -> bool:
    """Whether values under ``key`` are secrets (case, ``_``/``-``/``.`` and camelCase ignored)."""
    secret = _secret_keys.get(key)
    if secret is None:
        secret = _classify_key(key)
        if len(key) <= CACHE_MAX_CHARS:
            if len(_secret_keys) >= CACHE_LIMIT:
                _secret_keys.clear()
            _secret_keys[key] = secret
    return secret


# ------------------------------------------------------------------ secrets in text

_COOKIE_HEADER = re.compile(
    r"(?i)\b((?:set-)?cookie[\"']?\s*+:\s*+)(?![\"']?\[REDACTED\])[^\r\n\"']+"
)
_URL_USERINFO = re.compile(r"(?<=://)(?!\[REDACTED\]@)[^\s/?#@]+@")
_URL = re.compile(r"(?i)\b(https?://[^\s/?#\"'<>]+)([/?#][^\s\"'<>]*)")
# A key and its separator; the value is read after it only when the key is secret,
# so ``a=a=a=…`` costs one step per pair and nothing recurses.
_KEY_SEP = re.compile(r"(?<![\w.-])([A-Za-z_][\w.-]{0,63}+)([\"']?\s*+[:=]\s*+)")
_VALUE = re.compile(
    r"(?!b?[\"']?\[REDACTED\])(?:(?i:bearer|basic|digest|token)\s++)?"
    r"(?:b?\"[^\"\r\n]*+(?:\"|\Z)|b?'[^'\r\n]*+(?:'|\Z)|[^\s\"'&,;]++)"
)
# Header lists as Python shows them: [(b'authorization', b'Token …'), ('x-api-key', '…')]
_HEADER_PAIR = re.compile(
    r"\(\s*+b?([\"'])([A-Za-z_][\w.-]{0,63}+)\1\s*+,\s*+(b?([\"']))(?!\[REDACTED\])[^\"'\r\n]*+\4"
)
_BEARER = re.compile(r"(?i)\b(bearer\s++)(?!\[REDACTED\])[A-Za-z0-9\-._~+/]{8,}+=*")
# "Token <key>" (Deepgram and others): only a long word holding a digit, not prose.
_TOKEN_AUTH = re.compile(r"(?i)\b(token\s++)(?!\[REDACTED\])([A-Za-z0-9\-._~+/]{20,}+=*)")
# A secret written next to the id it belongs to: Twilio auth tokens and API key
# secrets after AC…/SK… sids, AWS secret access keys after AKIA…/ASIA… ids.
_ID_AND_SECRET = re.compile(
    r"\b((?:AC|SK)[0-9a-fA-F]{32}|(?:AKIA|ASIA)[A-Z0-9]{16})"
    r"([\s\"',:;|/=()\[\]]{1,12}b?)([A-Za-z0-9/+]{32,40}+)(?![A-Za-z0-9/+=])"
)
_TOKEN_SHAPES = re.compile(
    r"\bsk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}"  # OpenAI, Anthropic
    r"|\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe secret and restricted keys
    r"|\bsk_[A-Za-z0-9]{24,}"  # ElevenLabs
    r"|\bSK[0-9a-fA-F]{32}\b"  # Twilio API key sids
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}|\bxapp-[A-Za-z0-9\-]{10,}"  # Slack
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"  # AWS access key ids
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|\bAIza[0-9A-Za-z_\-]{35}"  # Google
    r"|\beyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"  # JWT
)


def _redact_pairs(text: str) -> str:
    """``key=value`` and ``key: value`` with a secret key: the value masked, quotes kept."""
    pieces: list[str] = []
    last = 0
    for match in _KEY_SEP.finditer(text):
        if match.start() < last:  # inside a value just masked
            continue
        key, start = match.group(1), match.start()
        in_query = start > 0 and text[start - 1] in "?&"
        if not (is_secret_key(key) or (in_query and key.lower() in _QUERY_SECRET_KEYS)):
            continue
        value = _VALUE.match(text, match.end())
        if value is None:
            continue
        raw = value.group()
        quote = raw.removeprefix("b")[:1]
        if quote in ("'", '"'):
            prefix = raw[: raw.index(quote) + 1]
            closed = len(raw) > len(prefix) and raw[-1] == quote
            masked = prefix + REDACTED + (quote if closed else "")
        else:
            masked = REDACTED
        pieces.append(text[last : match.end()])
        pieces.append(masked)
        last = value.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _header_pair(match: re.Match[str]) -> str:
    if not is_secret_key(match.group(2)):
        return match.group()
    quote = match.group(3)
    return f"{match.group()[: match.start(3) - match.start()]}{quote}{REDACTED}{match.group(4)}"


def _token_auth(match: re.Match[str]) -> str:
    if not any(char.isdigit() for char in match.group(2)):
        return match.group()
    return match.group(1) + REDACTED


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
        or "SK" in text
    )


def redact_secrets(text: str) -> str:
    """``text`` with every secret these rules know masked.

    Each rule is skipped unless a literal it cannot match without is present.
    """
    if ":" in text or "=" in text:
        if "ookie" in text or "OOKIE" in text:
            text = _COOKIE_HEADER.sub(r"\1" + REDACTED, text)
        if "://" in text:
            text = _URL.sub(_url, _URL_USERINFO.sub(REDACTED + "@", text))
        lowered = text.lower()
        if any(hint in lowered for hint in _SECRET_KEY_HINTS):
            text = _redact_pairs(text)
    if ("('" in text or '("' in text or "(b" in text) and "," in text:
        text = _HEADER_PAIR.sub(_header_pair, text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(r"\1" + REDACTED, text)
    if "oken" in text or "OKEN" in text:
        text = _TOKEN_AUTH.sub(_token_auth, text)
    if "AC" in text or "SK" in text or "AKIA" in text or "ASIA" in text:
        text = _ID_AND_SECRET.sub(r"\1\2" + REDACTED, text)
    if _may_hold_token(text):
        text = _TOKEN_SHAPES.sub(REDACTED, text)
    return text
