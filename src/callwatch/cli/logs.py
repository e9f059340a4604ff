"""``callwatch logs prune``: retention and compression now, instead of at the next midnight."""

from __future__ import annotations

import argparse
from pathlib import Path

from callwatch.cli._render import Output

__all__ = ["add_parser", "run_prune"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "logs", help="log file maintenance", description="Log file maintenance."
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    prune = actions.add_parser(
        "prune",
        help="delete days past retention and gzip past days now",
        description=(
            "Delete days older than their retention (app 30, errors 90, audit 365, "
            "performance 30 days unless configured) and gzip every day before yesterday. "
            "Safe while services write: only one process maintains a directory at a time."
        ),
    )
    prune.add_argument("--log-dir", type=Path, help="log root (default: LOG_DIR or ./logs)")
    prune.set_defaults(handler=run_prune)


def run_prune(args: argparse.Namespace, out: Output) -> int:
    from callwatch._runtime import configure, shutdown  # noqa: PLC0415
    from callwatch.logger import prune_logs  # noqa: PLC0415

    log_dir: Path = args.log_dir
    if not log_dir.is_dir():
        out.error(f"no log directory at {log_dir}")
        return 2
    # Files off: this process must not start its own writer or maintenance thread.
    configure(log_dir=log_dir, files=False, console=False)
    try:
        with out.status(f"pruning {log_dir}"):
            summary = prune_logs()
    finally:
        shutdown()
    if summary.get("skipped"):
        out.text(f"skipped: another process is maintaining {log_dir} right now", "yellow")
        return 0
    for verb, style in (("compressed", "green"), ("deleted", "yellow")):
        paths = summary.get(verb)
        names = list(paths) if isinstance(paths, (list, tuple)) else []
        out.text(f"{verb}: {len(names)} file(s)", style)
        for name in names:
            out.text(f"  {name}", "dim")
    return 0
