"""A voice-agent stand-in served by real pre-fork servers in the fleet tests (no settings)."""

from __future__ import annotations

import os

from fastapi import FastAPI, Response

import callwatch
from callwatch.monitoring import (
    get_metrics,
    prometheus_exposition,
    record_call_end,
    record_call_start,
    record_error,
    record_response_time,
)

callwatch.configure(console=False)
app = FastAPI()


@app.post("/call/{call_id}")
async def call(call_id: str, success: bool = True) -> dict[str, int]:
    """One whole call; answered only once it is recorded."""
    record_call_start(call_id)
    record_response_time(640.0 if success else 2600.0, call_id=call_id)
    record_call_end(call_id, 30.0, success=success)
    if not success:
        record_error("LLM_ERROR", "model overloaded", {"call_id": call_id})
    return {"pid": os.getpid()}


@app.post("/hold/{call_id}")
async def hold(call_id: str) -> dict[str, int]:
    """A call that stays in progress (until its worker dies)."""
    record_call_start(call_id)
    return {"pid": os.getpid()}


@app.get("/metrics.json")
async def metrics() -> dict[str, object]:
    return {"pid": os.getpid(), "metrics": get_metrics()}


@app.get("/prometheus")
async def prometheus() -> Response:
    body, content_type = prometheus_exposition()
    return Response(body, media_type=content_type)
