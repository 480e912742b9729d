"""What must hold of a ledger after any fault: one unforked chain that verifies, every
consortium's versions without gaps, every acknowledged write present, and read models equal to a
rebuild from position 0."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from audit.store import open_registry, parse_database_url
from audit.verify import verify_chain
from projections.projection import rebuild

VIEW_TABLES = ("registry_view", "registry_units", "registry_fields", "registry_reports")


@dataclass(frozen=True)
class Event:
    position: int
    consortium_id: str
    version: int
    name: str  # the event class, e.g. "MemberAdmitted"


def ledger_events(url: str) -> list[Event]:
    """Every record of the ledger in position order."""
    registry = open_registry(url)
    try:
        notifications = registry.recorder.select_notifications(start=None, limit=10_000_000)
    finally:
        registry.close()
    return [Event(n.id, str(n.originator_id), n.originator_version, n.topic.rsplit(".", 1)[-1])
            for n in notifications]


def assert_chain_verifies(url: str) -> int:
    """The whole chain verifies; returns how many records it holds."""
    report = verify_chain(parse_database_url(url))
    assert report.ok, f"chain damaged: {report.to_json()}"
    return int(report.records)


def assert_versions_without_gaps(events: list[Event]) -> dict[str, list[Event]]:
    """Each consortium's events are versions 1..n in ledger order (no lost, forked or half
    command). Returns the events by consortium."""
    by_consortium: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by_consortium[e.consortium_id].append(e)
    for cid, evs in by_consortium.items():
        assert [e.version for e in evs] == list(range(1, len(evs) + 1)), (cid, evs)
    positions = [e.position for e in events]
    assert positions == sorted(set(positions))
    return dict(by_consortium)


def assert_acknowledged_present(events: list[Event], acknowledged: list[dict[str, Any]]) -> None:
    """Every 2xx answer's positions hold its consortium's events, at the versions it answered."""
    at = {e.position: e for e in events}
    for answer in acknowledged:
        positions = answer["positions"]
        assert positions, answer
        first_version = answer["version"] - len(positions) + 1
        for offset, position in enumerate(sorted(positions)):
            event = at.get(position)
            assert event is not None, f"acknowledged write lost: {answer}"
            assert (event.consortium_id, event.version) == (
                answer["consortium_id"], first_version + offset), (event, answer)


def view_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read-model table, in a stable order."""
    db = parse_database_url(url)
    out: dict[str, list[tuple[Any, ...]]] = {}
    if db.backend == "sqlite":
        conn = sqlite3.connect(db.path)
        try:
            for table in VIEW_TABLES:
                out[table] = sorted(tuple(r) for r in conn.execute(f"SELECT * FROM {table}"))
        finally:
            conn.close()
        return out
    import psycopg

    with psycopg.connect(db.conninfo()) as pg:
        for table in VIEW_TABLES:
            out[table] = sorted(tuple(r) for r in pg.execute(f"SELECT * FROM {table}"))
    return out


def assert_views_equal_a_rebuild(url: str) -> int:
    """The read models as the service left them equal a rebuild from position 0; returns the
    number of consortia."""
    incremental = view_rows(url)
    rebuild(url)
    rebuilt = view_rows(url)
    for table in VIEW_TABLES:
        assert incremental[table] == rebuilt[table], f"{table} differs from a rebuild"
    return len(rebuilt["registry_view"])
