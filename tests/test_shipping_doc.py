"""docs/shipping.md against the files callwatch really writes.

Filebeat, Vector and Fluent Bit are not installable here, so their configurations are
checked, not run: each is parsed from the doc, its paths are matched against a real
log directory (today's plain file, a past day compressed by retention), its line limit
against a real long record, its time format against real timestamps; and every field
the doc says to index is in the records callwatch wrote.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

import callwatch
from callwatch._logging.retention import maintain
from callwatch._prices import _toml  # tomllib, or tomli on Python 3.10
from callwatch.cli._files import MAX_LINE
from callwatch.config import Retention
from callwatch.logger import audit_log, bind_call, log, perf_timer
from callwatch.monitoring import record_turn
from tests.helpers import read_records

DOC = (Path(__file__).resolve().parents[1] / "docs" / "shipping.md").read_text()
PLACEHOLDER = "/path/to/logs"
VECTOR_DEFAULT_LINE = 102_400


def block(language: str, after: str) -> str:
    """The first ``language`` code block following the text ``after``."""
    found = re.search(rf"{re.escape(after)}.*?```{language}\n(.*?)```", DOC, re.S)
    assert found, f"no {language} block after {after!r}"
    return found.group(1)


def fluent_bit(text: str) -> list[tuple[str, dict[str, str]]]:
    """Fluent Bit's classic format: ``[SECTION]`` then ``Key Value`` lines."""
    sections: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        if line.strip().startswith("["):
            sections.append((line.strip().strip("[]"), {}))
        elif line.strip():
            key, _, value = line.strip().partition(" ")
            sections[-1][1][key] = value.strip()
    return sections


def size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmM]?)", text).groups()  # type: ignore[union-attr]
    return int(number) << {"": 0, "k": 10, "m": 20}[unit.lower()]


def fields_to_index() -> list[str]:
    table = DOC.split("## Which fields to index", 1)[1]
    names: list[str] = []
    for row in table.splitlines():
        if row.startswith("| `"):
            names += re.findall(r"`([^`]+)`", row.split("|")[1])
    return names


def present(record: dict[str, Any], dotted: str) -> bool:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return value is not None


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A day of a real call's records, a long record, and a past day retention compressed."""
    from opentelemetry.sdk.trace import TracerProvider

    log_dir = tmp_path_factory.mktemp("shipping") / "logs"
    callwatch.configure(log_dir=log_dir, console=False, environment="production")
    try:
        with bind_call("ast-ship-1"):
            log.info("Call started", extra={"caller": "+15551234567"})
            with perf_timer("llm_generation"):
                pass
            record_turn("ast-ship-1", 1, 640.0, interrupted=True,
                        stages={"llm": {"ttfb_ms": 310.0}})
            with TracerProvider().get_tracer("shipping").start_as_current_span("tts"):
                try:
                    raise TimeoutError("TTS timed out")
                except TimeoutError:
                    log.exception("TTS failed")
            audit_log("Refund issued", amount_cents=1200)
            log.info("Transcript", extra={f"part_{n}": "words " * 3000 for n in range(8)})
    finally:
        callwatch.shutdown()
    today = dt.datetime.now(dt.timezone.utc).date()
    past = (today - dt.timedelta(days=3)).isoformat()
    shutil.copy(log_dir / "app" / f"app_{today}.log", log_dir / "app" / f"app_{past}.log")
    assert maintain(log_dir, Retention(), wait=True).compressed
    return log_dir


def test_every_field_the_doc_says_to_index_is_in_real_records(logs: Path) -> None:
    records = read_records(logs, "app")
    names = fields_to_index()
    assert {"call_id", "extra.latency_ms", "exception.type", "trace_id"} <= set(names)
    missing = [name for name in names if not any(present(r, name) for r in records)]
    assert missing == []


def test_the_agents_read_the_live_day_and_treat_compressed_days_as_documented(
    logs: Path,
) -> None:
    app = sorted(p.name for p in (logs / "app").iterdir() if p.name.startswith("app_"))
    plain = [name for name in app if name.endswith(".log")]
    gzipped = [name for name in app if name.endswith(".log.gz")]
    assert plain and gzipped

    def matched(globs: list[str], excluded: list[str] = []) -> list[str]:  # noqa: B006
        assert all(g.startswith(f"{PLACEHOLDER}/app/") for g in globs), globs
        names = [n for n in app if any(fnmatch.fnmatch(n, Path(g).name) for g in globs)]
        return [n for n in names if not any(re.search(x, n) for x in excluded)]

    (filebeat,) = yaml.safe_load(block("yaml", "## Filebeat"))["filebeat.inputs"]
    excluded = filebeat["prospector.scanner.exclude_files"]
    assert matched(filebeat["paths"], excluded) == plain
    assert filebeat["message_max_bytes"] >= MAX_LINE

    vector = _toml().loads(block("toml", "## Vector"))["sources"]["callwatch"]
    assert matched(vector["include"]) == app  # today, and the compressed days to backfill
    assert vector["max_line_bytes"] >= MAX_LINE

    sections = dict(fluent_bit(block("ini", "## Fluent Bit")))
    tail = sections["INPUT"]
    shell_globs = [fnmatch.translate(Path(p).name) for p in tail["Exclude_Path"].split(",")]
    assert matched([tail["Path"]], shell_globs) == plain
    assert size(tail["Buffer_Max_Size"]) >= MAX_LINE and tail["Skip_Long_Lines"] == "On"

    longest = max(len(line) for line in (logs / "app" / plain[-1]).read_bytes().splitlines())
    assert VECTOR_DEFAULT_LINE < longest <= MAX_LINE  # why the limits are raised


def test_the_time_formats_parse_real_timestamps(logs: Path) -> None:
    stamps = [r["timestamp"] for r in read_records(logs, "app")]
    (filebeat,) = yaml.safe_load(block("yaml", "## Filebeat"))["filebeat.inputs"]
    (timestamp,) = (p["timestamp"] for p in filebeat["processors"])
    assert timestamp["field"] == "timestamp"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", s)
               for s in [*stamps, *timestamp["test"]])
    vrl = block("toml", "## Vector").split("parse_timestamp!(.timestamp, format: \"")[1]
    chrono = vrl.split('"')[0].replace("%.f", ".%f")  # chrono's %.f: the dot and digits
    parser = dict(fluent_bit(block("ini", "`parsers.conf`:")))["PARSER"]
    assert parser["Time_Key"] == "timestamp"
    strftime = parser["Time_Format"].replace("%L", "%f")  # Fluent Bit's %L: fractional secs
    for text in stamps:
        dt.datetime.strptime(text, chrono)
        dt.datetime.strptime(text, strftime)
