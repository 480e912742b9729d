"""Streaming reads of the raw ledger (events joined with their links), independent of the domain.
Memory stays flat whatever the ledger's size: rows come in keyset-paginated batches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from audit.chain import Link, Record
from audit.store import Database, sqlite_connect

BATCH = 5000


@dataclass(frozen=True, slots=True)
class Row:
    """One position of the ledger: its event, its link, or both."""

    position: int
    record: Record | None
    link: Link | None


def _sqlite_rows(db: Database, batch: int, after: int) -> Iterator[Row]:
    ev, lk = db.events_table, db.links_table
    # A full outer join by position, in position order, one batch at a time.
    sql = (
        f"SELECT p.position, e.originator_id, e.originator_version, e.topic, e.state, "
        f"l.prev_hash, l.hash FROM ("
        f"  SELECT position FROM (SELECT rowid AS position FROM {ev} WHERE rowid > ? "
        f"    ORDER BY rowid LIMIT ?) "
        f"  UNION SELECT position FROM (SELECT position FROM {lk} WHERE position > ? "
        f"    ORDER BY position LIMIT ?)"
        f") p LEFT JOIN {ev} e ON e.rowid = p.position "
        f"LEFT JOIN {lk} l ON l.position = p.position ORDER BY p.position LIMIT ?"
    )
    conn = sqlite_connect(db)
    try:
        while True:
            rows = conn.execute(sql, (after, batch, after, batch, batch)).fetchall()
            if not rows:
                return
            for r in rows:
                yield _row(r)
            after = rows[-1][0]
    finally:
        conn.close()


def _postgres_rows(db: Database, batch: int, after: int) -> Iterator[Row]:
    import psycopg
    from psycopg.sql import SQL, Identifier

    sql = SQL(
        "SELECT p.position, e.originator_id::text, e.originator_version, e.topic, e.state, "
        "l.prev_hash, l.hash FROM ("
        "  (SELECT notification_id AS position FROM {ev} WHERE notification_id > %(after)s "
        "   ORDER BY notification_id LIMIT %(batch)s) "
        "  UNION (SELECT position FROM {lk} WHERE position > %(after)s "
        "   ORDER BY position LIMIT %(batch)s)"
        ") p LEFT JOIN {ev} e ON e.notification_id = p.position "
        "LEFT JOIN {lk} l ON l.position = p.position ORDER BY p.position LIMIT %(batch)s"
    ).format(ev=Identifier(db.events_table), lk=Identifier(db.links_table))
    with psycopg.connect(db.conninfo()) as conn:
        conn.read_only = True
        while True:
            rows = conn.execute(sql, {"after": after, "batch": batch}).fetchall()
            if not rows:
                return
            for r in rows:
                yield _row(r)
            after = rows[-1][0]


def _bytes(value: object) -> bytes:
    # A hand edit may change a column's storage type (SQLite turns a BLOB edited as text into
    # TEXT); the verifier must still compare, never crash.
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


def _row(r: tuple) -> Row:  # type: ignore[type-arg]
    position, oid, version, topic, state, prev, h = r
    record = None if oid is None else Record(position, str(oid), int(version or 0),
                                             str(topic or ""), _bytes(state))
    link = None if h is None else Link(position, _bytes(prev), _bytes(h))
    return Row(position, record, link)


#: Rows as the database returns them: a record (position, originator id, version, topic, state)
#: and a link (position, previous hash, hash).
RawRecord = tuple[Any, ...]
RawLink = tuple[Any, ...]


def raw_batches(db: Database, batch: int = 20_000, *, after: int = 0, upto: int | None = None,
                links: bool = True) -> Iterator[tuple[list[RawRecord], list[RawLink]]]:
    """The records after ``after`` (up to ``upto``) in position order, in batches, each with the
    links from the batch's first position to its last (unless ``links`` is false), as plain
    tuples: two range scans, no join (the verifier's fast path pairs them). Links after the
    last record are not returned (``link_count`` tells)."""
    # ``upto`` is applied here, not in the query: a second bound makes PostgreSQL, without
    # statistics (a table just loaded or restored), sort the whole remaining range every batch.
    upto = (1 << 63) - 1 if upto is None else upto
    records_sql, links_sql = batch_queries(db)
    if db.backend == "sqlite":
        conn = sqlite_connect(db)
        try:
            conn.execute("BEGIN")  # one snapshot for both scans
            while True:
                records = _upto(conn.execute(records_sql, (after, batch)).fetchall(), upto)
                if not records:
                    return
                last = records[-1][0]
                yield records, (conn.execute(links_sql, (after, last)).fetchall()
                                if links else [])
                del records  # let the batch go before the next one is read
                after = last
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(db.conninfo()) as pg:
        pg.read_only = True
        pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot for all reads
        cursor = pg.cursor(binary=True)  # bytea arrives as bytes, not as hex to decode
        while True:
            records = _upto(cursor.execute(records_sql, (after, batch)).fetchall(), upto)
            if not records:
                return
            last = records[-1][0]
            yield records, (cursor.execute(links_sql, (after, last)).fetchall()
                            if links else [])
            del records  # let the batch go before the next one is read
            after = last


def batch_queries(db: Database) -> tuple[str, str]:
    """The two statements of ``raw_batches``: the next records after a position (parameters:
    the position and how many), and the links in a range of positions (after, up to)."""
    if db.backend == "sqlite":
        ev, lk = db.events_table, db.links_table
        return (f"SELECT rowid, originator_id, originator_version, topic, state FROM {ev} "
                f"WHERE rowid > ? ORDER BY rowid LIMIT ?",
                f"SELECT position, prev_hash, hash FROM {lk} WHERE position > ? "
                f"AND position <= ? ORDER BY position")
    from psycopg.sql import Identifier

    ev, lk = Identifier(db.events_table).as_string(), Identifier(db.links_table).as_string()
    return (f"SELECT notification_id, originator_id::text, originator_version, topic, state "
            f"FROM {ev} WHERE notification_id > %s ORDER BY notification_id LIMIT %s",
            f"SELECT position, prev_hash, hash FROM {lk} WHERE position > %s "
            f"AND position <= %s ORDER BY position")


def _upto(records: list[RawRecord], upto: int) -> list[RawRecord]:
    if not records or records[-1][0] <= upto:
        return records
    return [r for r in records if r[0] <= upto]


def record_count(db: Database) -> int:
    """How many records the ledger holds."""
    if db.backend == "sqlite":
        conn = sqlite_connect(db)
        try:
            return int(conn.execute(f"SELECT count(*) FROM {db.events_table}").fetchone()[0])
        finally:
            conn.close()
    import psycopg
    from psycopg.sql import SQL, Identifier

    with psycopg.connect(db.conninfo()) as pg:
        row = pg.execute(SQL("SELECT count(*) FROM {}").format(
            Identifier(db.events_table))).fetchone()
        return int(row[0]) if row else 0


def positions_before(db: Database, indexes: list[int]) -> list[int]:
    """For each record index k (0-based), the position of the record before it (0 for k = 0):
    where a walk that starts at the k-th record starts reading after."""
    if db.backend == "sqlite":
        conn = sqlite_connect(db)
        try:
            return [0 if k == 0 else int(conn.execute(
                f"SELECT rowid FROM {db.events_table} ORDER BY rowid LIMIT 1 OFFSET ?",
                (k - 1,)).fetchone()[0]) for k in indexes]
        finally:
            conn.close()
    import psycopg
    from psycopg.sql import SQL, Identifier

    query = SQL("SELECT notification_id FROM {} ORDER BY notification_id LIMIT 1 OFFSET %s"
                ).format(Identifier(db.events_table))
    with psycopg.connect(db.conninfo()) as pg:
        out = []
        for k in indexes:
            row = pg.execute(query, (k - 1,)).fetchone() if k else (0,)
            assert row is not None
            out.append(int(row[0]))
        return out


def link_count(db: Database, *, after: int = 0) -> tuple[int, int | None]:
    """How many links there are after ``after``, and the last one's position."""
    if db.backend == "sqlite":
        conn = sqlite_connect(db)
        try:
            n, last = conn.execute(f"SELECT count(*), max(position) FROM {db.links_table} "
                                   f"WHERE position > ?", (after,)).fetchone()
            return int(n), last
        finally:
            conn.close()
    import psycopg
    from psycopg.sql import SQL, Identifier

    with psycopg.connect(db.conninfo()) as pg:
        row = pg.execute(SQL("SELECT count(*), max(position) FROM {} WHERE position > %s").format(
            Identifier(db.links_table)), (after,)).fetchone()
        assert row is not None
        return int(row[0]), row[1]


def rows(db: Database, batch: int = BATCH, *, after: int = 0) -> Iterator[Row]:
    """Every position after ``after`` in order, with its event and link (either may be missing)."""
    if db.backend == "sqlite":
        return _sqlite_rows(db, batch, after)
    return _postgres_rows(db, batch, after)


def count(db: Database) -> int:
    """How many links the ledger has (the progress bar's total)."""
    if db.backend == "sqlite":
        conn = sqlite_connect(db)
        try:
            return int(conn.execute(f"SELECT count(*) FROM {db.links_table}").fetchone()[0])
        finally:
            conn.close()
    import psycopg
    from psycopg.sql import SQL, Identifier

    with psycopg.connect(db.conninfo()) as pg:
        row = pg.execute(SQL("SELECT count(*) FROM {}").format(
            Identifier(db.links_table))).fetchone()
        return int(row[0]) if row else 0


def plain(value: Any) -> Any:
    """Stored event JSON with the transcoder's ``{"_type_", "_data_"}`` wrappers removed."""
    if isinstance(value, dict):
        if set(value) == {"_type_", "_data_"}:
            return plain(value["_data_"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def consortium_history(db: Database, consortium_id: UUID, *, after_version: int = 0,
                       limit: int | None = None) -> list[dict[str, Any]]:
    """The records of one consortium in order, with their positions, hashes and previous hashes:
    those after ``after_version``, at most ``limit`` of them (all when None)."""
    page = -1 if limit is None else limit  # LIMIT -1: no limit (SQLite); NULL: none (PostgreSQL)
    if db.backend == "sqlite":
        sql = (f"SELECT e.rowid AS position, e.originator_version, e.topic, e.state, "
               f"l.prev_hash, l.hash FROM {db.events_table} e LEFT JOIN {db.links_table} l "
               f"ON l.position = e.rowid WHERE e.originator_id = ? AND e.originator_version > ? "
               f"ORDER BY e.originator_version LIMIT ?")
        conn = sqlite_connect(db)
        try:
            rows = conn.execute(sql, (consortium_id.hex, after_version, page)).fetchall()
        finally:
            conn.close()
    else:
        import psycopg
        from psycopg.sql import SQL, Identifier

        query = SQL(
            "SELECT e.notification_id, e.originator_version, e.topic, e.state, l.prev_hash, "
            "l.hash FROM {ev} e LEFT JOIN {lk} l ON l.position = e.notification_id "
            "WHERE e.originator_id = %s AND e.originator_version > %s "
            "ORDER BY e.originator_version LIMIT %s"
        ).format(ev=Identifier(db.events_table), lk=Identifier(db.links_table))
        with psycopg.connect(db.conninfo()) as pg:
            rows = pg.execute(query, (consortium_id, after_version, limit)).fetchall()
    out = []
    for position, version, topic, state, prev, h in rows:
        data = plain(json.loads(_bytes(state)))
        out.append({
            "position": position,
            "version": version,
            "event": str(topic).rsplit(".", 1)[-1],
            "topic": topic,
            "timestamp": data.pop("timestamp", None),
            "effective_date": data.get("effective_date"),
            "actor": data.get("actor"),
            "document": data.get("document"),
            "data": data,
            "hash": _bytes(h).hex() if h is not None else None,
            "previous_hash": _bytes(prev).hex() if prev is not None else None,
        })
    return out
