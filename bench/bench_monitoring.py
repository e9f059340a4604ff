"""Monitoring hot paths side by side with prometheus_client's own Counter.inc / Histogram.observe.

The fleet section runs a call's updates through this worker's memory-mapped file, side by
side with the same updates made directly with prometheus_client in multiprocess mode (in a
child process, where PROMETHEUS_MULTIPROC_DIR is set before prometheus_client is imported),
and reads get_metrics() of a four-worker fleet (this process and three real workers).

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


def call_start_end(n: int) -> None:
    ids = IDS
    for i in range(n):
        call_id = ids[i % 10_000]
        record_call_start(call_id)
        record_call_end(call_id, 42.0, True)


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
        fleet_section(floor),
    ]
    return "\n".join(lines)


PROMETHEUS_MULTIPROCESS = """
import os, sys, tempfile, time
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
registry = CollectorRegistry()
started = Counter("calls_started", "x", registry=registry)
ended = Counter("calls_ended", "x", ["outcome"], registry=registry)
active = Gauge("active_calls", "x", registry=registry, multiprocess_mode="livesum")
duration = Histogram("call_duration_seconds", "x", registry=registry,
                     buckets=(1, 5, 10, 15, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1200))
n = int(sys.argv[1])
t0 = time.perf_counter_ns()
for _ in range(n):
    started.inc()
    active.inc()
    active.dec()
    ended.labels("success").inc()
    duration.observe(42.0)
print((time.perf_counter_ns() - t0) / n)
"""
FLEET_WORKER = """
import sys, callwatch
from callwatch.logger import perf_timer
from callwatch.monitoring import record_call_end, record_call_start, record_error, record_response_time
callwatch.configure(console=False, files=False)
for i in range(2000):
    record_call_start(i)
    record_response_time(600.0 + i % 900)
    record_call_end(i, 30.0 + i % 120, success=i % 20 != 0)
for op in ("stt", "llm", "tts"):
    with perf_timer(op):
        pass
record_error("LLM_ERROR", "overloaded")
print("ready", flush=True)
sys.stdin.read()   # stays alive until the benchmark closes stdin
"""


def fleet_section(floor: float) -> str:
    """A call's updates in a fleet vs prometheus_client multiprocess; get_metrics() of 4 workers."""
    import os
    import subprocess

    from callwatch._metrics.fleet import Fleet
    from callwatch._metrics.placement import Placement

    directory = Path(tempfile.mkdtemp())
    callwatch.configure(log_dir=directory / "logs", console=False, files=False)
    production_monitor.reset()
    me = psutil.Process()
    fleet = Fleet(Placement(directory / "fleet", me.pid, me.create_time(), "bench"), 300.0,
                  lambda *report: None)
    fleet.join()
    production_monitor._leave_fleet()
    production_monitor.fleet = fleet
    production_monitor._attach(fleet.durable)

    ours, theirs = [], []
    for _ in range(REPEATS):  # interleaved, so the host's load drifts over both alike
        ours.append(per_op_ns(call_start_end, 50_000) - floor)
        out = subprocess.run([sys.executable, "-c", PROMETHEUS_MULTIPROCESS, "50000"],
                             capture_output=True, check=True, text=True, timeout=300)
        theirs.append(float(out.stdout) - floor)
    ours_ns, theirs_ns = statistics.median(ours), statistics.median(theirs)

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory / "fleet"),
           "LOG_DIR": str(directory / "logs")}
    workers = [subprocess.Popen([sys.executable, "-c", FLEET_WORKER], env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
               for _ in range(3)]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        metrics = get_metrics()
        assert metrics["calls"]["total_calls"] >= 6_000, metrics["calls"]
        samples, cpu = [], []
        for _ in range(REPEATS):
            t0, c0 = time.perf_counter_ns(), time.process_time_ns()
            for _ in range(200):
                get_metrics()
            samples.append((time.perf_counter_ns() - t0) / 200)
            cpu.append((time.process_time_ns() - c0) / 200)
        read_ns, read_cpu_ns = statistics.median(samples), statistics.median(cpu)
    finally:
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.close()
            worker.wait(timeout=30)
    production_monitor._leave_fleet()
    callwatch.shutdown()
    ratio = ours_ns / theirs_ns
    return "\n".join([
        "### In a fleet",
        "",
        "A call's updates written to this worker's memory-mapped file, side by side with the same "
        "updates made directly with prometheus_client in multiprocess mode (started, active +1/-1, "
        f"ended by outcome, duration histogram); median of {REPEATS} interleaved runs.",
        "",
        "| operation | median | target | met |",
        "| --- | ---: | ---: | :---: |",
        f"| prometheus_client multiprocess, the same updates (floor) | {_fmt(theirs_ns)} | | |",
        f"| record_call_start + record_call_end in a fleet | {_fmt(ours_ns)} ({ratio:.2f}x) "
        f"| 1.5x | {'yes' if ratio <= 1.5 else 'no'} |",
        f"| get_metrics(), 4-worker fleet ({metrics['calls']['total_calls']:,} calls) "
        f"| {_fmt(read_ns)} (CPU {_fmt(read_cpu_ns)}) | 1.00 ms CPU "
        f"| {'yes' if read_cpu_ns <= 1_000_000 else 'no'} |",
        "",
        f"Load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
        "(wall-clock figures include time spent waiting for a CPU; the read's target is judged "
        "on the reading process's CPU time, as the alerting section does).",
        "",
    ])


def _fmt(ns: float) -> str:
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


if __name__ == "__main__":
    report = main()
    print(report)
    out = Path(__file__).parent / "results" / "monitoring.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report)
