"""HTTP for the handlers: one pooled client per event loop, and answers turned into retry decisions.

A receiver's answer decides the retry: network errors, 5xx and 429 are worth
another try (429 and 503 after their ``Retry-After``), any other 4xx means the
payload or the credentials are wrong and repeating it cannot help. Error
messages name the host only: the path of a webhook URL is its secret.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
import weakref
from typing import TYPE_CHECKING, Any

import orjson

from callwatch._logging.redact import redact_url

if TYPE_CHECKING:  # httpx loads with the first alert sent: most processes never send one
    import httpx

__all__ = [
    "WORKER_THREAD",
    "DeliveryError",
    "close_client",
    "get_client",
    "post_json",
    "retry_after_seconds",
]

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)
_HEADERS = {"Content-Type": "application/json", "User-Agent": "callwatch-alerting"}


WORKER_THREAD = "callwatch-alerts"


# httpx logs every request's full URL at INFO, httpcore (and h11 under it) every
# request and response header at DEBUG: a webhook's URL is its secret. A logger's
# filter does not cover its children, so each logger that exists is named.
_HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "h11",
)


def _not_from_the_worker(record: logging.LogRecord) -> bool:
    """Nothing the HTTP stack logs about alert delivery reaches a log."""
    return record.threadName != WORKER_THREAD


for _name in _HTTP_LOGGERS:
    logging.getLogger(_name).addFilter(_not_from_the_worker)


class DeliveryError(Exception):
    """A handler could not deliver; ``retryable`` and ``retry_after`` tell the worker what next."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def get_client() -> httpx.AsyncClient:
    """The running loop's client (connections are reused across alerts)."""
    import httpx  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        # No client timeout: each attempt runs under the worker's deadline, which cancels it.
        client = httpx.AsyncClient(headers=_HEADERS, follow_redirects=False, timeout=None)  # noqa: S113
        _clients[loop] = client
    return client


async def close_client() -> None:
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)


async def post_json(url: str, payload: Any) -> httpx.Response:
    """POST ``payload``; a non-2xx answer or a network error becomes a :class:`DeliveryError`.

    The attempt's deadline is the delivery worker's (it cancels the request).
    """
    import httpx  # noqa: PLC0415

    target = redact_url(url)
    try:
        response = await get_client().post(url, content=orjson.dumps(payload))
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__} posting to {target}", retryable=True) from None
    status = response.status_code
    if status < 300:
        return response
    retryable = status == 429 or status >= 500
    raise DeliveryError(
        f"{target} answered HTTP {status}",
        retryable=retryable,
        retry_after=retry_after_seconds(response.headers.get("Retry-After")) if retryable else None,
    )
