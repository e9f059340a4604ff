"""The README a newcomer reads first: its example runs, its links lead somewhere, the license is MIT."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

import callwatch
from tests.cli.conftest import run_cli, run_python

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FIRST_SCREEN = "\n".join(README.splitlines()[:45])

DRIVE_EXAMPLE = """
import asyncio

class llm:
    @staticmethod
    async def generate(text):
        return "Sure, one moment."

{example}

asyncio.run(handle_call("ast-readme-1", "Where is my order?"))
"""


def test_the_first_screen_has_the_two_commands_and_the_example() -> None:
    assert "make demo   # " in FIRST_SCREEN and "make test   # " in FIRST_SCREEN
    assert "```python" in FIRST_SCREEN
    assert "Production logging, monitoring and alerting" in FIRST_SCREEN


def test_the_example_on_the_first_screen_runs_and_its_call_can_be_traced(tmp_path: Path) -> None:
    (example,) = re.findall(r"```python\n(.*?)```", FIRST_SCREEN, re.S)
    assert len(example.strip().splitlines()) <= 12
    logs = tmp_path / "logs"
    code = DRIVE_EXAMPLE.format(example=example)
    done = run_python("-c", code, LOG_DIR=str(logs), ENVIRONMENT="production", LOG_CONSOLE="false")
    assert done.returncode == 0, done.stderr
    trace = run_cli("trace", "ast-readme-1", "--log-dir", logs, "--json")
    assert trace.returncode == 0, trace.stderr
    answer = orjson.loads(trace.stdout)
    messages = {r["message"] for r in answer["records"]}
    assert {"Reply ready", "Call completed"} <= messages
    assert answer["stages"]["llm_generation"]["count"] == 1


def test_installation_is_from_a_checkout_and_the_guide_is_named() -> None:
    assert 'pip install "./callwatch[fastapi]"' in README
    assert "git+https://" in README
    assert 'pip install "callwatch[fastapi]"\n' not in README  # not on an index
    assert "Production Logging & Monitoring Guide" in README
    for guide, ours in [
        ("app.utils.production_logger", "callwatch.logger"),
        ("app.utils.monitoring", "callwatch.monitoring"),
        ("app.utils.alerting", "callwatch.alerting"),
        ("app.routes.monitoring_routes", "callwatch.routes"),
    ]:
        assert f"| `{guide}`" in README and f"`{ours}`" in README


def test_every_relative_link_and_image_exists() -> None:
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if not t.startswith(("http://", "https://"))]
    assert "docs/cli.md" in local and "LICENSE" in local and "CHANGELOG.md" in local
    for target in local:
        assert (ROOT / target).exists(), target


def test_license_is_the_mit_text_the_metadata_claims() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 callwatch contributors\n")
    assert "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND" in text
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text()


def test_changelog_has_unreleased_and_the_current_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[0] == "Unreleased"
    assert headings[1].startswith(f"{callwatch.__version__} - ")
