"""SIGKILL at random moments loses no acknowledged ERROR or audit record.

The worker logs an ERROR and an audit event per id and prints the id only after
both calls returned. Whatever the parent read before the kill was acknowledged,
so it must be on disk; the rounds share one LOG_DIR, so each new process also
appends (and extends the audit hash chain) after a predecessor that died mid-write.

The kill moments come from a seeded generator: the seed is printed, and
``CALLWATCH_SIGKILL_SEED=<seed>`` replays a failing run.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from callwatch._logging.audit import verify_dir
from tests.integration._workers import LineReader, command, environment, folder_records, start

pytestmark = pytest.mark.integration

ROUNDS = 6
MAX_ACKS_BEFORE_KILL = 400


def _kill_after_random_acks(log_dir: Path, first_id: int, rng: random.Random) -> set[int]:
    """Run one worker, SIGKILL it at a random moment; return every id it acknowledged."""
    process = start(command("acked", str(first_id)), environment(log_dir))
    acked: set[int] = set()
    wanted = rng.randint(1, MAX_ACKS_BEFORE_KILL)
    reader = LineReader(process.stdout)
    try:
        for line in reader.lines(timeout=30):
            acked.add(int(line))
            if len(acked) >= wanted:
                break
        time.sleep(rng.uniform(0, 0.005))  # land anywhere inside the next calls
        process.send_signal(signal.SIGKILL)
        acked.update(int(line) for line in reader.lines(timeout=10))  # already in the pipe
    finally:
        process.kill()
        process.wait(10)
    assert process.returncode == -signal.SIGKILL
    _, err = process.communicate(timeout=10)
    assert len(acked) >= wanted, err.decode(errors="replace")[-2000:]
    return acked


def test_every_acknowledged_error_and_audit_record_survives_sigkill(tmp_path: Path) -> None:
    seed = int(os.environ.get("CALLWATCH_SIGKILL_SEED") or random.randrange(2**32))
    print(f"CALLWATCH_SIGKILL_SEED={seed}")  # shown by pytest when the test fails
    rng = random.Random(seed)
    log_dir = tmp_path / "logs"
    acked: set[int] = set()
    for round_number in range(ROUNDS):
        acked |= _kill_after_random_acks(log_dir, round_number * 1_000_000, rng)

    # folder_records parses every line strictly: a torn line fails here.
    errors = {
        r["extra"]["ack"] for rs in folder_records(log_dir, "errors").values() for r in rs
    }
    audit = {
        r["extra"]["ack"] for rs in folder_records(log_dir, "audit").values() for r in rs
    }
    app = folder_records(log_dir, "app")
    assert acked <= errors, f"acknowledged ERROR ids lost: {sorted(acked - errors)[:10]}"
    assert acked <= audit, f"acknowledged audit ids lost: {sorted(acked - audit)[:10]}"
    app_errors = {r["extra"]["ack"] for rs in app.values() for r in rs if r["level"] == "ERROR"}
    assert acked <= app_errors, f"ERROR ids missing from app/: {sorted(acked - app_errors)[:10]}"
    # Each killed process left the hash chain whole for the next one to extend.
    results = verify_dir(log_dir)
    assert results, "no audit file"
    assert all(result.ok for _, result in results), results
