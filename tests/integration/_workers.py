"""Worker processes for the logging fault tests, each run as a real process.

``python _workers.py <command> [args...]``. Settings come from the environment
(LOG_DIR, ENVIRONMENT, LOG_CONSOLE, ...), the way a deployed service gets them.
Workers report to the test on stdout, one line at a time, flushed.

No worker calls ``time.sleep``: under libfaketime (with the monotonic clock left
real) ``clock_nanosleep`` fails with EINVAL, so waits go through ``Event.wait``.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, cast

import orjson

import callwatch
from callwatch._logging.stats import STATS
from callwatch.logger import audit_log, log, prune_logs

_pause = threading.Event()

# -- test side: starting workers and reading what they wrote ----------------------------


def command(*args: str) -> list[str]:
    """The command line running one worker of this module."""
    return [sys.executable, str(Path(__file__).resolve()), *args]


def environment(log_dir: Path, **variables: str) -> dict[str, str]:
    """The parent's environment without callwatch settings, plus a production setup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOG_", "FAKETIME"))}
    env.update(LOG_DIR=str(log_dir), ENVIRONMENT="production", LOG_CONSOLE="false")
    env.update(variables)
    return env


def start(args: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs
    )


def file_lines(path: Path) -> list[bytes]:
    """The lines of a log file, plain or gzipped; a file must end with a whole line."""
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path.name} ends inside a line"
    return data.splitlines()


def parse(line: bytes) -> dict[str, Any]:
    """Strict JSON (orjson: no NaN, no lone surrogates), one object per line."""
    value = orjson.loads(line)
    assert isinstance(value, dict), line[:200]
    return value


def folder_records(log_dir: Path, folder: str) -> dict[str, list[dict[str, Any]]]:
    """File name -> parsed records, for every file of one category folder."""
    directory = log_dir / folder
    if not directory.is_dir():
        return {}
    return {
        path.name: [parse(line) for line in file_lines(path)]
        for path in sorted(directory.iterdir())
        if path.name.endswith((".log", ".log.gz"))
    }


class LineReader:
    """Lines from a child's pipe with a deadline, so no read can hang the suite."""

    def __init__(self, stream: Any) -> None:
        self._fd = stream.fileno()
        self._buffer = b""

    def lines(self, timeout: float) -> Iterator[bytes]:
        """Yield lines as they come until EOF; fail when none comes within ``timeout``."""
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                yield line
            ready, _, _ = select.select([self._fd], [], [], timeout)
            assert ready, f"no output from the worker within {timeout} s"
            chunk = os.read(self._fd, 65536)
            if not chunk:
                return
            self._buffer += chunk


# -- worker side --------------------------------------------------------------------------


def _report(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def _stats() -> dict[str, int]:
    return {"dropped": STATS.dropped, "write_errors": STATS.write_errors,
            "internal_errors": STATS.internal_errors}


def midnight(worker: str, lines: str, midnight_epoch: str) -> None:
    """Log ``lines`` records across a UTC midnight; half are logged before it.

    Every 997th record is an ERROR (written at once, between queued INFO lines) and
    comes with an audit event; every 10,000 records the worker prunes, compressing
    past days meanwhile.
    """
    total, boundary = int(lines), float(midnight_epoch)
    started = time.time()
    for seq in range(total):
        if seq == total // 2:
            while time.time() < boundary and time.time() - started < 20:
                _pause.wait(0.01)  # the second half is logged after midnight
        if seq % 997 == 0:
            log.error("worker record", worker=worker, seq=seq)
            audit_log("worker.audit", worker=worker, seq=seq)
        else:
            log.info("worker record", worker=worker, seq=seq)
        if seq % 10_000 == 5_000:
            prune_logs()
    _report(started=started, finished=time.time(), **_stats())


def pruner(stop_file: str, midnight_epoch: str) -> None:
    """Prune the log directory over and over while others write, until told to stop.

    It stops only after a pass made after midnight, so yesterday's yesterday is due.
    """
    compressed: list[str] = []
    passes = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stop = os.path.exists(stop_file)
        after_midnight = time.time() >= float(midnight_epoch)
        compressed += cast("list[str]", prune_logs()["compressed"])
        passes += 1
        if stop and after_midnight:
            break
        _pause.wait(0.02)
    _report(passes=passes, compressed=compressed, **_stats())


def acked(first_id: str) -> None:
    """Log an ERROR and an audit event per id, then print the id: printed means acknowledged."""
    for ack in range(int(first_id), int(first_id) + 100_000):
        log.info("about to charge", ack=ack)
        log.error("payment failed", extra={"ack": ack, "amount_cents": 1250})
        audit_log("refund.issued", ack=ack, amount_cents=1250)
        sys.stdout.write(f"{ack}\n")
        sys.stdout.flush()


def disk_full() -> None:
    """Log until the disk is full, keep logging through it, then resume when told.

    The test deletes a filler file and writes ``go`` to stdin between the phases.
    """
    seq = 0
    while STATS.dropped == 0 and seq < 200_000:
        log.error("filling the disk", seq=seq, pad="x" * 200)
        seq += 1
    for index in range(3_000):  # thousands of failing write() calls
        log.error("disk is full", seq=seq, pad="y" * 200)
        log.info("disk is full", seq=seq + 1)
        if index % 30 == 0:
            audit_log("refund.while_full", seq=seq)
        seq += 2
    _report(phase="full", **_stats())
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected 'go' on stdin")
    for index in range(200):
        log.info("after resume", index=index)
    log.error("after resume error")
    audit_log("refund.after_resume")
    callwatch.shutdown()
    _report(phase="done", **_stats())


def unwritable() -> None:
    """Log to an unwritable LOG_DIR: the console (stdout) must keep the records."""
    for index in range(50):
        log.info("still logging", index=index)
    log.error("an error with nowhere to go")
    audit_log("user.login", user_id="u1")
    callwatch.shutdown()
    sys.stderr.write("worker finished\n")


def _previous_handler(signum: int, frame: FrameType | None) -> None:
    sys.stdout.write("previous handler ran\n")
    sys.stdout.flush()
    raise SystemExit(3)


def _previous_handler_that_logs(signum: int, frame: FrameType | None) -> None:
    log.info("shutting down", signal=signum)  # logged while the service drains
    _previous_handler(signum, frame)


def sigterm(mode: str, lines: str) -> None:
    """Log INFO records that stay queued, say ``ready``, then wait for SIGTERM or return.

    ``chained`` installs its own SIGTERM handler before callwatch is configured
    (``chained_logging``: one that logs);
    ``thread_first`` has a thread log first, then configures from the main thread.
    """
    if mode == "chained":  # callwatch configures itself on the first record, below
        signal.signal(signal.SIGTERM, _previous_handler)
    if mode == "chained_logging":
        signal.signal(signal.SIGTERM, _previous_handler_that_logs)
    if mode == "thread_first":  # configured first by a thread, then by the main thread
        thread = threading.Thread(target=log.info, args=("from a thread",))
        thread.start()
        thread.join()
        callwatch.configure()
    for index in range(int(lines)):
        log.info("pending record", index=index)
    _report(ready=True, **_stats())
    if mode == "exit":
        return
    for _ in range(300):
        time.sleep(0.1)  # SIGTERM arrives here
    raise SystemExit("no SIGTERM arrived")


def prefork(children: str, lines: str) -> None:
    """Log in a parent, fork workers that log, log again; every process exits normally."""
    callwatch.configure()
    for index in range(500):
        log.info("parent before fork", index=index)  # still queued at fork time
    pids = []
    for child in range(int(children)):
        pid = os.fork()
        if pid == 0:
            for index in range(int(lines)):
                log.info("child record", child=child, index=index)
            sys.exit(0)  # a normal interpreter exit, as pre-fork servers' workers do
        pids.append(pid)
    statuses = [os.waitpid(pid, 0)[1] for pid in pids]
    for index in range(500):
        log.info("parent after fork", index=index)
    _report(statuses=statuses, **_stats())


def _pool_child(child: int, lines: int) -> None:
    for index in range(lines):
        log.info("child record", child=child, index=index)


def prefork_multiprocessing(children: str, lines: str) -> None:
    """The same with ``multiprocessing`` (fork): its children end with ``os._exit``."""
    callwatch.configure()
    for index in range(500):
        log.info("parent before fork", index=index)
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_pool_child, args=(child, int(lines)))
                 for child in range(int(children))]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
    for index in range(500):
        log.info("parent after fork", index=index)
    _report(statuses=[process.exitcode for process in processes], **_stats())


COMMANDS: dict[str, Callable[..., None]] = {
    "midnight": midnight,
    "pruner": pruner,
    "acked": acked,
    "disk_full": disk_full,
    "unwritable": unwritable,
    "sigterm": sigterm,
    "prefork": prefork,
    "prefork_multiprocessing": prefork_multiprocessing,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
