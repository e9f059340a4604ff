"""The turn table of ``callwatch trace``: each turn's latency and what each stage took.

Built from the call's ``turn`` records (see :func:`callwatch.monitoring.record_turn`),
so it reads the same for Pipecat, LiveKit and hand-instrumented agents.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from callwatch.cli._render import Output

__all__ = ["print_turns", "turns_of"]

_STAGES = ("stt", "llm", "tts")


def turns_of(records: Iterable[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per turn, in turn order: number, id, latency, interruption, stage figures."""
    rows: dict[str, dict[str, Any]] = {}
    for _folder, record in records:
        extra = record.get("extra")
        if record.get("message") != "turn" or not isinstance(extra, dict):
            continue
        number = extra.get("turn")
        if not isinstance(number, int):
            continue
        stages = extra.get("stages")
        rows.setdefault(str(extra.get("turn_id") or number), {
            "turn": number,
            "turn_id": extra.get("turn_id"),
            "latency_ms": extra.get("latency_ms"),
            "interrupted": bool(extra.get("interrupted")),
            "stages": stages if isinstance(stages, dict) else {},
        })
    return sorted(rows.values(), key=lambda row: row["turn"])


def print_turns(rows: list[dict[str, Any]], out: Output) -> None:
    """The table: latency, each stage's time to first byte, tokens and characters."""
    if not rows:
        return
    out.text("")
    out.text(
        f"{'turn':>4}{'latency ms':>12}{'stt ttfb':>10}{'llm ttfb':>10}{'tts ttfb':>10}"
        f"{'tokens in/out':>15}{'chars':>7}",
        "bold",
    )
    for row in rows:
        stages = row["stages"]
        llm = stages.get("llm", {})
        tokens = (f"{llm.get('prompt_tokens', 0)}/{llm.get('completion_tokens', 0)}"
                  if "prompt_tokens" in llm or "completion_tokens" in llm else "-")
        ttfbs = "".join(f"{_ms(stages.get(stage, {}).get('ttfb_ms')):>10}" for stage in _STAGES)
        out.line(
            (f"{row['turn']:>4}{_ms(row['latency_ms']):>12}{ttfbs}", ""),
            (f"{tokens:>15}{stages.get('tts', {}).get('characters', '-'):>7}", ""),
            ("  interrupted" if row["interrupted"] else "", "yellow"),
        )


def _ms(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "-"
