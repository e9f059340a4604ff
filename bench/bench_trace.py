"""How fast `callwatch trace` reconstructs one call from ~1 GB of logs.

Generates a realistic log directory once (six UTC days of a busy voice agent:
app/, errors/, audit/, performance/, in the logging core's record format),
then times, side by side on the same warm page cache:

- `callwatch trace ID --json` as a user runs it (a fresh interpreter), on the
  directory with every day plain, and with the five past days gzipped;
- the floors: `cat` (reading the bytes), `grep -F` (finding the lines) and
  `gzip -dc` (decompressing the past days);
- the peer approach: JSON-parsing every line and keeping the call's records.

Prints a markdown section and writes it to bench/results/trace.md.
"""

from __future__ import annotations

import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "trace.md"
TARGET_BYTES = 1 << 30
DAYS = [f"2024-01-{d:02d}" for d in range(4, 10)]
CALLS_PER_BLOCK = 1000
PLACEHOLDER = b"@@@@@@"
REPEATS = 3
# Targets: a whole gigabyte in seconds, interpreter start-up included.
TARGET_PLAIN_SEC = 3.0
TARGET_GZIP_SEC = 10.0


def _record(
    ts: str, level: str, logger: str, message: str, call_id: str | None, **extra: object
) -> dict[str, object]:
    return {
        "timestamp": ts,
        "level": level,
        "logger": logger,
        "function": "handle",
        "line": 145,
        "message": message,
        "app": "ai_voice_agent",
        "environment": "production",
        "call_id": call_id,
        "extra": extra,
    }


def _call_records(n: int, day: str) -> dict[str, list[bytes]]:
    """One call's lines per folder: ~20 app records, 12 performance, 1 audit, rare errors."""
    call_id = f"ast-{PLACEHOLDER.decode()}-{n:05d}"
    out: dict[str, list[bytes]] = {"app": [], "performance": [], "audit": [], "errors": []}
    second = n % 3600
    clock = f"{day}T{second // 3600 + 10:02d}:{second % 3600 // 60:02d}:{second % 60:02d}"

    def add(folder: str, rec: dict[str, object]) -> None:
        line = orjson.dumps(rec)
        out["app"].append(line)
        if folder != "app":
            out[folder].append(line)

    add(
        "app",
        _record(
            f"{clock}.000100Z",
            "INFO",
            "app.telephony.asterisk_ari",
            "Call started",
            call_id,
            caller="+1555010" + f"{n % 10000:04d}",
            extension="100",
        ),
    )
    for turn in range(1, 5):
        for i, (op, ms) in enumerate(
            (("stt_transcription", 241.7), ("llm_generation", 388.2), ("tts_synthesis", 117.9))
        ):
            add(
                "performance",
                _record(
                    f"{clock}.{turn}{i}0000Z",
                    "INFO",
                    "callwatch.perf",
                    f"{op} completed",
                    call_id,
                    operation=op,
                    duration_ms=ms + turn,
                    success=True,
                    turn=turn,
                ),
            )
        add(
            "app",
            _record(
                f"{clock}.{turn}50000Z",
                "INFO",
                "app.agent",
                "Turn completed",
                call_id,
                turn=turn,
                response_ms=747.8,
                within_budget=True,
            ),
        )
        add(
            "app",
            _record(
                f"{clock}.{turn}60000Z",
                "DEBUG",
                "app.agent.dialogue",
                "Dialogue state updated",
                call_id,
                intent="billing",
                slots=3,
            ),
        )
    if n % 50 == 0:
        error = _record(f"{clock}.900000Z", "ERROR", "app.agent", "Call failed", call_id)
        error["exception"] = {
            "type": "LLMError",
            "message": "503 Service Unavailable",
            "frames": [{"file": "agent.py", "line": 88, "function": "generate"}],
        }
        add("errors", error)
    audit = _record(
        f"{clock}.950000Z",
        "INFO",
        "callwatch.audit",
        "Call completed",
        call_id,
        duration_sec=14.2,
        success=n % 50 != 0,
    )
    audit["extra"] = {"call_id": call_id, **audit["extra"]}  # type: ignore[dict-item]
    audit["chain"] = {"seq": n, "prev": "9f" * 32, "hash": "a1" * 32}
    add("audit", audit)
    return out


def _block(day: str) -> dict[str, bytes]:
    lines: dict[str, list[bytes]] = {"app": [], "performance": [], "audit": [], "errors": []}
    for n in range(CALLS_PER_BLOCK):
        for folder, rows in _call_records(n, day).items():
            lines[folder].extend(rows)
    return {folder: b"\n".join(rows) + b"\n" for folder, rows in lines.items()}


def generate(root: Path) -> tuple[int, str, str]:
    """Write ~1 GiB; returns (bytes, a call id on the last day, a call id on the first day)."""
    prefixes = {"app": "app", "errors": "error", "audit": "audit", "performance": "performance"}
    blocks = {day: _block(day) for day in DAYS}
    per_block = sum(len(b) for b in blocks[DAYS[0]].values())
    blocks_per_day = max(1, TARGET_BYTES // per_block // len(DAYS))
    total = 0
    for d, day in enumerate(DAYS):
        for folder, prefix in prefixes.items():
            (root / folder).mkdir(parents=True, exist_ok=True)
            with open(root / folder / f"{prefix}_{day}.log", "wb") as handle:
                for b in range(blocks_per_day):
                    tag = f"{d:02d}{b:04d}".encode()
                    handle.write(blocks[day][folder].replace(PLACEHOLDER, tag))
            total += (root / folder / f"{prefix}_{day}.log").stat().st_size
    middle = blocks_per_day // 2
    last = f"ast-{len(DAYS) - 1:02d}{middle:04d}-00500"
    first = f"ast-00{middle:04d}-00500"
    return total, last, first


def gzip_past_days(plain: Path, mixed: Path) -> None:
    """A copy of ``plain`` whose days before the last are gzipped, as retention leaves them."""
    jobs = []
    for path in plain.rglob("*.log"):
        target = mixed / path.relative_to(plain)
        target.parent.mkdir(parents=True, exist_ok=True)
        if DAYS[-1] in path.name:
            shutil.copyfile(path, target)
        else:
            jobs.append((path, target.with_name(target.name + ".gz")))

    def pack(job: tuple[Path, Path]) -> None:
        with open(job[0], "rb") as source, gzip.open(job[1], "wb", compresslevel=6) as out:
            shutil.copyfileobj(source, out, 1 << 20)

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        list(pool.map(pack, jobs))


def timed(command: list[str], *, keep: bool = True) -> tuple[float, bytes]:
    """Median seconds of ``command``; its output is kept only when asked (floors discard it)."""
    runs, output = [], b""
    for _ in range(REPEATS):
        began = time.perf_counter()
        done = subprocess.run(
            command, stdout=subprocess.PIPE if keep else subprocess.DEVNULL, check=False
        )
        runs.append(time.perf_counter() - began)
        output = done.stdout or b""
    return statistics.median(runs), output


def trace_command(log_dir: Path, call_id: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "callwatch.cli",
        "trace",
        call_id,
        "--log-dir",
        str(log_dir),
        "--json",
    ]


def naive_parse_all(log_dir: Path, call_id: str) -> tuple[float, int]:
    """The peer: parse every line of every plain file, keep the call's records."""
    began, kept = time.perf_counter(), 0
    for path in sorted(log_dir.rglob("*.log")):
        with open(path, "rb") as handle:
            for line in handle:
                if orjson.loads(line).get("call_id") == call_id:
                    kept += 1
    return time.perf_counter() - began, kept


def main() -> None:
    bench_began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="callwatch-bench-trace-") as tmp:
        plain, mixed = Path(tmp) / "plain", Path(tmp) / "mixed"
        began = time.perf_counter()
        total, last_call, first_call = generate(plain)
        generated = time.perf_counter() - began
        began = time.perf_counter()
        gzip_past_days(plain, mixed)
        packed = time.perf_counter() - began
        gz_bytes = sum(p.stat().st_size for p in mixed.rglob("*") if p.is_file())
        plain_files = [str(p) for p in sorted(plain.rglob("*.log"))]
        gz_files = [str(p) for p in sorted(mixed.rglob("*.gz"))]

        t_plain, out = timed(trace_command(plain, last_call))
        found = orjson.loads(out)
        t_plain_first, _ = timed(trace_command(plain, first_call))
        t_mixed, out_mixed = timed(trace_command(mixed, first_call))
        found_mixed = orjson.loads(out_mixed)
        t_cat, _ = timed(["cat", *plain_files], keep=False)
        t_grep, _ = timed(["grep", "-F", "-c", last_call, *plain_files], keep=False)
        t_zcat, _ = timed(["gzip", "-dc", *gz_files], keep=False)
        past_bytes = sum(p.stat().st_size for p in plain.rglob("*.log") if DAYS[-1] not in p.name)
        t_naive, naive_kept = naive_parse_all(plain, last_call)

    gb = total / 1e9
    rows = [
        ("`callwatch trace --json`, all days plain", t_plain, gb / t_plain),
        ("`callwatch trace --json`, call on the first day", t_plain_first, gb / t_plain_first),
        ("`callwatch trace --json`, past days gzipped", t_mixed, gb / t_mixed),
        ("floor: `cat` all plain files (to /dev/null)", t_cat, gb / t_cat),
        ("floor: `grep -F -c ID` all plain files", t_grep, gb / t_grep),
        ("floor: `gzip -dc` the gzipped days (to /dev/null)", t_zcat, past_bytes / 1e9 / t_zcat),
        ("peer: JSON-parse every line (orjson, one pass)", t_naive, gb / t_naive),
    ]
    met_plain = t_plain <= TARGET_PLAIN_SEC
    met_mixed = t_mixed <= TARGET_GZIP_SEC
    lines = [
        "## callwatch trace over ~1 GB of logs",
        "",
        f"Data: {total / 1e9:.2f} GB uncompressed in {len(plain_files)} files (6 days x 4 "
        f"folders, {CALLS_PER_BLOCK} calls per block, ~38 records per call); gzipped copy: "
        f"{gz_bytes / 1e9:.2f} GB on disk (5 past days gzipped, level 6). Generated in "
        f"{generated:.1f} s, gzipped in {packed:.1f} s. Medians of {REPEATS} warm-cache runs; "
        f"`callwatch` times include interpreter start-up. {os.cpu_count()} CPUs.",
        "",
        "| run | seconds | GB/s (uncompressed) | vs grep |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, sec, rate in rows:
        lines.append(f"| {name} | {sec:.2f} | {rate:.2f} | {sec / t_grep:.2f}x |")
    lines += [
        "",
        f"Found {len(found['records'])} records of {last_call} (the peer kept {naive_kept} "
        "lines: the same records in two folders, not merged) and "
        f"{len(found_mixed['records'])} of {first_call} in a gzipped day.",
        "",
        f"- Target: 1 GB plain in <= {TARGET_PLAIN_SEC:g} s: "
        f"**{'met' if met_plain else 'NOT met'}** ({t_plain:.2f} s).",
        f"- Target: 1 GB with past days gzipped in <= {TARGET_GZIP_SEC:g} s: "
        f"**{'met' if met_mixed else 'NOT met'}** ({t_mixed:.2f} s; bounded by gzip "
        "decompression: compare the `gzip -dc` floor).",
        f"- Whole benchmark: {time.perf_counter() - bench_began:.0f} s.",
    ]
    text = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
