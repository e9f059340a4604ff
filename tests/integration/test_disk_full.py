"""A full disk and an unwritable LOG_DIR: the service keeps running and says so once.

The full disk is a real 512 KiB tmpfs mounted as LOG_DIR; the test fills most of
it with a file of its own, lets a worker fill the rest and keep logging through
thousands of failing writes, then deletes the filler and expects writing to resume.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import need_root
from tests.integration._workers import (
    LineReader,
    command,
    environment,
    file_lines,
    parse,
    start,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs, unmounted afterwards whatever happened."""
    need_root("mounting a tmpfs")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount_point)],
                   check=True, timeout=10)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False, timeout=10)


def _records_and_fragments(log_dir: Path, folder: str) -> tuple[list[dict[str, Any]], int]:
    """Parsed records of a folder, and how many lines were cut short by the full disk."""
    records, fragments = [], 0
    for path in sorted((log_dir / folder).glob("*.log")):
        for line in file_lines(path):
            try:
                records.append(parse(line))
            except orjson.JSONDecodeError:
                fragments += 1
                # Cut short, yes; but no later record may be glued onto the fragment.
                assert line.count(b'{"timestamp"') == 1, line[-300:]
    return records, fragments


def test_full_disk_drops_counted_said_once_and_writing_resumes(small_disk: Path) -> None:
    log_dir = small_disk / "logs"
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * 400 * 1024)
    process = start(command("disk_full"), environment(log_dir), stdin=subprocess.PIPE)
    try:
        lines = LineReader(process.stdout).lines(timeout=60)
        full = orjson.loads(next(lines))
        assert full["phase"] == "full"
        filler.unlink()
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        process.stdin.flush()
        done = orjson.loads(next(lines))
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(10)
    stderr = err.decode(errors="replace")
    print(f"dropped while full: {full['dropped']}, failed writes: {full['write_errors']}")

    assert process.returncode == 0, stderr[-3000:]  # the caller never saw an exception
    assert full["dropped"] > 0
    assert full["write_errors"] >= 1000
    complaints = [line for line in stderr.splitlines() if line.startswith("callwatch:")]
    assert sum("log records are dropped" in line for line in complaints) == 1, complaints
    repeated = {line for line in complaints if complaints.count(line) > 1}
    assert not repeated, f"said more than once: {repeated}"
    assert "Traceback" not in stderr

    records, fragments = _records_and_fragments(log_dir, "app")
    error_records, error_fragments = _records_and_fragments(log_dir, "errors")
    print(f"lines cut short by the full disk: app/ {fragments}, errors/ {error_fragments}")
    # At most the one line the disk cut short in each file; every line after it is whole.
    assert fragments <= 1 and error_fragments <= 1
    assert "after resume error" in [r["message"] for r in error_records]
    messages = [r["message"] for r in records]
    assert messages.count("after resume") == 200
    assert "after resume error" in messages
    notices = [r for r in records if r["message"].startswith("Log records dropped")]
    assert len(notices) == 1, notices
    assert notices[0]["level"] == "WARNING"
    # The notice counts the lines the files lost; STATS also counts the audit records lost.
    assert 0 < notices[0]["extra"]["dropped_records"] <= done["dropped"]
    audit, _ = _records_and_fragments(log_dir, "audit")
    assert "refund.after_resume" in [r["message"] for r in audit]


def _run_unwritable(tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess[bytes], list[str]]:
    blocker = tmp_path / "file"
    blocker.write_text("a regular file where a directory should be")
    log_dir = blocker / "logs"  # ENOTDIR however it is opened
    env = environment(log_dir, LOG_CONSOLE="true")
    result = subprocess.run(command("unwritable"), env=env, capture_output=True, timeout=60,
                            check=False)
    stderr = result.stderr.decode(errors="replace")
    complaints = [line for line in stderr.splitlines() if line.startswith("callwatch:")]
    return log_dir, result, complaints


def test_unwritable_log_dir_is_a_clear_error_and_console_goes_on(tmp_path: Path) -> None:
    log_dir, result, complaints = _run_unwritable(tmp_path)
    stderr = result.stderr.decode(errors="replace")

    assert result.returncode == 0, stderr[-3000:]
    assert stderr.endswith("worker finished\n"), stderr[-3000:]  # no exception reached it
    assert str(log_dir) in complaints[0] and "not writable" in complaints[0], complaints
    assert len(complaints) == len(set(complaints)), "a complaint was repeated"
    console = [parse(line) for line in result.stdout.splitlines()]
    assert [r["message"] for r in console].count("still logging") == 50
    assert "an error with nowhere to go" in [r["message"] for r in console]


def test_unwritable_log_dir_is_said_once(tmp_path: Path) -> None:
    _, _, complaints = _run_unwritable(tmp_path)

    assert len(complaints) == 1, complaints
