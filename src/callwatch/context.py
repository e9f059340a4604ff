"""Call id and bound fields, kept in contextvars so every asyncio task sees its own call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

from callwatch._decorate import decorate
from callwatch._logging.redact import MAX_NAME_CHARS

__all__ = [
    "MAX_CALL_ID_CHARS",
    "bind_call",
    "bounded_call_id",
    "clear_context",
    "get_call_id",
    "get_fields",
    "set_call_id",
]

F = TypeVar("F", bound=Callable[..., Any])

# Call ids come from telephony and users: longer ones are cut so that no record,
# metric or answer carries an unbounded id (they are redacted where they are shown).
MAX_CALL_ID_CHARS = MAX_NAME_CHARS
_call_id: ContextVar[str | None] = ContextVar("callwatch_call_id", default=None)
_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})
_fields: ContextVar[Mapping[str, Any]] = ContextVar("callwatch_fields", default=_NO_FIELDS)


def bounded_call_id(call_id: object) -> str | None:
    """``call_id`` as text of at most :data:`MAX_CALL_ID_CHARS`; never raises."""
    if call_id is None:
        return None
    if type(call_id) is not str:
        try:
            call_id = str(call_id)
        except Exception:
            call_id = f"<unprintable {type(call_id).__name__}>"
    if len(call_id) <= MAX_CALL_ID_CHARS:
        return call_id
    return call_id[: MAX_CALL_ID_CHARS - 1] + "…"


def set_call_id(call_id: str | None) -> Token[str | None]:
    """Bind ``call_id`` to every record logged from this context on."""
    return _call_id.set(bounded_call_id(call_id))


def get_call_id() -> str | None:
    """The call id bound in the current context, or ``None``."""
    return _call_id.get()


def get_fields() -> Mapping[str, Any]:
    """Fields bound by :func:`bind_call` in the current context (read-only)."""
    return _fields.get()


def clear_context() -> None:
    """Forget the call id and bound fields of the current context."""
    _call_id.set(None)
    _fields.set(_NO_FIELDS)


class bind_call:
    """Bind a call id and fields for a block: context manager (sync and async) and decorator.

    The previous binding comes back when the block ends, even on error, so nested
    calls and concurrent tasks never see each other's ids.
    """

    def __init__(self, call_id: str | None = None, **fields: Any) -> None:
        self._call_id = call_id
        self._new_fields = fields
        self._tokens: list[tuple[Token[str | None] | None, Token[Mapping[str, Any]]]] = []

    def __enter__(self) -> bind_call:
        id_token = None if self._call_id is None else _call_id.set(bounded_call_id(self._call_id))
        merged = {**_fields.get(), **self._new_fields} if self._new_fields else _fields.get()
        self._tokens.append((id_token, _fields.set(merged)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        id_token, fields_token = self._tokens.pop()
        _fields.reset(fields_token)
        if id_token is not None:
            _call_id.reset(id_token)

    async def __aenter__(self) -> bind_call:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        return decorate(lambda: bind_call(self._call_id, **self._new_fields), func)
