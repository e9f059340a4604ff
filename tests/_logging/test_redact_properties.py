"""Hostile values through redaction: it always returns, the record renders as one strict
JSON line, and no secret or card inserted anywhere (values, keys, depth) is left."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callwatch._logging.redact import RedactProcessor, redact_text
from callwatch._logging.render import render
from tests.helpers import strict_loads

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
CARDS = ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"]
SECRETS = ["hunter2-Xy9", "sk-proj-Q7abcdefghijklmnopqrstuv", "ghp_" + "Z9" * 18]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
LIMIT = 2000


@st.composite
def card_layout(draw: st.DrawFn) -> str:
    number = draw(st.sampled_from(CARDS))
    groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    style = draw(st.sampled_from(["plain", "spaced", "dashed", "spoken", "fullwidth", "arabic",
                                  "zero-width", "slashed"]))  # fmt: skip
    if style == "plain":
        return number
    if style in ("spaced", "dashed", "slashed"):
        return {"spaced": " ", "dashed": "-", "slashed": "/"}[style].join(groups)
    if style == "spoken":
        return " ".join(WORDS[int(d)] for d in number)
    if style == "zero-width":
        return draw(st.sampled_from(ZERO_WIDTH)).join(groups)
    return number.translate(FULLWIDTH if style == "fullwidth" else ARABIC)


secret_text = st.sampled_from(SECRETS).map(lambda s: f"password={s}" if s[0] == "h" else s)
repetition = st.tuples(
    st.sampled_from(["a=", "a:", ":", "=", "1 ", "one ", "٤", "\u200b", "q=a", "x" * 7]),
    st.integers(1, 700),
).map(lambda pair: pair[0] * pair[1])
atoms = st.one_of(
    st.text(max_size=12),
    repetition,
    card_layout(),
    secret_text,
    st.sampled_from(["[CARD]", "[REDACTED]", "cvv", "expiry", " ", ", ", "Bearer "]),
)
texts = st.lists(atoms, max_size=5).map(" ".join)
keys = st.one_of(st.text(max_size=8), card_layout(), st.sampled_from(["password", "note", "k"]))
values = st.recursive(
    st.one_of(texts, st.integers(), st.none()),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(keys, children, max_size=3)
    ),
    max_leaves=12,
)


def deep(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"k": value}
    return value


# Digits of any script, as a reader sees a number.
DIGIT_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")


def leaked(line: bytes) -> list[str]:
    parsed = strict_loads(line)
    shown = str(parsed)
    found = [s for s in SECRETS if s in shown]
    found += [c for c in CARDS if c in re.sub(r"[\s\-/]", "", shown)]
    return found


def processed(message: str, extra: dict[Any, Any], pii: bool) -> bytes:
    record = {"message": message, "level": "INFO", "call_id": "c-1", "extra": extra}
    out = RedactProcessor(pii=pii, max_field_chars=LIMIT)(None, "info", record)
    line = render(out, LIMIT)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    return line


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.dictionaries(keys, values, max_size=4), st.booleans())
def test_hostile_records_render_with_nothing_left(
    message: str, extra: dict[Any, Any], pii: bool
) -> None:
    assert leaked(processed(message, extra, pii)) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 700), st.booleans(), card_layout(), secret_text)
def test_deeply_nested_secrets_are_masked_or_cut(
    depth: int, as_list: bool, card: str, secret: str
) -> None:
    leaf = {"note": f"card {card}", card: secret, "password": secret}
    line = processed(f"{card} {secret}", {"deep": deep(leaf, depth, as_list)}, False)
    assert leaked(line) == []


@settings(max_examples=60, deadline=None)
@given(texts)
def test_no_luhn_valid_number_is_left_in_a_message(message: str) -> None:
    shown = strict_loads(processed(message, {}, False))["message"]
    runs = ["".join(str(unicodedata.digit(c)) for c in run) for run in DIGIT_RUN.findall(shown)]
    assert not any(_luhn(run) for run in runs), shown


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


@settings(max_examples=150, deadline=None)
@given(texts, st.booleans())
def test_redacting_twice_gives_what_redacting_once_gave(text: str, pii: bool) -> None:
    once = redact_text(text, pii=pii)
    assert redact_text(once, pii=pii) == once
