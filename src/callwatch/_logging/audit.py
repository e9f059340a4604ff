"""Tamper-evident audit files: every record chains to the one before it by hash.

Each audit line carries ``"chain": {"seq", "prev", "alg", "hash"}`` as its last
field. ``hash`` is SHA-256 (or HMAC-SHA256 with ``AUDIT_HMAC_KEY``) over the
previous record's hash followed by the rendered line in which the hash value is
a placeholder of zeros: the line's own bytes are what is signed, so verifying
never depends on re-rendering. The first record chains to a genesis value bound
to the file's name. A sidecar ``<file>.head`` holds the last seq and hash
written, so a file cut cleanly at a line boundary is caught too.

Several processes append to one file: the read-last-hash-then-append step runs
under ``flock`` on the file (audit records are rare, the lock is cheap).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import hmac
import json
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["AuditChain", "VerifyResult", "verify_dir", "verify_file"]

_PLACEHOLDER = "0" * 64
_QUOTED_PLACEHOLDER = f'"{_PLACEHOLDER}"'.encode()
_SHA256 = "sha256"
_HMAC = "hmac-sha256"
_TAIL_CHUNK = 65536
_HEAD_SUFFIX = ".head"


def _log_name(path: Path) -> str:
    """The name a chain is bound to: the same before and after gzip compression."""
    name = path.name
    return name[: -len(".gz")] if name.endswith(".gz") else name


def genesis(path: Path) -> str:
    """The ``prev`` of a file's first record (binds the chain to the file name)."""
    return hashlib.sha256(b"callwatch-audit-genesis:" + _log_name(path).encode()).hexdigest()


def _head_path(path: Path) -> Path:
    return path.with_name(_log_name(path) + _HEAD_SUFFIX)


def _digest(key: bytes | None, prev: str, canonical: bytes) -> str:
    message = prev.encode() + canonical
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _lines_backwards(fd: int, end: int) -> Iterator[bytes]:
    """Lines (without their newline) of the first ``end`` bytes of ``fd``, last first."""
    pending = b""
    position = end
    while position > 0:
        size = min(_TAIL_CHUNK, position)
        position -= size
        pending = os.pread(fd, size, position) + pending
        parts = pending.split(b"\n")
        pending = parts[0]
        yield from reversed(parts[1:])
    if pending:
        yield pending


def _chain_of(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    chain = record.get("chain") if isinstance(record, dict) else None
    if not isinstance(chain, dict):
        return None
    if not isinstance(chain.get("seq"), int) or not isinstance(chain.get("hash"), str):
        return None
    return chain


class AuditChain:
    """Appends hash-chained audit records; one chain per file across processes."""

    def __init__(self, key: str | None) -> None:
        self._key = key.encode() if key else None
        self._alg = _HMAC if key else _SHA256
        self._fds: dict[Path, int] = {}
        self._pid = os.getpid()
        self._lock = threading.Lock()  # flock does not exclude threads sharing one fd

    def append(
        self, fd_path: Path, record: dict[str, Any], render: Callable[[dict[str, Any]], bytes]
    ) -> bytes:
        """Chain ``record``, write its line to ``fd_path`` before returning, return the line."""
        with self._lock:
            fd = self._fd(fd_path)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                seq, prev, cut_short = self._last(fd, fd_path)
                record.pop("chain", None)
                record["chain"] = {"seq": seq + 1, "prev": prev, "alg": self._alg,
                                   "hash": _PLACEHOLDER}
                canonical = render(record)
                at = canonical.rfind(_QUOTED_PLACEHOLDER)
                if at < 0:
                    raise ValueError("the renderer did not keep the chain hash placeholder")
                digest = _digest(self._key, prev, canonical)
                record["chain"]["hash"] = digest
                line = b"%s\"%s\"%s" % (canonical[:at], digest.encode(),
                                        canonical[at + len(_QUOTED_PLACEHOLDER):])
                # A crash may have left half a line: end it, the verifier reports it.
                _write_all(fd, b"\n" + line if cut_short else line)
                self._write_head(fd_path, seq + 1, digest)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        return line

    def close(self) -> None:
        """Close every file this chain holds open."""
        with self._lock:
            fds, self._fds = self._fds, {}
            if self._pid == os.getpid():
                for fd in fds.values():
                    os.close(fd)

    def _fd(self, path: Path) -> int:
        if self._pid != os.getpid():
            # A forked child shares the parent's open file descriptions, and with them
            # the parent's flock: it needs descriptors of its own.
            self._fds = {}
            self._pid = os.getpid()
        fd = self._fds.get(path)
        if fd is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            self._fds[path] = fd
        return fd

    def _last(self, fd: int, path: Path) -> tuple[int, str, bool]:
        """(seq, hash) of the last chained record, and whether the file ends mid-line."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, genesis(path), False
        # The write fd cannot read: read through a second descriptor of the same file.
        reader = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            cut_short = os.pread(reader, 1, size - 1) != b"\n"
            for line in _lines_backwards(reader, size):
                chain = _chain_of(line) if line else None
                if chain is not None:
                    return int(chain["seq"]), str(chain["hash"]), cut_short
        finally:
            os.close(reader)
        return 0, genesis(path), cut_short

    def _write_head(self, path: Path, seq: int, digest: str) -> None:
        head = _head_path(path)
        temporary = head.with_name(f"{head.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        try:
            _write_all(fd, json.dumps({"seq": seq, "hash": digest}).encode() + b"\n")
        finally:
            os.close(fd)
        os.replace(temporary, head)


# ------------------------------------------------------------------ verifying


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of checking one audit file; ``first_bad_line`` is 1-based.

    ``unreadable`` means the OS refused to read the file (permissions, I/O
    error): its content is unknown, which is not evidence of tampering.
    """

    ok: bool
    records: int
    first_bad_line: int | None = None
    reason: str = ""
    unreadable: bool = False


def _open_lines(path: Path) -> Iterator[bytes]:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as compressed:
            yield from compressed
    else:
        with path.open("rb") as plain:
            yield from plain


def _check_line(line: bytes, key: bytes | None, expected_seq: int, prev: str) -> tuple[str, str]:
    """(hash, "") when the line is the expected next record, else ("", why not)."""
    if not line.endswith(b"\n"):
        return "", "the last line is incomplete: the file was cut mid-line (crash or truncation)"
    chain = _chain_of(line)
    if chain is None:
        return "", "not a chained audit record (corrupt, cut short by a crash, or inserted)"
    alg = chain.get("alg")
    if key is None and alg == _HMAC:
        return "", "records are HMAC-signed: verify with the audit key (AUDIT_HMAC_KEY)"
    if key is not None and alg != _HMAC:
        return "", "record is not HMAC-signed although a key was given (forged or rewritten)"
    seq = chain["seq"]
    if seq != expected_seq:
        return "", (f"expected record #{expected_seq}, found #{seq}: "
                    "lines were deleted, inserted or reordered")
    if chain.get("prev") != prev:
        return "", "does not chain to the previous line (inserted, reordered or edited)"
    digest = chain["hash"]
    at = line.rfind(f'"{digest}"'.encode())
    canonical = line[:at] + _QUOTED_PLACEHOLDER + line[at + len(digest) + 2:]
    if at < 0 or not hmac.compare_digest(_digest(key, prev, canonical), digest):
        wrong_key = " or the key is wrong" if key is not None else ""
        return "", f"content does not match its hash (edited or forged{wrong_key})"
    return digest, ""


def _read_head(path: Path) -> tuple[int, str] | None:
    """The anchor's ``(seq, hash)``, or None when there is none.

    Raises OSError when the system refuses to read it and ValueError when it is
    damaged: neither is the same thing as a file with no anchor.
    """
    head_path = _head_path(path)
    try:
        raw = head_path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        head = json.loads(raw)
        return int(head["seq"]), str(head["hash"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"anchor {head_path.name} is damaged: {error}") from error


def verify_file(path: Path, key: str | None = None) -> VerifyResult:
    """Check one ``.log`` or ``.log.gz`` audit file and its ``.head`` anchor."""
    key_bytes = key.encode() if key else None
    try:
        head = _read_head(path)
    except OSError as error:
        reason = f"the system refused to read its anchor: {error.strerror or error}"
        return VerifyResult(False, 0, 1, reason, unreadable=True)
    except ValueError as error:
        return VerifyResult(False, 0, 1, str(error))
    prev = genesis(path)
    records = 0
    head_hash_seen: str | None = None
    try:
        for number, line in enumerate(_open_lines(path), start=1):
            digest, why = _check_line(line, key_bytes, records + 1, prev)
            if why:
                return VerifyResult(False, records, number, why)
            records += 1
            prev = digest
            if head is not None and head[0] == records:
                head_hash_seen = digest
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:  # damaged content
        return VerifyResult(False, records, records + 1, f"cannot read the file: {error}")
    except OSError as error:
        reason = f"the system refused to read it: {error.strerror or error}"
        return VerifyResult(False, records, records + 1, reason, unreadable=True)
    if head is None:
        if records == 0:
            return VerifyResult(True, 0)
        return VerifyResult(False, records, records + 1,
                            f"anchor {_head_path(path).name} is missing: a cut tail cannot be "
                            "ruled out")
    if head[0] > records:
        return VerifyResult(False, records, records + 1,
                            f"the file ends at record #{records} but #{head[0]} was written: "
                            "lines were removed from the end")
    if head_hash_seen != head[1]:
        return VerifyResult(False, records, head[0],
                            f"record #{head[0]} differs from the one the anchor recorded")
    return VerifyResult(True, records)


def verify_dir(log_dir: Path, key: str | None = None) -> list[tuple[Path, VerifyResult]]:
    """Verify every audit file under ``log_dir`` (its ``audit/`` folder when present)."""
    folder = log_dir / "audit" if (log_dir / "audit").is_dir() else log_dir
    files = sorted(
        p for p in folder.iterdir() if p.name.endswith((".log", ".log.gz")) and p.is_file()
    )
    return [(path, verify_file(path, key)) for path in files]
