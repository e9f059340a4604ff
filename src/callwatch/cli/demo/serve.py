"""Running the demo: uvicorn (one worker or several), the callers, and the console story.

The parent process owns the console: it waits for the service to answer,
prints where to look, places the calls, narrates the slow episode and, when
``--duration`` runs out, lets the calls in progress finish before stopping
the server. Alerts are printed by a handler the demo registers in each worker.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import httpx
import uvicorn
from uvicorn.supervisors import Multiprocess

from callwatch.cli._render import Output
from callwatch.cli.demo.app import DEMO_THRESHOLDS, DemoApp, DemoOptions
from callwatch.cli.demo.caller import CallGenerator
from callwatch.config import load_settings

__all__ = ["serve"]

_READY_TIMEOUT_SEC = 60.0
_STATUS_EVERY_SEC = 15.0
_PUBLISH_SEC = 2.0
_DRAIN_SEC = 30


def serve(options: DemoOptions, out: Output) -> int:
    """Run the demo until Ctrl-C or ``options.duration``; 0 on a clean run, 1 if it never served."""
    options = replace(options, started_at=time.time(), instance=secrets.token_hex(8))
    options.log_dir.mkdir(parents=True, exist_ok=True)
    metrics_dir: str | None = None
    if options.workers > 1:
        # Each worker writes its metrics here; /monitoring/prometheus sums them.
        metrics_dir = tempfile.mkdtemp(prefix="callwatch-demo-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    config = uvicorn.Config(
        DemoApp(options),
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=_DRAIN_SEC,
    )
    story = _Story(options, out)
    try:
        if options.workers == 1:
            server = uvicorn.Server(config)
            story.start(lambda: setattr(server, "should_exit", True), lambda: server.should_exit)
            server.run()
        else:
            supervisor = _Supervisor(config, [config.bind_socket()], story.drain)
            story.start(supervisor.should_exit.set, supervisor.should_exit.is_set)
            supervisor.run()
    except SystemExit:  # uvicorn exits when it cannot bind or start; it has said why
        out.error(f"could not serve on {story.base_url}")
        return 1
    finally:
        story.finish()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0 if story.served else 1


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, but on Ctrl-C the calls in progress end before workers stop.

    Workers get SIGTERM from the supervisor; draining first means no call is
    cut off mid-turn and no record is logged while a worker shuts down.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        sockets: list[socket.socket],
        drain: Callable[[Callable[[], bool]], None],
    ) -> None:
        super().__init__(config, sockets)
        self._drain = drain

    def _another_signal(self) -> bool:
        return bool(self.signal_queue)  # a second Ctrl-C while draining: quit now

    def handle_int(self) -> None:
        self._drain(self._another_signal)
        super().handle_int()

    def handle_term(self) -> None:
        self._drain(self._another_signal)
        super().handle_term()


class _Story:
    """The parent's thread: readiness, banner, callers, narration, and the stop."""

    def __init__(self, options: DemoOptions, out: Output) -> None:
        self.options = options
        self.out = out
        wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # bound everywhere: call via loopback
        host = wildcard.get(options.host, options.host)
        host = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{host}:{options.port}"
        self.served = False
        self._done = threading.Event()
        self.generator = CallGenerator(self.base_url, options.rate, None, self._first_call)
        self._thread: threading.Thread | None = None
        self._stopping: Callable[[], bool] = lambda: False
        self.interrupted = False

    def start(self, stop_server: Callable[[], None], stopping: Callable[[], bool]) -> None:
        """Run the story beside the server; ``stopping`` tells when Ctrl-C reached the server."""
        self._stopping = stopping
        self._thread = threading.Thread(
            target=self._run, args=(stop_server,), name="callwatch-demo", daemon=True
        )
        self._thread.start()

    def finish(self) -> None:
        self.generator.stop()
        self._done.set()
        if self._thread is not None:
            self._thread.join(10.0)

    def _run(self, stop_server: Callable[[], None]) -> None:
        try:
            if not self._wait_ready():
                return
            self.served = True
            self._banner()
            if self.options.duration is not None:
                self.generator.deadline = time.monotonic() + self.options.duration
            narrator = threading.Thread(
                target=self._narrate, name="callwatch-demo-narrator", daemon=True
            )
            narrator.start()
            self.generator.run()
            tally = self.generator.tally
            self.out.text(
                f"demo finished: {tally.placed} calls placed, {tally.completed} completed, "
                f"{tally.failed} failed",
                "bold",
            )
            if not self.interrupted:  # on Ctrl-C the server is going away
                self._service_totals()
        finally:
            self._done.set()
            stop_server()

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _READY_TIMEOUT_SEC
        while time.monotonic() < deadline and not self._done.is_set():
            try:
                answer = httpx.get(f"{self.base_url}/demo", timeout=1.0)
                ours = {"instance": self.options.instance}
                if answer.status_code == 200 and answer.json() == ours:
                    return True
            except (httpx.HTTPError, ValueError):
                pass
            self._done.wait(0.2)
        if not self._done.is_set():
            self.out.error(f"the demo service did not answer on {self.base_url} in time")
        return False

    def _service_totals(self) -> None:
        """What the service itself counted, summed over every worker."""
        self._done.wait(_PUBLISH_SEC)  # workers publish their totals once a second
        token = load_settings().monitoring_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            calls = httpx.get(
                f"{self.base_url}/monitoring/metrics/calls", headers=headers, timeout=5.0
            ).json()
            total = calls.get("calls", calls)
            self.out.text(
                f"service totals ({self.options.workers} worker(s)): "
                f"{total['total_calls']} calls, {total['successful_calls']} succeeded, "
                f"{total['failed_calls']} failed",
                "bold",
            )
        except (httpx.HTTPError, ValueError, KeyError, AttributeError) as exc:
            self.out.error(f"could not read the service's totals: {exc!r}")

    def _banner(self) -> None:
        o, out, url = self.options, self.out, self.base_url
        out.line(("callwatch demo", "bold magenta"), (f": simulated voice agent on {url}", "bold"))
        out.line(("  dashboard   ", "bold"), (f"{url}/monitoring/dashboard", "underline cyan"))
        out.line(("  metrics     ", "bold"), (f"{url}/monitoring/metrics", "cyan"))
        out.line(
            ("  logs        ", "bold"),
            (f"{o.log_dir}", ""),
            (f"   (follow them: callwatch tail -f --log-dir {o.log_dir})", "dim"),
        )
        out.line(
            ("  calls       ", "bold"),
            (
                f"~{o.rate:g}/min at random (Poisson), {o.min_turns}-{o.max_turns} turns each, "
                f"{o.workers} worker(s); rare STT_TIMEOUT and LLM_ERROR failures",
                "",
            ),
        )
        out.line(
            ("  slow phase  ", "bold"),
            (f"LLM latency x3 from {o.slow_at:g} s to {o.slow_at + o.slow_for:g} s", ""),
        )
        out.line(
            ("  thresholds  ", "bold"),
            (
                f"response time lowered for the demo to warning {DEMO_THRESHOLDS['warning']:g} ms"
                f", critical {DEMO_THRESHOLDS['critical']:g} ms (defaults 5000/10000), so the "
                "slow phase fires an alert that resolves after it",
                "yellow",
            ),
        )
        if o.duration is None:
            out.text("  press Ctrl-C to stop", "dim")
        else:
            out.text(f"  stops taking calls after {o.duration:g} s", "dim")

    def _first_call(self, call_id: str) -> None:
        self.out.line(
            ("first call completed; trace it with:  ", "bold"),
            (f"callwatch trace {call_id} --log-dir {self.options.log_dir}", "bold green"),
        )

    def _interrupted(self) -> None:
        """Ctrl-C: take no more calls and let the ones in progress end, as a real service would."""
        if self.interrupted:
            return
        self.interrupted = True
        self.generator.stop()
        if active := self.generator.tally.active:
            self.out.text(
                f"stopping: letting {active} call(s) in progress finish "
                f"(at most {_DRAIN_SEC:g} s; Ctrl-C again to quit now)",
                "yellow",
            )

    def drain(self, give_up: Callable[[], bool]) -> None:
        """Stop placing calls and wait (bounded) until those in progress have ended."""
        self._interrupted()
        deadline = time.monotonic() + _DRAIN_SEC
        while self.generator.tally.active > 0 and time.monotonic() < deadline and not give_up():
            time.sleep(0.1)

    def _narrate(self) -> None:
        o = self.options
        slow_from, slow_to = o.started_at + o.slow_at, o.started_at + o.slow_at + o.slow_for
        said_slow = said_fast = False
        next_status = time.monotonic() + _STATUS_EVERY_SEC
        while not self._done.wait(0.5):
            if self._stopping():
                self._interrupted()
                return
            now = time.time()
            if not said_slow and slow_from <= now < slow_to:
                said_slow = True
                self.out.text(
                    f"slow phase: LLM latency x3 for {o.slow_for:g} s "
                    "(watch the response-time alert fire)",
                    "bold yellow",
                )
            if said_slow and not said_fast and now >= slow_to:
                said_fast = True
                self.out.text(
                    "slow phase over: latency back to normal "
                    "(the alert resolves once p95 recovers)",
                    "bold green",
                )
            if time.monotonic() >= next_status:
                next_status += _STATUS_EVERY_SEC
                t = self.generator.tally
                self.out.text(
                    f"calls: {t.placed} placed, {t.completed} completed, "
                    f"{t.failed} failed, {t.active} in progress",
                    "dim",
                )
