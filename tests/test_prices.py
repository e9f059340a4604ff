"""The price file: read and checked at start-up, a bad one names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from callwatch._prices import load_prices
from callwatch.config import ConfigError, load_settings

GOOD = """
[llm.default]
input_per_mtok = 0.15
output_per_mtok = 0.60
[llm."gpt-4.1-mini"]
input_per_mtok = 0.40
output_per_mtok = 1.60
[tts.default]
per_1k_chars = 0.03
[stt.default]
per_minute = 0.0043
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    return path


def test_costs_follow_the_contract_units(tmp_path: Path) -> None:
    prices = load_prices(_file(tmp_path, GOOD))
    assert prices.llm("any-model", 1_000_000, 0) == pytest.approx(0.15)
    assert prices.llm(None, 2000, 1000) == pytest.approx((2000 * 0.15 + 1000 * 0.60) / 1e6)
    assert prices.llm("gpt-4.1-mini", 1_000_000, 1_000_000) == pytest.approx(2.0)
    assert prices.tts("sonic", 2500) == pytest.approx(0.075)
    assert prices.stt("nova", 90.0) == pytest.approx(1.5 * 0.0043)


def test_a_service_without_prices_costs_nothing(tmp_path: Path) -> None:
    prices = load_prices(_file(tmp_path, "[llm.default]\ninput_per_mtok = 1.0\n"))
    assert prices.tts("x", 1000) == 0.0
    assert prices.llm("x", 0, 5000) == 0.0


def test_settings_read_the_file_named_by_the_variable(tmp_path: Path) -> None:
    path = _file(tmp_path, GOOD)
    settings = load_settings({"CALLWATCH_PRICES_FILE": str(path)})
    assert settings.prices is not None and settings.prices.source == str(path)
    assert load_settings({}).prices is None


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[llm.default]\ninput_per_mtok = 'cheap'\n", "llm.default.input_per_mtok"),
        ("[llm.default]\ninput_per_mtk = 0.1\n", "llm.default.input_per_mtk"),
        ("[tts.default]\nper_1k_chars = -1\n", "tts.default.per_1k_chars"),
        ("[video.default]\nper_minute = 1\n", "[video]"),
        ("[stt]\ndefault = 3\n", "[stt.default]"),
        ("[llm.default\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_a_start_up_error_naming_file_and_key(
    tmp_path: Path, text: str, named: str
) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_settings({"CALLWATCH_PRICES_FILE": str(path)})
    message = str(raised.value)
    assert "CALLWATCH_PRICES_FILE" in message and str(path) in message and named in message


def test_a_missing_file_is_a_start_up_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({"CALLWATCH_PRICES_FILE": str(tmp_path / "absent.toml")})


def test_turn_budget_is_configurable() -> None:
    assert load_settings({}).turn_budget_ms == 2000.0
    assert load_settings({"CALLWATCH_TURN_BUDGET_MS": "750"}).turn_budget_ms == 750.0
    with pytest.raises(ConfigError, match="CALLWATCH_TURN_BUDGET_MS"):
        load_settings({"CALLWATCH_TURN_BUDGET_MS": "soon"})
