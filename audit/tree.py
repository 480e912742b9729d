"""The ledger's Merkle tree (RFC 9162), stored beside the chain and integrated after it.

Leaves are the ledger's records in position order; the data of a leaf is the record's chain hash
(its link ``hash``), so ``leaf hash = SHA-256(0x00 ‖ link hash)``. The tree is derived data, like
in a transparency log's sequencer/integrator split: writers only append records and links (no
cost on the write path); ``integrate`` appends the new leaves and the perfect subtrees they
complete, a batch per transaction, under a lock so that two integrators never interleave. A
checkpoint signs an integrated size. Proofs then read O(log n) stored nodes with one query.

Tables (append-only, like the ledger):
  ``<events>_merkle_leaves (leaf, position)``   leaf ordinal ↔ ledger position (positions have gaps)
  ``<events>_merkle_nodes (level, idx, hash)``  one row per perfect subtree (see audit.merkle)
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from audit import merkle
from audit.recorders import APPEND_ONLY_MESSAGE
from audit.store import Database, sqlite_connect

BATCH = 10_000


def _names(db: Database) -> tuple[str, str, str]:
    return db.links_table, f"{db.events_table}_merkle_leaves", f"{db.events_table}_merkle_nodes"


#: Readers keep a few connections per thread (LRU): a proof is then one query, not a connect.
_KEPT_PER_THREAD = 4
_kept = threading.local()


def _open(db: Database) -> Any:
    if db.backend == "sqlite":
        conn = sqlite_connect(db, readonly=False)
        conn.isolation_level = None
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn
    import psycopg

    return psycopg.connect(db.conninfo(), autocommit=True)


def _reader(db: Database) -> Any:
    kept: OrderedDict[str, Any] = getattr(_kept, "conns", None) or OrderedDict()
    _kept.conns = kept
    key = db.identity
    conn = kept.pop(key, None)
    if conn is None or getattr(conn, "closed", False):
        conn = _open(db)
    kept[key] = conn
    while len(kept) > _KEPT_PER_THREAD:
        with contextlib.suppress(Exception):
            kept.popitem(last=False)[1].close()
    return conn


def _forget(db: Database, conn: Any) -> None:
    kept = getattr(_kept, "conns", {})
    kept.pop(db.identity, None)
    with contextlib.suppress(Exception):
        conn.close()


@contextmanager
def connect(db: Database, *, write: bool, atomic: bool = False) -> Iterator[Any]:
    """A connection in a transaction; ``write`` takes the integrator's lock first (on a fresh
    connection); readers reuse this thread's kept connection. A PostgreSQL reader runs without
    a transaction: at READ COMMITTED one would not hold a snapshot across its statements, and
    none is needed — the tree only grows, so the nodes of any size read stay there — while
    BEGIN and COMMIT would be two more round trips per proof. ``atomic`` asks for a transaction
    anyway (creating tables and triggers together)."""
    _, leaves, _ = _names(db)
    conn = _reader(db) if not write else _open(db)
    wrapper = _Sqlite(conn) if db.backend == "sqlite" else _Postgres(conn)
    in_transaction = write or atomic or db.backend == "sqlite"
    try:
        if in_transaction:
            conn.execute("BEGIN IMMEDIATE" if write and db.backend == "sqlite" else "BEGIN")
        if write and db.backend != "sqlite":
            conn.execute(f"LOCK TABLE {leaves} IN EXCLUSIVE MODE")
        try:
            yield wrapper
            if in_transaction:
                conn.execute("COMMIT")
        except BaseException:
            if in_transaction:
                with contextlib.suppress(Exception):
                    conn.execute("ROLLBACK")
            raise
    except BaseException:
        if not write:
            _forget(db, conn)  # a broken or dropped connection is not kept
        raise
    finally:
        if write:
            conn.close()


class _Sqlite:
    placeholder = "?"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def all(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        return list(self.conn.execute(sql, params).fetchall())

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.conn.executemany(sql, rows)


class _Postgres:
    placeholder = "%s"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def all(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        cursor = self.conn.execute(sql.replace("?", "%s") if params else sql, params or None)
        return list(cursor.fetchall()) if cursor.description else []

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self.conn.cursor() as c:
            c.executemany(sql.replace("?", "%s"), rows)


_created: set[str] = set()


def ensure_tables(db: Database) -> None:
    """Create the tree's tables once per process and database."""
    key = db.identity
    if key not in _created:
        create_tables(db)
        _created.add(key)


def create_tables(db: Database) -> None:
    _, leaves, nodes = _names(db)
    blob = "BLOB" if db.backend == "sqlite" else "bytea"
    ddl = [
        f"CREATE TABLE IF NOT EXISTS {leaves} (leaf BIGINT PRIMARY KEY, position BIGINT NOT NULL UNIQUE)",
        f"CREATE TABLE IF NOT EXISTS {nodes} (level INTEGER NOT NULL, idx BIGINT NOT NULL, "
        f"hash {blob} NOT NULL, PRIMARY KEY (level, idx))",
    ]
    if db.backend == "sqlite":
        for table in (leaves, nodes):
            for op in ("UPDATE", "DELETE"):
                ddl.append(f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON "
                           f"{table} BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}: {op} on "
                           f"{table} refused'); END")
    else:
        refuse = f"{db.events_table}_tree_append_only"
        ddl.append(f"CREATE OR REPLACE FUNCTION {refuse}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}: % on % refused', TG_OP, "
                   "TG_TABLE_NAME; END $$")
        for table in (leaves, nodes):
            ddl.append(f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON "
                       f"{table} FOR EACH ROW EXECUTE FUNCTION {refuse}()")
            ddl.append(f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION {refuse}()")
    with connect(db, write=False, atomic=True) as c:
        for statement in ddl:
            c.all(statement)


class _StoredNodes:
    """A NodeSource over the nodes table, reading any set of nodes with one query."""

    def __init__(self, c: Any, nodes_table: str, size: int) -> None:
        self.c, self.table, self.size = c, nodes_table, size
        self.added: dict[merkle.NodeKey, bytes] = {}  # created or already read in this transaction

    def leaf_count(self) -> int:
        return self.size

    def perfect(self, level: int, index: int) -> bytes:
        return self.perfect_many([(level, index)])[(level, index)]

    def perfect_many(self, keys: list[merkle.NodeKey]) -> Mapping[merkle.NodeKey, bytes]:
        found = {k: self.added[k] for k in keys if k in self.added}
        wanted = [k for k in keys if k not in found]
        if wanted:
            if isinstance(self.c, _Postgres):
                # Two arrays joined to the primary key: one statement text whatever the number
                # of nodes, so the connection prepares it once (no planning per proof).
                sql = (f"SELECT n.level, n.idx, n.hash FROM unnest(?::int[], ?::bigint[]) "
                       f"AS k(level, idx) JOIN {self.table} n ON n.level = k.level "
                       f"AND n.idx = k.idx")
                params: list[Any] = [[k[0] for k in wanted], [k[1] for k in wanted]]
            else:
                # OR of point lookups, answered from the primary key (SQLite does not for a
                # row-value IN list).
                pairs = " OR ".join(["(level = ? AND idx = ?)"] * len(wanted))
                sql = f"SELECT level, idx, hash FROM {self.table} WHERE {pairs}"
                params = [v for k in wanted for v in k]
            for level, idx, h in self.c.all(sql, params):
                found[(int(level), int(idx))] = self.added[(int(level), int(idx))] = bytes(h)
        missing = [k for k in keys if k not in found]
        if missing:
            raise KeyError(missing[0])
        return found


def _size(c: Any, leaves: str) -> tuple[int, int]:
    """(tree size, position of its last leaf)."""
    row = c.all(f"SELECT leaf, position FROM {leaves} ORDER BY leaf DESC LIMIT 1")
    return (0, 0) if not row else (int(row[0][0]) + 1, int(row[0][1]))


def integrate(db: Database, *, batch: int = BATCH) -> int:
    """Append every ledger record not yet in the tree; returns the tree size."""
    ensure_tables(db)
    links, leaves, nodes = _names(db)
    while True:
        with connect(db, write=True) as c:
            size, last = _size(c, leaves)
            rows = c.all(f"SELECT position, hash FROM {links} WHERE position > ? "
                         f"ORDER BY position LIMIT ?", (last, batch))
            if not rows:
                return size
            source = _StoredNodes(c, nodes, size)
            new_nodes: list[tuple[int, int, bytes]] = []
            for _, h in rows:
                created = merkle.new_nodes_after_append(source, merkle.leaf_hash(bytes(h)))
                for level, idx, node in created:
                    source.added[(level, idx)] = node
                new_nodes.extend(created)
                source.size += 1
            c.many(f"INSERT INTO {leaves} (leaf, position) VALUES (?, ?)",
                   [(size + i, int(r[0])) for i, r in enumerate(rows)])
            c.many(f"INSERT INTO {nodes} (level, idx, hash) VALUES (?, ?, ?)", new_nodes)


def leaf_count_at(db: Database, position: int) -> int:
    """The size of the smallest tree that includes the record at ``position`` (counted on the
    links, so it needs no integrated tree)."""
    links, _, _ = _names(db)
    with connect(db, write=False) as c:
        row = c.all(f"SELECT count(*) FROM {links} WHERE position <= ?", (position,))
    return int(row[0][0])


def frontier_at(db: Database, size: int) -> list[tuple[int, bytes]]:
    """The perfect subtrees whose fold is the root of the tree of ``size`` leaves, largest first
    (where an incremental verification picks up)."""
    ensure_tables(db)
    _, _, nodes = _names(db)
    keys = [(level, (size >> level) - 1) for level in range(size.bit_length() - 1, -1, -1)
            if size >> level & 1]
    with connect(db, write=False) as c:
        found = _StoredNodes(c, nodes, size).perfect_many(keys) if keys else {}
    return [(level, found[(level, idx)]) for level, idx in keys]


def position_of_leaf(db: Database, leaf: int) -> int:
    ensure_tables(db)
    _, leaves, _ = _names(db)
    with connect(db, write=False) as c:
        row = c.all(f"SELECT position FROM {leaves} WHERE leaf = ?", (leaf,))
    if not row:
        raise KeyError(f"leaf {leaf} is not in the tree")
    return int(row[0][0])


@dataclass(frozen=True)
class InclusionProof:
    position: int
    leaf_index: int
    tree_size: int
    record_hash: bytes  # the chain hash of the record (the leaf's data)
    leaf_hash: bytes
    proof: list[bytes]
    root: bytes


def tree_head(db: Database, size: int | None = None) -> tuple[int, bytes]:
    """(size, root) of the integrated tree, or of an earlier size."""
    ensure_tables(db)
    _, leaves, nodes = _names(db)
    with connect(db, write=False) as c:
        current, _ = _size(c, leaves)
        size = current if size is None else size
        if size > current:
            raise ValueError(f"the tree has {current} leaves, not {size}")
        if size == 0:
            return 0, merkle.EMPTY_ROOT
        return size, merkle.root(_StoredNodes(c, nodes, current), size)


def inclusion_proof(db: Database, position: int, size: int | None = None) -> InclusionProof:
    """The proof that the record at ``position`` is in the tree of ``size`` leaves."""
    ensure_tables(db)
    links, leaves, nodes = _names(db)
    with connect(db, write=False) as c:
        # Two queries in all: the tree's size with the record's leaf and hash, then every node
        # of the audit path and of the root together.
        row = c.all(f"SELECT t.leaf, l.leaf, k.hash FROM (SELECT leaf FROM {leaves} "
                    f"ORDER BY leaf DESC LIMIT 1) t LEFT JOIN {leaves} l ON l.position = ? "
                    f"LEFT JOIN {links} k ON k.position = l.position", (position,))
        if not row or row[0][1] is None or row[0][2] is None:
            raise KeyError(position)
        current = int(row[0][0]) + 1
        size = current if size is None else size
        leaf, record_hash = int(row[0][1]), bytes(row[0][2])
        if not 0 <= leaf < size <= current:
            raise ValueError(f"position {position} is not in a tree of size {size}")
        source = _StoredNodes(c, nodes, current)
        source.perfect_many(merkle.plan_keys([*merkle.inclusion_plan(leaf, size),
                                              *merkle.root_plan(size)]))
        return InclusionProof(position, leaf, size, record_hash, merkle.leaf_hash(record_hash),
                              merkle.inclusion_proof(source, leaf, size),
                              merkle.root(source, size))


def consistency_proof(db: Database, old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size``."""
    ensure_tables(db)
    _, leaves, nodes = _names(db)
    with connect(db, write=False) as c:
        current, _ = _size(c, leaves)
        if new_size > current:
            raise ValueError(f"the tree has {current} leaves, not {new_size}")
        return merkle.consistency_proof(_StoredNodes(c, nodes, current), old_size, new_size)
