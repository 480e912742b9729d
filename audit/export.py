"""Evidence bundles: the raw ledger with its checkpoints and public keys in one JSON file, and the
single-record proof bundle an auditor attaches to a finding. Both are verified on another machine
by ``python -m audit.offline`` (standard library and ``cryptography`` only). The formats are
specified in docs/ledger.md, "Evidence bundles".

The exporter writes what is stored and judges nothing: a record whose bytes were edited is exported
as it now is (the offline verifier names it), a position that has lost its record or its link is
exported with that half ``null``. It checks only what it is given: the origin, the form and origin
of each checkpoint note, and the verifier keys with their validity windows (in tree sizes).

``export_bundle`` streams: records are read in keyset-paginated batches (``audit.ledger.rows``)
and written one by one, so memory does not grow with the ledger. The file appears complete or not
at all: it is written to a temporary file in the same directory, synced, then moved to its name
without ever replacing an existing file.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from audit import ledger, tree
from audit.chain import canonical_id
from audit.checkpoints import Checkpoint, KeyValidity, MalformedCheckpoint, sync_directory, valid_name
from audit.checkpoints import parse as parse_note
from audit.store import Database, parse_database_url, sqlite_connect

__all__ = [
    "EVIDENCE_FORMAT",
    "RECORD_PROOF_FORMAT",
    "ExportError",
    "export_bundle",
    "normalise_keys",
    "record_entry",
    "record_proof_bundle",
]

EVIDENCE_FORMAT = "jiangsu-consortia-evidence/v1"
RECORD_PROOF_FORMAT = "jiangsu-consortia-record-proof/v1"

KeySpec = Mapping[str, Any] | KeyValidity
"""A key for a bundle: ``{"vkey": str, "valid_from": int = 0, "revoked_at": int | None = None}``
(tree sizes, as ``audit.KeyValidity`` counts them) or a ``KeyValidity``."""


class ExportError(ValueError):
    """What the exporter was given cannot go into a bundle (origin, checkpoint note or key)."""


def _database(db: Database | str) -> Database:
    return db if isinstance(db, Database) else parse_database_url(db)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalise_keys(keys: Iterable[KeySpec]) -> list[dict[str, Any]]:
    """The bundle's ``keys`` list: each key checked (well-formed vkey, id matching, a validity
    window with ``0 <= valid_from <= revoked_at``), in canonical form, none listed twice."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for key in keys:
        if isinstance(key, KeyValidity):
            validity = key
        else:
            if not isinstance(key, Mapping) or "vkey" not in key \
                    or set(key) - {"vkey", "valid_from", "revoked_at"}:
                raise ExportError(f"a key is {{'vkey', 'valid_from', 'revoked_at'}}, not {key!r}")
            try:
                validity = KeyValidity.from_vkey(
                    key["vkey"], key.get("valid_from", 0), key.get("revoked_at"))
            except ValueError as exc:  # MalformedKey is a ValueError
                raise ExportError(f"unusable key {key.get('vkey')!r}: {exc}") from exc
        if validity.label in seen:
            raise ExportError(f"the key {validity.label} is listed twice")
        seen.add(validity.label)
        out.append({"vkey": validity.vkey, "valid_from": validity.valid_from_position,
                    "revoked_at": validity.revoked_at_position})
    return out


def _checked_note(note: object, origin: str | None) -> Checkpoint:
    if not isinstance(note, str):
        raise ExportError(f"a checkpoint is the text of a signed note, not {type(note).__name__}")
    try:
        checkpoint, _ = parse_note(note)
    except MalformedCheckpoint as exc:
        raise ExportError(f"malformed checkpoint note: {exc}") from exc
    if origin is not None and checkpoint.origin != origin:
        raise ExportError(f"a checkpoint of {checkpoint.origin!r} in a bundle of {origin!r}")
    return checkpoint


def record_entry(row: ledger.Row) -> dict[str, Any]:
    """One position as a bundle record: the exact stored bytes (base64) and the link (hex). A
    half that is not stored (a deleted record, a record without link) is ``null``."""
    rec, link = row.record, row.link
    return {
        "position": row.position,
        "originator_id": None if rec is None else canonical_id(rec.originator_id),
        "originator_version": None if rec is None else rec.originator_version,
        "topic": None if rec is None else rec.topic,
        "state": None if rec is None else base64.b64encode(rec.state).decode("ascii"),
        "previous_hash": None if link is None else link.previous_hash.hex(),
        "hash": None if link is None else link.hash.hex(),
    }


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _write_list(f: IO[str], items: Iterable[object]) -> int:
    """A JSON array, one item per line; returns how many items it wrote."""
    n = 0
    for item in items:
        f.write(("[\n  " if n == 0 else ",\n  ") + _dumps(item))
        n += 1
    f.write("\n ]" if n else "[]")
    return n


def _write_bundle(f: IO[str], db: Database, origin: str, notes: list[str],
                  keys: list[dict[str, Any]]) -> int:
    f.write(f'{{"format": {_dumps(EVIDENCE_FORMAT)},\n "origin": {_dumps(origin)},\n'
            f' "exported_at": {_dumps(_now())},\n "records": ')
    count = _write_list(f, (record_entry(row) for row in ledger.rows(db)))
    f.write(',\n "checkpoints": ')
    _write_list(f, notes)
    f.write(',\n "keys": ')
    _write_list(f, keys)
    f.write("\n}\n")
    return count


def _publish(tmp: str, out: Path) -> None:
    """Give the complete temporary file its name, never replacing a file that took it meanwhile."""
    try:
        os.link(tmp, out)  # atomic; FileExistsError if the name is taken
    except FileExistsError:
        raise
    except OSError as exc:  # a file system without hard links: rename after a last check
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        if os.path.lexists(out):
            raise FileExistsError(errno.EEXIST, "refusing to replace an existing file", str(out)) from exc
        os.rename(tmp, out)


def export_bundle(db: Database | str, out_path: str | os.PathLike[str], *, origin: str,
                  checkpoints: Iterable[str], keys: Iterable[KeySpec]) -> int:
    """Write the evidence bundle of the whole ledger to ``out_path``; returns the records written.

    ``checkpoints``: signed checkpoint notes (text) of ``origin``, e.g. every checkpoint the registry
    published; ``keys``: the verifier keys with their validity (see ``KeySpec``). Refuses an
    ``out_path`` that exists (``FileExistsError``) or is a directory (``IsADirectoryError``); raises
    ``ExportError`` for a bad origin, note or key, before anything is written.
    """
    db = _database(db)
    out = Path(out_path)
    if out.is_dir():
        raise IsADirectoryError(errno.EISDIR, "the bundle is a file, not a directory", str(out))
    if os.path.lexists(out):
        raise FileExistsError(errno.EEXIST, "refusing to replace an existing file", str(out))
    if not valid_name(origin):
        raise ExportError(f"invalid origin {origin!r}: non-empty, no space, no '+'")
    notes = list(checkpoints)
    for note in notes:
        _checked_note(note, origin)
    key_list = normalise_keys(keys)
    directory = out.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            count = _write_bundle(f, db, origin, notes, key_list)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    sync_directory(directory)
    return count


def _row_at(db: Database, position: int) -> ledger.Row | None:
    """The event and link stored at one position (either may be missing), or None."""
    if db.backend == "sqlite":
        sql = (f"SELECT p.position, e.originator_id, e.originator_version, e.topic, e.state, "
               f"l.prev_hash, l.hash FROM (SELECT ? AS position) p "
               f"LEFT JOIN {db.events_table} e ON e.rowid = p.position "
               f"LEFT JOIN {db.links_table} l ON l.position = p.position")
        conn = sqlite_connect(db)
        try:
            found = conn.execute(sql, (position,)).fetchone()
        finally:
            conn.close()
    else:
        import psycopg
        from psycopg.sql import SQL, Identifier

        query = SQL(
            "SELECT p.position, e.originator_id::text, e.originator_version, e.topic, e.state, "
            "l.prev_hash, l.hash FROM (SELECT %(p)s::bigint AS position) p "
            "LEFT JOIN {ev} e ON e.notification_id = p.position "
            "LEFT JOIN {lk} l ON l.position = p.position"
        ).format(ev=Identifier(db.events_table), lk=Identifier(db.links_table))
        with psycopg.connect(db.conninfo()) as pg:
            found = pg.execute(query, {"p": position}).fetchone()
    row = ledger._row(tuple(found)) if found else None
    return None if row is None or (row.record is None and row.link is None) else row


def record_proof_bundle(db: Database | str, position: int, *, checkpoint_note: str,
                        keys: Iterable[KeySpec]) -> dict[str, Any]:
    """The single-record proof bundle of the record at ``position``: the record (as in an evidence
    bundle), its leaf index, its RFC 9162 inclusion proof in the tree of the checkpoint's size,
    the signed checkpoint note and the keys. Serialise it with ``json.dumps``.

    Raises ``ExportError`` for a malformed note or key, ``LookupError`` when the position is not
    a leaf of the (integrated) tree, ``ValueError`` when it is not in the checkpoint's tree.
    """
    db = _database(db)
    checkpoint = _checked_note(checkpoint_note, None)
    key_list = normalise_keys(keys)
    try:
        proof = tree.inclusion_proof(db, position, checkpoint.size)
    except KeyError:
        raise LookupError(f"position {position} is not a leaf of the ledger's Merkle tree "
                          "(no such record, or the tree is not integrated yet)") from None
    row = _row_at(db, position)
    if row is None or row.link is None:  # cannot happen: the tree's leaf joins the link
        raise LookupError(f"position {position} has no link")
    return {
        "format": RECORD_PROOF_FORMAT,
        "origin": checkpoint.origin,
        "exported_at": _now(),
        "record": record_entry(row),
        "leaf_index": proof.leaf_index,
        "tree_size": checkpoint.size,
        "inclusion_proof": [h.hex() for h in proof.proof],
        "checkpoint": checkpoint_note,
        "keys": key_list,
    }
