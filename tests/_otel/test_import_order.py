"""Export on: configuring callwatch before importing its modules must work in any order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._otel.support import need_module

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("late_import", [
    "from callwatch.logger import log; log.info('after configure')",
    "import callwatch.alerting",
    "from callwatch.monitoring import record_call_start; record_call_start('c-1')",
])
def test_modules_imported_after_configure_with_export_on(tmp_path: Path, late_import: str) -> None:
    need_module("opentelemetry.sdk")
    program = f"import callwatch\ncallwatch.configure(console=False)\n{late_import}\n"
    env = {**os.environ, "LOG_DIR": str(tmp_path), "PYTHONPATH": str(ROOT / "src"),
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "CALLWATCH_OTLP": "true"}
    done = subprocess.run([sys.executable, "-c", program], check=False, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
