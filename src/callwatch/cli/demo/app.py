"""The demo service: a FastAPI voice agent with callwatch's monitoring routes mounted.

Calls arrive as ``POST /calls`` the way a telephony provider's webhook or
media stream would; the request lasts as long as the call. uvicorn workers
are spawned processes, so the app is built by :class:`DemoApp`, a picklable
factory carrying the demo's options into every worker.
"""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from callwatch._runtime import configure
from callwatch.alerting import Alert, alert_manager, check_and_alert
from callwatch.cli._render import Output
from callwatch.cli.demo.agent import CallResult, LatencyModel, handle_voice_call
from callwatch.monitoring import get_metrics
from callwatch.routes import router as monitoring_router

__all__ = ["DEMO_THRESHOLDS", "DemoApp", "DemoOptions", "create_app"]

# Low enough that the slow episode (LLM ×3) crosses them and normal traffic does not.
DEMO_THRESHOLDS = {"warning": 1500.0, "critical": 3000.0}
# The error rate must stay past its threshold this long to fire (and below it to
# resolve), so a rate hovering around 5 % does not flap.
DEMO_ERROR_RATE_HOLD_SEC = 60.0
# Error-rate alerts wait for this many calls, so one early failure is not 100 % errors.
DEMO_WINDOW_SEC = 60.0
DEMO_ALERT_MIN_CALLS = 50


@dataclass(frozen=True)
class DemoOptions:
    """What the ``demo`` command was asked for, shared by the parent and every worker."""

    rate: float = 60.0
    duration: float | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_dir: Path = Path("./logs")
    started_at: float = 0.0
    slow_at: float = 60.0
    slow_for: float = 40.0
    min_turns: int = 2
    max_turns: int = 6
    instance: str = ""  # a nonce: the parent knows the service that answers is its own
    framework: str = "none"  # "pipecat": each call runs as a real Pipecat pipeline


class IncomingCall(BaseModel):
    call_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    caller: str = Field(min_length=1, max_length=32)


@dataclass(frozen=True)
class DemoApp:
    """``uvicorn.Config(DemoApp(options), factory=True)``: builds the app inside each worker."""

    options: DemoOptions

    def __call__(self) -> FastAPI:
        return create_app(self.options)


def create_app(options: DemoOptions) -> FastAPI:
    """Configure callwatch for the demo and build the service."""
    # Records go to the files only: `callwatch tail -f` shows them; the console tells the story.
    # A one-minute window lets the slow-episode alert resolve within a minute of its end.
    configure(
        log_dir=options.log_dir,
        console=False,
        alert_min_calls=DEMO_ALERT_MIN_CALLS,
        error_rate_window_sec=DEMO_WINDOW_SEC,
    )
    alert_manager.thresholds["response_time_ms"] = dict(DEMO_THRESHOLDS)
    alert_manager.thresholds["error_rate"] = {
        **alert_manager.thresholds["error_rate"],
        "for_sec": DEMO_ERROR_RATE_HOLD_SEC,
    }
    alert_manager.register_handler(_AlertPrinter(Output(), options.workers), name="demo-console")
    model = LatencyModel(
        started_at=options.started_at, slow_at=options.slow_at, slow_for=options.slow_for
    )
    handle = _call_handler(options.framework)

    app = FastAPI(title="callwatch demo voice agent")
    app.include_router(monitoring_router)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/monitoring/dashboard")

    @app.get("/demo", include_in_schema=False)
    async def instance() -> dict[str, str]:
        return {"instance": options.instance}

    @app.post("/calls")
    async def take_call(call: IncomingCall) -> dict[str, object]:
        """Answer one call and hold the request until it ends, like a media stream."""
        turns = random.randint(options.min_turns, options.max_turns)
        result = await handle(call.call_id, call.caller, turns, model)
        return result.as_dict()

    return app


def _call_handler(framework: str) -> Callable[..., Awaitable[CallResult]]:
    """The plain agent instrumented by hand, or the same agent as a Pipecat pipeline."""
    if framework != "pipecat":
        return handle_voice_call
    from loguru import logger  # noqa: PLC0415

    # Pipecat's own lines go to callwatch's files with their call id, not over the story.
    logger.remove()
    from callwatch.cli.demo.pipecat_agent import handle_pipecat_call  # noqa: PLC0415
    from callwatch.integrations import loguru as loguru_bridge  # noqa: PLC0415

    loguru_bridge.install()

    async def handle(call_id: str, caller: str, turns: int, model: LatencyModel) -> CallResult:
        try:
            return await handle_pipecat_call(call_id, caller, turns, model)
        finally:
            await check_and_alert(get_metrics())

    return handle


class _AlertPrinter:
    """Prints each alert and its resolution on the demo's console."""

    send_resolved = True

    def __init__(self, out: Output, workers: int) -> None:
        self._out = out
        self._who = f" (worker {os.getpid()})" if workers > 1 else ""

    async def __call__(self, alert: Alert) -> None:
        if alert.resolved:
            self._out.line(
                ("ALERT RESOLVED ", "bold green"),
                (alert.title, "bold"),
                (f"{self._who}: {alert.message}", ""),
            )
            return
        style = "bold white on red" if alert.severity == "critical" else "bold black on yellow"
        self._out.line(
            (f" ALERT {alert.severity.upper()} ", style),
            (f" {alert.title}", "bold"),
            (f"{self._who}: {alert.message}", ""),
        )
