"""The guide's examples shipped in examples/ run as written, and their calls can be traced."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.cli.conftest import run_cli, run_python

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

DRIVE_COMPLETE_EXAMPLE = """
import asyncio, importlib.util, sys
from fastapi.testclient import TestClient

spec = importlib.util.spec_from_file_location("complete_example", sys.argv[1])
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)

async def calls():
    audio = await example.handle_voice_call("ast-1", "+15550001")
    assert audio.startswith(b"Of course")
    async def broken(text):
        raise ConnectionError("LLM unreachable")
    example.generate_response = broken
    try:
        await example.handle_voice_call("ast-2", "+15550002")
    except ConnectionError:
        pass
    else:
        raise AssertionError("the example must re-raise")

asyncio.run(calls())
client = TestClient(example.app)
assert client.get("/monitoring/health").status_code in (200, 503)
calls = client.get("/monitoring/metrics").json()["calls"]
print(calls["total_calls"], calls["successful_calls"], calls["failed_calls"])
"""


def test_complete_example_serves_monitoring_and_logs_both_outcomes(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    done = run_python(
        "-c",
        DRIVE_COMPLETE_EXAMPLE,
        str(EXAMPLES / "complete_example.py"),
        LOG_DIR=str(logs),
        ENVIRONMENT="production",
        LOG_CONSOLE="false",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "1", "1"]
    ok = orjson.loads(run_cli("trace", "ast-1", "--log-dir", logs, "--json").stdout)
    assert set(ok["stages"]) == {"stt_transcription", "llm_generation", "tts_synthesis"}
    assert [r["message"] for r in ok["records"]][-1] == "Call completed"
    failed = run_cli("trace", "ast-2", "--log-dir", logs)
    assert failed.returncode == 0
    assert "ConnectionError: LLM unreachable" in failed.stdout


def test_quick_start_runs_and_its_call_traces(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    done = run_python(
        str(EXAMPLES / "quick_start.py"),
        LOG_DIR=str(logs),
        ENVIRONMENT="production",
        LOG_CONSOLE="false",
    )
    assert done.returncode == 0, done.stderr
    answer = orjson.loads(run_cli("trace", "ast-123-456", "--log-dir", logs, "--json").stdout)
    assert answer["stages"]["process_audio"]["count"] == 1
    assert "Call processed successfully" in [r["message"] for r in answer["records"]]
