"""Monitoring routes under probe load: wrk against one real uvicorn server on loopback.

Side by side on the same single-worker server:
- ``/monitoring/health`` against a bare FastAPI route answering ``OK`` (target: at least 0.9x
  the bare route's requests per second), both at saturation (closed loop);
- ``/monitoring/metrics`` p99 latency for 50 concurrent clients (target: under 5 ms). In a
  closed loop, latency is just connections / throughput (Little's law), so the target is
  judged with 50 paced clients, each polling every PACE_MS (far more often than a
  dashboard or a scraper); the saturated figures are reported beside it.

- ``import callwatch.routes`` against ``import fastapi``, each in a fresh interpreter with its
  bytecode cached (target: within 1.3x). The router's own import is what a worker pays at
  start-up before its first request.

Runs are interleaved (bare, health, bare, health, ...) so drift hits both equally; medians
are reported. Run: ``.venv/bin/python bench/bench_routes.py`` (about 60 s), or
``… bench_routes.py --imports`` for the import section alone (about 10 s).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DURATION_S = 5
CONNECTIONS = 50
ROUNDS = 2
PACE_MS = 200
IMPORT_ROUNDS = 9
IMPORTED = ("fastapi", "callwatch.routes")
HERE = Path(__file__).resolve().parent


def record_calls(log_dir: str) -> None:
    """callwatch configured with 200 finished calls, their stages and some errors on record."""
    import callwatch
    from callwatch import monitoring
    from callwatch.logger import perf_timer

    callwatch.configure(log_dir=log_dir, console=False, environment="production")
    for n in range(200):
        call_id = f"bench-{n}"
        monitoring.record_call_start(call_id)
        for stage in ("stt_transcription", "llm_generation", "tts_synthesis"):
            with perf_timer(stage):
                pass
        monitoring.record_response_time(400.0 + n % 300, call_id=call_id)
        if n % 20 == 0:
            monitoring.record_error("STT_TIMEOUT", "speech recognition timed out", {"n": n})
        monitoring.record_call_end(call_id, 30.0 + n % 40, success=n % 20 != 0)


def serve(log_dir: str) -> None:
    """The server side: calls on record, the router and a bare route, one uvicorn worker."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    from callwatch.routes import router

    record_calls(log_dir)
    app = FastAPI()
    app.include_router(router)

    @app.get("/bare", response_class=PlainTextResponse)
    async def bare() -> PlainTextResponse:
        return PlainTextResponse("OK")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


def wrk(url: str, paced: Path | None = None) -> tuple[float, float]:
    """Requests per second and p99 latency in ms for one bounded wrk run."""
    script = ["-s", str(paced)] if paced else []
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "--latency", *script, url],
        capture_output=True, text=True, timeout=DURATION_S + 30, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99_ms = float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    if "Non-2xx" in out:
        raise SystemExit(f"{url} answered errors under load:\n{out}")
    return rps, p99_ms


def handler_cost_us(log_dir: str, rounds: int = 3000) -> tuple[float, float]:
    """p50 and p99 in µs of the /metrics handler itself (in process, no HTTP): its event-loop time."""
    import asyncio

    from callwatch import routes

    record_calls(log_dir)

    async def measure() -> list[float]:
        costs = []
        for _ in range(rounds):
            start = time.perf_counter()
            await routes.metrics()
            costs.append((time.perf_counter() - start) * 1e6)
        return sorted(costs)

    costs = asyncio.run(measure())
    return costs[len(costs) // 2], costs[int(len(costs) * 0.99)]


def import_ms(rounds: int = IMPORT_ROUNDS) -> dict[str, float]:
    """Median ms to import each of IMPORTED in a fresh interpreter, runs interleaved.

    Bytecode is written and a first, uncounted round warms it, as on a deployed service.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    timer = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"
    times: dict[str, list[float]] = {name: [] for name in IMPORTED}
    for round_ in range(rounds + 1):
        for name in IMPORTED:
            out = subprocess.run([sys.executable, "-c", timer.format(name)], env=env,
                                 capture_output=True, text=True, check=True, timeout=60).stdout
            if round_:
                times[name].append(float(out) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def import_report(times: dict[str, float]) -> list[str]:
    ratio = times["callwatch.routes"] / times["fastapi"]
    verdict = "met" if ratio <= 1.3 else "**not met**"
    return [
        f"| module | import (ms, median of {IMPORT_ROUNDS} fresh interpreters) | vs fastapi |",
        "| --- | ---: | ---: |",
        *(f"| `{name}` | {ms:.0f} | {ms / times['fastapi']:.2f}× |" for name, ms in times.items()),
        "",
        f"- `import callwatch.routes` takes {ratio:.2f}× `import fastapi` (target ≤ 1.30×): {verdict}",
        "",
    ]


def http_parser() -> str:
    """Which HTTP implementation uvicorn picks here (httptools with `uvicorn[standard]`)."""
    from importlib.util import find_spec

    return "httptools" if find_spec("httptools") else "h11 (pure Python)"


def wait_ready(base: str) -> None:
    import httpx

    for _ in range(100):
        try:
            if httpx.get(base + "/monitoring/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not become ready")


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (make system-deps)")
    with tempfile.TemporaryDirectory() as log_dir:
        env = {k: v for k, v in os.environ.items() if k != "MONITORING_TOKEN"}
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", log_dir], stdout=subprocess.PIPE, text=True, env=env
        )
        try:
            assert server.stdout is not None
            base = f"http://127.0.0.1:{int(server.stdout.readline())}"
            wait_ready(base)
            pace = Path(log_dir) / "pace.lua"
            pace.write_text(f"function delay()\n  return {PACE_MS}\nend\n")
            runs: dict[str, list[tuple[float, float]]] = {
                "bare": [], "health": [], "metrics": [], "bare_paced": [], "metrics_paced": []
            }
            paths = {"bare": "/bare", "health": "/monitoring/health", "metrics": "/monitoring/metrics"}
            wrk(base + "/bare")  # warm-up, not counted
            for _ in range(ROUNDS):
                for name, path in paths.items():
                    runs[name].append(wrk(base + path))
                runs["bare_paced"].append(wrk(base + "/bare", paced=pace))
                runs["metrics_paced"].append(wrk(base + "/monitoring/metrics", paced=pace))
        finally:
            server.terminate()
            server.wait(timeout=10)
        handler = handler_cost_us(log_dir)
    report(runs, handler, import_ms())


def report(
    runs: dict[str, list[tuple[float, float]]], handler: tuple[float, float], imports: dict[str, float]
) -> None:
    rps = {name: statistics.median(r for r, _ in v) for name, v in runs.items()}
    p99 = {name: statistics.median(p for _, p in v) for name, v in runs.items()}
    ratio = rps["health"] / rps["bare"]
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    lines = [
        "## Monitoring routes (wrk, one uvicorn worker, loopback)",
        "",
        f"{CONNECTIONS} connections, {DURATION_S} s per run, {ROUNDS} interleaved runs each, medians; "
        f"{os.cpu_count()} CPUs shared by wrk and the server; uvicorn with {http_parser()}.",
        "",
        "| route | requests/s | p99 latency | vs bare route |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, path in (("bare", "/bare"), ("health", "/monitoring/health"), ("metrics", "/monitoring/metrics")):
        lines.append(f"| `{path}` (saturated) | {rps[name]:,.0f} | {p99[name]:.2f} ms | {rps[name] / rps['bare']:.2f}× |")
    paced = p99["metrics_paced"]
    for name, path in (("bare_paced", "/bare"), ("metrics_paced", "/monitoring/metrics")):
        lines.append(
            f"| `{path}` ({CONNECTIONS} clients, one request / {PACE_MS} ms each) "
            f"| {rps[name]:,.0f} | {p99[name]:.2f} ms | |"
        )
    lines += [
        "",
        f"- `/monitoring/health` serves {ratio:.2f}× the bare route's requests/s (target ≥ 0.90×): {met(ratio >= 0.9)}",
        f"- `/monitoring/metrics` p99 {paced:.2f} ms for {CONNECTIONS} concurrent clients (target < 5 ms): {met(paced < 5)}",
        f"- the `/monitoring/metrics` handler itself (no HTTP, in process): p50 {handler[0]:.0f} µs, "
        f"p99 {handler[1]:.0f} µs of event-loop time per request",
        f"- load average at the end: {os.getloadavg()[0]:.1f} (other work on the machine inflates latency)",
        "",
        *import_report(imports),
    ]
    text = "\n".join(lines)
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "routes.md").write_text(text)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    elif sys.argv[1:] == ["--imports"]:
        print("\n".join(["## Import time", "", *import_report(import_ms())]))
    else:
        main()
