"""Payment card data in text: numbers written or spoken, and the CVV and expiry near them.

Speech-to-text writes a card as it hears it: "4111 1111 …", "four one one one",
"forty two forty two", "for" for 4, "to" for 2, "oh" for 0, "double four", groups
joined by "dash", "and" or "/". Text is read in runs of digit tokens joined by
short separators; a stretch of 13–19 digits passing the Luhn check is a card.

The work is linear in the text: a run of more than :data:`WHOLE_RUN_DIGITS`
digits (a card with its expiry and CVV, or a wall of digits) is masked whole
instead of searched window by window.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from itertools import islice

__all__ = [
    "CARD",
    "CARD_DATA_HINTS",
    "REDACTED",
    "CallDigits",
    "count_digits",
    "redact_card_data",
    "redact_card_ids",
    "redact_cards",
]

CARD = "[CARD]"
REDACTED = "[REDACTED]"
WHOLE_RUN_DIGITS = 24
# Digit tokens searched window by window in one text; later runs are masked whole.
_PRECISE_TOKENS = 512
_MAX_CARD, _MIN_CARD = 19, 13

_UNITS = {
    "zero": "0", "oh": "0", "one": "1", "won": "1", "two": "2", "to": "2", "too": "2",
    "three": "3", "four": "4", "for": "4", "fore": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "ate": "8", "nine": "9",
}  # fmt: skip
_TEENS = {
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
}  # fmt: skip
_TENS = {
    "twenty": "2", "thirty": "3", "forty": "4", "fourty": "4", "fifty": "5", "sixty": "6",
    "seventy": "7", "eighty": "8", "ninety": "9",
}  # fmt: skip
_MONTHS = {
    name: f"{number:02d}"
    for number, names in enumerate(
        (("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
         ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
         ("september", "sept", "sep"), ("october", "oct"), ("november", "nov"),
         ("december", "dec")),
        start=1,
    )
    for name in names
}  # fmt: skip
# Words that stand for digits; each stands for at most three ("triple one").
_NUMBER_WORDS = frozenset(w.encode() for w in (*_UNITS, *_TEENS, *_TENS, "double", "triple"))
# Byte tables for counting in C: letters lowercased (everything else a space) to
# find digit words, and digits to "0" to count them.
_WORD_TABLE = bytes(c | 0x20 if chr(c).isascii() and chr(c).isalpha() else 0x20 for c in range(256))
_DIGIT_TABLE = bytes(0x30 if chr(c).isdigit() and c < 128 else 0x61 for c in range(256))


def count_digits(text: str) -> tuple[int, int]:
    """(ASCII digits, spoken digit words) in ``text``, cheaply."""
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # lone surrogates
        raw = text.encode("utf-8", "replace")
    words = raw.translate(_WORD_TABLE).split()
    return raw.translate(_DIGIT_TABLE).count(0x30), sum(map(_NUMBER_WORDS.__contains__, words))


def _alternation(words: Iterable[str]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


_UNIT = _alternation(_UNITS)
_SPOKEN = (
    rf"(?:double|triple)[\s\-]{{1,3}}+(?:{_UNIT})"
    rf"|(?:{_alternation(_TENS)})(?:[\s\-]{{1,3}}+(?:{_UNIT}))?"
    rf"|{_alternation(_TEENS)}|{_UNIT}"
)
# Letter look-arounds instead of \b keep token boundaries the same after a marker
# is inserted, which keeps redaction idempotent.
_TOKEN = rf"(?:[0-9]+|(?<![a-z])(?:{_SPOKEN})(?![a-z]))"
_SEP = r"(?:[\s,.\-/]{1,4}|[\s,]{1,3}(?:and|dash|hyphen|slash)[\s,]{1,3})"
_NUMERIC_TOKEN = re.compile(r"[0-9]+")
_WORD_SPLIT = re.compile(r"[\s\-]+")

# The CVV and expiry: after their keywords, or right after a masked card.
_CVV_WORDS = (
    r"cvv2?|cvc2?|cv2|cvn|cid|csc|card\s+code"
    r"|security\s+(?:code|number|digits)|verification\s+(?:code|number|value)"
)
_EXPIRY_WORDS = r"exp(?:iry|iration|ires|ired)?|valid\s+(?:thru|through|until|till)|good\s+thru"
_FILLER = r"(?:[\s:=#,.\-]++|(?:is|was|of|the|date|number|code|on|it|its|it's|my|and)(?![a-z]))"
_VALUE_TOKEN = rf"(?:{_TOKEN}|(?<![a-z])(?:{_alternation(_MONTHS)})(?![a-z]))"


@dataclass(frozen=True)
class _Rules:
    """The large case-blind patterns, compiled on first use.

    Compiling them costs about 30 ms, which a worker would otherwise pay at import
    and a command-line tool that never redacts would pay for nothing.
    """

    card_token: re.Pattern[str]
    card_run: re.Pattern[str]
    numeric_run: re.Pattern[str]
    value_tokens: re.Pattern[str]
    card_data: re.Pattern[str]


@cache
def _rules() -> _Rules:
    return _Rules(
        card_token=re.compile(_TOKEN, re.I),
        card_run=re.compile(rf"{_TOKEN}(?:{_SEP}{_TOKEN})*", re.I),
        numeric_run=re.compile(rf"[0-9]+(?:{_SEP}[0-9]+)*", re.I),
        value_tokens=re.compile(_VALUE_TOKEN, re.I),
        card_data=re.compile(
            rf"(?<![a-z])(?:(?P<cvv>{_CVV_WORDS})|(?P<expiry>{_EXPIRY_WORDS})|\[CARD\])(?![a-z])"
            rf"(?P<filler>{_FILLER}{{0,8}})"
            # Ending where a word ends: the marker must not make what follows a new key.
            rf"(?P<value>{_VALUE_TOKEN}(?:{_SEP}{_VALUE_TOKEN}){{0,9}})(?![a-z0-9_])",
            re.I,
        ),
    )

# Literals one of which the CVV and expiry rule needs.
CARD_DATA_HINTS = ("cv", "CV", "Cv", "cid", "CID", "csc", "CSC", "ecurity", "ECURITY",
                   "erification", "ERIFICATION", "code", "CODE", "xp", "XP", "Xp", "alid",
                   "ALID", "ood", "OOD", CARD)  # fmt: skip


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        total += _DOUBLED[value] if index & 1 else value
    return total % 10 == 0


def _luhn_sums(digits: str) -> tuple[list[int], list[int]]:
    """Prefix sums with even, then odd, positions doubled: any window's Luhn sum in O(1)."""
    even, odd = [0], [0]
    for index, char in enumerate(digits):
        value = ord(char) - 48
        doubled = _DOUBLED[value]
        even.append(even[-1] + (value if index & 1 else doubled))
        odd.append(odd[-1] + (doubled if index & 1 else value))
    return even, odd


def _token_digits(token: str) -> str:
    if token[0].isdigit():
        return token
    words = _WORD_SPLIT.split(token.lower())
    first = words[0]
    if first == "double":
        return _UNITS[words[-1]] * 2
    if first == "triple":
        return _UNITS[words[-1]] * 3
    if first in _TENS:
        return _TENS[first] + (_UNITS[words[-1]] if len(words) > 1 else "0")
    return _TEENS.get(first) or _MONTHS.get(first) or _UNITS[first]


def _window_cards(tokens: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """Spans of tokens whose digits form a Luhn-valid 13–19 digit number.

    From each token the longest valid span wins, so trailing spoken digits of a
    card are not left behind. Called on at most WHOLE_RUN_DIGITS digits.
    """
    offsets = [0]
    for _, _, digits in tokens:
        offsets.append(offsets[-1] + len(digits))
    # The last digit of a window is not doubled, the one before it is, and so on.
    even, odd = _luhn_sums("".join(digits for _, _, digits in tokens))
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens) and offsets[-1] - offsets[i] >= _MIN_CARD:
        start = offsets[i]
        best = -1
        for j in range(bisect_left(offsets, start + _MIN_CARD) - 1, len(tokens)):
            end = offsets[j + 1]
            if end - start > _MAX_CARD:
                break
            sums = even if (end - 1) & 1 else odd
            if (sums[end] - sums[start]) % 10 == 0:
                best = j
        if best >= 0:
            spans.append((tokens[i][0], tokens[best][1]))
            i = best + 1
        else:
            i += 1
    return spans


def _run_cards(tokens: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """Card spans in one run; a token of more than 19 digits is never part of a card."""
    spans: list[tuple[int, int]] = []
    segment: list[tuple[int, int, str]] = []
    digits = 0
    for token in (*tokens, (0, 0, "0" * (_MAX_CARD + 1))):
        if len(token[2]) <= _MAX_CARD:
            segment.append(token)
            digits += len(token[2])
            continue
        if digits > WHOLE_RUN_DIGITS:
            spans.append((segment[0][0], segment[-1][1]))
        elif digits >= _MIN_CARD:
            spans.extend(_window_cards(segment))
        segment, digits = [], 0
    return spans


def digit_runs(
    text: str, spoken: bool, min_chars: int = 1, budget: int = 1 << 30
) -> Iterable[tuple[int, int, list[tuple[int, int, str]]]]:
    """(start, end, tokens) of each run of digit tokens of ``min_chars`` characters or more.

    A run of more than WHOLE_RUN_DIGITS tokens (more digits than a card with its
    expiry and CVV), and every run once ``budget`` tokens have been listed, comes
    with no tokens: reading it costs C time only.
    """
    rules = _rules()
    runs, token_pattern = (
        (rules.card_run, rules.card_token) if spoken else (rules.numeric_run, _NUMERIC_TOKEN))
    for run in runs.finditer(text):
        start, end = run.span()
        if end - start < min_chars:
            continue
        # Each token and separator takes a character at least: short runs need no count.
        if budget <= 0 or (
            end - start > 2 * WHOLE_RUN_DIGITS
            and len(list(islice(token_pattern.finditer(text, start, end), WHOLE_RUN_DIGITS + 1)))
            > WHOLE_RUN_DIGITS
        ):
            yield start, end, []
            continue
        tokens = [
            (m.start(), m.end(), _token_digits(m.group()))
            for m in token_pattern.finditer(text, start, end)
        ]
        budget -= len(tokens)
        yield start, end, tokens


def _replace(text: str, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with each (start, end, marker) span, in order, replaced by its marker."""
    if not spans:
        return text
    pieces: list[str] = []
    last = 0
    for start, end, marker in spans:
        pieces.append(text[last:start])
        pieces.append(marker)
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def redact_cards(text: str, digits: int, words: int) -> str:
    """``text`` with card numbers masked.

    ``digits`` and ``words`` count the ASCII digits and digit words in ``text``:
    the caller has counted them already to decide whether to come here at all.
    """
    # A spoken word stands for at most three digits ("triple one").
    if words and digits + 3 * words >= _MIN_CARD:
        spoken = True
    elif digits >= _MIN_CARD:
        spoken = False
    else:
        return text
    spans: list[tuple[int, int, str]] = []
    for start, end, tokens in digit_runs(text, spoken, _MIN_CARD, _PRECISE_TOKENS):
        # A run read in C only is masked whole: it may hold a card, it is not searched.
        for span in _run_cards(tokens) if tokens else [(start, end)]:
            spans.append((*span, CARD))
    return _replace(text, spans)


def _plausible_expiry(digits: str) -> bool:
    month = digits[:1] if len(digits) in (3, 5) else digits[:2]
    return 3 <= len(digits) <= 6 and 1 <= int(month) <= 12


def _card_data_shaped(digits: str) -> bool:
    """A CVV (3–4 digits) or an expiry (a month and a year)."""
    return 3 <= len(digits) <= 4 or _plausible_expiry(digits)


def _card_data(match: re.Match[str]) -> str:
    tokens = _rules().value_tokens.finditer(match["value"])
    digits = "".join(_token_digits(m.group()) for m in tokens)
    if match["cvv"] is not None:
        secret = 3 <= len(digits) <= 4
    elif match["expiry"] is not None:
        secret = _plausible_expiry(digits)
    else:  # right after a card: its expiry and CVV, in any order
        secret = 3 <= len(digits) <= 10
    if not secret:
        return match.group()
    return match.group()[: match.start("value") - match.start()] + REDACTED


def redact_card_data(text: str) -> str:
    """``text`` with the CVV and expiry masked after their keywords or a masked card.

    Run after every other rule: a marker they insert never starts a value, so
    masking twice gives what masking once gave.
    """
    if any(hint in text for hint in CARD_DATA_HINTS):
        text = _rules().card_data.sub(_card_data, text)
    return text


# ------------------------------------------------------- cards across records

_CARD_CONTEXT = re.compile(
    rf"\[CARD\]|(?<![a-z])(?:card|credit|debit|visa|mastercard|amex|{_CVV_WORDS})(?![a-z])",
    re.I,
)
# Literals one of which a card word needs, for a check in C before the expression.
_CONTEXT_HINTS = ("card", "credit", "debit", "visa", "amex", "cv", "cid", "csc", "security",
                  "verification")  # fmt: skip
_CONTEXT_RECORDS = 16
_CARD_DATA_WORD = re.compile(rf"(?<![a-z])(?:{_CVV_WORDS}|{_EXPIRY_WORDS})(?![a-z])", re.I)
_ASKED_RECORDS = 2
_MID_CARD_DIGITS = 6
_GROUP_DIGITS = 4  # a shorter run ("for", "to") starts no card
_IIN_FIRST = "23456"  # Mastercard 2-series, Amex/Diners/JCB, Visa, Mastercard, Discover/UnionPay


class CallDigits:
    """Per call: the last digits said, whether the call is collecting a card, and
    whether its CVV or expiry was just asked for.

    A caller who pauses mid-card is transcribed as two records ("4111 1111",
    then "1111 1111"). The second is masked when, with the first one's digits,
    it completes a card; while a call is collecting a card (a card word or a
    masked card in one of its last 16 records) a run of 6 or more digits that
    could start a card, or one that continues such digits, is masked too. After
    a record naming the CVV or expiry without one, the first number shaped like
    one in the next two records is masked. Bounded: ``max_calls`` calls (least
    recently logged forgotten first), at most 18 digits each.
    """

    __slots__ = ("_calls", "_max_calls")

    def __init__(self, max_calls: int = 1024) -> None:
        self._calls: OrderedDict[str, tuple[str, int, int]] = OrderedDict()
        self._max_calls = max_calls

    @staticmethod
    def relevant(text: str) -> bool:
        """Whether ``text`` holds a digit, a digit word or a card word: anything a call
        should remember."""
        return any(count_digits(text)) or _in_card_context(text) or _asks_card_data(text)

    def redact(self, call_id: str, text: str) -> str:
        """``text`` (already redacted on its own) with the digits it shares with its call masked."""
        tail, context, asked = self._calls.pop(call_id, ("", 0, 0))
        context = _CONTEXT_RECORDS if _in_card_context(text) else max(context - 1, 0)
        mid_card = context > 0
        spans: list[tuple[int, int, str]] = []
        # Only the first run of a text can continue the previous record's digits.
        first = True
        for start, end, tokens in digit_runs(text, spoken=count_digits(text)[1] > 0):
            digits = "".join(token[2] for token in tokens)
            if first and asked and _card_data_shaped(digits):
                spans.append((start, end, REDACTED))
                asked = 0
            elif (first and _continues_card(tail, digits, mid_card)) or (
                mid_card and len(digits) >= _MID_CARD_DIGITS and digits[0] in _IIN_FIRST
            ):
                spans.append((start, end, CARD))
            following = _next_tail(tail if first else "", digits, mid_card)
            # A short number ("took 350 ms" between two utterances) leaves the tail as it was.
            if following or len(digits) >= _GROUP_DIGITS:
                tail = following
            first = False
        asked = _ASKED_RECORDS if _asks_card_data(text) else max(asked - 1, 0)
        if tail or context or asked:
            self._calls[call_id] = (tail, context, asked)
            if len(self._calls) > self._max_calls:
                self._calls.popitem(last=False)
        return _replace(text, spans)


def _asks_card_data(text: str) -> bool:
    """Whether ``text`` names the CVV or expiry without giving it (a prompt)."""
    return (
        REDACTED not in text
        and any(hint in text for hint in CARD_DATA_HINTS)
        and _CARD_DATA_WORD.search(text) is not None
    )


def _in_card_context(text: str) -> bool:
    if CARD in text:
        return True
    lowered = text.lower()
    return any(hint in lowered for hint in _CONTEXT_HINTS) and bool(_CARD_CONTEXT.search(text))


def _continues_card(tail: str, digits: str, mid_card: bool) -> bool:
    if not tail:
        return False
    joined = tail + digits
    if mid_card and len(joined) < _MIN_CARD and tail[0] in _IIN_FIRST:
        return True
    for start in range(len(tail)):
        if joined[start] not in _IIN_FIRST:
            continue
        last = min(len(joined), start + _MAX_CARD)
        for end in range(max(len(tail) + 1, start + _MIN_CARD), last + 1):
            if _luhn(joined[start:end]):
                return True
    return False


def _next_tail(tail: str, digits: str, mid_card: bool) -> str:
    """The digits a following record may continue: a run shorter than a card."""
    if mid_card and tail and len(tail) + len(digits) < _MIN_CARD:
        return tail + digits
    return digits if _GROUP_DIGITS <= len(digits) < _MAX_CARD else ""


# ------------------------------------------------------------- cards in identifiers

_ID_DIGITS = re.compile(r"(?<![0-9])[0-9]+(?:[-. _/:][0-9]+)*(?![0-9])")
_ID_SEPARATORS = re.compile(r"[-. _/:]")
# How card numbers are written: whole, in fours (the last group 1-4), or Amex/Diners style.
_CARD_LAYOUTS = frozenset({(4, 6, 5), (4, 6, 4)})


def _written_as_card(groups: list[str]) -> bool:
    lengths = tuple(len(group) for group in groups)
    if len(lengths) == 1 or lengths in _CARD_LAYOUTS:
        return True
    return all(n == 4 for n in lengths[:-1]) and 1 <= lengths[-1] <= 4


def _card_id(match: re.Match[str]) -> str:
    groups = _ID_SEPARATORS.split(match.group())
    digits = "".join(groups)
    if _MIN_CARD <= len(digits) <= _MAX_CARD and _written_as_card(groups) and _luhn(digits):
        return CARD
    return match.group()


def redact_card_ids(text: str) -> str:
    """``text``, an identifier, with card numbers written as cards masked.

    Identifiers (call ids, logger and timer names) are made of digit groups:
    ``ast-1796163252-00002`` holds 15 digits that pass the Luhn check one time
    in ten. Masking it would break every search on the call id, so here only a
    number written the way cards are (whole, in fours, or 4-6-5/4-6-4) is masked.
    """
    return _ID_DIGITS.sub(_card_id, text) if len(text) >= _MIN_CARD else text
