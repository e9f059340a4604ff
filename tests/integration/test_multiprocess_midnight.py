"""Four processes share one LOG_DIR across a UTC midnight while past days are compressed.

The clock is libfaketime's: each process starts at 23:59:50 on 2026-03-01 and
its clock ticks in real time. The monotonic clock stays real
(``FAKETIME_DONT_FAKE_MONOTONIC``): with it faked, timed waits on Python locks
never end. Old days are seeded before the run and pruned by the workers and by
two extra processes while the workers write.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from callwatch._logging.audit import verify_dir
from tests.conftest import need
from tests.integration._workers import command, environment, file_lines, folder_records, start

pytestmark = pytest.mark.integration

WORKERS = 4
LINES = 50_000
PRUNERS = 2
START = "2026-03-01 23:59:50"  # ten seconds to start six processes on a loaded machine
MIDNIGHT = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
# Days seeded before the run: D-3 is due at once, D-1 only once the clock is past midnight.
SEEDED = {"2026-02-26": 1_500, "2026-02-28": 700}


def _seed(log_dir: Path) -> dict[tuple[str, str], bytes]:
    """Write whole days of old records, as an earlier run would have left them."""
    seeded = {}
    for day, count in SEEDED.items():
        for folder, prefix in (("app", "app"), ("errors", "error")):
            lines = [
                orjson.dumps({
                    "timestamp": f"{day}T{index % 24:02d}:00:00.{index:06d}Z",
                    "level": "ERROR", "logger": "seed", "function": "seed", "line": 1,
                    "message": "seeded", "app": "ai_voice_agent", "environment": "production",
                    "call_id": None, "extra": {"seeded": index},
                }) + b"\n"
                for index in range(count)
            ]
            path = log_dir / folder / f"{prefix}_{day}.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"".join(lines))
            seeded[(folder, day)] = path.read_bytes()
    return seeded


def _run(log_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Start the pruners and the writers under the fake clock; return their reports."""
    faketime = need("faketime")
    env = environment(log_dir, FAKETIME_DONT_FAKE_MONOTONIC="1")
    stop_file = log_dir.parent / "stop-pruning"
    midnight = str(MIDNIGHT.timestamp())
    fake = [faketime, "-f", f"@{START}"]
    pruners = [start(fake + command("pruner", str(stop_file), midnight), env)
               for _ in range(PRUNERS)]
    writers = [start(fake + command("midnight", f"w{n}", str(LINES), midnight), env)
               for n in range(WORKERS)]
    try:
        writer_reports = [_report(process, 60) for process in writers]
        stop_file.touch()
        pruner_reports = [_report(process, 30) for process in pruners]
    finally:
        for process in writers + pruners:
            process.kill()
            process.wait(5)
    return writer_reports, pruner_reports


def _report(process: Any, timeout: float) -> dict[str, Any]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    assert b"callwatch:" not in err, err.decode(errors="replace")[-3000:]
    report: dict[str, Any] = orjson.loads(out.splitlines()[-1])
    return report


def test_four_processes_across_midnight_lose_and_mix_nothing(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    seeded = _seed(log_dir)

    writer_reports, pruner_reports = _run(log_dir)

    for report in writer_reports + pruner_reports:
        assert report["dropped"] == 0, report
        assert report["internal_errors"] == 0, report
    assert all(r["started"] < MIDNIGHT.timestamp() < r["finished"] for r in writer_reports), (
        "a writer did not span midnight: the machine was too slow to start it in 10 s"
    )
    compressions = Counter(path for r in pruner_reports for path in r["compressed"])
    assert all(count == 1 for count in compressions.values()), compressions
    app = _check_folder(log_dir, "app", lambda seq: True)
    errors = _check_folder(log_dir, "errors", lambda seq: seq % 997 == 0)
    audit = _check_folder(log_dir, "audit", lambda seq: seq % 997 == 0, "worker.audit")
    for days in (app, errors, audit):
        assert days["2026-03-01"] and days["2026-03-02"], "records landed on one day only"
    # One hash chain per day file, whole although four processes appended to it.
    results = verify_dir(log_dir)
    assert len(results) == 2 and all(result.ok for _, result in results), results
    _check_compressed_once(log_dir, seeded)


def _check_folder(
    log_dir: Path, folder: str, expected: Any, message: str = "worker record"
) -> Counter[str]:
    """Every worker record exactly once, on the file of its own day, in logging order."""
    seen: Counter[tuple[str, int]] = Counter()
    per_day: Counter[str] = Counter()
    for name, records in folder_records(log_dir, folder).items():
        day = name.split("_", 1)[1][:10]
        last_seq: dict[str, int] = {}
        for record in records:
            assert record["timestamp"][:10] == day, (name, record["timestamp"])
            if record["message"] != message:
                continue  # seeded, or audit events also in app/
            worker, seq = record["extra"]["worker"], record["extra"]["seq"]
            assert seq > last_seq.get(worker, -1), f"{name}: {worker} out of order at {seq}"
            last_seq[worker] = seq
            seen[(worker, seq)] += 1
            per_day[day] += 1
    wanted = {(f"w{n}", seq) for n in range(WORKERS) for seq in range(LINES) if expected(seq)}
    assert set(seen) == wanted, f"{folder}: {len(wanted - set(seen))} missing, " \
        f"{len(set(seen) - wanted)} unexpected"
    duplicated = [key for key, count in seen.items() if count > 1]
    assert not duplicated, f"{folder}: {len(duplicated)} duplicated, e.g. {duplicated[:3]}"
    return per_day


def _check_compressed_once(log_dir: Path, seeded: dict[tuple[str, str], bytes]) -> None:
    """Each past day is one .gz holding its original bytes once; no plain file or leftovers."""
    for (folder, day), original in seeded.items():
        prefix = "app" if folder == "app" else "error"
        plain = log_dir / folder / f"{prefix}_{day}.log"
        packed = plain.with_name(plain.name + ".gz")
        assert not plain.exists(), f"{plain.name} was not compressed"
        assert b"\n".join(file_lines(packed)) + b"\n" == original, f"{packed.name} changed"
    leftovers = [p.name for p in log_dir.rglob("*") if ".tmp-" in p.name]
    assert not leftovers, leftovers
    names = {p.name for p in (log_dir / "app").iterdir()}
    assert names == {
        "app_2026-02-26.log.gz", "app_2026-02-28.log.gz", "app_2026-03-01.log", "app_2026-03-02.log",
    }
