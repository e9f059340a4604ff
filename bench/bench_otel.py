"""OTLP export benchmark: the caller's cost per INFO line with export off, on, collector down.

One process, the three modes side by side, interleaved rounds, medians. "On"
exports to a real local rotel collector (discarding what it receives); "down"
points at a port where nothing listens, "slow" at one that takes connections and
never answers. Two loads: a tight loop (the worst case:
the export thread yields to the caller and drops, counted, what it cannot keep
up with) and bursts of 100 lines with pauses, as a call's turns log them.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

N = 20_000
BURST, PAUSE_SEC, BURSTS = 100, 0.02, 100
ROUNDS = 5
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


def measure(endpoint: str | None, directory: Path) -> tuple[float, float, float]:
    """(tight µs/line, burst µs/line, shutdown s) for one mode."""
    import callwatch
    from callwatch.logger import log, set_call_id

    if endpoint is None:
        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    else:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    callwatch.configure(log_dir=directory, console=False, environment="production")
    set_call_id("ast-123-456")
    info = log.info
    start = time.perf_counter()
    for _ in range(N):
        info("Call processed", extra=EXTRA)
    tight = (time.perf_counter() - start) / N * 1e6
    spent = 0.0
    for _ in range(BURSTS):
        time.sleep(PAUSE_SEC)
        start = time.perf_counter()
        for _ in range(BURST):
            info("Call processed", extra=EXTRA)
        spent += time.perf_counter() - start
    burst = spent / (BURST * BURSTS) * 1e6
    start = time.perf_counter()
    callwatch.shutdown()
    return tight, burst, time.perf_counter() - start


def main() -> str:
    from callwatch._logging.stats import STATS

    os.environ["OTEL_EXPORTER_OTLP_TIMEOUT"] = "2"
    modes = ["export off", "export on (local rotel)", "export on, collector down",
             "export on, collector never answers"]
    results: dict[str, list[tuple[float, float, float]]] = {mode: [] for mode in modes}
    dropped_before = STATS.otlp_dropped
    with local_collector() as endpoint, tempfile.TemporaryDirectory() as tmp, \
            socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections wait in the backlog, never answered
        targets = {modes[0]: None, modes[1]: endpoint, modes[2]: f"http://127.0.0.1:{free_port()}",
                   modes[3]: f"http://127.0.0.1:{silent.getsockname()[1]}"}
        for round_ in range(ROUNDS):
            for mode in modes:
                results[mode].append(measure(targets[mode], Path(tmp) / f"{round_}-{mode[:9]}"))
    dropped = STATS.otlp_dropped - dropped_before
    off_tight = statistics.median(r[0] for r in results[modes[0]])
    off_burst = statistics.median(r[1] for r in results[modes[0]])
    rows = ["| mode | tight loop µs/line | × off | bursts µs/line | × off | shutdown s (max) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for mode in modes:
        tight = statistics.median(r[0] for r in results[mode])
        burst = statistics.median(r[1] for r in results[mode])
        slowest = max(r[2] for r in results[mode])
        rows.append(f"| {mode} | {tight:.2f} | {tight / off_tight:.2f} | {burst:.2f} | "
                    f"{burst / off_burst:.2f} | {slowest:.2f} |")
    return "\n".join([
        "## OTLP export",
        "",
        f"Caller cost per INFO line: a tight loop of {N:,} lines, and {BURSTS} bursts of "
        f"{BURST} lines {PAUSE_SEC * 1000:.0f} ms apart; {ROUNDS} interleaved rounds, medians. "
        f"Target: ≤ 1.25× export off, also with the collector down or silent; shutdown ≤ 2 s. "
        f"Records the export could not send (dropped and counted, all modes): {dropped:,}. "
        f"Python {sys.version.split()[0]}.",
        "",
        *rows,
        "",
    ])


if __name__ == "__main__":
    print(main())
