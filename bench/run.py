"""Runs every benchmark under bench/ and writes docs/performance.md from their sections."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ORDER = [
    "bench_logging", "bench_monitoring", "bench_alerting", "bench_routes", "bench_trace",
    "bench_otel",
]


def main() -> int:
    scripts = [HERE / f"{name}.py" for name in ORDER if (HERE / f"{name}.py").exists()]
    scripts += sorted(p for p in HERE.glob("bench_*.py") if p not in scripts)
    sections, failed = [], []
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    for script in scripts:
        print(f"== {script.name}", flush=True)
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, check=False
        )
        sys.stderr.write(done.stderr[-2000:])
        if done.returncode != 0:
            failed.append(script.name)
            continue
        print(done.stdout, flush=True)
        sections.append(done.stdout.strip())
    header = [
        "# Performance",
        "",
        "Measured by `make bench` (peers side by side in the same run; ratios matter more",
        "than absolute figures, which depend on the machine).",
        "",
        f"Last run: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}.",
        "",
    ]
    (HERE.parent / "docs" / "performance.md").write_text("\n".join(header + sections) + "\n")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
