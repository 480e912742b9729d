"""``consortia keys signing …`` and ``consortia checkpoint``: checkpoint signing keys recorded in
the ledger, and signed checkpoints of the ledger's Merkle tree."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from audit.store import parse_database_url


def _reason(e: BaseException) -> str:
    """One line for the operator: an OSError's text without errno noise."""
    if isinstance(e, OSError) and e.strerror and e.filename is not None:
        return f"{e.filename}: {e.strerror}"
    return str(e)


def cmd_signing_create(args: argparse.Namespace) -> int:
    from audit import signing
    from audit.store import open_registry

    registry = open_registry(args.database)
    try:
        key_id, vkey = signing.create_signing_key(registry, Path(args.out), name=args.name)
    except (OSError, ValueError) as e:  # FileExistsError, a missing directory, …
        print(f"consortia keys signing create: {_reason(e)}", file=sys.stderr)
        return 2
    finally:
        registry.close()
    print(vkey)
    print(f"key {key_id} recorded in the ledger; private key written to {args.out} (mode 0600). "
          "Publish the line above: auditors verify checkpoints with it.", file=sys.stderr)
    return 0


def cmd_signing_rotate(args: argparse.Namespace) -> int:
    """New key recorded; the current head countersigned by old and new; the old key revoked."""
    from audit import checkpoints as cp
    from audit import signing
    from audit.keyring import KeyringError
    from audit.store import open_registry

    db = parse_database_url(args.database)
    registry = open_registry(args.database)
    out, old_path = Path(args.out), signing.key_path(args.key)
    try:
        old_id = f"{cp.load_signer(old_path, args.name or signing.origin()).key_id:08x}"
        # Refuse before anything is written: a rotation away from a key the ledger does not hold
        # as active would record a new key and then fail to countersign with the old one. (An
        # unusable --out is refused by create_signing_key before it records anything.)
        if old_id not in signing.keyring(registry).active():
            raise KeyringError(f"key {old_id} in {old_path} is not an active key of this ledger "
                               "(unknown or revoked): nothing to rotate")
        key_id, vkey = signing.create_signing_key(registry, out, name=args.name)
        head = signing.sign_checkpoint(db, old_path, name=args.name)
        signing.countersign(db, head.note, out, name=args.name)
        signing.revoke_signing_key(registry, old_id, reason=args.reason)
    except (OSError, ValueError, KeyringError, cp.KeyFileError, cp.CheckpointError) as e:
        print(f"consortia keys signing rotate: {_reason(e)}", file=sys.stderr)
        return 2
    finally:
        registry.close()
    print(vkey)
    print(f"rotated: {old_id} → {key_id}; the head of size {head.size} is signed by both",
          file=sys.stderr)
    return 0


def cmd_signing_revoke(args: argparse.Namespace) -> int:
    from audit import signing
    from audit.keyring import KeyringError
    from audit.store import open_registry

    registry = open_registry(args.database)
    try:
        signing.revoke_signing_key(registry, args.key_id, reason=args.reason)
    except KeyringError as e:
        print(f"consortia keys signing revoke: {e}", file=sys.stderr)
        return 1
    finally:
        registry.close()
    print(f"revoked signing key {args.key_id}")
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from audit import checkpoints as cp
    from audit import signing

    db = parse_database_url(args.database)
    try:
        stored = signing.sign_checkpoint(db, signing.key_path(args.key), name=args.name)
    except (cp.KeyFileError, cp.CheckpointError) as e:
        print(f"consortia checkpoint: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(stored.note)
    return 0


def register_signing(keys: Any) -> None:
    p = keys.add_parser("signing", help="checkpoint signing keys (recorded in the ledger)")
    signing = p.add_subparsers(dest="signing_command", required=True)
    k = signing.add_parser("create", help="new Ed25519 key: PEM file (0600) + vkey in the ledger")
    k.add_argument("--out", required=True, help="where to write the private key (must not exist)")
    k.add_argument("--name", default=None, help="key name (default: the log origin)")
    k.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    k.set_defaults(func=cmd_signing_create)
    k = signing.add_parser("rotate", help="new key; head signed by both; old key revoked")
    k.add_argument("--key", default=None, help="the current key's PEM (default $CONSORTIA_SIGNING_KEY)")
    k.add_argument("--out", required=True, help="where to write the new private key")
    k.add_argument("--name", default=None)
    k.add_argument("--reason", default="scheduled rotation")
    k.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    k.set_defaults(func=cmd_signing_rotate)
    k = signing.add_parser("revoke", help="revoke a key (compromised, retired)")
    k.add_argument("key_id", help="8 hex digits")
    k.add_argument("--reason", required=True)
    k.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    k.set_defaults(func=cmd_signing_revoke)


def register(sub: Any) -> None:
    p = sub.add_parser("checkpoint", help="sign the ledger's current tree head and store it")
    p.add_argument("--key", default=None, help="private key PEM (default $CONSORTIA_SIGNING_KEY)")
    p.add_argument("--name", default=None, help="key name (default: the log origin)")
    p.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_checkpoint)


def cmd_export(args: argparse.Namespace) -> int:
    from audit import signing, tree
    from audit.export import ExportError, export_bundle

    db = parse_database_url(args.database)
    tree.integrate(db)
    notes = [s.note for s in signing.stored_checkpoints(db)]
    try:
        written = export_bundle(db, Path(args.out), origin=signing.origin(), checkpoints=notes,
                                keys=signing.key_validities(db))
    except (ExportError, OSError) as e:  # exists, a directory, no such directory, no right
        print(f"consortia export: {e}", file=sys.stderr)
        return 2
    print(f"{written} records and {len(notes)} checkpoints written to {args.out}; verify it "
          f"anywhere with: python audit/offline.py {args.out} --key <published vkey>",
          file=sys.stderr)
    return 0


def register_export(sub: Any) -> None:
    p = sub.add_parser("export", help="a self-contained evidence bundle for offline verification")
    p.add_argument("--out", required=True, help="the bundle file to write (must not exist)")
    p.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_export)
