"""Audit chain: one verifiable chain per file across processes; every tampering reported."""

from __future__ import annotations

import gzip
import multiprocessing
from pathlib import Path
from typing import Any

import orjson
import pytest

from callwatch._logging.audit import AuditChain, verify_dir, verify_file


def render(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record) + b"\n"


def write(path: Path, count: int, key: str | None = None, start: int = 0) -> None:
    chain = AuditChain(key)
    try:
        for i in range(start, start + count):
            chain.append(path, {"message": "Payment processed", "extra": {"n": i}}, render)
    finally:
        chain.close()


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture
def audit_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit" / "audit_2024-01-04.log"
    write(path, 10)
    return path


def test_intact_chain_verifies(audit_file: Path) -> None:
    result = verify_file(audit_file)
    assert (result.ok, result.records, result.first_bad_line) == (True, 10, None)
    first = orjson.loads(lines(audit_file)[0])
    assert first["chain"]["seq"] == 1 and len(first["chain"]["hash"]) == 64


def test_append_returns_the_written_line_and_sets_chain(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    record: dict[str, Any] = {"message": "x"}
    line = AuditChain(None).append(path, record, render)
    assert path.read_bytes() == line
    assert orjson.loads(line)["chain"] == record["chain"]


def _worker(path: str, worker: int) -> None:
    chain = AuditChain("k3y")
    for i in range(200):
        chain.append(Path(path), {"message": "event", "extra": {"w": worker, "i": i}}, render)
    chain.close()


def test_three_processes_build_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit_2024-01-04.log"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(str(path), w)) for w in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    result = verify_file(path, key="k3y")
    assert result.ok, result
    assert result.records == 600
    seen = {(r["extra"]["w"], r["extra"]["i"]) for r in map(orjson.loads, lines(path))}
    assert seen == {(w, i) for w in range(3) for i in range(200)}


def _tamper(path: Path, edit: Any) -> None:
    path.write_bytes(b"".join(edit(lines(path))))


def _edit_value(ls: list[bytes]) -> list[bytes]:
    ls[4] = ls[4].replace(b'"n":4', b'"n":5')
    return ls


def _forge(ls: list[bytes]) -> list[bytes]:
    forged = orjson.loads(ls[4])
    forged["extra"]["n"] = 99
    return [*ls[:4], render(forged), *ls[4:]]


@pytest.mark.parametrize(
    ("edit", "bad_line", "words"),
    [
        (_edit_value, 5, "hash"),
        (lambda ls: ls[:4] + ls[5:], 5, "deleted"),
        (_forge, 5, "forged"),
        (lambda ls: [*ls[:4], ls[5], ls[4], *ls[6:]], 5, "reordered"),
        (lambda ls: [*ls[:9], ls[9][:20]], 10, "cut mid-line"),
        (lambda ls: ls[:7], 8, "removed from the end"),
        (lambda ls: ls[1:], 1, "deleted"),
    ],
    ids=["edit", "delete", "insert", "swap", "truncate-mid-line", "truncate-at-boundary",
         "delete-first"],
)
def test_tampering_is_reported_at_the_first_bad_line(
    audit_file: Path, edit: Any, bad_line: int, words: str
) -> None:
    _tamper(audit_file, edit)
    result = verify_file(audit_file)
    assert not result.ok
    assert result.first_bad_line == bad_line, result
    assert words in result.reason


def test_hmac_key_is_required_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "audit_2024-01-04.log"
    write(path, 5, key="right")
    assert verify_file(path, key="right").ok
    wrong = verify_file(path, key="wrong")
    assert (wrong.ok, wrong.first_bad_line) == (False, 1)
    assert "key" in wrong.reason
    keyless = verify_file(path)
    assert not keyless.ok and "AUDIT_HMAC_KEY" in keyless.reason


def test_unkeyed_rewrite_of_keyed_file_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "audit_2024-01-04.log"
    write(path, 3)  # an attacker without the key rewrites the day with plain SHA-256
    result = verify_file(path, key="right")
    assert not result.ok and result.first_bad_line == 1


def test_file_copied_under_another_day_is_caught(tmp_path: Path, audit_file: Path) -> None:
    other = tmp_path / "audit_2024-01-05.log"
    other.write_bytes(audit_file.read_bytes())
    (tmp_path / "audit_2024-01-05.log.head").write_bytes(
        (audit_file.parent / "audit_2024-01-04.log.head").read_bytes()
    )
    result = verify_file(other)
    assert not result.ok and result.first_bad_line == 1


def test_gzipped_file_verifies_and_tampering_still_shows(audit_file: Path) -> None:
    packed = audit_file.with_name(audit_file.name + ".gz")
    packed.write_bytes(gzip.compress(audit_file.read_bytes()))
    audit_file.unlink()
    assert verify_file(packed).ok
    packed.write_bytes(gzip.compress(b"".join(lines_of_gz(packed)[:6])))
    result = verify_file(packed)
    assert (result.ok, result.first_bad_line) == (False, 7)


def lines_of_gz(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).splitlines(keepends=True)


def test_crash_mid_line_is_reported_and_writing_continues(audit_file: Path) -> None:
    with audit_file.open("ab") as f:
        f.write(b'{"message": "half a rec')
    write(audit_file, 2, start=100)
    result = verify_file(audit_file)
    assert (result.ok, result.first_bad_line) == (False, 11)
    # the records after the torn line still chain to the last whole record
    tail = [orjson.loads(line) for line in lines(audit_file)[-2:]]
    assert [r["chain"]["seq"] for r in tail] == [11, 12]


def test_missing_anchor_is_reported(audit_file: Path) -> None:
    (audit_file.parent / "audit_2024-01-04.log.head").unlink()
    result = verify_file(audit_file)
    assert not result.ok and "anchor" in result.reason


def test_verify_dir_checks_every_day(tmp_path: Path) -> None:
    write(tmp_path / "audit" / "audit_2024-01-04.log", 3)
    write(tmp_path / "audit" / "audit_2024-01-05.log", 4)
    results = verify_dir(tmp_path)
    assert [(p.name, r.ok, r.records) for p, r in results] == [
        ("audit_2024-01-04.log", True, 3),
        ("audit_2024-01-05.log", True, 4),
    ]


def test_empty_file_is_intact(tmp_path: Path) -> None:
    path = tmp_path / "audit_2024-01-04.log"
    path.touch()
    assert verify_file(path).ok


def test_an_anchor_the_system_refuses_is_unreadable_not_tampering(audit_file: Path) -> None:
    head = audit_file.parent / "audit_2024-01-04.log.head"
    head.unlink()
    head.symlink_to("/proc/self/mem")  # reading it fails with EIO, even as root
    result = verify_file(audit_file)
    assert (result.ok, result.unreadable) == (False, True)
    assert "anchor" in result.reason and "Input/output error" in result.reason


def test_a_damaged_anchor_is_reported_as_damaged(audit_file: Path) -> None:
    (audit_file.parent / "audit_2024-01-04.log.head").write_bytes(b'{"seq": ')
    result = verify_file(audit_file)
    assert (result.ok, result.unreadable) == (False, False)
    assert "damaged" in result.reason
