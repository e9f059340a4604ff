"""The turn record: one agent turn (user stopped speaking → first bot audio) as one record.

A turn is what a caller experiences as the agent's responsiveness, so it is
recorded once, with everything known about it: its number and id, the latency,
whether the caller cut the answer short, and the figures each stage (stt, llm,
tts) reported. The record goes to ``performance/`` and ``app/``; the latency
feeds the response-time percentiles and each stage's timings feed the
per-operation histograms (``llm_ttfb``, ``tts_ttfb``, ``llm_processing``, …),
so latency and cost need no join across records.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

from callwatch._logging import pipeline as _pipeline
from callwatch._logging.pipeline import TIMER
from callwatch._metrics import operations
from callwatch.context import _call_id, get_fields

__all__ = ["TURN_MESSAGE", "record_turn", "turn_id"]

TURN_MESSAGE = "turn"
INFO = 20
# A stage figure named "<what>_ms" is a duration and feeds the "<stage>_<what>" histogram.
_DURATION_SUFFIX = "_ms"


def turn_id(call_id: object, turn: int) -> str:
    """``"<call_id>:<turn>"``: the key that joins a turn's records across systems."""
    return f"{call_id}:{turn}"


def record_turn(
    call_id: str,
    turn: int,
    latency_ms: float | None,
    *,
    interrupted: bool = False,
    stages: Mapping[str, Mapping[str, Any]] | None = None,
    **fields: Any,
) -> None:
    """Record one turn of ``call_id``: its record, its response time and its stage timings.

    ``latency_ms`` is user stopped speaking → first bot audio (``None`` when the
    turn had no audio to time, e.g. a text turn); ``stages`` maps a stage name to
    the figures it reported, e.g. ``{"llm": {"ttfb_ms": 310.0, "prompt_tokens": 812}}``.
    Never raises into the call being served.
    """
    pipeline = _pipeline.current or _pipeline.get()
    try:
        number = int(turn)
        latency = _finite(latency_ms)
        clean = _clean_stages(stages)
        _feed_metrics(str(call_id), latency, clean)
        bound = get_fields()
        extra: dict[str, Any] = {**bound, **fields} if bound or fields else {}
        extra.update(
            turn=number,
            turn_id=turn_id(call_id, number),
            latency_ms=None if latency is None else round(latency, 3),
            interrupted=bool(interrupted),
            stages=clean,
        )
        frame = sys._getframe(1)
        token = _call_id.set(str(call_id))
        try:
            pipeline.emit(
                INFO,
                frame.f_globals.get("__name__", "?"),
                frame.f_code.co_name,
                frame.f_lineno,
                TURN_MESSAGE,
                extra,
                None,
                TIMER,
            )
        finally:
            _call_id.reset(token)
    except Exception as exc:  # recording a turn never breaks the call
        pipeline.call_failed(exc, INFO, __name__, TIMER)


def _feed_metrics(call_id: str, latency: float | None, stages: dict[str, dict[str, Any]]) -> None:
    # Imported here: monitoring imports this module to re-export record_turn.
    from callwatch.monitoring import record_response_time  # noqa: PLC0415

    if latency is not None:
        record_response_time(latency, call_id=call_id)
    for stage, figures in stages.items():
        for name, value in figures.items():
            if name.endswith(_DURATION_SUFFIX) and isinstance(value, float):
                operations.observe(f"{stage}_{name[: -len(_DURATION_SUFFIX)]}", value)


def _clean_stages(stages: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Stage figures as plain JSON values: durations rounded floats, counts ints."""
    clean: dict[str, dict[str, Any]] = {}
    for stage, figures in (stages or {}).items():
        if not isinstance(figures, Mapping):
            continue
        kept: dict[str, Any] = {}
        for name, value in figures.items():
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int):
                kept[str(name)] = value
            elif isinstance(value, float):
                if math.isfinite(value):
                    kept[str(name)] = round(value, 3)
            elif isinstance(value, str):
                kept[str(name)] = value
        clean[str(stage)] = kept
    return clean


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None
