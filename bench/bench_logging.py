"""Logging core benchmark: callwatch against its peers and a hand-written floor, one run.

Every contender writes the same record (the guide's schema, call id from the
context, three extra fields) to files in a temporary directory. Figures are
medians of several rounds; ratios are against the floor and structlog.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

N = 100_000
ROUNDS = 5
EXTRA = {"caller_number": "+1234567890", "extension": "100", "turn": 3}
CALL_ID = contextvars.ContextVar("call_id", default=None)


def timed(fn: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / n * 1e6


# -- contenders: each returns (log_n, finish) -------------------------------------


def make_callwatch(directory: Path) -> tuple[Callable[[], None], Callable[[], None]]:
    import callwatch
    from callwatch.logger import log, set_call_id

    callwatch.configure(log_dir=directory, console=False, environment="production")
    set_call_id("ast-123-456")
    info = log.info

    def run() -> None:
        for _ in range(N):
            info("Call processed", extra=EXTRA)

    return run, callwatch.shutdown


def make_floor(directory: Path) -> tuple[Callable[[], None], Callable[[], None]]:
    from callwatch._logging import records  # the same cached whole-second text

    handle = open(directory / "floor.log", "ab", buffering=1 << 16)  # noqa: SIM115
    CALL_ID.set("ast-123-456")
    write, dumps, getframe, now = handle.write, orjson.dumps, sys._getframe, time.time_ns

    def floor_log(message: str, extra: dict[str, object]) -> None:
        frame = getframe(1)
        micros = now() // 1000
        second = micros // 1_000_000
        cached, prefix = records.second_cache
        if second != cached:
            prefix = records.second_prefix(second)
        write(
            dumps(
                {
                    "timestamp": f"{prefix}.{micros - second * 1_000_000:06d}Z",
                    "level": "INFO",
                    "logger": frame.f_globals["__name__"],
                    "function": frame.f_code.co_name,
                    "line": frame.f_lineno,
                    "message": message,
                    "app": "ai_voice_agent",
                    "environment": "production",
                    "call_id": CALL_ID.get(),
                    "extra": extra,
                },
                option=orjson.OPT_APPEND_NEWLINE,
            )
        )

    def run() -> None:
        for _ in range(N):
            floor_log("Call processed", EXTRA)

    return run, handle.close


def make_structlog(directory: Path) -> tuple[Callable[[], None], Callable[[], None]]:
    import structlog
    from structlog.processors import CallsiteParameter

    handle = open(directory / "structlog.log", "wb")  # noqa: SIM115
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.CallsiteParameterAdder(
                [CallsiteParameter.MODULE, CallsiteParameter.FUNC_NAME, CallsiteParameter.LINENO]
            ),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.BytesLoggerFactory(handle),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(call_id="ast-123-456")
    logger = structlog.get_logger().bind(app="ai_voice_agent", environment="production")

    def run() -> None:
        for _ in range(N):
            logger.info("Call processed", extra=EXTRA)

    return run, handle.close


def make_loguru(directory: Path) -> tuple[Callable[[], None], Callable[[], None]]:
    from loguru import logger

    logger.remove()
    sink = logger.add(directory / "loguru.log", serialize=True, level="INFO")
    bound = logger.bind(app="ai_voice_agent", environment="production")

    def run() -> None:
        with logger.contextualize(call_id="ast-123-456"):
            for _ in range(N):
                bound.info("Call processed", extra=EXTRA)

    return run, lambda: logger.remove(sink)


def make_stdlib(directory: Path) -> tuple[Callable[[], None], Callable[[], None]]:
    from pythonjsonlogger.json import JsonFormatter

    class CallId(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.call_id = CALL_ID.get()
            return True

    CALL_ID.set("ast-123-456")
    handler = logging.FileHandler(directory / "stdlib.log")
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(funcName)s %(lineno)d %(message)s %(call_id)s",
            static_fields={"app": "ai_voice_agent", "environment": "production"},
        )
    )
    handler.addFilter(CallId())
    logger = logging.getLogger("bench.stdlib")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)

    def run() -> None:
        for _ in range(N):
            logger.info("Call processed", extra={"extra": EXTRA})

    def finish() -> None:
        logger.removeHandler(handler)
        handler.close()

    return run, finish


CONTENDERS = {
    "floor (dict + orjson + buffered write)": make_floor,
    "callwatch": make_callwatch,
    "structlog (fastest config, callsite)": make_structlog,
    "loguru (serialize=True)": make_loguru,
    "stdlib + python-json-logger": make_stdlib,
}


def per_call_costs() -> dict[str, tuple[float, float]]:
    """Median µs per call in the caller, and sustained lines/s into the files."""
    samples: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    throughput: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for _ in range(ROUNDS):
        for name, make in CONTENDERS.items():  # interleaved: peers share the machine's state
            with tempfile.TemporaryDirectory() as tmp:
                run, finish = make(Path(tmp))
                start = time.perf_counter()
                run()
                caller = time.perf_counter() - start
                finish()
                total = time.perf_counter() - start
                samples[name].append(caller / N * 1e6)
                throughput[name].append(N / total)
    return {
        name: (statistics.median(samples[name]), statistics.median(throughput[name]))
        for name in CONTENDERS
    }


def perf_timer_cost() -> float:
    import callwatch
    from callwatch.logger import perf_timer

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        callwatch.configure(log_dir=Path(tmp), console=False, environment="production")
        for _ in range(ROUNDS):
            start = time.perf_counter()
            for _ in range(N):
                with perf_timer("llm_generation"):
                    pass
            results.append((time.perf_counter() - start) / N * 1e6)
        callwatch.shutdown()
    return statistics.median(results)


def stalled_writer_p99() -> tuple[float, float, int]:
    """Caller latency per INFO call while the writer cannot write (its lock held)."""
    import callwatch
    from callwatch._logging import pipeline
    from callwatch._logging.stats import STATS
    from callwatch.logger import log

    with tempfile.TemporaryDirectory() as tmp:
        callwatch.configure(log_dir=Path(tmp), console=False, environment="production")
        writer = pipeline.get().writer
        stall = threading.Event()
        held = threading.Event()

        def hold_writer() -> None:
            with writer._lock:  # what a stalled disk looks like to the writer
                held.set()
                stall.wait(30)

        thread = threading.Thread(target=hold_writer)
        thread.start()
        held.wait()
        dropped_before = STATS.dropped
        latencies = []
        clock = time.perf_counter_ns
        for _ in range(100_000):
            start = clock()
            log.info("Call processed", extra=EXTRA)
            latencies.append(clock() - start)
        stall.set()
        thread.join()
        dropped = STATS.dropped - dropped_before
        callwatch.shutdown()
    latencies.sort()
    return (
        latencies[len(latencies) // 2] / 1e3,
        latencies[int(len(latencies) * 0.99)] / 1e3,
        dropped,
    )


# -- redaction: this release against the previous one, side by side -------------

BASELINE_COMMIT = "ab86312"  # the release before bounded redaction
HOSTILE_CHARS = 200_000


def load_baseline_redact() -> Any | None:
    """The previous release's redact module, read from git at bench time (never committed)."""
    try:
        source = subprocess.run(
            ["git", "show", f"{BASELINE_COMMIT}:src/callwatch/_logging/redact.py"],
            cwd=Path(__file__).parent, capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("baseline_redact")
    exec(compile(source, "baseline_redact.py", "exec"), module.__dict__)
    return module


def info_line_costs(baseline: Any | None) -> dict[str, float]:
    """Caller µs per INFO line with no redaction, the previous release's and this one's."""
    import callwatch
    from callwatch._logging import pipeline
    from callwatch.logger import log, set_call_id

    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        callwatch.configure(log_dir=Path(tmp), console=False, environment="production")
        set_call_id("ast-123-456")
        current = pipeline.get()
        ours, *rest = current.processors
        variants = {"no redaction": tuple(rest), "this release": (ours, *rest)}
        if baseline is not None:
            variants["previous release"] = (baseline.RedactProcessor(False).__call__, *rest)
        info = log.info
        for _ in range(ROUNDS):
            for name, chain in variants.items():
                current.processors = chain
                start = time.perf_counter()
                for _ in range(N):
                    info("Call processed", extra=EXTRA)
                results.setdefault(name, []).append((time.perf_counter() - start) / N * 1e6)
        current.processors = (ours, *rest)
        callwatch.shutdown()
    return {name: statistics.median(values) for name, values in results.items()}


def hostile_fields() -> dict[str, str]:
    return {
        "spaced digits": ("1 2 3 4 5 6 7 8 9 0 " * (HOSTILE_CHARS // 20)),
        "'a=' repeated": "q=" + "a=" * (HOSTILE_CHARS // 2),
        "spoken digits": ("four one one one " * (HOSTILE_CHARS // 17)),
        "24-digit runs": ("1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 x " * (HOSTILE_CHARS // 50)),
    }


def hostile_field_costs(baseline: Any | None) -> list[tuple[str, str, float]]:
    """(field, previous release, this release ms) to redact one record holding a 200 KB field."""
    from callwatch._logging.redact import RedactProcessor

    ours = RedactProcessor(False, 16384)
    previous = baseline.RedactProcessor(False) if baseline is not None else None
    rows = []
    for name, text in hostile_fields().items():
        costs = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            ours(None, "info", {"message": text, "call_id": "c-1", "extra": {}})
            costs.append((time.perf_counter() - start) * 1e3)
        before = "n/a"
        if previous is not None:
            start = time.perf_counter()
            try:
                previous(None, "info", {"message": text, "extra": {}})
                before = f"{(time.perf_counter() - start) * 1e3:,.1f}"
            except RecursionError:
                before = "RecursionError (record lost)"
        rows.append((name, before, statistics.median(costs)))
    return rows


def redaction_section() -> list[str]:
    baseline = load_baseline_redact()
    lines = info_line_costs(baseline)
    ours = lines["this release"]
    previous = lines.get("previous release")
    rows = [
        "### Redaction",
        "",
        f"Caller µs per INFO line (the record above), redaction swapped in one configured "
        f"pipeline, {ROUNDS} rounds interleaved; the previous release's module is read from "
        f"git ({BASELINE_COMMIT}) at bench time.",
        "",
        "| redaction | caller µs/line | × no redaction |",
        "| --- | ---: | ---: |",
    ]
    for name, cost in lines.items():
        rows.append(f"| {name} | {cost:.2f} | {cost / lines['no redaction']:.2f} |")
    rows += [
        "",
        f"One record holding a {HOSTILE_CHARS // 1000} KB field (LOG_MAX_FIELD_CHARS 16384: "
        "cut, then scanned), ms:",
        "",
        "| field | previous release | this release | ≤ 20 ms |",
        "| --- | ---: | ---: | --- |",
    ]
    worst = 0.0
    for name, before, after in hostile_field_costs(baseline):
        worst = max(worst, after)
        rows.append(f"| {name} | {before} | {after:.1f} | {'yes' if after <= 20 else 'no'} |")
    within = "n/a" if previous is None else ("yes" if ours <= previous * 1.10 else "no")
    ratio = "n/a" if previous is None else f"{ours / previous:.2f}× the previous release"
    rows += [
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
        f"| INFO line within 10 % of the previous release | {ratio} | {within} |",
        f"| a 200 KB field ≤ 20 ms | worst {worst:.1f} ms | {'yes' if worst <= 20 else 'no'} |",
        "",
    ]
    return rows


def main() -> str:
    costs = per_call_costs()
    floor = costs["floor (dict + orjson + buffered write)"][0]
    structlog_cost = costs["structlog (fastest config, callsite)"][0]
    rows = [
        "| contender | caller µs/line (median) | × floor | × structlog | lines/s into files |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, (cost, rate) in costs.items():
        rows.append(
            f"| {name} | {cost:.2f} | {cost / floor:.2f} | {cost / structlog_cost:.2f} | {rate:,.0f} |"
        )
    ours, our_rate = costs["callwatch"]
    timer = perf_timer_cost()
    p50, p99, dropped = stalled_writer_p99()
    verdict = [
        "| target | measured | met |",
        "| --- | --- | --- |",
        f"| caller cost ≤ ⅓ of structlog | {ours / structlog_cost:.2f}× structlog | {'yes' if ours <= structlog_cost / 3 else 'no'} |",
        f"| caller cost within 1.7× of the floor | {ours / floor:.2f}× floor | {'yes' if ours <= 1.7 * floor else 'no'} |",
        f"| ≥ 200,000 lines/s into the files | {our_rate:,.0f} lines/s | {'yes' if our_rate >= 200_000 else 'no'} |",
        f"| perf_timer block ≤ 3 µs with its record | {timer:.2f} µs | {'yes' if timer <= 3 else 'no'} |",
        f"| caller p99 < 20 µs with the writer stalled | p50 {p50:.2f} µs, p99 {p99:.2f} µs ({dropped:,} of 100,000 dropped by the full queue) | {'yes' if p99 < 20 else 'no'} |",
    ]
    section = "\n".join(
        [
            "## Logging core",
            "",
            f"{N:,} INFO lines per contender per round, {ROUNDS} rounds interleaved, medians. "
            f"Python {sys.version.split()[0]}, {dt.date.today().isoformat()}.",
            "",
            *rows,
            "",
            *verdict,
            "",
            *redaction_section(),
        ]
    )
    return section


if __name__ == "__main__":
    if "--redaction" in sys.argv:  # this section alone
        print("\n".join(redaction_section()))
        raise SystemExit(0)
    text = main()
    print(text)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "logging.md").write_text(text)
