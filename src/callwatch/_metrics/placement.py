"""Where the fleet's shared files live, found with no configuration.

A worker belongs to a fleet when ``PROMETHEUS_MULTIPROC_DIR`` is set, when its
parent is a pre-fork server (gunicorn, uvicorn, hypercorn, granian), or when it
was forked from a process that had callwatch loaded (a ``--preload`` server).
The fleet is keyed by that parent, the server's master: its pid and start
time. Every worker of one server start therefore finds the same directory,
across recycling and crashes, and the next start of the server a new one.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil


__all__ = ["SERVERS", "Placement", "alive", "place"]

SERVERS = ("gunicorn", "uvicorn", "hypercorn", "granian")
FLEET_DIR = ".fleet"


@dataclass(frozen=True)
class Placement:
    """A fleet's directory and the master process whose life is the fleet's run."""

    directory: Path
    master_pid: int
    master_created: float
    via: str  # a server's name, "PROMETHEUS_MULTIPROC_DIR" or "fork"

    @property
    def run_key(self) -> str:
        return f"{self.master_pid}-{round(self.master_created * 100)}"


def place(
    configured: Path | None, log_dir: Path, forked: bool
) -> tuple[Placement | None, bool]:
    """(the fleet, if any; whether this looks like a fleet that could not be detected)."""
    import psutil  # noqa: PLC0415 - loaded at start, not when callwatch is imported

    try:
        parent = psutil.Process(os.getppid())
        master = (parent.pid, parent.create_time())
        server = _server_of(parent)
    except (psutil.Error, OSError):
        parent, master, server = None, (os.getpid(), psutil.Process().create_time()), None
    if configured is not None:
        return Placement(configured, *master, "PROMETHEUS_MULTIPROC_DIR"), False
    if parent is None or parent.pid <= 1:
        return None, False
    via = server or ("fork" if forked else None)
    if via is None:
        return None, _has_sibling_workers(parent)
    run = f"{master[0]}-{round(master[1] * 100)}"
    root = log_dir.absolute() / FLEET_DIR
    directory = root / f"{via}-{run}"
    if not directory.exists():
        _remove_dead_fleets(root)
    return Placement(directory, *master, via), False


def _server_of(parent: psutil.Process) -> str | None:
    """The pre-fork server ``parent`` runs, from its command line (``-m x`` or a script)."""
    for arg in parent.cmdline()[:3]:
        name = os.path.basename(arg)
        for server in SERVERS:
            if name == server or name.startswith(server + ":") or name == f"{server}.exe":
                return server
    # `python -m gunicorn`, or a server started from code: its main module
    for arg in parent.cmdline()[1:4]:
        if arg in SERVERS:
            return arg
    return None


def _has_sibling_workers(parent: psutil.Process) -> bool:
    """Two or more children of our parent run our interpreter: a pre-fork server, likely."""
    import psutil  # noqa: PLC0415 - see place()

    try:
        exe = os.path.realpath(sys.executable)
        return sum(1 for child in parent.children() if child.exe() == exe) >= 2
    except (psutil.Error, OSError):
        return False


def _remove_dead_fleets(root: Path) -> None:
    """Directories of servers whose master has exited: an earlier start's files."""
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for entry in entries:
        parts = entry.name.rsplit("-", 2)
        if len(parts) == 3 and parts[1].isdigit() and not alive(int(parts[1]), parts[2]):
            shutil.rmtree(entry, ignore_errors=True)


def alive(pid: int, created_cs: str) -> bool:
    """Process ``pid`` runs, is not a zombie, and started at ``created_cs`` (1/100 s)."""
    import psutil  # noqa: PLC0415 - see place()

    try:
        process = psutil.Process(pid)
        return (process.status() != psutil.STATUS_ZOMBIE
                and created_cs.isdigit()
                and abs(process.create_time() * 100 - int(created_cs)) <= 2)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True
