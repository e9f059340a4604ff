"""``callwatch alert test``: send one test alert through every configured handler."""

from __future__ import annotations

import argparse
import asyncio

from callwatch.cli._render import Output

__all__ = ["add_parser", "run_test"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("alert", help="alert delivery", description="Alert delivery.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    test = actions.add_parser(
        "test",
        help="send a test alert through every configured handler; exit 1 if any failed",
        description=(
            "Send one info-level test alert through every handler configured from the "
            "environment (console, SLACK_WEBHOOK_URL, ALERT_WEBHOOK_URL) and report each "
            "handler's result. Exit 1 if any handler failed."
        ),
    )
    test.set_defaults(handler=run_test)


def run_test(args: argparse.Namespace, out: Output) -> int:
    from callwatch._runtime import configure, shutdown  # noqa: PLC0415
    from callwatch.alerting import send_test_alert  # noqa: PLC0415

    configure()  # registers the handlers the environment configures
    try:
        results = asyncio.run(send_test_alert())
    finally:
        shutdown()
    failed = 0
    for name, result in results.items():
        ok = result == "ok"
        failed += not ok
        out.line(
            ("ok      " if ok else "FAILED  ", "bold green" if ok else "bold red"),
            (name, ""),
            ("" if ok else f"  {result}", "red"),
        )
    if not results:
        out.error("no alert handler is configured")
        return 1
    return 1 if failed else 0
