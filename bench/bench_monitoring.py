"""Monitoring hot paths side by side with prometheus_client's own Counter.inc / Histogram.observe.

Run: .venv/bin/python bench/bench_monitoring.py   (prints markdown, writes bench/results/monitoring.md)
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from prometheus_client import CollectorRegistry, Counter, Histogram

import callwatch
from callwatch._metrics.calls import CallStats
from callwatch.monitoring import (
    get_metrics,
    production_monitor,
    record_call_end,
    record_call_start,
    record_response_time,
)

REPEATS = 5
FAST_FORWARD_CALLS = 10_000_000
FAST_FORWARD_BUDGET_SEC = 35.0
IDS = [f"call-{i}" for i in range(10_000)]


def per_op_ns(fn: Callable[[int], None], n: int) -> float:
    """Median over REPEATS of the time per operation of ``fn(n)`` (which does n operations)."""
    samples = []
    for _ in range(REPEATS):
        gc.disable()
        t0 = time.perf_counter_ns()
        fn(n)
        samples.append((time.perf_counter_ns() - t0) / n)
        gc.enable()
    return statistics.median(samples)


def loop_floor(n: int) -> None:
    for _ in range(n):
        pass


def main() -> str:
    directory = Path(tempfile.mkdtemp())
    callwatch.configure(log_dir=directory, console=False, files=False)
    registry = CollectorRegistry()
    counter = Counter("bench_total", "x", registry=registry)
    hist = Histogram("bench_seconds", "x", registry=registry,
                     buckets=(0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 3, 5, 10))

    def counter_inc(n: int) -> None:
        inc = counter.inc
        for _ in range(n):
            inc()

    def hist_observe(n: int) -> None:
        observe = hist.observe
        for _ in range(n):
            observe(0.7)

    def call_start_end(n: int) -> None:
        ids = IDS
        for i in range(n):
            call_id = ids[i % 10_000]
            record_call_start(call_id)
            record_call_end(call_id, 42.0, True)

    def response_time(n: int) -> None:
        for _ in range(n):
            record_response_time(730.0)

    floor = per_op_ns(loop_floor, 200_000)
    rows: list[tuple[str, float, float | None]] = []
    c = per_op_ns(counter_inc, 200_000) - floor
    h = per_op_ns(hist_observe, 200_000) - floor
    rows.append(("prometheus_client Counter.inc (floor)", c, None))
    rows.append(("prometheus_client Histogram.observe (floor)", h, None))
    rows.append(("record_call_start + record_call_end", per_op_ns(call_start_end, 100_000) - floor,
                 3000.0))
    rows.append(("record_response_time", per_op_ns(response_time, 200_000) - floor, 1500.0))

    production_monitor.reset()
    call_start_end(10)
    small = production_monitor.calls
    production_monitor.system.latest()
    gc.collect()
    rss_small = psutil.Process().memory_info().rss

    production_monitor.calls = CallStats()  # get_metrics() reads whichever CallStats is installed
    large = production_monitor.calls
    large_start, large_end = large.start, large.end
    recorded = 0
    rss_million = 0
    deadline = time.monotonic() + FAST_FORWARD_BUDGET_SEC
    ids = IDS
    while recorded < FAST_FORWARD_CALLS and time.monotonic() < deadline:
        for i in range(100_000):
            call_id = ids[i % 10_000]
            large_start(call_id)
            large_end(call_id, 42.0, True)
        recorded += 100_000
        if recorded == 1_000_000:
            gc.collect()
            rss_million = psutil.Process().memory_info().rss
    gc.collect()
    rss_large = psutil.Process().memory_info().rss

    # Interleaved, so the host's load drifts over both alike.
    small_ns, large_ns = [], []
    for _ in range(REPEATS):
        for calls, into in ((small, small_ns), (large, large_ns)):
            production_monitor.calls = calls
            t0 = time.perf_counter_ns()
            for _ in range(1_000):
                get_metrics()
            into.append((time.perf_counter_ns() - t0) / 1_000)
    production_monitor.calls = small
    rows.append(("get_metrics() after 10 calls", statistics.median(small_ns), 100_000.0))
    rows.append((f"get_metrics() after {recorded:,} calls", statistics.median(large_ns),
                 100_000.0))

    checker = production_monitor.health_checker

    async def health(n: int) -> None:
        for _ in range(n):
            checker._cache = None  # measure an evaluation, not the cache
            await production_monitor.get_health()

    rows.append(("get_health() built-in checks (uncached)",
                 per_op_ns(lambda n: asyncio.run(health(n)), 2_000), 1_000_000.0))
    callwatch.shutdown()

    lines = [
        "## Monitoring",
        "",
        f"Python {sys.version.split()[0]}, single process, median of {REPEATS} runs, "
        f"loop overhead ({floor:.0f} ns) subtracted.",
        "",
        "| operation | median | vs Counter.inc | target | met |",
        "| --- | ---: | ---: | ---: | :---: |",
    ]
    for name, ns, target in rows:
        met = "" if target is None else ("yes" if ns <= target else "no")
        shown_target = "floor" if target is None else _fmt(target)
        lines.append(f"| {name} | {_fmt(ns)} | {ns / c:.1f}x | {shown_target} | {met} |")
    lines += [
        "",
        f"Calls really recorded in the fast-forward: {recorded:,} "
        f"(bounded to {FAST_FORWARD_BUDGET_SEC:.0f} s).",
        f"RSS after 10 calls: {rss_small / 2**20:.1f} MiB; after {recorded:,} calls: "
        f"{rss_large / 2**20:.1f} MiB ({(rss_large - rss_small) / 2**20:+.1f} MiB); "
        f"after 1,000,000 calls: {rss_million / 2**20:.1f} MiB (growth after the first million: "
        f"{(rss_large - rss_million) / 2**20:+.1f} MiB).",
        "",
    ]
    return "\n".join(lines)


def _fmt(ns: float) -> str:
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


if __name__ == "__main__":
    report = main()
    print(report)
    out = Path(__file__).parent / "results" / "monitoring.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report)
