"""The ``consortia`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from audit import ledger
from audit.store import DatabaseURLError, parse_database_url


def _progress_bar(total: int) -> Callable[[int], None] | None:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty() or total <= 0:
        return None
    started = time.monotonic()
    last = [0.0]

    def show(done: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.1 and done < total:
            return
        last[0] = now
        width = 40
        filled = int(width * min(done, total) / total)
        rate = done / max(now - started, 1e-9)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                         f"{rate:,.0f}/s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def cmd_verify(args: argparse.Namespace) -> int:
    from audit.verify import verify_chain

    db = parse_database_url(args.database)
    progress = None if args.json else _progress_bar(ledger.count(db))
    report = verify_chain(db, progress=progress)
    if args.json:
        print(report.to_json())
    elif report.ok:
        print(f"ledger intact: {report.records} records, head position {report.head_position}, "
              f"head hash {report.head_hash}  [{report.database}]")
    else:
        first = report.first
        assert first is not None
        print(f"LEDGER DAMAGED at position {first.position}: {first.kind} — {first.detail}")
        for d in report.damage[1:]:
            print(f"  also position {d.position}: {d.kind} — {d.detail}")
        if report.truncated_damage:
            print("  (more damage not listed)")
    return 0 if report.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from api.demo import record_demo
    from audit.store import open_registry

    registry = open_registry(args.database)
    summary = record_demo(registry)
    for line in summary:
        print(line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="consortia",
        description="江苏省创新联合体登记簿 / Jiangsu innovation-consortium registry")
    parser.add_argument("--database", metavar="URL", default=None,
                        help="sqlite:///path or postgresql://… (default: $CONSORTIA_DATABASE_URL "
                             "or sqlite:///var/consortia.db)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verify", help="walk the whole hash chain; exit 1 at the first damage")
    p.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("demo", help="record a realistic demo history through the domain")
    p.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_demo)

    from api.cli_projections import register as register_projections

    register_projections(sub)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except DatabaseURLError as e:
        print(f"consortia: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
