"""Real OTLP parts for the integration tests: a receiver of our own, rotel, ClickHouse 18.16.

Each runs on 127.0.0.1 only, on free ports, and is stopped by the test that started it.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests._otel.support import need_module
from tests.conftest import need
from tests.integration._servers import free_port, stop, wait_http

HERE = Path(__file__).parent
CLICKHOUSE_SQL = HERE / "clickhouse18.sql"


class OtlpReceiver:
    """An OTLP/HTTP receiver that decodes every request with opentelemetry-proto."""

    def __init__(self) -> None:
        need_module("opentelemetry.proto")
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        kinds = {"/v1/logs": ExportLogsServiceRequest, "/v1/traces": ExportTraceServiceRequest,
                 "/v1/metrics": ExportMetricsServiceRequest}
        self.requests: dict[str, list[Any]] = {path: [] for path in kinds}
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                kind = kinds.get(self.path)
                if kind is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                message = kind()
                message.ParseFromString(body)
                receiver.requests[self.path].append(message)
                receiver.headers.append(dict(self.headers))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_records(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, LogRecord) of every received log record."""
        found = []
        for request in self.requests["/v1/logs"]:
            for resource_logs in request.resource_logs:
                resource = attributes_of(resource_logs.resource.attributes)
                for scope_logs in resource_logs.scope_logs:
                    found += [(resource, record) for record in scope_logs.log_records]
        return found

    def spans(self) -> list[Any]:
        return [span for request in self.requests["/v1/traces"]
                for resource_spans in request.resource_spans
                for scope_spans in resource_spans.scope_spans for span in scope_spans.spans]

    def metric_names(self) -> set[str]:
        return {metric.name for request in self.requests["/v1/metrics"]
                for resource_metrics in request.resource_metrics
                for scope_metrics in resource_metrics.scope_metrics
                for metric in scope_metrics.metrics}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def attributes_of(pairs: Any) -> dict[str, Any]:
    """OTLP KeyValue pairs as a dict of plain values."""
    values: dict[str, Any] = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        values[pair.key] = getattr(pair.value, kind) if kind else None
    return values


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the collector did not deliver in time")
        time.sleep(0.1)


def rotel_binary() -> Path:
    rotel = need_module("rotel")
    binary = Path(rotel.__file__).parent / "rotel-agent"
    if not binary.exists():
        raise FileNotFoundError(binary)
    return binary


@contextmanager
def rotel(exporter_env: dict[str, str]) -> Iterator[str]:
    """A rotel collector in the foreground on a free port; yields its OTLP/HTTP endpoint."""
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        command = [str(rotel_binary()), "start", "--otlp-http-endpoint", f"127.0.0.1:{port}",
                   "--otlp-grpc-endpoint", f"127.0.0.1:{free_port()}",
                   "--pid-file", f"{directory}/rotel.pid", "--log-file", f"{directory}/rotel.log",
                   "--batch-timeout", "100ms"]
        env = {"PATH": os.environ.get("PATH", ""), **exporter_env}
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{port}/v1/logs", timeout=20)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)


def rotel_to_otlp(receiver: OtlpReceiver) -> dict[str, str]:
    return {"ROTEL_EXPORTER": "otlp", "ROTEL_OTLP_EXPORTER_ENDPOINT": receiver.url,
            "ROTEL_OTLP_EXPORTER_PROTOCOL": "http", "ROTEL_OTLP_EXPORTER_COMPRESSION": "none"}


def rotel_to_clickhouse(clickhouse_url: str) -> dict[str, str]:
    return {"ROTEL_EXPORTER": "clickhouse", "ROTEL_CLICKHOUSE_EXPORTER_ENDPOINT": clickhouse_url,
            "ROTEL_CLICKHOUSE_EXPORTER_DATABASE": "otel", "ROTEL_CLICKHOUSE_TABLE_PREFIX": "rotel",
            "ROTEL_CLICKHOUSE_EXPORTER_COMPRESSION": "none",
            "ROTEL_CLICKHOUSE_EXPORTER_ASYNC_INSERT": "false"}


@contextmanager
def clickhouse() -> Iterator[str]:
    """Debian's ClickHouse server with the OTel tables of clickhouse18.sql; yields its URL."""
    binary = need("clickhouse-server")
    http_port, tcp_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "users.xml").write_text(
            "<yandex><profiles><default></default></profiles><users><default><password></password>"
            "<networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default"
            "</quota></default></users><quotas><default></default></quotas></yandex>")
        (root / "config.xml").write_text(
            f"<yandex><path>{root}/data/</path><tmp_path>{root}/tmp/</tmp_path>"
            f"<listen_host>127.0.0.1</listen_host><http_port>{http_port}</http_port>"
            f"<tcp_port>{tcp_port}</tcp_port><mark_cache_size>5368709</mark_cache_size>"
            f"<users_config>{root}/users.xml</users_config>"
            "<logger><level>warning</level><console>1</console></logger></yandex>")
        process = subprocess.Popen([binary, f"--config-file={root}/config.xml"], cwd=root,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{http_port}"
        try:
            wait_http(f"{url}/ping", timeout=20)
            for statement in sql_statements(CLICKHOUSE_SQL.read_text()):
                httpx.post(url, content=statement, timeout=10).raise_for_status()
            yield url
        finally:
            stop(process)


def sql_statements(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
