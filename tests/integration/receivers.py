"""Local HTTP receivers on 127.0.0.1 standing in for Slack, webhooks and PagerDuty."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Answers each POST by the next step of ``script`` (then 200): an int status, ``"429:N"``
    (429 with ``Retry-After: N``) or ``"stall"`` (never answers in time). Keeps what it accepted."""

    def __init__(self, script: list[int | str] | None = None, ok_status: int = 200) -> None:
        self.script: deque[int | str] = deque(script or [])
        self.ok_status = ok_status
        self.accepted: list[Any] = []
        self.requests: list[tuple[float, str, int | str]] = []  # (time, path, answer)
        self.stop_stalling = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    step = receiver.script.popleft() if receiver.script else receiver.ok_status
                    receiver.requests.append((time.monotonic(), self.path, step))
                if step == "stall":
                    receiver.stop_stalling.wait(10)
                    return
                headers = {}
                if isinstance(step, str) and step.startswith("429:"):
                    headers["Retry-After"] = step.split(":", 1)[1]
                    step = 429
                assert isinstance(step, int)
                if step < 300:
                    with receiver._lock:
                        receiver.accepted.append(json.loads(body))
                self.send_response(step)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_stalling.set()
        self.server.shutdown()
        self.server.server_close()
