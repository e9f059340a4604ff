"""``callwatch audit verify``: prove the audit trail was not edited, deleted from or reordered.

Each audit record carries a hash chain (``seq``, ``prev``, ``hash``; an HMAC
when AUDIT_HMAC_KEY is set). Verification reports, per file, the first line
where the chain breaks; any break exits 1 so a cron job or CI step notices.
A file the OS refuses to read is UNREADABLE, not TAMPERED: its content is
unknown, and the run exits 2 (unless another file was tampered with).
"""

from __future__ import annotations

import argparse
import errno
import os
import stat
from pathlib import Path

from callwatch.cli._render import Output
from callwatch.config import load_settings

__all__ = ["add_parser", "run_verify"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "audit", help="audit trail integrity", description="Audit trail integrity."
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify",
        help="check the audit files' hash chain; exit 1 on tampering",
        description=(
            "Check the hash chain of audit files (every day under LOG_DIR/audit, plain or "
            "gzipped, or the FILES given). Prints each file's status and the first bad "
            "line; exits 1 if any file was tampered with, else 2 if a file could not be "
            "read. Uses AUDIT_HMAC_KEY when set."
        ),
    )
    verify.add_argument("files", nargs="*", type=Path, metavar="FILES", help="audit files")
    verify.add_argument("--log-dir", type=Path, help="log root (default: LOG_DIR or ./logs)")
    verify.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace, out: Output) -> int:
    from callwatch._logging.audit import verify_dir, verify_file  # noqa: PLC0415

    key = load_settings().audit_hmac_key
    if args.files:
        missing = [path for path in args.files if not path.is_file()]
        if missing:
            out.error(f"no such file: {missing[0]}")
            return 2
        results = [(path, verify_file(path, key)) for path in args.files]
    else:
        if not args.log_dir.is_dir():
            out.error(f"no log directory at {args.log_dir}")
            return 2
        results = verify_dir(args.log_dir, key) if _has_audit_folder(args.log_dir) else []
        if not results:
            out.error(f"no audit files under {args.log_dir / 'audit'}")
            return 1
    tampered = unreadable = 0
    for path, result in results:
        if result.ok:
            out.line(
                ("ok         ", "bold green"),
                (f"{path}", ""),
                (f"  {result.records} records", "dim"),
            )
        elif result.unreadable:
            unreadable += 1
            out.line(("UNREADABLE ", "bold yellow"), (f"{path}", ""), (f"  {result.reason}", ""))
        else:
            tampered += 1
            out.line(
                ("TAMPERED   ", "bold red"),
                (f"{path}", ""),
                (f"  first bad line {result.first_bad_line}: {result.reason}", "red"),
            )
    intact = len(results) - tampered - unreadable
    summary = f"{intact} of {len(results)} file(s) intact"
    if unreadable:
        summary += f", {unreadable} unreadable"
    out.text(summary, "bold red" if tampered or unreadable else "bold green")
    return 1 if tampered else 2 if unreadable else 0


def _has_audit_folder(log_dir: Path) -> bool:
    """Whether ``log_dir/audit`` exists; raises when it exists but cannot be listed as a folder."""
    folder = log_dir / "audit"
    try:
        mode = os.stat(folder).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    return True
