"""Redaction: secrets by key and by shape, card numbers (written and spoken), PII."""

from __future__ import annotations

import copy
import re
import unicodedata
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch._logging import redact as redact_module
from callwatch._logging.cards import CallDigits
from callwatch._logging.redact import (
    CARD,
    EMAIL,
    FAILED,
    PHONE,
    REDACTED,
    RedactProcessor,
    is_secret_key,
    redact_name,
    redact_text,
    redact_url,
    redact_value,
    register_secret,
)
from callwatch._logging.render import render
from tests.helpers import strict_loads

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
    for layout in (number, " ".join(groups), "-".join(groups), "/".join(groups), "    ".join(groups)):
        text = f"card {layout} expires 12/27"
        assert redact_text(text) == f"card {CARD} expires {REDACTED}"


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

# Digits of any script, as a reader sees a number.
DIGIT_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")


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
        assert not luhn_valid("".join(str(unicodedata.digit(c)) for c in run)), (text, once)


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


# ------------------------------------------------- bounded, fail-closed work


def test_repeated_pairs_and_colons_do_not_recurse() -> None:
    for text in ("q=" + "a=" * 500, "a:" * 600, "x=" * 20_000):
        hostile = f"{text} password=hunter2 card {VISA}"
        redacted = redact_text(hostile)
        assert "hunter2" not in redacted
        assert VISA not in redacted
        assert redacted.startswith(text[:100])


def _nested(depth: int, leaf: object, kind: type) -> object:
    value = leaf
    for _ in range(depth):
        value = {"x": value} if kind is dict else [value]
    return value


@pytest.mark.parametrize(("depth", "kind"), [(500, dict), (330, list), (2000, dict)])
def test_deep_nesting_is_cut_not_a_crash(depth: int, kind: type) -> None:
    extra = {"deep": _nested(depth, {"password": "hunter2", "note": f"card {VISA}"}, kind)}
    record = RedactProcessor(pii=False)(None, "info", _record(extra=extra))
    line = render(record)
    assert strict_loads(line)
    assert b"hunter2" not in line and VISA.encode() not in line
    assert b"<max depth>" in line


def test_wide_containers_are_bounded_like_the_renderer() -> None:
    redacted = redact_value("items", [f"card {VISA}"] * 5000)
    assert len(redacted) == 1001
    assert redacted[-1] == "…[4000 more items]"
    mapping = redact_value("map", {f"k{i}": "password=x" for i in range(1500)})
    assert len(mapping) == 1001 and mapping["…"] == "[500 more items]"


def test_fields_are_cut_before_they_are_scanned() -> None:
    processor = RedactProcessor(pii=False, max_field_chars=1000)
    # A card straddling the cut: no fragment of it survives.
    message = "x" * 990 + " 4111 1111 1111 1111 " + "y" * 200_000
    out = processor(None, "info", _record(message=message, extra={"note": message}))
    for text in (out["message"], out["extra"]["note"]):  # type: ignore[index]
        assert isinstance(text, str)
        assert len(text) <= 1000
        assert "4111" not in text and "1111" not in text
        assert text.endswith("chars]")
    parsed = strict_loads(render(out, max_field_chars=1000))
    assert parsed["message"] == out["message"]  # the renderer does not cut it again


def test_a_quoted_secret_cut_open_is_still_masked() -> None:
    out = RedactProcessor(pii=False, max_field_chars=500)(
        None, "info", _record(message="password='" + "s3cret" * 1000)
    )
    assert "s3cret" not in out["message"]  # type: ignore[operator]


def test_a_failing_redaction_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: str, pii: bool) -> str:
        raise RecursionError("boom")

    monkeypatch.setattr(redact_module, "_redact_slow", broken)
    secret = f"password=hunter2 {VISA}"
    assert redact_text(secret) == FAILED
    assert redact_value("note", {"a": secret}) == {"a": FAILED}
    out = RedactProcessor(pii=False)(
        None, "info", _record(message=secret, extra={"note": secret, "n": 1})
    )
    assert out["message"] == FAILED
    assert out["extra"] == {"note": FAILED, "n": 1}
    assert "hunter2" not in str(out)


# ------------------------------------------------ keys, names, other surfaces


def test_keys_of_extra_are_redacted_and_no_value_is_lost() -> None:
    extra = {f"card {VISA}": "a", f"card {AMEX}": "b", 5555555555554444: "c", "ok": 1}
    out = RedactProcessor(pii=False)(None, "info", _record(extra=extra))["extra"]
    assert out == {f"card {CARD}": "a", f"card {CARD}#2": "b", CARD: "c", "ok": 1}
    assert extra[5555555555554444] == "c"  # the caller's dict is unchanged
    assert redact_value("x", {("tok", f"{VISA}"): 1}) == {f"('tok', '{CARD}')": 1}


def test_logger_name_and_call_id_fields_are_redacted() -> None:
    record = _record(logger=f"client.{VISA}", call_id="call-sk-proj-abcdefghijklmnopqrstuv")
    out = RedactProcessor(pii=False)(None, "info", record)
    assert out["logger"] == f"client.{CARD}"
    assert out["call_id"] == f"call-{REDACTED}"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("llm.openai", "llm.openai"),
        (f"stt.{VISA}", f"stt.{CARD}"),
        ("HTTPError: token=abc123", f"HTTPError: token={REDACTED}"),
        (1234, "1234"),
    ],
)
def test_redact_name_makes_any_identifier_safe(name: object, expected: str) -> None:
    assert redact_name(name) == expected
    # An object whose str() raises is shown by its repr.
    assert "Unprintable object" in redact_name(Unprintable())


def test_redact_name_cuts_long_names_without_leaving_a_card_fragment() -> None:
    name = "t" * 190 + VISA + "x" * 10_000
    shown = redact_name(name)
    assert len(shown) <= 200 and shown.endswith("…")
    assert "4111" not in shown
    assert redact_name("+1 415 555 1234", pii=True) == PHONE


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("elevenlabs key sk_" + "3f9a" * 12, "3f9a" * 12),
        ("twilio SK" + "0123456789abcdef" * 2 + " in use", "0123456789abcdef" * 2),
        ("Client('AC" + "a1" * 16 + "', '" + "9f" * 16 + "')", "9f" * 16),
        ("AC" + "b2" * 16 + ":" + "c3" * 16 + "@api.twilio.com", "c3" * 16),
        ("AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("Authorization: Token " + "d9" * 20, "d9" * 20),
        ("deepgram token " + "e8" * 20 + " rejected", "e8" * 20),
        ("[(b'host', b'api.deepgram.com'), (b'authorization', b'Token " + "f7" * 20 + "')]", "f7" * 20),
        ("[('x-api-key', 'k-0123456789'), ('accept', '*/*')]", "k-0123456789"),
        ("{b'authorization': b'Bearer abcdefgh12345'}", "abcdefgh12345"),
        ("GET https://api.example.com/v1/tts?key=abcd1234efgh&voice=x", "abcd1234efgh"),
        ("wss://api.example.com/listen?token=zzz999yyy&model=nova", "zzz999yyy"),
        ("POST /v1/x?api_key=k123456 HTTP/1.1", "k123456"),
    ],
)
def test_voice_stack_keys_are_masked(text: str, secret: str) -> None:
    redacted = redact_text(text)
    assert secret not in redacted, redacted
    assert REDACTED in redacted
    assert redact_text(redacted) == redacted


@pytest.mark.parametrize(
    "text",
    [
        "Account AC" + "a1" * 16 + " has 3 calls",  # a sid alone is an identifier
        "commit 0123456789abcdef0123456789abcdef01234567 deployed",
        "token count 5, tokens used 1200",
        "primary_key=42 sort_key=name",
    ],
)
def test_identifiers_near_the_voice_keys_survive(text: str) -> None:
    assert redact_text(text) == text


def test_registered_secrets_are_masked_wherever_they_appear() -> None:
    token = "mon-" + uuid.uuid4().hex
    url = f"https://alerts.example.com/notify/T0/B0/{uuid.uuid4().hex}"
    before = f"using {token} and {url}"
    assert redact_text(before) == before  # remembered as clean before registration
    register_secret(token)
    register_secret(url)
    register_secret("abc")  # too short to mask everywhere
    assert token not in redact_text(before)
    assert url.rsplit("/", 1)[1] not in redact_text(before)
    # Quoted without its host, as HTTP clients log a request line.
    path_only = f"POST {url.split('.com', 1)[1]} HTTP/1.1 500"
    assert url.rsplit("/", 1)[1] not in redact_text(path_only)
    assert redact_text("abc def") == "abc def"
    record = RedactProcessor(pii=False)(None, "info", _record(extra={"detail": f"x{token}x"}))
    assert record["extra"] == {"detail": f"x{REDACTED}x"}


# ------------------------------------------------- card data as voice carries it


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[CARD] expiry oh nine twenty seven cvv one two three",
         f"{CARD} expiry {REDACTED} cvv {REDACTED}"),
        ("cvv 123", f"cvv {REDACTED}"),
        ("CVC: 4321 thanks", f"CVC: {REDACTED} thanks"),
        ("the security code is 123", f"the security code is {REDACTED}"),
        ("my security code is one two three", f"my security code is {REDACTED}"),
        ("expiration date 09/2027", f"expiration date {REDACTED}"),
        ("it expires twelve twenty seven", f"it expires {REDACTED}"),
        ("valid thru september twenty seven", f"valid thru {REDACTED}"),
        (f"card {VISA} 12/27 123 thanks", f"card {CARD} {REDACTED} thanks"),
        (f"card {spoken(VISA)}, oh nine two seven, one two three",
         f"card {CARD}, {REDACTED}"),
    ],
)  # fmt: skip
def test_cvv_and_expiry_masked_near_a_card_or_their_keywords(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected


@pytest.mark.parametrize(
    "text",
    [
        "token expires in 5 minutes",
        "cache expires 3600 seconds",
        "status code 200 after 3 retries",
        "expected 12 results",
        "I want to pay for two tickets",
    ],
)
def test_numbers_near_ordinary_words_survive(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    "transcript",
    [
        # speech-to-text homophones: "for" 4, "to"/"too" 2, "oh" 0, "won" 1, "ate" 8
        "for one one one, one one one one, one one one one, one one one one",
        "five one oh five, one oh five one, oh five one oh, five one oh oh",
        "too two two two two two two two two two two two two two two for",  # 2222…2224
        "ate two ate two ate two ate two ate two ate two ate two ate oh",  # 8282…2820
        "for won won won won won won won won won won won won won won won",
        # tens and teens words
        "forty one eleven, eleven eleven, eleven eleven, eleven eleven",
        "forty two forty two forty two forty two forty two forty two forty two forty two",
        # spoken separators
        "4111 dash 1111 dash 1111 dash 1111",
        "4111 and 1111 and 1111 and 1111",
        "4111 slash 1111 slash 1111 slash 1111",
        "four one one one dash one one one one dash one one one one dash one one one one",
        "4111/1111/1111/1111",
        "4111    1111    1111    1111",
    ],
)
def test_spoken_variants_of_card_numbers_masked(transcript: str) -> None:
    redacted = redact_text(f"caller: {transcript} ok")
    assert redacted == f"caller: {CARD} ok", redacted


@pytest.mark.parametrize(
    "text",
    [
        "card ４１１１ １１１１ １１１１ １１１１ ok",  # fullwidth
        "card ٤١١١ ١١١١ ١١١١ ١١١١ ok",  # Arabic-Indic
        "card ۴۱۱۱۱۱۱۱۱۱۱۱۱۱۱۱ ok",  # Extended Arabic-Indic
        "card 4111\u200b1111\u200b1111\u200b1111 ok",  # zero-width spaces
        "card 4\u200c1\u200d1\u20601 1111 1111 1111 ok",  # other invisible joiners
        "card ４１１１-1111-١١١١-1111 ok",  # mixed scripts
    ],
)
def test_unicode_digits_and_invisible_characters_are_normalised(text: str) -> None:
    assert redact_text(text) == f"card {CARD} ok"


def test_invisible_characters_do_not_hide_a_secret_key() -> None:
    assert redact_text("pass\u200bword=hunter2") == f"password={REDACTED}"
    assert redact_text("ｐａｓｓｗｏｒｄ=hunter2") == f"password={REDACTED}"


def test_unicode_text_with_nothing_to_mask_is_returned_as_it_was() -> None:
    text = "Grüße aus Köln, Anruf ２ dauerte ٣ Minuten"
    assert redact_text(text) is text


# ------------------------------------------------ a card across two records


def _said(processor: RedactProcessor, call_id: str | None, text: str, **extra: object) -> object:
    record = _record(message=text, call_id=call_id, extra=extra)
    return processor(None, "info", record)["message"]


def test_a_card_split_over_two_records_of_a_call_is_masked_in_the_second() -> None:
    processor = RedactProcessor(pii=False)
    assert _said(processor, "c-1", "it's 4111 1111") == "it's 4111 1111"  # not yet a card
    assert _said(processor, "c-1", "LLM took 350 ms") == "LLM took 350 ms"
    assert _said(processor, "c-1", "1111 1111 please") == f"{CARD} please"


def test_a_spoken_split_card_is_masked_in_the_second_record() -> None:
    processor = RedactProcessor(pii=False)
    _said(processor, "c-2", "User said: four one one one, one one one one")
    assert _said(processor, "c-2", "User said: one one one one, one one one one") == (
        f"User said: {CARD}"
    )


def test_while_a_call_collects_a_card_its_first_digits_are_masked_too() -> None:
    processor = RedactProcessor(pii=False)
    assert _said(processor, "c-3", "Please say your card number") == "Please say your card number"
    assert _said(processor, "c-3", "4111 1111") == CARD
    assert _said(processor, "c-3", "1111") == CARD
    assert _said(processor, "c-3", "1111") == CARD


def test_utterances_logged_as_extras_are_followed_too() -> None:
    processor = RedactProcessor(pii=False)
    processor(None, "info", _record(call_id="c-4", extra={"transcript": "4111 1111"}))
    out = processor(None, "info", _record(call_id="c-4", extra={"transcript": "1111 1111"}))
    assert out["extra"] == {"transcript": CARD}


def test_calls_do_not_share_their_digits() -> None:
    processor = RedactProcessor(pii=False)
    _said(processor, "c-5", "4111 1111")
    assert _said(processor, "c-6", "1111 1111") == "1111 1111"
    assert _said(processor, None, "1111 1111") == "1111 1111"


def test_the_digits_kept_per_call_are_bounded() -> None:
    calls = CallDigits(max_calls=2)
    calls.redact("a", "4111 1111")
    calls.redact("b", "5555 5555")
    calls.redact("c", "3782 8224")
    assert calls.redact("a", "1111 1111") == "1111 1111"  # forgotten: the oldest call
    assert calls.redact("c", "6310005") == CARD


def test_a_cvv_or_expiry_answered_in_its_own_record_is_masked() -> None:
    processor = RedactProcessor(pii=False)
    assert _said(processor, "c-7", "Bot: what is the security code?") == (
        "Bot: what is the security code?"
    )
    assert _said(processor, "c-7", "User: one two three") == f"User: {REDACTED}"
    assert _said(processor, "c-7", "User: 456") == "User: 456"  # the answer came already
    _said(processor, "c-7", "Bot: and the expiry date?")
    assert _said(processor, "c-7", "User: oh nine twenty seven") == f"User: {REDACTED}"
    assert _said(processor, "c-8", "User: 789") == "User: 789"  # another call asked nothing


# Luhn-valid digit groups, as Asterisk-style ids carry them: cards by digits, not by layout.
ASTERISK_IDS = ["ast-1796163252-00002", "ast-1796163252-00010", "1796163252.00028"]


@pytest.mark.parametrize("call_id", ASTERISK_IDS)
def test_an_identifier_keeps_digit_groups_not_written_as_a_card(call_id: str) -> None:
    from callwatch._logging.redact import redact_id

    assert redact_text(call_id) != call_id  # as free text the digits are masked, to be safe
    assert redact_id(call_id) == call_id
    record = RedactProcessor(False)(None, "info", {
        "message": "m", "logger": "app", "call_id": call_id, "extra": {}})
    assert record["call_id"] == call_id


@pytest.mark.parametrize("call_id", [
    "call-4111111111111111", "4111-1111-1111-1111", "c 4111 1111 1111 1111",
    "amex-3782-822463-10005", "token=abcdef0123456789",
])
def test_an_identifier_holding_a_card_or_a_secret_is_masked(call_id: str) -> None:
    from callwatch._logging.redact import redact_id

    masked = redact_id(call_id)
    assert "1111 1111" not in masked and "4111111111111111" not in masked
    assert "822463" not in masked and "0123456789" not in masked
    record = RedactProcessor(False)(None, "info", {
        "message": "m", "logger": "app", "call_id": call_id, "extra": {}})
    assert record["call_id"] == masked


def test_id_fields_of_extra_are_identifiers_other_fields_free_text() -> None:
    call_id = ASTERISK_IDS[0]
    record = RedactProcessor(False)(None, "info", {
        "message": "turn", "logger": "app", "call_id": call_id,
        "extra": {"turn_id": f"{call_id}:1", "note": call_id, "card_id": "4111 1111 1111 1111"}})
    assert record["extra"]["turn_id"] == f"{call_id}:1"
    assert record["extra"]["note"] != call_id
    assert record["extra"]["card_id"] == CARD
