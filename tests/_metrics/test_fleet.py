"""The fleet's shared files, with real worker processes (children of this test process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import psutil
from prometheus_client.parser import text_string_to_metric_families

from callwatch._metrics.fleet import RUN, Fleet
from callwatch._metrics.placement import Placement

WORKER = """
import os, sys, callwatch
from callwatch.monitoring import (record_call_start, record_call_end, record_error,
                                  record_response_time, record_usage)
from callwatch.logger import perf_timer
callwatch.configure(console=False, files=False)
n, live, how = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for i in range(n):
    record_call_start(f"{os.getpid()}-{i}")
    record_call_end(f"{os.getpid()}-{i}", 10.0, success=i % 2 == 0)
    record_response_time(600.0)
with perf_timer("llm"):
    pass
record_usage(llm_prompt_tokens=100, cost_usd=0.5)
record_error("LLM_ERROR", "boom Bearer eyJhbGciOiJIUzI1NiJ9secretpayload")
for i in range(live):
    record_call_start(f"live-{os.getpid()}-{i}")
if how == "kill":   # the OOM killer: no shutdown, no flush, no atexit
    from callwatch.monitoring import production_monitor
    production_monitor.tick(callwatch._runtime.settings())   # one sampler round: ids known
    os.kill(os.getpid(), 9)
callwatch.shutdown()
"""


def _run_worker(directory: Path, calls: int, live: int = 0, how: str = "exit") -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory),
           "LOG_DIR": str(directory / "logs")}
    result = subprocess.run([sys.executable, "-c", WORKER, str(calls), str(live), how], env=env,
                            timeout=60, check=False, capture_output=True)
    assert result.returncode == (-9 if how == "kill" else 0), result.stderr.decode()[-2000:]


def _reader(directory: Path, reports: list[tuple[str, str, dict[str, Any]]]) -> Fleet:
    """This test process as a member of the fleet its children form (it is their master)."""
    me = psutil.Process()
    placement = Placement(directory, me.pid, me.create_time(), "PROMETHEUS_MULTIPROC_DIR")
    fleet = Fleet(placement, 300.0, lambda *report: reports.append(report))
    fleet.join()
    return fleet


def test_totals_of_all_workers_add_up_and_a_killed_workers_calls_are_abandoned(
    tmp_path: Path,
) -> None:
    reports: list[tuple[str, str, dict[str, Any]]] = []
    reader = _reader(tmp_path, reports)
    _run_worker(tmp_path, 3)
    _run_worker(tmp_path, 4, live=2, how="kill")
    totals = reader.read(0.0)
    assert (totals.started, totals.succeeded, totals.failed, totals.active) == (9, 4, 3, 2)
    reader.tick(1.0, (0, []), [], {})  # notices the dead worker and folds it into the archive
    assert reports and reports[0][0] == "error"
    assert reports[0][2]["abandoned_calls"] == 2
    assert sorted(reports[0][2]["abandoned_call_ids"])[0].startswith("live-")
    totals = reader.read(0.0)
    assert (totals.started, totals.succeeded, totals.failed, totals.active) == (9, 4, 5, 0)
    assert totals.count("abandoned_calls") == 2
    assert totals.started == totals.succeeded + totals.failed + totals.active
    response = totals.hists["response_time_seconds"][""]
    assert response.count == 7 and response.sum == 4200.0
    assert totals.hists["operation_duration_seconds"]["llm"].count == 2
    assert totals.counters["errors"] == {"LLM_ERROR": 2}
    assert totals.counters["llm_prompt_tokens"][""] == 200
    assert len(totals.recent_errors) == 2
    assert "eyJhbGciOiJIUzI1NiJ9secretpayload" not in str(totals.recent_errors)
    text = reader.exposition(totals, {}).decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("callwatch_calls_started_total", ())] == 9
    assert samples[("callwatch_abandoned_calls_total", ())] == 2
    assert samples[("callwatch_calls_ended_total", (("outcome", "failure"),))] == 5
    assert len(list(tmp_path.glob("callwatch-w-*.mmap"))) == 1  # only this process's file


def test_a_new_server_start_in_the_same_directory_starts_from_zero(tmp_path: Path) -> None:
    _run_worker(tmp_path, 3)  # its master is this process
    (tmp_path / RUN).write_bytes(b'{"key": "1-2"}')  # as if another server had run here since
    reader = _reader(tmp_path, [])
    assert reader.read(0.0).started == 0
    _run_worker(tmp_path, 2)
    assert reader.read(0.0).started == 2  # and the run goes on across its workers


def test_malformed_and_foreign_files_are_skipped_with_one_warning(tmp_path: Path) -> None:
    reports: list[tuple[str, str, dict[str, Any]]] = []
    reader = _reader(tmp_path, reports)
    _run_worker(tmp_path, 3)
    me = psutil.Process()
    garbage = tmp_path / f"callwatch-w-{me.pid}-1.mmap"  # a name of ours, a dead worker's
    garbage.write_bytes(b"\xff" * 64)
    (tmp_path / "counter_4242.db").write_bytes(b"\x00\x01 not prometheus")  # foreign
    (tmp_path / "callwatch-w-notes.txt").write_text("hello")
    for _ in range(3):
        totals = reader.read(0.0)
        assert totals.started == 3
        text = reader.exposition(totals, {}).decode()
        assert "callwatch_calls_started_total 3.0" in text
    warnings = [r for r in reports if r[0] == "warning"]
    assert sorted(r[2]["metrics_file"] for r in warnings) == [garbage.name, "counter_4242.db"]


def test_the_oldest_live_worker_alone_judges_alert_thresholds(tmp_path: Path) -> None:
    reader = _reader(tmp_path, [])
    assert reader.is_leader()
    parent = psutil.Process(os.getppid())  # alive, and started before this process
    (tmp_path / f"callwatch-w-{parent.pid}-{round(parent.create_time() * 100)}.mmap").touch()
    reader._leader = None
    assert not reader.is_leader()
    (tmp_path / f"callwatch-w-{2**22 + 7}-100.mmap").touch()  # dead: no role
    assert not reader.is_leader()


SIBLING = """
import os, sys, time, psutil
parent = psutil.Process(os.getppid())
deadline = time.monotonic() + 20
while len(parent.children()) < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
import callwatch
from callwatch.monitoring import production_monitor
callwatch.configure(console=False)
print(production_monitor.fleet is None)
# Stay until the sibling has configured too: a sibling already gone is no sibling.
ready = os.path.join(os.environ["LOG_DIR"], f"ready-{os.getpid()}")
open(ready, "w").close()
deadline = time.monotonic() + 20
while len([n for n in os.listdir(os.environ["LOG_DIR"]) if n.startswith("ready-")]) < 2:
    if time.monotonic() > deadline:
        break
    time.sleep(0.05)
callwatch.shutdown()
"""
UNKNOWN_SERVER = """
import subprocess, sys
children = [subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE)
            for _ in range(2)]
print("".join(c.communicate(timeout=60)[0].decode() for c in children), end="")
"""


def test_workers_of_an_unknown_pre_fork_server_say_how_to_share_metrics(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(LOG_DIR=str(tmp_path / "logs"), ENVIRONMENT="production")
    result = subprocess.run([sys.executable, "-c", UNKNOWN_SERVER, SIBLING], env=env,
                            capture_output=True, timeout=90, check=True)
    assert result.stdout.split() == [b"True", b"True"]  # each stays a lone process
    records = [orjson.loads(line) for path in (tmp_path / "logs" / "app").glob("*.log")
               for line in path.read_bytes().splitlines()]
    warnings = [r for r in records if "PROMETHEUS_MULTIPROC_DIR" in r["message"]]
    assert len(warnings) == 2 and {r["level"] for r in warnings} == {"WARNING"}  # one each
