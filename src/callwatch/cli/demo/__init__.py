"""``callwatch demo``: a simulated voice agent, instrumented with callwatch, to look at.

Everything heavy (FastAPI, uvicorn) loads only when the demo runs, so the rest
of the command works without the ``fastapi`` extra.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
from pathlib import Path

from callwatch.cli._render import Output

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo",
        help="run a simulated voice agent with live monitoring",
        description=(
            "Run a FastAPI voice-agent service instrumented with callwatch: simulated calls "
            "arrive at random, each of several STT/LLM/TTS turns, with rare failures and a "
            "slow phase that fires and then resolves a response-time alert. Serves the "
            "monitoring routes and dashboard, writes logs, and prints a `callwatch trace` "
            "command for a real call. Binds 127.0.0.1 unless --host says otherwise."
        ),
    )
    parser.add_argument(
        "--rate",
        type=_positive,
        default=60.0,
        metavar="CALLS_PER_MIN",
        help="average calls per minute (60)",
    )
    parser.add_argument(
        "--duration",
        type=_positive,
        metavar="SEC",
        help="stop taking calls after SEC seconds (default: until Ctrl-C)",
    )
    parser.add_argument("--port", type=_port, default=8000, help="port (8000)")
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="uvicorn worker processes (1); metrics are summed across them",
    )
    parser.add_argument(
        "--host", type=_host, default="127.0.0.1", help="address to bind (127.0.0.1)"
    )
    parser.add_argument(
        "--log-dir", type=Path, default=Path("./logs"), help="where logs are written (./logs)"
    )
    parser.add_argument(
        "--slow-at",
        type=_non_negative,
        default=60.0,
        metavar="SEC",
        help="when the slow phase starts (60)",
    )
    parser.add_argument(
        "--slow-for",
        type=_non_negative,
        default=40.0,
        metavar="SEC",
        help="how long the slow phase lasts (40)",
    )
    parser.add_argument(
        "--framework",
        choices=("none", "pipecat"),
        default="none",
        help="pipecat: each call is a real Pipecat pipeline recorded by CallwatchObserver "
        "(needs the pipecat extra); none: the agent instrumented by hand (default)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: Output) -> int:
    try:
        from callwatch.cli.demo.app import DemoOptions  # noqa: PLC0415
        from callwatch.cli.demo.serve import serve  # noqa: PLC0415
    except ImportError as exc:
        out.error(f"the demo needs the fastapi extra: pip install 'callwatch[fastapi,cli]' ({exc})")
        return 2
    if args.framework == "pipecat" and importlib.util.find_spec("pipecat") is None:
        out.error("--framework pipecat needs the pipecat extra: pip install 'callwatch[pipecat]'")
        return 2
    options = DemoOptions(
        rate=args.rate,
        duration=args.duration,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_dir=args.log_dir,
        slow_at=args.slow_at,
        slow_for=args.slow_for,
        framework=args.framework,
    )
    return serve(options, out)


def _positive(raw: str) -> float:
    value = _non_negative(raw)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _non_negative(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number, 0 or more")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 1-65535")
    return value


def _workers(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be 1-64")
    return value


def _host(raw: str) -> str:
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        if raw == "localhost":
            return raw
        raise argparse.ArgumentTypeError("must be an IP address such as 127.0.0.1") from None
