"""``callwatch rules``: Prometheus alerting rules generated from the live thresholds.

It only reads the settings: callwatch's runtime (writer, maintenance) is not
started, so running it anywhere leaves the disk untouched.
"""

from __future__ import annotations

import argparse

from callwatch.cli._render import Output
from callwatch.config import load_settings

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "rules",
        help="print Prometheus alerting rules for the current thresholds (YAML)",
        description=(
            "Print a Prometheus rule file (YAML) with one alert per threshold and severity, "
            "so Prometheus and Alertmanager fire on the same numbers as callwatch. "
            "Save it and check it with `promtool check rules FILE`."
        ),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: Output) -> int:
    from callwatch._alerts.rules import prometheus_rules  # noqa: PLC0415
    from callwatch._alerts.thresholds import thresholds  # noqa: PLC0415

    current = load_settings()
    out.raw(prometheus_rules(thresholds, current.error_rate_window_sec, current.alert_min_calls))
    return 0
