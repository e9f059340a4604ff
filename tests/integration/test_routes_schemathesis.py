"""Fuzz every monitoring route through the OpenAPI schema of an app that includes the router.

Schemathesis generates valid and invalid requests (bad query parameters, junk and
missing headers, wrong methods) and checks that none gets a 5xx, that status codes
and content types are the documented ones, and that the bearer token is enforced:
the app runs with MONITORING_TOKEN set and the fuzzer authenticates, while its
auth checks also try without the token and expect 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

import callwatch
from callwatch import monitoring
from callwatch.routes import router

pytestmark = pytest.mark.integration

TOKEN = "fuzz-token-4242-4242"

app = FastAPI()
app.include_router(router)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.auth()
class MonitoringToken:
    """Sends the configured token, the way a scraper or the dashboard does."""

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        return TOKEN

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module", autouse=True)
def token_configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    logs: Path = tmp_path_factory.mktemp("logs")
    callwatch.configure(
        log_dir=logs, console=False, environment="production", monitoring_token=TOKEN
    )
    for n in range(5):
        monitoring.record_call_start(f"fuzz-{n}")
        monitoring.record_response_time(500.0 + n)
        monitoring.record_error("STT_TIMEOUT", "timed out", {"call_id": f"fuzz-{n}"})
        monitoring.record_call_end(f"fuzz-{n}", 10.0, success=n != 0)
    yield
    callwatch.shutdown()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_route_fails_or_leaks_under_fuzzing(case: schemathesis.Case) -> None:
    response = case.call_and_validate()
    assert TOKEN not in response.text
