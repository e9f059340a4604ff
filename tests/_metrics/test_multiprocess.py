"""Cross-worker totals on prometheus_client's multiprocess files, with real worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from callwatch._metrics.multiprocess import RUN_FILE, MultiProcess

WORKER = """
import sys, callwatch
from callwatch.monitoring import (record_call_start, record_call_end, record_error,
                                  record_response_time)
from callwatch.logger import perf_timer
callwatch.configure(console=False, files=False)
n = int(sys.argv[1])
for i in range(n):
    record_call_start(i)
    record_call_end(i, 10.0, success=i % 2 == 0)
    record_response_time(600.0)
with perf_timer("llm"):
    pass
record_error("LLM_ERROR", "boom Bearer eyJhbGciOiJIUzI1NiJ9secretpayload")
record_call_start("still-live")
callwatch.shutdown()   # publishes the final totals
"""


def _run_worker(directory: Path, calls: int) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "LOG_DIR": str(directory / "logs")}
    subprocess.run([sys.executable, "-c", WORKER, str(calls)], env=env, check=True, timeout=60)


def test_totals_of_all_workers_add_up_and_dead_workers_live_gauges_go(tmp_path: Path) -> None:
    reader = MultiProcess(tmp_path)  # this process: a live member of the run, no numbers of its own
    assert reader.join() is True
    _run_worker(tmp_path, 3)  # each worker joins the live run, so earlier workers' files stay
    _run_worker(tmp_path, 4)
    totals = reader.others()
    assert (totals.started, totals.succeeded, totals.failed) == (9, 4, 3)
    assert totals.response.count == 7 and totals.response.sum == 4200.0
    assert totals.duration.count == 7 and totals.operations["llm"].count == 2
    assert totals.errors_by_type == {"LLM_ERROR": 2}
    assert len(totals.recent_errors) == 2 and "eyJhbGciOiJIUzI1NiJ9secretpayload" not in str(totals.recent_errors)
    reader.sweep_dead()  # both workers exited: their live calls no longer count as active
    assert reader.others(max_age=0).active == 0
    text = reader.exposition().decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "callwatch_calls_started" in names
    assert not any(n.startswith("callwatch_internal") for n in names)


def test_a_new_run_removes_the_files_of_an_earlier_one(tmp_path: Path) -> None:
    _run_worker(tmp_path, 3)
    assert list(tmp_path.glob("*.db"))
    assert MultiProcess(tmp_path).join() is True  # no member of the earlier run is alive
    assert not list(tmp_path.glob("*.db")) and (tmp_path / RUN_FILE).exists()


def test_the_oldest_live_worker_alone_judges_alert_thresholds(tmp_path: Path) -> None:
    import os

    import orjson
    import psutil

    from callwatch._metrics.multiprocess import RUN_FILE, MultiProcess

    me = MultiProcess(tmp_path)
    me.join()
    assert me.is_leader(max_age=0)  # alone in the run

    parent = psutil.Process(os.getppid())  # alive, and started before this process
    members = orjson.loads((tmp_path / RUN_FILE).read_bytes())
    older = {"pid": parent.pid, "created": parent.create_time()}
    (tmp_path / RUN_FILE).write_bytes(orjson.dumps([older, *members]))
    assert not me.is_leader(max_age=0)

    gone = {"pid": 2**22 + 7, "created": 1.0}  # a worker that died keeps no role
    (tmp_path / RUN_FILE).write_bytes(orjson.dumps([gone, *members]))
    assert me.is_leader(max_age=0)
