"""OTLP export benchmark: the caller's cost per INFO line, and what reaches the collector.

One process, the modes side by side, interleaved rounds, medians. "On" exports to
a real local rotel collector (discarding what it receives); "down" points at a
port where nothing listens, "never answers" at one that takes connections and
never replies. Two loads: a tight loop (the worst case: the export thread yields
to the caller, and the burst waits in its inbox) and bursts of 100 lines with
pauses, as a call's turns log them. Per mode and load: records delivered (taken
by the collector) and dropped (counted), and how long the export took to catch up.
"""

from __future__ import annotations

import gc
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

N = 20_000
BURST, PAUSE_SEC, BURSTS = 100, 0.02, 100
ROUNDS = 7
LOADS = ("tight", "bursts")
DRAIN_SEC = 30.0
EXTRA = {"caller_number": "+1234567890", "extension": "100", "turn": 3}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_collector() -> Iterator[str]:
    import rotel

    binary = Path(rotel.__file__).parent / "rotel-agent"
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [str(binary), "start", "--otlp-http-endpoint", f"127.0.0.1:{port}",
             "--otlp-grpc-endpoint", f"127.0.0.1:{free_port()}", "--exporter", "blackhole",
             "--pid-file", f"{directory}/p", "--log-file", f"{directory}/l"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)


@dataclass
class Run:
    """One load in one mode: the caller's cost, shutdown, and what became of the records."""

    us_per_line: float
    shutdown_sec: float
    logged: int
    delivered: int
    dropped: int
    caught_up_sec: float | None  # how long after the load the export had sent everything


def measure(endpoint: str | None, directory: Path, load: str, wait: bool) -> Run:
    """Run one load; with ``wait``, give the export up to DRAIN_SEC to catch up before shutdown."""
    import callwatch
    from callwatch import _otel
    from callwatch._logging.stats import STATS
    from callwatch.logger import log, set_call_id

    if endpoint is None:
        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    else:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    dropped_before = STATS.otlp_dropped
    gc.collect()  # every load starts from the same heap: the previous one's garbage is gone
    callwatch.configure(log_dir=directory, console=False, environment="production")
    exporter = _otel.current()
    set_call_id("ast-123-456")
    info = log.info
    spent = 0.0
    if load == "tight":
        logged = N
        start = time.perf_counter()
        for _ in range(N):
            info("Call processed", extra=EXTRA)
        spent = time.perf_counter() - start
    else:
        logged = BURST * BURSTS
        for _ in range(BURSTS):
            time.sleep(PAUSE_SEC)
            start = time.perf_counter()
            for _ in range(BURST):
                info("Call processed", extra=EXTRA)
            spent += time.perf_counter() - start
    caught_up = None
    if exporter is not None and wait:
        waited = time.perf_counter()
        while time.perf_counter() - waited < DRAIN_SEC:
            if exporter.pending() == 0 and _delivered(exporter) >= logged:
                caught_up = time.perf_counter() - waited
                break
            time.sleep(0.02)
    start = time.perf_counter()
    callwatch.shutdown()
    shutdown = time.perf_counter() - start
    delivered = _delivered(exporter) if exporter is not None else 0
    return Run(spent / logged * 1e6, shutdown, logged, delivered,
               STATS.otlp_dropped - dropped_before, caught_up)


def _delivered(exporter: Any) -> int:
    return int(exporter.delivery.delivered.get("records", 0))


def main() -> str:
    os.environ["OTEL_EXPORTER_OTLP_TIMEOUT"] = "2"
    modes = ["export off", "export on (local rotel)", "export on, collector down",
             "export on, collector never answers"]
    results: dict[tuple[str, str], list[Run]] = {(m, load): [] for m in modes for load in LOADS}
    with local_collector() as endpoint, tempfile.TemporaryDirectory() as tmp, \
            socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections wait in the backlog, never answered
        targets = {modes[0]: None, modes[1]: endpoint, modes[2]: f"http://127.0.0.1:{free_port()}",
                   modes[3]: f"http://127.0.0.1:{silent.getsockname()[1]}"}
        for round_ in range(ROUNDS):
            for mode in modes:
                for load in LOADS:
                    directory = Path(tmp) / f"{round_}-{mode[:9]}-{load}"
                    results[mode, load].append(
                        measure(targets[mode], directory, load, wait=mode == modes[1]))
    return _report(modes, results)


def _report(modes: list[str], results: dict[tuple[str, str], list[Run]]) -> str:
    def cost(mode: str, load: str) -> float:
        return statistics.median(run.us_per_line for run in results[mode, load])

    rows = ["| mode | tight loop µs/line | × off | bursts µs/line | × off | shutdown s (max) "
            "| tight: delivered / dropped | bursts: delivered / dropped | caught up s (max) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for mode in modes:
        cells = [mode]
        for load in LOADS:
            cells += [f"{cost(mode, load):.2f}", f"{cost(mode, load) / cost(modes[0], load):.2f}"]
        runs = [run for load in LOADS for run in results[mode, load]]
        cells.append(f"{max(run.shutdown_sec for run in runs):.2f}")
        for load in LOADS:
            load_runs = results[mode, load]
            if mode == modes[0]:
                cells.append("—")
                continue
            cells.append(f"{sum(r.delivered for r in load_runs):,} / "
                         f"{sum(r.dropped for r in load_runs):,}")
        waits = [run.caught_up_sec for run in runs if run.caught_up_sec is not None]
        missed = any(run.caught_up_sec is None for run in runs)
        cells.append("—" if not waits else f"{max(waits):.1f}" + (" (not all)" if missed else ""))
        rows.append("| " + " | ".join(cells) + " |")
    logged = {load: sum(run.logged for run in results[modes[0], load]) for load in LOADS}
    return "\n".join([
        "## OTLP export",
        "",
        f"Caller cost per INFO line: a tight loop of {N:,} lines, and {BURSTS} bursts of "
        f"{BURST} lines {PAUSE_SEC * 1000:.0f} ms apart, each load in a fresh configuration; "
        f"{ROUNDS} interleaved rounds, medians. Target: ≤ 1.25× export off, also with the "
        f"collector down or silent; shutdown ≤ 2 s. Delivered: records the collector took "
        f"(of {logged['tight']:,} tight and {logged['bursts']:,} burst lines over the rounds); "
        f"dropped: records and spans counted as lost (a few more than the lines: the "
        f"outage's own WARNING records are exported too). With the local collector the process "
        f"stays up after each load until the export has caught up (at most {DRAIN_SEC:.0f} s: "
        f"the last column); with the collector down or silent it shuts down at once. "
        f"Python {sys.version.split()[0]}.",
        "",
        *rows,
        "",
    ])


if __name__ == "__main__":
    print(main())
