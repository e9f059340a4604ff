from __future__ import annotations

from pathlib import Path

import pytest

from callwatch.logger import log
from tests.helpers import read_records

trace = pytest.importorskip("opentelemetry.trace")
sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")


def test_trace_and_span_ids_join_records_inside_a_span(log_dir: Path) -> None:
    tracer = sdk_trace.TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("turn") as span:
        log.info("inside span")
        context = span.get_span_context()
    log.info("outside span")
    inside, outside = read_records(log_dir, "app")
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside
