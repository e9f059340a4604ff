"""Redaction: secrets by key and by shape, card numbers (written and spoken), PII."""

from __future__ import annotations

import copy
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch._logging.redact import (
    CARD,
    EMAIL,
    PHONE,
    REDACTED,
    RedactProcessor,
    is_secret_key,
    redact_text,
    redact_url,
    redact_value,
)

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def luhn_complete(body: str) -> str:
    """body + the check digit that makes it Luhn-valid."""
    for check in "0123456789":
        candidate = body + check
        total = 0
        for index, char in enumerate(reversed(candidate)):
            value = int(char)
            if index % 2:
                value = value * 2 - 9 if value > 4 else value * 2
            total += value
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def luhn_valid(digits: str) -> bool:
    return luhn_complete(digits[:-1]) == digits


def spoken(number: str, sep: str = " ", zero: str = "zero") -> str:
    return sep.join(zero if d == "0" else WORDS[int(d)] for d in number)


VISA = "4111111111111111"
AMEX = "378282246310005"
DINERS = "30569309025904"  # 14 digits
CARD_19 = luhn_complete("622202345678901234")


# ------------------------------------------------------------------ secrets


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123"),
        ("sending bearer eyJ0eXAiOiJKV1Qi-xyz to upstream", "eyJ0eXAiOiJKV1Qi-xyz"),
        ("authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("headers={'Authorization': 'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz"),
        ("using sk-abcdefghijklmnopqrstuvwxyz012345 for llm", "abcdefghijklmnopqrstuvwxyz012345"),
        ("key sk-proj-Ab3dEfGh1jKlMn0pQrStUvWxYz_-12 set", "Ab3dEfGh1jKlMn0pQrStUvWxYz_-12"),
        ("slack xoxb-123456789012-abcdefghijklmn", "123456789012-abcdefghijklmn"),
        ("slack user xoxp-123456789012-abcdefghijklmn", "abcdefghijklmn"),
        ("aws AKIAIOSFODNN7EXAMPLE region", "IOSFODNN7EXAMPLE"),
        ("gh ghp_16C7e42F292c6912E7710c838347Ae178B4a done", "16C7e42F292c6912E7710c838347Ae178B4a"),
        ("gh github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzAB", "abcdefghijklmnopqrstuvwxyzAB"),
        ("google AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe maps", "SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc ok", "4eC39HqLyjWDarjtT1zdp7dc"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ),
        ("login password=hunter2 user=bob", "hunter2"),
        ("DB_PASSWORD: 's3cr3t pass'", "s3cr3t pass"),
        ('body {"api_key": "k-123", "model": "gpt-4o"}', "k-123"),
        ("x-api-key: abcdef123", "abcdef123"),
        ("GET /v1/calls?access_token=tok123&page=2", "tok123"),
        ("clientSecret=shh", "shh"),
        ("Cookie: sessionid=abc123; theme=dark", "abc123"),
        ("Set-Cookie: sid=xyz789; HttpOnly", "xyz789"),
        ("connecting to postgres://app:pa55word@db.internal:5432/calls", "pa55word"),
        ("redis://:r3dispass@cache:6379/0", "r3dispass"),
        ("posting https://hooks.slack.com/services/T0001/B0001/XXXXSECRET now", "XXXXSECRET"),
        ("https://discord.com/api/webhooks/123/abcSECRET", "abcSECRET"),
    ],
)
def test_secret_shapes_are_masked(text: str, secret: str) -> None:
    redacted = redact_text(text)
    assert secret not in redacted
    assert REDACTED in redacted


@pytest.mark.parametrize(
    "text",
    [
        "Call started",
        "LLM generated 120 tokens: max_tokens=256 token_count=5",
        "model=gpt-4o-mini language=en-US latency_ms=412",
        "the bearer of good news",
        "a basic plan was selected",
        "risk_level: low",
        "see https://docs.example.com/guide?page=2",
        "call 550e8400-e29b-41d4-a716-446655440000 ended",
    ],
)
def test_ordinary_text_survives(text: str) -> None:
    assert redact_text(text) is text


def test_url_keeps_surrounding_text() -> None:
    assert (
        redact_text("POST https://hooks.slack.com/services/T1/B2/SEC failed: 500")
        == "POST https://hooks.slack.com/[REDACTED] failed: 500"
    )


# -------------------------------------------------------------------- cards


@pytest.mark.parametrize("number", [VISA, AMEX, DINERS, CARD_19, "5555555555554444"])
def test_card_numbers_masked_in_every_layout(number: str) -> None:
    groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    for layout in (number, " ".join(groups), "-".join(groups)):
        text = f"card {layout} expires 12/27"
        assert redact_text(text) == f"card {CARD} expires 12/27"


def test_amex_grouping_masked() -> None:
    assert redact_text("amex 3782 822463 10005.") == f"amex {CARD}."


def test_luhn_invalid_number_survives() -> None:
    order = "4111111111111112"
    assert not luhn_valid(order)
    assert redact_text(f"order {order} shipped") == f"order {order} shipped"
    assert redact_text("order 4111 1111 1111 1112") == "order 4111 1111 1111 1112"


def test_long_identifiers_are_not_cards() -> None:
    twenty = luhn_complete("1234567890123456789")  # 20 digits
    assert redact_text(f"id {twenty}") == f"id {twenty}"


def test_card_glued_to_text_masked() -> None:
    assert redact_text(f"no:{VISA};") == f"no:{CARD};"
    assert redact_text(f"ref{VISA}x") == f"ref{CARD}x"


@pytest.mark.parametrize(
    "transcript",
    [
        spoken(VISA),
        spoken(VISA, sep=", "),
        spoken(VISA, sep="-"),
        spoken(VISA).capitalize() + ".",
        spoken(VISA).upper(),
        spoken("5105105105105100", zero="oh"),
        spoken("5105105105105100", zero="zero", sep=" , "),
        # mixed numerals and words, as STT writes when the caller pauses
        "4111 1111 one one one one 1111",
        "four one one one 1111 one one one one 1111",
        "4111, 1111, one one one one, one one one one",
        # grouped by the caller, with commas at the pauses
        "four one one one, one one one one, one one one one, one one one one",
        # "double"/"triple" as callers say them
        "four triple one" + " one" * 12,
        "four one double one, one one one one, one one one one, one triple one",
    ],
)
def test_spoken_card_numbers_masked(transcript: str) -> None:
    text = f"User said: {transcript} thanks"
    redacted = redact_text(text)
    assert CARD in redacted
    words = re.findall(r"[a-z]+|\d+", redacted.lower())
    digit_words = [w for w in words if w in WORDS or w in ("oh", "double", "triple") or w.isdigit()]
    assert digit_words == [], redacted


def no_valid_window(number: str) -> bool:
    return not any(
        luhn_valid(number[i:j]) for i in range(len(number)) for j in range(i + 13, len(number) + 1)
    )


def test_spoken_digits_that_are_not_a_card_survive() -> None:
    order = "1234567812345678"
    assert no_valid_window(order)
    text = "my order number is " + spoken(order)
    assert redact_text(text) == text
    short = "one two three four"
    assert redact_text(short) is short


def test_card_with_trailing_expiry_masked_without_leaving_card_digits() -> None:
    text = f"card {spoken(VISA)} expiry one two two seven"
    redacted = redact_text(text)
    assert "four" not in redacted
    assert CARD in redacted


# ---------------------------------------------------------------------- PII


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("caller +14155551234 connected", f"caller {PHONE} connected"),
        ("call from +44 20 7946 0958 ok", f"call from {PHONE} ok"),
        ("dial (415) 555-1234 now", f"dial {PHONE} now"),
        ("dial 415-555-1234 now", f"dial {PHONE} now"),
        ("dial 415.555.1234 now", f"dial {PHONE} now"),
        ("uk 07700 900123 mobile", f"uk {PHONE} mobile"),
        ("mail bob.smith+tag@example.co.uk today", f"mail {EMAIL} today"),
        ("sip:+14155551234@pbx.example.com", f"sip:{EMAIL}"),
    ],
)
def test_pii_masked_only_when_enabled(text: str, masked: str) -> None:
    assert redact_text(text, pii=True) == masked
    assert redact_text(text) == text


@pytest.mark.parametrize(
    "text", ["on 2024-01-04 at 12:30:45", "ip 192.168.100.200", "took 0.123456789 s", "v1.2.3"]
)
def test_pii_mode_leaves_dates_and_numbers(text: str) -> None:
    assert redact_text(text, pii=True) == text


# -------------------------------------------------------------- URL and keys


def test_redact_url_keeps_scheme_and_host_only() -> None:
    assert redact_url("https://hooks.slack.com/services/T0/B0/SECRET") == "https://hooks.slack.com"
    assert redact_url("https://user:pw@alerts.example.com:8443/hook?t=1") == (
        "https://alerts.example.com:8443"
    )
    assert redact_url("http://[::1]:9000/x") == "http://[::1]:9000"
    assert redact_url("not a url") == REDACTED
    assert redact_url("http://[bad") == REDACTED


@pytest.mark.parametrize(
    "key",
    [
        "password", "PASSWORD", "passwd", "db_password", "userPassword", "token", "access_token",
        "accessToken", "refresh-token", "secret", "client_secret", "api_key", "apiKey", "APIKey",
        "x-api-key", "apikey", "Authorization", "cookie", "Set-Cookie", "credentials",
        "private_key", "session", "session_id", "sessionId", "card_number", "cvv", "pin",
        "X-Amz-Signature",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)
    assert redact_value(key, "value") == REDACTED


@pytest.mark.parametrize(
    "key", ["tokens", "max_tokens", "token_count", "author", "keyboard", "call_id", "spin", "model"]
)
def test_ordinary_keys(key: str) -> None:
    assert not is_secret_key(key)
    assert redact_value(key, "value") == "value"


def test_absent_secret_stays_visible() -> None:
    assert redact_value("token", None) is None
    assert redact_value("token", "") == ""
    assert redact_value("pin", 1234) == REDACTED


def test_nested_values_redacted_by_key_and_shape() -> None:
    value = {
        "request": {"headers": {"Authorization": "Bearer abcdefgh123"}, "path": "/x"},
        "attempts": [{"api_key": "k1"}, "card 4111 1111 1111 1111", ("password=x", 3)],
        "count": 3,
    }
    redacted = redact_value("payload", value)
    assert redacted == {
        "request": {"headers": {"Authorization": REDACTED}, "path": "/x"},
        "attempts": [{"api_key": REDACTED}, f"card {CARD}", (f"password={REDACTED}", 3)],
        "count": 3,
    }


def test_unchanged_structures_are_returned_as_is() -> None:
    value = {"a": [1, "two", {"b": "c"}], "d": ("e",)}
    assert redact_value("payload", value) is value


def test_cycles_are_cut_and_redacted() -> None:
    value: dict[str, object] = {"password": "x"}
    value["self"] = value
    redacted = redact_value("payload", value)
    assert redacted["password"] == REDACTED
    assert redacted["self"] == "[CYCLE]"
    assert value["password"] == "x"


# ---------------------------------------------------------------- processor


def _record(**fields: object) -> dict[str, object]:
    record: dict[str, object] = {"message": "Call started", "level": "INFO", "extra": {}}
    record.update(fields)
    return record


def test_processor_redacts_message_extras_and_exception() -> None:
    extra = {"caller": "+14155551234", "token": "abc", "nested": {"note": f"card {VISA}"}}
    exception = {
        "type": "HTTPError",
        "message": "401 for Authorization: Bearer abcdefgh123",
        "frames": [{"file": "a.py", "line": 3, "code": "call(api_key='k-1')"}],
    }
    record = _record(message=f"paid with {VISA}", extra=extra, exception=exception)
    out = RedactProcessor(pii=False)(None, "info", record)
    assert out["message"] == f"paid with {CARD}"
    assert out["extra"] == {"caller": "+14155551234", "token": REDACTED,
                            "nested": {"note": f"card {CARD}"}}
    assert out["exception"]["message"] == "401 for Authorization: [REDACTED]"  # type: ignore[index]
    assert out["exception"]["frames"][0]["code"] == "call(api_key='[REDACTED]')"  # type: ignore[index]


def test_processor_pii_switch() -> None:
    record = _record(extra={"caller": "+14155551234"}, message="from bob@example.com")
    out = RedactProcessor(pii=True)(None, "info", record)
    assert out["extra"] == {"caller": PHONE}
    assert out["message"] == f"from {EMAIL}"


def test_processor_never_mutates_callers_objects() -> None:
    extra = {"password": "p", "items": [{"secret": "s"}], "note": f"card {VISA}"}
    exception = {"type": "E", "message": f"card {VISA}", "frames": [{"code": "x"}]}
    snapshot = copy.deepcopy((extra, exception))
    record = _record(extra=extra, exception=exception)
    out = RedactProcessor(pii=False)(None, "info", record)
    assert (extra, exception) == snapshot
    assert out["extra"] is not extra
    assert out["extra"]["password"] == REDACTED  # type: ignore[index]


def test_processor_leaves_clean_extras_uncopied() -> None:
    extra = {"call_id": "c-1", "duration_ms": 12.5, "model": "gpt-4o"}
    out = RedactProcessor(pii=False)(None, "info", _record(extra=extra))
    assert out["extra"] is extra


# -------------------------------------------------------------- properties

DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")


@st.composite
def card_like(draw: st.DrawFn) -> str:
    length = draw(st.integers(13, 19))
    body = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    number = luhn_complete(body)
    style = draw(st.sampled_from(["plain", "spaced", "dashed", "spoken", "mixed"]))
    if style == "plain":
        return number
    if style in ("spaced", "dashed"):
        sep = " " if style == "spaced" else "-"
        return sep.join(number[i : i + 4] for i in range(0, len(number), 4))
    if style == "spoken":
        return spoken(number, sep=draw(st.sampled_from([" ", ", ", "-"])),
                      zero=draw(st.sampled_from(["zero", "oh"])))
    return " ".join(d if draw(st.booleans()) else WORDS[int(d)] for d in number)


pieces = st.one_of(
    st.text(max_size=20),
    st.text("0123456789 -,.", max_size=25),
    st.sampled_from([*WORDS, "oh", "double", "triple", " ", ", ", "-", ":", "=", "password=",
                             "Bearer ", "sk-", "eyJ", "@", "://", "[CARD]", "[REDACTED]"]),
    card_like(),
)
texts = st.lists(pieces, max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(texts, st.booleans())
def test_redact_text_properties(text: str, pii: bool) -> None:
    once = redact_text(text, pii=pii)
    assert redact_text(once, pii=pii) == once
    for run in DIGIT_RUN.findall(once):
        assert not luhn_valid(run), (text, once)


@settings(max_examples=200, deadline=None)
@given(card_like(), st.text(max_size=10), st.text(max_size=10))
def test_every_card_layout_is_masked(card: str, before: str, after: str) -> None:
    redacted = redact_text(f"{before} {card} {after}")
    digits = re.sub(r"[^0-9]", "", card)
    assert digits not in re.sub(r"[^0-9]", "", redacted) or CARD in redacted
    assert CARD in redacted


def test_objects_rendered_as_text_are_redacted_as_that_text() -> None:
    import dataclasses
    import datetime as dt
    import uuid

    from callwatch._logging.redact import RedactProcessor

    class Client:
        def __repr__(self) -> str:
            return "Client(api_key=sk-proj-abcdefghijklmnopqrstuvwx)"

    @dataclasses.dataclass
    class Payment:
        card_number: str
        amount: int

    when, ident = dt.datetime(2024, 1, 4, tzinfo=dt.timezone.utc), uuid.uuid4()
    extra = {
        "client": Client(),
        "raw": b"Authorization: Bearer abcdefghijklmnop",
        "error": ValueError("password=hunter22 rejected"),
        "payment": Payment("4111 1111 1111 1111", 12),
        "when": when,
        "id": ident,
    }
    record = RedactProcessor(False)(None, "info", {"message": "m", "extra": extra})
    rendered = str(record["extra"])
    for secret in ("sk-proj-abcdefghijklmnopqrstuvwx", "abcdefghijklmnop", "hunter22", "4111"):
        assert secret not in rendered
    assert record["extra"]["payment"] == {"card_number": "[REDACTED]", "amount": 12}
    assert record["extra"]["when"] is when and record["extra"]["id"] is ident
    assert isinstance(extra["client"], Client)  # the caller's objects are untouched


def test_a_secret_pair_inside_a_harmless_pair_is_found() -> None:
    assert redact_text("ValueError: password=hunter22 rejected") == (
        "ValueError: password=[REDACTED] rejected"
    )
