"""The ``consortia`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from api.sqlstore import SqlStore, StoreUnavailable
from audit import ledger
from audit.store import DatabaseURLError, parse_database_url
from domain.errors import DomainError
from domain.records import Role

if TYPE_CHECKING:
    from api.auth import KeyStore


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


class _Unusable(Exception):
    """A command-line argument the command cannot use (exit 2)."""


def _checkpoints_for(args: argparse.Namespace, db: Any) -> tuple[list[Any], list[str]]:
    from pathlib import Path

    from audit.checkpoints import MalformedKey
    from audit.signing import verified_checkpoints

    notes = []
    for f in args.checkpoint or ():
        try:
            notes.append((f"checkpoint file {f}", Path(f).read_text(encoding="utf-8")))
        except OSError as e:
            raise _Unusable(f"--checkpoint {f}: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise _Unusable(f"--checkpoint {f}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    try:
        return verified_checkpoints(db, notes=notes, trusted_vkeys=list(args.key or ()))
    except MalformedKey as e:
        raise _Unusable(f"--key: {e}") from e


def cmd_verify(args: argparse.Namespace) -> int:
    import json

    from audit.verify import verify_chain

    db = parse_database_url(args.database)
    total = ledger.count(db)
    from audit.verify import UntrustedStart, start_at

    try:
        checkpoints, problems = _checkpoints_for(args, db)
    except _Unusable as e:
        print(f"consortia verify: {e}", file=sys.stderr)
        return 2
    start = None
    if args.from_checkpoint:
        if not checkpoints:
            print("consortia verify: --from-checkpoint needs a verified checkpoint", file=sys.stderr)
            return 2
        try:
            start = start_at(db, checkpoints[-1])
        except UntrustedStart as e:
            problems.append(str(e))
    start_size = start.frontier.size if start is not None else None
    report = verify_chain(db, progress=None if args.json else _progress_bar(total),
                          checkpoints=checkpoints, start=start)
    semantic = None
    if args.semantic:
        from audit.semantic import semantic_audit

        semantic = semantic_audit(db, progress=None if args.json else _progress_bar(total))
    covered = max((c.size for c in checkpoints), default=0)
    uncovered = max(report.tree_size - covered, 0) if report.ok else None
    if args.json:
        out = json.loads(report.to_json())
        out["checkpoint_problems"] = problems
        out["checkpoint_covers"] = covered
        out["records_after_last_checkpoint"] = uncovered
        out["incremental_from"] = start_size
        out["ok"] = report.ok and not problems
        if semantic is not None:
            out = {"chain": out, "semantic": json.loads(semantic.to_json()),
                   "ok": out["ok"] and semantic.ok}
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        for problem in problems:
            print(f"CHECKPOINT REFUSED: {problem}")
        if start is not None:
            print(f"incremental: trusted checkpoint of size {start_size}; "
                  f"{report.records} newer records rehashed")
        if report.ok:
            print(f"ledger intact: {report.records} records, head position "
                  f"{report.head_position}, head hash {report.head_hash}  [{report.database}]")
            if uncovered:
                where = (f"after the checkpoint of size {covered}" if covered
                         else "no verified checkpoint")
                print(f"not yet under a checkpoint: the last {uncovered} records ({where}); only "
                      "the chain vouches for them (sign one with `consortia checkpoint`)")
        else:
            first = report.first
            assert first is not None
            print(f"LEDGER DAMAGED at position {first.position}: {first.kind} — {first.detail}")
            for d in report.damage[1:]:
                print(f"  also position {d.position}: {d.kind} — {d.detail}")
            if report.truncated_damage:
                print("  (more damage not listed)")
        if semantic is not None:
            if semantic.ok:
                print(f"guideline rules hold on the raw history: {semantic.audited} records of "
                      f"{semantic.consortia} consortia")
            for f in semantic.findings:
                print(f"RULE BROKEN at position {f.position} ({f.event}, consortium "
                      f"{f.consortium_id}): {f.rule} — {f.message}")
    ok = report.ok and not problems and (semantic is None or semantic.ok)
    return 0 if ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from api.demo import record_demo
    from audit.store import open_registry

    registry = open_registry(args.database)
    summary = record_demo(registry)
    for line in summary:
        print(line)
    return 0


def _key_store(database: str | None) -> tuple[KeyStore, SqlStore]:
    from api.auth import KeyStore
    from api.sqlstore import open_sql

    sql = open_sql(parse_database_url(database))
    keys = KeyStore(sql)
    keys.create_table()
    return keys, sql


def cmd_keys_create(args: argparse.Namespace) -> int:
    keys, sql = _key_store(args.database)
    try:
        record, plain = keys.create(args.role, city=args.city, name=args.name,
                                    organisation=args.organisation)
    except (ValueError, DomainError) as e:
        print(f"consortia keys create: {e}", file=sys.stderr)
        return 2
    finally:
        sql.close()
    print(plain)
    where = f" city={record.city}" if record.city else ""
    print(f"key id {record.key_id}: role={record.role.value}{where} name={record.name} "
          f"organisation={record.organisation}", file=sys.stderr)
    print("store this key now: only its SHA-256 is kept, it cannot be shown again",
          file=sys.stderr)
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    keys, sql = _key_store(args.database)
    try:
        revoked = keys.revoke(args.key_id)
    finally:
        sql.close()
    if not revoked:
        print(f"consortia keys revoke: no active key {args.key_id}", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id}")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    keys, sql = _key_store(args.database)
    try:
        records = keys.list()
    finally:
        sql.close()
    print(f"{'key id':16}  {'role':15}  {'city':11}  {'created (UTC)':19}  {'revoked (UTC)':19}  "
          "name / organisation")
    for r in records:
        revoked = r.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if r.revoked_at else "-"
        print(f"{r.key_id:16}  {r.role.value:15}  {r.city or '-':11}  "
              f"{r.created_at.strftime('%Y-%m-%d %H:%M:%S'):19}  {revoked:19}  "
              f"{r.name} / {r.organisation}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    app = create_app(args.database)
    if args.demo:
        from api.demo import record_demo

        for line in record_demo(app.state.registry):
            print(line)
    print(f"API docs: http://{args.host}:{args.port}/api/v1/docs  "
          f"[{app.state.database.display()}]", flush=True)
    print(f"Web UI / 网页: http://{args.host}:{args.port}/web/registry", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
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
    p.add_argument("--checkpoint", action="append", metavar="FILE",
                   help="a signed checkpoint the auditor holds (repeatable): its root must match")
    p.add_argument("--from-checkpoint", action="store_true",
                   help="incremental: trust the (last) checkpoint; rehash only newer records")
    p.add_argument("--key", action="append", metavar="VKEY",
                   help="a public key (vkey) the auditor trusts (repeatable): only these keys then "
                        "count, not the ledger's own keyring")
    p.add_argument("--semantic", action="store_true",
                   help="also replay the raw history through the guideline's rules (lead unit "
                        "never changed, …), independent of the projections")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("demo", help="record a realistic demo history through the domain")
    p.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_demo)

    from api.cli_projections import register as register_projections

    register_projections(sub)
    from api.cli_feed import register as register_feed

    register_feed(sub)

    p = sub.add_parser("serve", help="run the HTTP API with uvicorn")
    p.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--demo", action="store_true",
                   help="record the demo history first when the ledger is empty")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("keys", help="API keys: create, revoke, list")
    p.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    keys = p.add_subparsers(dest="keys_command", required=True)
    k = keys.add_parser("create", help="create a key and print it once (only its hash is kept)")
    k.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    k.add_argument("--role", required=True, choices=[r.value for r in Role])
    k.add_argument("--city", help="the city of a city_bureau key (e.g. nanjing)")
    k.add_argument("--name", help="recorded as the user id on every event (default: key:<id>)")
    k.add_argument("--organisation", help="e.g. 南京市科学技术局 (default: from role and city)")
    k.set_defaults(func=cmd_keys_create)
    k = keys.add_parser("revoke", help="revoke a key at once")
    k.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    k.add_argument("key_id")
    k.set_defaults(func=cmd_keys_revoke)
    from api.cli_audit import register as register_audit
    from api.cli_audit import register_export, register_signing

    register_signing(keys)
    register_audit(sub)
    register_export(sub)
    k = keys.add_parser("list", help="list keys (never their hashes)")
    k.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    k.set_defaults(func=cmd_keys_list)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except DatabaseURLError as e:
        print(f"consortia: {e}", file=sys.stderr)
        return 2
    except StoreUnavailable as e:
        print(f"consortia: database unavailable: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
