"""The guide's monitoring routes: ``app.include_router(router)`` mounts them at ``/monitoring``.

This is the only core module that imports FastAPI. Every route reads what
``callwatch.monitoring`` and ``callwatch.alerting`` already hold: nothing here
samples the system or runs a check itself, so a burst of probes costs a cache
lookup. With ``MONITORING_TOKEN`` set, every route but the probes
(``/health``, ``/livez``, ``/readyz``) and the data-free dashboard assets needs
``Authorization: Bearer <token>``. No answer ever carries a traceback, a
setting or a secret: failures become a generic JSON 500. Every answer says
``X-Content-Type-Options: nosniff``, and a path with a trailing slash is
redirected by its path alone, never to the ``Host`` the request named.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import pathlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Security
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from callwatch import _history, alerting, monitoring
from callwatch._history_promql import PrometheusUnavailable, history_from_prometheus
from callwatch._logging.redact import redact_text
from callwatch._runtime import settings
from callwatch.config import Settings
from callwatch.logger import log

__all__ = ["require_token", "router"]

_HEALTH_JSON = "application/health+json"
_NOSNIFF = {"X-Content-Type-Options": "nosniff"}
_NO_STORE = {"Cache-Control": "no-store"}
_PAGE_HEADERS = {
    **_NO_STORE,
    # The page runs only its own script and talks only to its own origin.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}
# URL name -> (file, media type) of everything the pages are made of.
_ASSETS = {
    "call": ("call.html", "text/html; charset=utf-8"),
    "common.js": ("common.js", "text/javascript; charset=utf-8"),
    "dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "call.js": ("call.js", "text/javascript; charset=utf-8"),
    "dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}
_IETF_STATUS = {"healthy": "pass", "degraded": "warn", "unhealthy": "fail"}
_MAX_CALL_ID = 256
_MAX_MINUTES = 366 * 1440
_MAX_RECORDS = 5000
_TRACE_SLOTS = 2
_TRACE_TIMEOUT_SEC = 10.0
_trace_slots = threading.BoundedSemaphore(_TRACE_SLOTS)


class _GuardedRoute(APIRoute):
    """Answers every request itself, ``nosniff`` included, errors too.

    An unexpected exception becomes a bare 500: the trace goes to the log, not the client.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except HTTPException as exc:
                response = await http_exception_handler(request, exc)
            except RequestValidationError as exc:
                response = await request_validation_exception_handler(request, exc)
            except Exception:
                log.exception("monitoring route failed", route=request.url.path)
                response = _json({"error": "internal error"}, status_code=500)
            response.headers.update(_NOSNIFF)
            return response

        return guarded

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            headers = {"Allow": ", ".join(sorted(self.methods)), **_NOSNIFF}
            raise HTTPException(405, headers=headers)
        await super().handle(scope, receive, send)


def _warn_when_open(current: Settings) -> None:
    """Production without MONITORING_TOKEN shows calls, errors and alerts to anyone who asks."""
    if current.environment == "production" and current.monitoring_token is None:
        log.warning(
            "MONITORING_TOKEN is not set: the /monitoring routes answer anyone in production",
            extra={"setting": "MONITORING_TOKEN"},
        )


@asynccontextmanager
async def _lifespan(_app: Any) -> AsyncIterator[None]:
    """The application's start-up (FastAPI merges a router's lifespan into the app's)."""
    _warn_when_open(settings())
    yield


router = APIRouter(
    prefix="/monitoring", tags=["monitoring"], route_class=_GuardedRoute, lifespan=_lifespan
)

_bearer = HTTPBearer(auto_error=False, description="The MONITORING_TOKEN, when one is set.")
_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "MONITORING_TOKEN is set and the bearer token is wrong"}
}


def _digest(token: str) -> bytes:
    # Hashing first makes the comparison constant-time in the length too.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


async def require_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """Reject the request unless MONITORING_TOKEN is unset or the bearer token matches it."""
    expected = settings().monitoring_token
    if expected is None:
        return
    supplied = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(_digest(supplied), _digest(expected)):
        raise HTTPException(401, detail="unauthorized", headers={"WWW-Authenticate": "Bearer"})


_protected = [Depends(require_token)]


# --- rendering -------------------------------------------------------------------------------


def _dumps(data: Any) -> bytes:
    return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)


def _json(data: Any, status_code: int = 200, media_type: str = "application/json") -> Response:
    """JSON that never carries the monitoring token, checked on the encoded bytes (cheap)."""
    body = _dumps(data)
    token = settings().monitoring_token
    if token and _dumps(token)[1:-1] in body:
        body = _dumps(_scrub(data))
    return Response(body, status_code=status_code, media_type=media_type, headers=_NO_STORE)


def _scrub(value: Any) -> Any:
    """Free text (check errors, alert messages) may quote a secret: redact it on the way out.

    Recorded errors are redacted when recorded; health checks and alerts carry text
    written by users' own code, so their answers pass through here as well.
    """
    if isinstance(value, str):
        # The token is a registered secret (configure): redact_text masks it as it is.
        return redact_text(value, pii=settings().redact_pii)
    if isinstance(value, Mapping):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(item) for item in value]
    return value


def _is_unhealthy(report: Mapping[str, Any]) -> bool:
    status = report.get("status")
    if status in _IETF_STATUS:
        return bool(status == "unhealthy")
    return not bool(report.get("healthy", False))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# A guide check's reading and the health-check draft's measurement name and unit for it.
_MEASUREMENTS = (("latency_ms", "responseTime", "ms"), ("active_calls", "utilization", "calls"))


def _ietf_check(name: str, check: Mapping[str, Any], time: str) -> tuple[str, dict[str, Any]]:
    """One guide check as a ``"component:measurement": [entry]`` item of the draft's checks."""
    if not check.get("healthy", False):
        status = "fail"
    elif str(check.get("status", "ok")).lower() in ("warn", "warning", "degraded"):
        status = "warn"
    else:
        status = "pass"
    key = name
    entry: dict[str, Any] = {"componentId": name, "status": status, "time": time}
    for field, measurement, unit in _MEASUREMENTS:
        if isinstance(check.get(field), (int, float)):
            key = f"{name}:{measurement}"
            entry.update(observedValue=check[field], observedUnit=unit)
            break
    output = check.get("error") or check.get("message")
    if status != "pass" and output:
        entry["output"] = str(output)
    return key, entry


def _health_json(report: Mapping[str, Any]) -> dict[str, Any]:
    """The guide's health answer in the IETF health-check draft format (pass/warn/fail)."""
    time = str(report.get("timestamp") or _now())
    fallback = "fail" if _is_unhealthy(report) else "pass"
    overall = _IETF_STATUS.get(str(report.get("status")), fallback)
    checks: dict[str, list[dict[str, Any]]] = {}
    for name, check in (report.get("checks") or {}).items():
        if isinstance(check, Mapping):
            key, entry = _ietf_check(str(name), check, time)
            checks.setdefault(key, []).append(entry)
    return {
        "status": overall,
        "serviceId": settings().app_name,
        "description": "callwatch health",
        "checks": checks,
    }


@cache
def _asset(name: str) -> bytes:
    return (resources.files("callwatch") / "dashboard" / name).read_bytes()


# --- probes (never behind the token) ---------------------------------------------------------

_Endpoint = Callable[..., Coroutine[Any, Any, Response]]


def _probe(path: str, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
    """GET in the schema, HEAD too (uptime monitors use it) but kept out of the schema."""

    def register(endpoint: _Endpoint) -> _Endpoint:
        router.add_api_route(path, endpoint, methods=["GET"], **options)
        router.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False, **options)
        return endpoint

    return register


@_probe(
    "/health",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"example": "OK"}}},
        503: {"description": "unhealthy"},
    },
)
async def health() -> Response:
    """``OK`` with 200 while serving (degraded included), 503 when unhealthy: for load balancers."""
    try:
        report = await monitoring.get_health()
    except Exception:
        log.exception("health check failed")
        report = {"status": "unhealthy"}
    if _is_unhealthy(report):
        return PlainTextResponse("UNAVAILABLE", status_code=503, headers=_NO_STORE)
    return PlainTextResponse("OK", headers=_NO_STORE)


@_probe("/livez", responses={503: {"description": "not live"}})
async def livez() -> Response:
    """Liveness: the process answers and its background work runs (a restart fixes a 503)."""
    report = monitoring.get_liveness()
    return _json(report, 200 if report.get("alive", report.get("healthy", True)) else 503)


@_probe("/readyz", responses={503: {"description": "not ready"}})
async def readyz() -> Response:
    """Readiness: send traffic here (503 while unhealthy or at capacity)."""
    report = await monitoring.get_readiness()
    return _json(report, 200 if report.get("ready", report.get("healthy", False)) else 503)


# --- parameters --------------------------------------------------------------------------------
# Read from the request and declared in the schema by hand: FastAPI's parameter models
# (``Query``, ``Path``) load pydantic.v1 to check for old models, a third of this module's
# import time, which every worker pays at start-up.


def _invalid(where: str, name: str, message: str, raw: object) -> RequestValidationError:
    """The 422 FastAPI itself answers for a bad parameter."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (where, name), "msg": message, "input": raw}]
    )


def _int_query(name: str, default: int, largest: int) -> Any:
    """A ``Depends`` giving the integer query parameter ``name``, 1 to ``largest``."""

    def read(request: Request) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else 0
        if not 1 <= value <= largest:
            raise _invalid("query", name, f"an integer from 1 to {largest}", raw)
        return value

    return Depends(read)


def _schema_params(*params: tuple[str, str, dict[str, Any], str]) -> dict[str, Any]:
    """``openapi_extra`` declaring (name, "query" | "path", JSON schema, description), and 422."""
    return {
        "parameters": [
            {"name": name, "in": where, "required": where == "path", "schema": schema,
             "description": description}
            for name, where, schema, description in params
        ],
        "responses": {"422": {"description": "a parameter is malformed or out of range"}},
    }


def _int_schema(default: int, largest: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": largest, "default": default}


def _path_text(request: Request, name: str, longest: int) -> str:
    value = str(request.path_params.get(name, ""))
    if not 1 <= len(value) <= longest:
        raise _invalid("path", name, f"1 to {longest} characters", value)
    return value


# --- data (behind the token when one is set) -------------------------------------------------


@router.get(
    "/health/detailed",
    dependencies=_protected,
    responses={
        **_UNAUTHORIZED,
        200: {"content": {"application/json": {}, _HEALTH_JSON: {}}},
        503: {
            "description": "unhealthy (same body)",
            "content": {"application/json": {}, _HEALTH_JSON: {}},
        },
    },
)
async def health_detailed(request: Request) -> Response:
    """Every check; ``Accept: application/health+json`` gets the IETF draft format."""
    report = _scrub(await monitoring.get_health())
    status_code = 503 if _is_unhealthy(report) else 200
    if _HEALTH_JSON in request.headers.get("accept", "").lower():
        return _json(_health_json(report), status_code, _HEALTH_JSON)
    return _json(report, status_code)


@router.get("/metrics", dependencies=_protected, responses=_UNAUTHORIZED)
async def metrics() -> Response:
    """Calls, system, errors, per-operation latency and logging health, as one JSON object."""
    return _json(monitoring.get_metrics())


@router.get("/metrics/calls", dependencies=_protected, responses=_UNAUTHORIZED)
async def metrics_calls() -> Response:
    """Call statistics only."""
    return _json(monitoring.get_metrics()["calls"])


@router.get("/metrics/system", dependencies=_protected, responses=_UNAUTHORIZED)
async def metrics_system() -> Response:
    """System resource readings only (sampled in the background, never here)."""
    return _json(monitoring.get_metrics()["system"])


@router.get("/status", dependencies=_protected, responses=_UNAUTHORIZED)
async def status() -> Response:
    """Health and metrics in one answer."""
    report = await monitoring.get_health()
    return _json(
        _scrub({"health": report, "metrics": monitoring.get_metrics(), "timestamp": _now()})
    )


@router.get(
    "/prometheus",
    dependencies=_protected,
    response_class=PlainTextResponse,
    responses={**_UNAUTHORIZED, 200: {"content": {"text/plain": {}}}},
)
async def prometheus() -> Response:
    """Prometheus text exposition; under several workers, the totals across all of them."""
    body, content_type = monitoring.prometheus_exposition()
    return Response(body, media_type=content_type, headers=_NO_STORE)


@router.get(
    "/alerts",
    dependencies=_protected,
    responses=_UNAUTHORIZED,
    openapi_extra=_schema_params(
        ("limit", "query", _int_schema(50, 1000), "How many firing and past alerts to return")
    ),
)
async def alerts(limit: int = _int_query("limit", 50, 1000)) -> Response:
    """The most severe firing alerts, the most recent past ones and the thresholds.

    ``active_count`` says how many are firing in all; thousands of distinct alerts
    are counted, not listed, and the answer is built off the event loop.
    """
    return await run_in_threadpool(_alerts_answer, limit)


def _alerts_answer(limit: int) -> Response:
    manager = alerting.alert_manager
    firing = manager.lifecycle.active()
    return _json(
        _scrub(
            {
                "active": [alert.to_dict() for alert in firing[:limit]],
                "active_count": len(firing),
                "history": manager.history(limit=limit),
                "thresholds": manager.thresholds,
                "timestamp": _now(),
            }
        )
    )


@router.get(
    "/history",
    dependencies=_protected,
    responses={**_UNAUTHORIZED, 502: {"description": "CALLWATCH_PROMETHEUS_URL does not answer"}},
    openapi_extra=_schema_params(
        ("minutes", "query", _int_schema(60, _MAX_MINUTES), "How far back, in minutes"),
        ("step", "query", _int_schema(1, 1440), "Minutes per point (charts of days)"),
    ),
)
async def history(
    minutes: int = _int_query("minutes", 60, _MAX_MINUTES),
    step: int = _int_query("step", 1, 1440),
) -> Response:
    """Per-minute fleet points, newest last: on disk (or in Prometheus), so they outlive a restart.

    ``points``: ``t`` (the minute, UTC), ``calls``, ``failed``, ``error_rate``,
    ``p50_ms``/``p95_ms``/``p99_ms`` (turn latency), ``active_calls``,
    ``stages_p95_ms``, ``alerts``, ``failed_calls``. With ``step`` > 1, counts are
    summed and latencies are the worst minute's.
    """
    current = settings()
    minutes = min(minutes, current.history_days * 1440)
    if current.prometheus_url:
        try:
            points = await history_from_prometheus(current.prometheus_url, minutes, step)
        except PrometheusUnavailable as exc:
            return _json({"error": str(exc)}, status_code=502)
        source = "prometheus"
    else:
        points = await run_in_threadpool(
            lambda: _history.aggregate(_history.recorder.read(minutes), step)
        )
        source = "disk"
    return _json({"points": points, "source": source, "step_minutes": step, "timestamp": _now()})


@router.get(
    "/calls/{call_id}",
    dependencies=_protected,
    responses={
        **_UNAUTHORIZED,
        404: {"description": "no record of this call (same body, found: false)"},
        503: {"description": "other call pages are being read, or this one took too long"},
    },
    openapi_extra=_schema_params(
        ("call_id", "path", {"type": "string", "minLength": 1, "maxLength": _MAX_CALL_ID},
         "The call id, as logged")
    ),
)
async def call_story(request: Request) -> Response:
    """The call's story as ``callwatch trace CALL_ID --json`` prints it, read from the log files.

    At most ``_TRACE_SLOTS`` calls are read at once, each in a thread that stops
    reading after ``_TRACE_TIMEOUT_SEC`` (``read_cut`` then says how far it got);
    past ``_MAX_RECORDS`` records the middle of the call is left out
    (``records_left_out`` says how many).
    """
    call_id = _path_text(request, "call_id", _MAX_CALL_ID)
    if not _trace_slots.acquire(blocking=False):
        return _json({"error": "busy: other call pages are being read"}, status_code=503)
    try:
        work = asyncio.ensure_future(run_in_threadpool(_story, settings().log_dir, call_id))
    except BaseException:
        _trace_slots.release()
        raise
    work.add_done_callback(lambda _done: _trace_slots.release())
    try:
        # The read stops itself at the deadline; the margin covers the file it is in.
        story = await asyncio.wait_for(asyncio.shield(work), _TRACE_TIMEOUT_SEC + 5.0)
    except asyncio.TimeoutError:
        return _json({"error": "the call's records took too long to read"}, status_code=503)
    if not story["found"] and story["read_cut"]:
        return _json({"error": "the call's records took too long to read",
                      "read_cut": story["read_cut"]}, status_code=503)
    return _json(story, status_code=200 if story["found"] else 404)


def _story(log_dir: pathlib.Path, call_id: str) -> dict[str, Any]:
    from callwatch.cli import trace  # noqa: PLC0415  (loaded by the first call page)

    until = time.monotonic() + _TRACE_TIMEOUT_SEC
    story = trace.as_json(trace.collect(log_dir, call_id, until=until))
    story["read_from"] = "LOG_DIR"  # the setting's name: the server's paths stay on the server
    records = story["records"]
    if len(records) > _MAX_RECORDS:
        half = _MAX_RECORDS // 2
        story["records"] = records[:half] + records[-half:]
        story["records_left_out"] = len(records) - 2 * half
    return story


# --- dashboard (a page without data: the script fetches the routes above) -------------------


@router.get(
    "/dashboard",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}},
)
async def dashboard() -> Response:
    """The live dashboard. It holds no data, so it needs no token; its requests do."""
    page = _asset("index.html")
    return Response(page, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)


@router.get(
    "/dashboard/{asset}",
    response_class=Response,
    responses={
        200: {"content": {"text/html": {}, "text/javascript": {}, "text/css": {}}},
        404: {"description": "no such asset"},
    },
    openapi_extra=_schema_params(
        ("asset", "path", {"type": "string", "enum": sorted(_ASSETS)}, "A page or asset name")
    ),
)
async def dashboard_asset(request: Request) -> Response:
    """The call page (``call?id=CALL_ID``) and the pages' script and style, shipped inside the
    package (nothing from a CDN); like the dashboard they hold no data."""
    asset = str(request.path_params.get("asset", ""))
    found = _ASSETS.get(asset)
    if found is None:
        raise HTTPException(404, detail="not found")
    name, media_type = found
    return Response(_asset(name), media_type=media_type, headers=_PAGE_HEADERS)


# --- trailing slashes ------------------------------------------------------------------------


async def _without_slash(request: Request) -> Response:
    """``/monitoring/metrics/`` -> ``/monitoring/metrics``, as a path: never to a client's Host.

    Without these routes the application's own trailing-slash redirect would build an
    absolute URL from the request's ``Host`` header, an open redirect.
    """
    path = request.url.path
    if request.method not in ("GET", "HEAD"):
        error = HTTPException(405, headers={"Allow": "GET, HEAD"})
    elif not path.endswith("/"):
        error = HTTPException(404, detail="not found")
    else:
        target = "/" + path.strip("/")
        query = request.url.query
        location = f"{target}?{query}" if query else target
        return Response(status_code=307, headers={"Location": location, **_NO_STORE, **_NOSNIFF})
    response = await http_exception_handler(request, error)
    response.headers.update(_NOSNIFF)
    return response


# Every method reaches the endpoint, so a wrong one is answered with ``nosniff`` too.
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _add_slash_routes() -> None:
    """One plain Starlette route per path: nothing for FastAPI to analyse at import."""
    paths = dict.fromkeys(r.path for r in router.routes if isinstance(r, APIRoute))
    for path in paths:
        router.add_route(path + "/{_trailing:path}", _without_slash, methods=_ANY_METHOD,
                         include_in_schema=False)


_add_slash_routes()
