"""Alerting benchmark: the cost a call pays for alerting, against floors, in one run.

``check_and_alert`` runs after every call in the guide, so its quiet path is
measured against an empty coroutine and a hand-written threshold loop; handing
an alert over is measured against the bare cross-thread hand-off it is built
on. The storm test counts notifications actually delivered.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROUNDS = 5
N_CHECK = 20_000
N_SEND = 2_000
STORM = 10_000
QUIET = {
    "calls": {
        "total_calls": 1250, "active_calls": 5, "successful_calls": 1200, "failed_calls": 50,
        "average_response_time_ms": 850.5, "error_rate": 1.2, "window_calls": 300,
        "response_time_ms": {"p50": 700.0, "p95": 1200.0, "p99": 2100.0},
    },
    "system": {"cpu_percent": 35.2, "memory_percent": 62.5, "disk_percent": 45.0},
}


class Timer:
    """Wall time and the calling thread's CPU time, per operation, in µs."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = ((time.perf_counter() - self.wall) / self.n * 1e6,
                       (time.thread_time() - self.cpu) / self.n * 1e6)


def median_us(
    run: Callable[[], Awaitable[tuple[float, float]]], loop: asyncio.AbstractEventLoop
) -> tuple[float, float]:
    results = [loop.run_until_complete(run()) for _ in range(ROUNDS)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def naive_check(metrics: dict, thresholds: dict) -> list[str]:
    """The floor for a check: compare each value with its limits, nothing else."""
    calls, system = metrics["calls"], metrics["system"]
    values = {
        "cpu_percent": system["cpu_percent"], "memory_percent": system["memory_percent"],
        "disk_percent": system["disk_percent"], "error_rate": calls["error_rate"],
        "active_calls": calls["active_calls"], "response_time_ms": calls["response_time_ms"]["p95"],
    }
    fired = []
    for key, value in values.items():
        limits = thresholds[key]
        if value >= limits["critical"] or value >= limits["warning"]:
            fired.append(key)
    return fired


def main() -> None:
    import callwatch
    from callwatch.alerting import alert_manager, check_and_alert, send_alert

    directory = Path(tempfile.mkdtemp(prefix="bench-alerting-"))
    callwatch.configure(log_dir=directory, console=False, environment="production", alert_queue_size=100_000)
    alert_manager.unregister_handler("console")
    delivered = [0]

    async def counting(alert: object) -> None:
        delivered[0] += 1

    alert_manager.register_handler(counting)
    loop = asyncio.new_event_loop()
    thresholds = alert_manager.thresholds

    async def empty() -> None:
        return None

    async def floor_await() -> tuple[float, float]:
        with Timer(N_CHECK) as timer:
            for _ in range(N_CHECK):
                await empty()
        return timer.result

    async def floor_naive() -> tuple[float, float]:
        with Timer(N_CHECK) as timer:
            for _ in range(N_CHECK):
                naive_check(QUIET, thresholds)
        return timer.result

    async def quiet_check() -> tuple[float, float]:
        with Timer(N_CHECK) as timer:
            for _ in range(N_CHECK):
                await check_and_alert(QUIET)
        return timer.result

    guide = {"calls": {k: QUIET["calls"][k] for k in ("total_calls", "active_calls", "successful_calls", "failed_calls", "average_response_time_ms")}, "system": QUIET["system"]}

    async def guide_only_check() -> tuple[float, float]:
        with Timer(N_CHECK) as timer:
            for _ in range(N_CHECK):
                await check_and_alert(guide)
        return timer.result

    worker_loop = asyncio.new_event_loop()
    worker = threading.Thread(target=worker_loop.run_forever, daemon=True)
    worker.start()

    async def floor_handoff() -> tuple[float, float]:
        with Timer(N_SEND) as timer:
            for _ in range(N_SEND):
                worker_loop.call_soon_threadsafe(len, ())
        return timer.result

    async def handoff() -> tuple[float, float]:
        alert_manager.reset()
        titles = [f"Custom alert {n}" for n in range(N_SEND)]
        with Timer(N_SEND) as timer:
            for title in titles:
                await send_alert("warning", title, "bench", "bench_metric", 1, 0)
        return timer.result

    async def deduplicated() -> tuple[float, float]:
        with Timer(N_SEND) as timer:
            for _ in range(N_SEND):
                await send_alert("warning", "Same alert", "bench", "bench_metric", 1, 0)
        return timer.result

    rows = [
        ("empty coroutine await (floor)", median_us(floor_await, loop), None),
        ("hand-written threshold loop (floor)", median_us(floor_naive, loop), None),
        ("check_and_alert, nothing fires (window rate + p95)", median_us(quiet_check, loop), 20.0),
        ("check_and_alert, nothing fires (guide's fields only)", median_us(guide_only_check, loop), 20.0),
        ("call_soon_threadsafe to another loop (floor)", median_us(floor_handoff, loop), None),
        ("send_alert, new alert handed to delivery", median_us(handoff, loop), 50.0),
        ("send_alert, deduplicated repeat", median_us(deduplicated, loop), None),
    ]

    # The storm: 10,000 identical alerts inside the window, delivered count after a drain.
    storms = {}
    for kind in ("send_alert", "check_and_alert"):
        alert_manager.reset()
        callwatch.configure(log_dir=directory, console=False, environment="production")
        delivered[0] = 0
        for _ in range(STORM):
            if kind == "send_alert":
                loop.run_until_complete(send_alert("critical", "Database Connection Lost", "down", "database_connection", "disconnected", "connected"))
            else:
                loop.run_until_complete(check_and_alert({"system": {"cpu_percent": 97.0}}))
        callwatch.shutdown()  # drains delivery
        storms[kind] = delivered[0]

    worker_loop.call_soon_threadsafe(worker_loop.stop)
    floor = rows[0][1][1]
    lines = [
        "## Alerting",
        "",
        f"Python {'.'.join(map(str, sys.version_info[:3]))}, single process, median of {ROUNDS} runs "
        f"({N_CHECK:,} checks, {N_SEND:,} alerts per run). *CPU* is the calling thread's CPU time per "
        "operation (what the call pays; the delivery worker's own work is not in it), *wall* includes "
        "time the process waited for a core. Targets are judged on CPU.",
        "",
        "| operation | CPU median | wall median | CPU vs empty await | target | met |",
        "| --- | ---: | ---: | ---: | ---: | :---: |",
    ]
    for name, (wall, cpu), target in rows:
        met = "" if target is None else ("yes" if cpu <= target else "no")
        target_text = "floor" if "floor" in name else ("" if target is None else f"{target:.0f} µs")
        lines.append(f"| {name} | {cpu:.2f} µs | {wall:.2f} µs | {cpu / floor:.1f}x | {target_text} | {met} |")
    lines += [""] + [
        f"Storm: {STORM:,} identical alerts through `{kind}` inside the deduplication window produced "
        f"**{count}** notification(s) (target 1: {'met' if count == 1 else 'NOT met'})."
        for kind, count in storms.items()
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "alerting.md").write_text(text)


if __name__ == "__main__":
    main()
