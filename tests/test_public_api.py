"""The top-level ``callwatch`` namespace: its exact names, lazy at run time, typed for users."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import callwatch

FACES = ("callwatch.logger", "callwatch.monitoring", "callwatch.alerting", "callwatch.routes")

USER_FILE = """
import asyncio
import callwatch

callwatch.log.info("Call started", extra={"caller": "+15550100"})
callwatch.record_call_start("c-1")
callwatch.record_call_end("c-1", 12.5, success=True)
with callwatch.perf_timer("llm_generation"):
    pass

async def turn() -> None:
    async with callwatch.perf_timer("tts_synthesis"):
        await asyncio.sleep(0)

metrics: dict[str, object] = callwatch.get_metrics()
"""

WRONG_FILE = """
import callwatch

callwatch.record_call_end("c-1", "twelve seconds", success=True)
callwatch.perf_timer(42)
callwatch.log.infoo("Call started")
callwatch.no_such_name()
"""


def test_all_is_exactly_the_runtime_and_the_four_faces() -> None:
    """A face's new public name must be added to ``callwatch.__all__`` and its typed imports."""
    faces = [name for face in FACES for name in importlib.import_module(face).__all__]
    assert sorted(callwatch.__all__) == sorted(
        [*faces, "ConfigError", "Settings", "configure", "shutdown"]
    )
    for name in callwatch.__all__:
        assert getattr(callwatch, name) is not None


def test_import_callwatch_loads_no_face_until_a_name_is_used() -> None:
    code = (
        "import sys, callwatch\n"
        "assert not [m for m in " + repr(FACES) + " if m in sys.modules], sys.modules\n"
        "assert 'fastapi' not in sys.modules\n"
        "callwatch.log\n"
        "assert 'callwatch.logger' in sys.modules and 'fastapi' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_a_users_type_checker_sees_the_real_signatures(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text(USER_FILE)
    (tmp_path / "wrong.py").write_text(WRONG_FILE)
    every = "".join(f"reveal_type(callwatch.{name})\n" for name in callwatch.__all__)
    (tmp_path / "names.py").write_text("import callwatch\n" + every)
    files = ["agent.py", "wrong.py", "names.py"]
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *files],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=300,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if e.startswith(("agent.py", "names.py"))], done.stdout
    revealed = [line for line in done.stdout.splitlines() if "Revealed type" in line]
    assert len(revealed) == len(callwatch.__all__), done.stdout
    assert not [line for line in revealed if '"Any"' in line], done.stdout
    assert any(e.startswith("wrong.py:4:") and "[arg-type]" in e for e in errors), done.stdout
    assert any(e.startswith("wrong.py:5:") and "[arg-type]" in e for e in errors), done.stdout
    assert any(e.startswith("wrong.py:6:") and '"infoo"' in e for e in errors), done.stdout
    assert any(e.startswith("wrong.py:7:") and "no_such_name" in e for e in errors), done.stdout
