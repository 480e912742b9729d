"""The credit feed: credit-relevant records read from the ledger itself, in position order.

The feed is the notification log filtered to the credit events (``projections.credit_events``): a
page is every such record after a position, up to a head read first, and its cursor names the last
position the page covered. Gap safety comes from the ledger's commit order: the chained recorders
serialise writers (SQLite's single writer; PostgreSQL's EXCLUSIVE table lock taken before the
position is drawn), so a position is visible only once every smaller position has committed or
been abandoned; a reader that saw position ``n`` can never later find a new record below ``n``.

Context (a consortium's name, its lead unit, what became of each credit record) is folded from the
consortium's own credit records up to now, so that a record closed since is served withdrawn.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from audit.ledger import plain
from projections.credit_events import (
    CONTEXT_TOPICS,
    FEED_TOPICS,
    ConsortiumFacts,
    CursorError,
    LedgerEntry,
    canonical_uuid,
    encode_cursor,
    event_name,
    fold,
    stored_topics,
    to_cloud_event,
)

#: The most records one page may hold.
MAX_PAGE = 1000
_SNAPSHOT_TOPICS = stored_topics(("CreditViolationRecorded",))


@dataclass(frozen=True, slots=True)
class FeedPage:
    """Events after a position, the cursor to continue from, and how far the ledger reached."""

    events: list[dict[str, Any]]
    cursor: str
    position: int  # the last ledger position this page covered
    head: int  # the ledger's head when the page was read


class CreditLedgerSQL:
    """Reads of the ledger's event and link tables for the feed (mixed into a store that has an
    eventsourcing datastore: ``_tx`` gives a cursor on the registry's database)."""

    placeholder = "?"
    events_table = "stored_events"
    position_column = "rowid"

    def _tx(self, *, commit: bool) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    @property
    def links_table(self) -> str:
        return f"{self.events_table}_links"

    def _oid(self, consortium_id: str) -> Any:
        return UUID(consortium_id).hex if self.placeholder == "?" else UUID(consortium_id)

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        if self.placeholder == "?":
            return f"{column} IN ({','.join('?' * len(values))})", list(values)
        return f"{column} = ANY(?)", [list(values)]

    # ------------------------------------------------------------------------------- reading
    def _head(self, c: Any) -> int:
        c.execute(f"SELECT max({self.position_column}) AS head FROM {self.events_table}")
        row = c.fetchone()
        return int(row["head"] or 0) if row is not None else 0

    def head(self) -> int:
        """The ledger's last position (0 when empty)."""
        with self._tx(commit=False) as c:
            return self._head(c)

    def _select(self, where: str, params: list[Any], limit: int | None = None
                ) -> list[LedgerEntry]:
        pos = f"e.{self.position_column}"
        sql = (f"SELECT {pos} AS position, e.originator_id AS oid, e.originator_version AS version,"
               f" e.topic AS topic, e.state AS state, l.hash AS hash FROM {self.events_table} e"
               f" LEFT JOIN {self.links_table} l ON l.position = {pos} WHERE {where}"
               f" ORDER BY {pos}")
        if limit is not None:
            sql += " LIMIT ?"
            params = [*params, limit]
        with self._tx(commit=False) as c:
            c.execute(self._q(sql), params)
            rows = c.fetchall()
        return [_entry(r) for r in rows]

    def credit_entries(self, after: int, upto: int, limit: int,
                       topics: Sequence[str] = FEED_TOPICS) -> list[LedgerEntry]:
        """Credit records with ``after < position <= upto``, in position order, at most ``limit``."""
        topic_sql, topic_params = self._in("e.topic", topics)
        pos = f"e.{self.position_column}"
        return self._select(f"{pos} > ? AND {pos} <= ? AND {topic_sql}",
                            [after, upto, *topic_params], limit)

    def entries_at(self, positions: Collection[int]) -> list[LedgerEntry]:
        """The records at these positions, in position order."""
        if not positions:
            return []
        where, params = self._in(f"e.{self.position_column}", sorted(positions))
        return self._select(where, params)

    def facts(self, consortium_ids: Collection[str]) -> dict[str, ConsortiumFacts]:
        """What the credit events of these consortia need: names, lead units, records — now."""
        if not consortium_ids:
            return {}
        oid_sql, oid_params = self._in("e.originator_id", [self._oid(c) for c in consortium_ids])
        topic_sql, topic_params = self._in("e.topic", CONTEXT_TOPICS)
        entries = self._select(f"{oid_sql} AND {topic_sql}", [*oid_params, *topic_params])
        folded = fold(entries)
        return {cid: folded.get(cid, ConsortiumFacts(cid)) for cid in consortium_ids}

    # --------------------------------------------------------------------------------- feed
    def render(self, entries: Sequence[LedgerEntry]) -> list[dict[str, Any]]:
        """The CloudEvents of these entries as served now (withdrawn content withheld)."""
        facts = self.facts({e.consortium_id for e in entries})
        out = []
        for e in entries:
            event = to_cloud_event(e, facts[e.consortium_id])
            if event is not None:
                out.append(event)
        return out

    def events_at(self, positions: Collection[int]) -> dict[int, dict[str, Any]]:
        """The CloudEvent of each of these positions that the feed serves, by position."""
        entries = self.entries_at(positions)
        return {int(e["sequence"]): e for e in self.render(entries)}

    def page(self, after: int, limit: int) -> FeedPage:
        """The credit events after ``after`` (a position), at most ``limit`` of them."""
        limit = max(1, min(limit, MAX_PAGE))
        head = self.head()
        if after > head:
            raise CursorError(f"the cursor names position {after}, beyond the ledger's head")
        entries = self.credit_entries(after, head, limit)
        # A full page stops at its last record; otherwise everything up to the head was covered.
        last = entries[-1].position if len(entries) == limit else head
        return FeedPage(self.render(entries), encode_cursor(last), last, head)

    def snapshot(self, batch: int = MAX_PAGE) -> FeedPage:
        """The records in publicity at the ledger's head, as their ``violation-recorded`` events,
        with the cursor of that head (continue the feed from it)."""
        head = self.head()
        recorded = list(self._all(0, head, batch, _SNAPSHOT_TOPICS))
        facts = self.facts({e.consortium_id for e in recorded})
        events = []
        for e in recorded:
            record = facts[e.consortium_id].records.get(str(e.data.get("record_id")))
            if record is not None and record.in_publicity_at(head):
                event = to_cloud_event(e, facts[e.consortium_id])
                if event is not None:
                    events.append(event)
        return FeedPage(events, encode_cursor(head), head, head)

    def _all(self, after: int, upto: int, batch: int, topics: Sequence[str]
             ) -> Iterator[LedgerEntry]:
        while True:
            entries = self.credit_entries(after, upto, batch, topics)
            yield from entries
            if len(entries) < batch:
                return
            after = entries[-1].position


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


def _entry(row: Any) -> LedgerEntry:
    data = plain(json.loads(_bytes(row["state"])))
    h = row["hash"]
    return LedgerEntry(position=int(row["position"]), consortium_id=canonical_uuid(row["oid"]),
                       version=int(row["version"]), event=event_name(str(row["topic"])),
                       data=data, record_hash=_bytes(h).hex() if h is not None else "")
