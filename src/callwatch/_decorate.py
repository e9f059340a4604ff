"""Context managers that double as decorators, for sync and async functions alike."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

__all__ = ["decorate"]

F = TypeVar("F", bound=Callable[..., Any])


class _BothContextManager(Protocol):
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: Any) -> Any: ...
    async def __aenter__(self) -> Any: ...
    async def __aexit__(self, *exc: Any) -> Any: ...


def decorate(make: Callable[[], _BothContextManager], func: F) -> F:
    """``func`` run inside a fresh ``make()`` on every call (``async with`` for coroutines)."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            async with make():
                return await func(*args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with make():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
