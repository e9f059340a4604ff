"""The ``callwatch`` command: one subcommand per module, dispatched here.

Exit codes: 0 success; 1 a finding or failure (call not found, tampered audit
file, an alert handler failed); 2 a usage error (bad arguments, bad
configuration, missing log directory) or a folder or file the OS refused,
said in one line, never a traceback; 130 interrupted.

Subcommands import callwatch's machinery (writer, alerting, FastAPI) only when
they run, so ``trace`` and ``tail`` start fast, start no background work and
work without the optional extras.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from callwatch.cli import alert, audit, demo, logs, rules, tail, trace
from callwatch.cli._files import describe_os_error
from callwatch.cli._render import Output
from callwatch.config import ConfigError, load_settings

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FINDING, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callwatch",
        description="Trace calls, follow logs, verify audit files, test alerts, run the demo.",
        epilog="Exit codes: 0 ok, 1 finding or failure, 2 usage error.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (demo, trace, tail, logs, audit, alert, rules):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Output()
    try:
        if hasattr(args, "log_dir") and args.log_dir is None:
            args.log_dir = load_settings().log_dir
        code: int = args.handler(args, out)
        return code
    except ConfigError as exc:
        out.error(f"configuration error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (head, less) went away: stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        out.error(f"cannot read {describe_os_error(exc)}")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
