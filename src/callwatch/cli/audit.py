"""``callwatch audit verify``: prove the audit trail was not edited, deleted from or reordered.

Each audit record carries a hash chain (``seq``, ``prev``, ``hash``; an HMAC
when AUDIT_HMAC_KEY is set). Verification reports, per file, the first line
where the chain breaks; any break exits 1 so a cron job or CI step notices.
"""

from __future__ import annotations

import argparse
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
            "line; exits 1 if any file was tampered with. Uses AUDIT_HMAC_KEY when set."
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
        audit_dir = args.log_dir / "audit"
        results = verify_dir(args.log_dir, key) if audit_dir.is_dir() else []
        if not results:
            out.error(f"no audit files under {args.log_dir / 'audit'}")
            return 1
    bad = 0
    for path, result in results:
        if result.ok:
            out.line(
                ("ok       ", "bold green"), (f"{path}", ""), (f"  {result.records} records", "dim")
            )
            continue
        bad += 1
        out.line(
            ("TAMPERED ", "bold red"),
            (f"{path}", ""),
            (f"  first bad line {result.first_bad_line}: {result.reason}", "red"),
        )
    out.text(
        f"{len(results) - bad} of {len(results)} file(s) intact",
        "bold red" if bad else "bold green",
    )
    return 1 if bad else 0
