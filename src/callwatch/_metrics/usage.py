"""Usage that costs money: LLM tokens, TTS characters, STT audio seconds and their price.

The counters only grow; a negative, non-finite or non-numeric amount is ignored,
so a framework reporting odd numbers can never make the totals go backwards.
A call's own usage is kept while it is recent, for its call-end record.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable

from callwatch._metrics.snapshot import USAGE_KEYS
from callwatch._metrics.specs import key
from callwatch._metrics.store import Durable

__all__ = ["USAGE_KEYS", "UsageStats"]

RECENT_CALLS = 4096


class UsageStats:
    """Fleet-wide counters of one process, plus the usage of recent calls by call id."""

    def __init__(self) -> None:
        self.durable: Durable | None = None  # this worker's shared file, in a fleet
        self.reset()

    def reset(self) -> None:
        self.totals: dict[str, float] = dict.fromkeys(USAGE_KEYS, 0.0)
        self._by_call: OrderedDict[Hashable, dict[str, float]] = OrderedDict()

    def add(self, call_id: Hashable | None, amounts: dict[str, object]) -> dict[str, float]:
        """Add the valid amounts; returns what was added (key -> amount)."""
        added = {name: amount for name, raw in amounts.items() if (amount := _amount(raw))}
        durable = self.durable
        if durable is None:
            for name, amount in added.items():
                self.totals[name] += amount
        elif added:
            with durable.lock:
                for name, amount in added.items():
                    self.totals[name] += amount
                    durable.write(key(name), self.totals[name])
        if added and call_id is not None:
            try:
                per_call = self._by_call.get(call_id)
            except TypeError:  # an unhashable id: counted in the totals only
                return added
            if per_call is None:
                per_call = self._by_call[call_id] = dict.fromkeys(USAGE_KEYS, 0.0)
                if len(self._by_call) > RECENT_CALLS:
                    self._by_call.popitem(last=False)
            for name, amount in added.items():
                per_call[name] += amount
        return added

    def of_call(self, call_id: Hashable) -> dict[str, float] | None:
        """The usage recorded for ``call_id`` (while it is among the recent calls), or None."""
        try:
            per_call = self._by_call.get(call_id)
        except TypeError:
            return None
        return None if per_call is None else dict(per_call)


def _amount(raw: object) -> float:
    """A finite, non-negative number, else 0 (ignored)."""
    if isinstance(raw, bool):
        return 0.0
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return value if 0.0 < value < math.inf else 0.0
