"""Date-named files after a crash: a torn last line never swallows the next record."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import callwatch
from callwatch._logging import files
from callwatch._logging.files import log_path
from callwatch.logger import audit_log, log
from tests.helpers import strict_loads

TORN = b'{"timestamp":"2026-01-01T00:00:00.000000Z","level":"ERROR","message":"half a rec'


def test_a_writer_ends_a_torn_last_line_before_its_first_record(tmp_path: Path) -> None:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    paths = [log_path(tmp_path, category, day) for category in ("app", "errors")]
    for path in paths:
        path.parent.mkdir(parents=True)
        path.write_bytes(b'{"message":"whole"}\n' + TORN)  # SIGKILL in the middle of a write
    callwatch.configure(log_dir=tmp_path, console=False, environment="production")
    try:
        log.info("queued after the crash")
        log.error("durable after the crash")
        audit_log("audited after the crash")
    finally:
        callwatch.shutdown()
    for path in paths:
        lines = path.read_bytes().split(b"\n")
        assert lines[:2] == [b'{"message":"whole"}', TORN], path.name
        assert lines[-1] == b"", "the file ends with a whole line"
        messages = [strict_loads(line)["message"] for line in lines[2:-1]]
        assert "durable after the crash" in messages
    assert "queued after the crash" in [
        strict_loads(line)["message"] for line in paths[0].read_bytes().split(b"\n")[2:-1]
    ]


def test_a_file_ending_cleanly_gets_no_blank_line(tmp_path: Path) -> None:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    path = log_path(tmp_path, "app", day)
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"message":"whole"}\n')
    callwatch.configure(log_dir=tmp_path, console=False, environment="production")
    try:
        log.info("next")
    finally:
        callwatch.shutdown()
    assert b"\n\n" not in path.read_bytes()
    assert path.read_bytes().count(b"\n") == 2


def test_another_process_mid_append_is_not_taken_for_a_torn_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line another writer is still appending ends a moment later: no blank line is added."""
    monkeypatch.setattr(files, "_SETTLE_SEC", 0.2)  # a wide window: the other write lands in it
    path = log_path(tmp_path, "app", "2026-01-01")
    path.parent.mkdir(parents=True)
    path.write_bytes(TORN)
    rest = threading.Timer(0.05, lambda: path.open("ab").write(b'ord"}\n'))
    rest.start()
    day_files = files.DayFiles(tmp_path)
    try:
        day_files.append("app", "2026-01-01", b'{"message":"mine"}\n')
    finally:
        rest.join()
        day_files.close()
    assert path.read_bytes().split(b"\n") == [TORN + b'ord"}', b'{"message":"mine"}', b""]
