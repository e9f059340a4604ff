"""One host's part of a call for the --clickhouse tests, then shutdown.

    python -m tests.integration._clickhouse_host CALL_ID ROLE PAUSE_SEC START_AT_EPOCH

The parts of tests._otel.worker (``front`` starts and ends the call, ``media`` logs
its turns); the front end records an audit event of the call first, and a processor
of the application's adds a top-level ``region`` to every record.
Configured by the environment (LOG_DIR, OTEL_EXPORTER_OTLP_ENDPOINT, ...).
"""

from __future__ import annotations

import sys
import time

import callwatch
from callwatch.logger import add_processor, audit_log, bind_call
from tests._otel.worker import front, media


def main() -> None:
    call_id, role, pause, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    callwatch.configure()
    add_processor(lambda _logger, _method, record: {**record, "region": f"{role}-eu"})
    time.sleep(max(0.0, float(start_at) - time.time()))  # both hosts begin together
    if role == "front":
        with bind_call(call_id):
            audit_log("Refund issued", amount_cents=1200, reason="dropped call")
        front(call_id, pause)
    else:
        media(call_id, pause)
    callwatch.shutdown()


if __name__ == "__main__":
    main()
