from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch._logging.render import render, safe_repr
from tests.helpers import strict_loads


class FailingRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("FailingRepr()")  # how hypothesis shows it; callwatch only sees __repr__


class FailingError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str exploded")

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("FailingError()")


def assert_one_strict_line(line: bytes) -> dict[str, Any]:
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    text = line.decode("utf-8")  # valid UTF-8: no lone surrogates survived
    assert len(text[:-1].splitlines()) == 1  # no U+2028/2029/0085 or other line breaks
    assert "\x1b" not in text
    return strict_loads(line)


scalars = (
    st.text()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.booleans()
    | st.none()
    | st.binary(max_size=20)
    | st.just(FailingRepr())
    | st.builds(FailingError)
)
nested = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
        | st.tuples(inner, inner)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(message=st.text(), extra=st.dictionaries(st.text(max_size=10), nested, max_size=5))
def test_any_record_renders_as_one_strict_json_line(message: str, extra: dict[str, Any]) -> None:
    record = {"message": message, "extra": extra}
    parsed = assert_one_strict_line(render(record))
    assert set(parsed) == {"message", "extra"}


def test_control_characters_and_line_separators_are_escaped() -> None:
    message = "a\nb\rc\x00d\x1b[31me\u2028f\u2029g\u0085h\x9bi"
    line = render({"message": message})
    assert b"\\u2028" in line and b"\\u2029" in line and b"\\u0085" in line
    assert b"\\u001b" in line
    assert assert_one_strict_line(line)["message"] == message


def test_lone_surrogates_are_replaced() -> None:
    parsed = assert_one_strict_line(render({"message": "ok \ud800 ok", "extra": {"k\udfff": 1}}))
    assert parsed["message"] == "ok \ufffd ok"
    assert parsed["extra"] == {"k\ufffd": 1}


def test_nan_and_infinity_are_never_emitted() -> None:
    parsed = assert_one_strict_line(
        render({"extra": {"nan": math.nan, "inf": math.inf, "ninf": -math.inf}})
    )
    assert parsed["extra"] == {"nan": None, "inf": None, "ninf": None}


def test_cycles_are_cut() -> None:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    items: list[Any] = [1]
    items.append(items)
    parsed = assert_one_strict_line(render({"extra": {"loop": loop, "items": items}}))
    assert parsed["extra"]["loop"]["self"] == "<cycle>"
    assert parsed["extra"]["items"] == [1, "<cycle>"]


def test_objects_json_cannot_hold_are_rendered_safely() -> None:
    class Point:
        def __repr__(self) -> str:
            return "Point(1, 2)"

    parsed = assert_one_strict_line(
        render({"extra": {"p": Point(), "bad": FailingRepr(), "set": {3}, "big": 2**100}})
    )
    assert parsed["extra"]["p"] == "Point(1, 2)"
    assert parsed["extra"]["bad"] == "<unrepresentable FailingRepr: RuntimeError>"
    assert parsed["extra"]["set"] == [3]
    assert parsed["extra"]["big"] == str(2**100)


def test_oversized_fields_are_truncated_with_a_marker() -> None:
    parsed = assert_one_strict_line(
        render({"message": "x" * 50_000, "extra": {"small": "kept"}}, max_field_chars=1000)
    )
    assert parsed["message"].startswith("x" * 1000)
    assert parsed["message"].endswith("…[truncated 49000 chars]")
    assert parsed["extra"]["small"] == "kept"


def test_safe_repr_never_raises() -> None:
    assert safe_repr(FailingRepr()) == "<unrepresentable FailingRepr: RuntimeError>"
