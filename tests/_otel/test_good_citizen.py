"""An application's own global providers are used by callwatch, never replaced.

Global providers can be set once per process, so each case runs in a fresh one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests._otel.support import need_module

ROOT = Path(__file__).resolve().parents[2]

APPLICATION = '''
import json, sys
from opentelemetry import _logs, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(tracer_provider)
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
_logs.set_logger_provider(logger_provider)

import callwatch
from callwatch.logger import bind_call, log, perf_timer
from callwatch.monitoring import record_call_end, record_call_start

callwatch.configure(log_dir=sys.argv[1], console=False)
record_call_start("app-call")
with bind_call("app-call"), perf_timer("llm"):
    log.info("through the application's providers")
record_call_end("app-call", success=True)
callwatch.shutdown()
print(json.dumps({
    "same_tracer_provider": trace.get_tracer_provider() is tracer_provider,
    "same_logger_provider": _logs.get_logger_provider() is logger_provider,
    "spans": sorted(s.name for s in spans.get_finished_spans()),
    "logs": [str(r.log_record.body) for r in logs.get_finished_logs()],
}))
'''


def test_the_applications_providers_carry_callwatchs_spans_and_records(tmp_path: Path) -> None:
    need_module("opentelemetry.sdk")
    env = {"PATH": "", "PYTHONPATH": str(ROOT / "src")}  # no OTEL_* endpoint at all
    done = subprocess.run([sys.executable, "-c", APPLICATION, str(tmp_path / "logs")],
                          capture_output=True, text=True, timeout=60, env=env, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["same_tracer_provider"] and result["same_logger_provider"]
    assert result["spans"] == ["call", "llm"]
    assert "through the application's providers" in result["logs"]
