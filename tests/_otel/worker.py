"""A voice-agent process for the OTLP tests: one host's part of a call, then shutdown.

    python -m tests._otel.worker CALL_ID ROLE PAUSE_SEC [START_AT_EPOCH]

``ROLE`` ``front`` starts and ends the call (the SIP front end); ``media`` logs its
turns in between (another host's media worker). Configured by the environment
(LOG_DIR, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_RESOURCE_ATTRIBUTES, ...).
"""

from __future__ import annotations

import sys
import time

import callwatch
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


def main() -> None:
    call_id, role, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
    callwatch.configure()
    if len(sys.argv) > 4:  # hosts started together begin together, whatever their start-up
        time.sleep(max(0.0, float(sys.argv[4]) - time.time()))
    (front if role == "front" else media)(call_id, pause)
    started = time.monotonic()
    callwatch.shutdown()
    print(f"shutdown_sec={time.monotonic() - started:.3f}", flush=True)


if __name__ == "__main__":
    main()
