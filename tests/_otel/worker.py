"""A voice-agent process for the OTLP tests: one host's part of a call, then shutdown.

    python -m tests._otel.worker CALL_ID ROLE PAUSE_SEC [START_AT_EPOCH]

``ROLE`` ``front`` starts and ends the call (the SIP front end); ``media`` logs its
turns in between (another host's media worker); ``burst`` logs BURST_LINES lines
as fast as it can and, unless BURST_WAIT=0, stays up until the export has caught
up, as a running service would; ``fork`` logs, then forks a worker that logs
under its own call id (``CALL_ID-child``) before both shut down. Configured by the environment (LOG_DIR, OTEL_EXPORTER_OTLP_ENDPOINT,
OTEL_RESOURCE_ATTRIBUTES, ...).
"""

from __future__ import annotations

import os
import sys
import time

import callwatch
from callwatch import _otel
from callwatch._logging.stats import STATS
from callwatch.logger import bind_call, log, perf_timer
from callwatch.monitoring import record_call_end, record_call_start


def front(call_id: str, pause: float) -> None:
    record_call_start(call_id)
    with bind_call(call_id):
        log.info("Call started", extra={"caller": "+15551234567", "trunk": "sip-a"})
        time.sleep(pause)
        with perf_timer("stt_transcribe"):
            time.sleep(0.005)
        time.sleep(pause)
        try:
            raise ConnectionError("TTS provider reset the connection")
        except ConnectionError:
            log.exception("TTS request failed", extra={"provider": "tts-1"})
        time.sleep(pause)
        log.info("Call ended", extra={"reason": "hangup"})
    record_call_end(call_id, 3 * pause, success=False)


def media(call_id: str, pause: float) -> None:
    time.sleep(pause / 2)
    with bind_call(call_id):
        for turn in (1, 2):
            with perf_timer("llm_completion", turn=turn):
                time.sleep(0.005)
            log.info("Agent replied", extra={"turn": turn, "words": 12 + turn})
            time.sleep(pause)


def burst(call_id: str, pause: float) -> None:
    lines = int(os.environ.get("BURST_LINES", "2000"))
    with bind_call(call_id):
        for n in range(lines):
            log.info("Burst line", extra={"n": n, "caller": "+15551234567"})
    caught_up(lines, pause)


def fork(call_id: str, pause: float) -> None:
    with bind_call(call_id):
        for n in range(500):  # the export is busy when the fork comes
            log.info("Before the fork", extra={"n": n})
    child = os.fork()
    if child == 0:
        with bind_call(f"{call_id}-child"):
            log.info("Forked worker ready")
        caught_up(1, pause)
        callwatch.shutdown()
        os._exit(0)
    os.waitpid(child, 0)
    caught_up(500, pause)


def caught_up(lines: int, pause: float) -> None:
    """Stay up until the export has sent ``lines`` records and has nothing pending (≤ 60 s)."""
    exporter = _otel.current()
    deadline = time.monotonic() + (60 if os.environ.get("BURST_WAIT") != "0" else 0)
    while exporter is not None and time.monotonic() < deadline:
        if exporter.pending() == 0 and exporter.delivery.delivered.get("records", 0) >= lines:
            break
        time.sleep(pause)


ROLES = {"front": front, "media": media, "burst": burst, "fork": fork}


def main() -> None:
    call_id, role, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
    callwatch.configure()
    if len(sys.argv) > 4:  # hosts started together begin together, whatever their start-up
        time.sleep(max(0.0, float(sys.argv[4]) - time.time()))
    ROLES[role](call_id, pause)
    started = time.monotonic()
    callwatch.shutdown()
    print(f"shutdown_sec={time.monotonic() - started:.3f}", flush=True)
    print(f"otlp_dropped={STATS.otlp_dropped}", flush=True)


if __name__ == "__main__":
    main()
