"""OTLP export of records, calls, spans and metrics (``callwatch[otel]``).

On when an OTLP endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT`` or a
per-signal one) or the application set a global OpenTelemetry provider; off with
``CALLWATCH_OTLP=false``. It stops after the log writer (so the last records are
exported) and within its timeout whatever the collector does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable
from typing import Any

from callwatch import _runtime
from callwatch.config import Settings

__all__ = ["current"]

_lock = threading.Lock()
_current: Any = None  # the running Exporter, when export is on
_listening = False
_STOP_BUDGET_SEC = 1.2  # shutdown() stays within 2 s whatever the collector does


def current() -> Any:
    """The running exporter (tests and diagnostics), or ``None``."""
    return _current


def _start(settings: Settings) -> None:
    global _current
    with _lock:
        previous, _current = _current, None
        if previous is not None:
            if previous.pid != os.getpid():
                previous.discard()  # a forked child: the parent's exporter is not ours
            else:
                previous.stop(_STOP_BUDGET_SEC)
        if not settings.otlp:
            return
        from callwatch._otel import providers  # noqa: PLC0415 - loads the SDK only when used

        signals = providers.build(settings.app_name, os.environ)
        if signals is None:
            return
        from callwatch._otel.exporter import Exporter  # noqa: PLC0415

        _current = Exporter(signals, _read_totals)
        _listen()


def _stop(timeout: float) -> None:
    global _current
    with _lock:
        exporter, _current = _current, None
    if exporter is not None and exporter.pid == os.getpid():
        exporter.stop(min(timeout, _STOP_BUDGET_SEC))


def _flush() -> None:
    exporter = _current
    if exporter is not None:
        exporter.wake()


def _listen() -> None:
    """Follow calls through the monitor's listener (registered once, cheap when off)."""
    global _listening
    if _listening:
        return
    from callwatch._metrics.calls import process_calls  # noqa: PLC0415

    process_calls.add_listener(_call_started, _call_ended)
    _listening = True


def _call_started(call_id: Hashable) -> None:
    exporter = _current
    if exporter is not None:
        exporter.call_started(call_id)


def _call_ended(call_id: Hashable, duration_sec: float | None, success: bool) -> None:
    exporter = _current
    if exporter is not None:
        exporter.call_ended(call_id, duration_sec, success)


def _read_totals() -> Any:
    from callwatch.monitoring import production_monitor  # noqa: PLC0415

    return production_monitor.own_totals()


# Below logging (priority 0): started first, stopped after the writer's last batch.
_runtime.register(_runtime.Component("otel", _start, _stop, priority=-10, flush=_flush))
