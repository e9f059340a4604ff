"""The command's surface: help everywhere, exit codes for usage errors."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from tests.cli.conftest import run_cli

SUBCOMMANDS = [
    [],
    ["demo"],
    ["trace"],
    ["tail"],
    ["logs"],
    ["logs", "prune"],
    ["audit"],
    ["audit", "verify"],
    ["alert"],
    ["alert", "test"],
    ["rules"],
]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "callwatch")
def test_help_on_every_subcommand(words: list[str]) -> None:
    result = run_cli(*words, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: callwatch")


@pytest.mark.parametrize(
    "words",
    [
        [],
        ["nope"],
        ["trace"],
        ["logs"],
        ["audit", "check"],
        ["demo", "--rate", "0"],
        ["demo", "--host", "example.com"],
        ["tail", "-n", "-1"],
    ],
)
def test_usage_errors_exit_2(words: list[str]) -> None:
    result = run_cli(*words)
    assert result.returncode == 2
    assert "usage: callwatch" in result.stderr


def test_bad_configuration_is_a_usage_error_naming_the_variable() -> None:
    result = run_cli("trace", "ast-1", LOG_LEVEL="LOUD")
    assert result.returncode == 2
    assert "LOG_LEVEL" in result.stderr


def test_entry_point_is_installed() -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "callwatch"]
    assert script.value == "callwatch.cli.main:main"
