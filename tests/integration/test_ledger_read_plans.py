"""The ledger's batch reads keep to the primary key on both backends, also without statistics
(a ledger just loaded or restored; PostgreSQL with autovacuum off): a plan that sorted the whole
remaining range for each batch made a full verification quadratic."""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.persistence import StoredEvent

from audit.ledger import batch_queries
from audit.store import open_registry, parse_database_url

RECORDS = 30_000


def loaded(url: str) -> None:
    reg = open_registry(url)
    try:
        state = b'{"facts":"' + b"x" * 400 + b'"}'
        oid = uuid.uuid4()
        for start in range(0, RECORDS, 5_000):
            reg.recorder.insert_events([
                StoredEvent(oid, v + 1, "domain.consortium:Consortium.MemberAdmitted", state)
                for v in range(start, start + 5_000)])
    finally:
        reg.close()


def plan(url: str, sql: str, params: tuple[Any, ...]) -> str:
    db = parse_database_url(url)
    if db.backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(db.path)
        try:
            return "\n".join(str(row[-1]) for row in conn.execute(
                f"EXPLAIN QUERY PLAN {sql}", params))
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(db.conninfo()) as pg:
        assert pg.execute("SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables "
                          "WHERE relname = %s", (db.events_table,)).fetchone() == (None, None)
        return "\n".join(row[0] for row in pg.execute(f"EXPLAIN {sql}", params))


def test_each_batch_is_a_primary_key_range_scan_without_a_sort(database_url: str) -> None:
    loaded(database_url)
    db = parse_database_url(database_url)
    records_sql, links_sql = batch_queries(db)
    for sql, params in ((records_sql, (1_000, 20_000)), (links_sql, (1_000, 21_000))):
        shown = plan(database_url, sql, params)
        if db.backend == "sqlite":
            assert "TEMP B-TREE" not in shown, shown
            assert "PRIMARY KEY" in shown or "rowid" in shown.lower(), shown
        elif sql is records_sql:
            # Read in order from the index, stopped by the LIMIT: never a sort of the rest.
            assert "Sort" not in shown and "Index Scan" in shown, shown
        else:
            # A bounded range: at most one batch's rows, whichever way PostgreSQL reads them.
            assert f"{db.links_table}_pkey" in shown, shown
