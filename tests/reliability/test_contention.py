"""8 writers × 1,000 commands through the real HTTP API, most of them on the same two consortia:
a stale write gets 412, no acknowledged write is lost, every event is one some writer was told
about, and the chain is one and unforked — on SQLite and on PostgreSQL.

``CONSORTIA_CONTENTION_COMMANDS`` sets the commands per writer (default 1,000)."""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

import pytest

from tests.api import payloads as p
from tests.reliability.ledger_checks import (
    assert_acknowledged_present,
    assert_chain_verifies,
    assert_versions_without_gaps,
    assert_views_equal_a_rebuild,
    ledger_events,
)
from tests.reliability.service import Service
from tests.reliability.workload import Recorder, Writer

pytestmark = pytest.mark.slow

WRITERS = 8
COMMANDS = int(os.environ.get("CONSORTIA_CONTENTION_COMMANDS", "1000"))
SHARED = 2
ON = "2025-01-25"  # every command on the same day: any order of them is valid


class ContendingWriter:
    """Admits units to, and drops its own units from, the shared consortia (and its own one),
    always with the version it last saw; a 412 tells it the current one."""

    def __init__(self, writer: Writer, shared: list[str], own: str) -> None:
        self.w = writer
        self.shared, self.own = shared, own
        self.version = {cid: 1 for cid in [*shared, own]}
        self.present: dict[str, list[str]] = {cid: [] for cid in [*shared, own]}
        self.admitted: list[tuple[str, str]] = []  # acknowledged (consortium, uscc)
        self.dropped: list[tuple[str, str]] = []
        self.errors: list[Any] = []

    def run(self, n: int, offset: int) -> None:
        for c in range(n):
            cid = self.own if c % 4 == 3 else self.shared[(c + offset) % len(self.shared)]
            if self.present[cid] and c % 3 == 0:
                uscc = self.present[cid][0]
                path, body = f"/consortia/{cid}/members/{uscc}/drop", p.drop(on=ON)
            else:
                unit = p.unit("enterprise")
                uscc, path, body = unit["uscc"], f"/consortia/{cid}/members", p.admit(unit, ON)
            answer = self.w.post(path, body, "nanjing", self.version[cid])
            if answer.status == 200:
                assert answer.body is not None
                self.version[cid] = answer.body["version"]
                if path.endswith("/drop"):
                    self.present[cid].remove(uscc)
                    self.dropped.append((cid, uscc))
                else:
                    self.present[cid].append(uscc)
                    self.admitted.append((cid, uscc))
            elif answer.status == 412 and answer.body and answer.body["code"] == "stale-version":
                etag = answer.headers.get("etag")
                # A write that lost the race at save time does not know the current version:
                # read it (the read model may lag: the next try may be stale again).
                self.version[cid] = int(etag.strip('"')) if etag else self._read_version(cid)
            else:
                self.errors.append((path, answer.status, answer.body, answer.error))

    def _read_version(self, cid: str) -> int:
        r = self.w.client.get(f"/consortia/{cid}", headers={
            "Authorization": f"Bearer {self.w.keys['nanjing']}"})
        assert r.status_code == 200, r.text
        return int(r.headers["etag"].strip('"'))


def test_concurrent_writers_lose_no_update_and_keep_one_chain(service: Service,
                                                              database_url: str) -> None:
    service.start()
    log = Recorder()
    with service.client() as client:
        setup = Writer(client, service.keys, log)
        consortia = []
        for _ in range(SHARED + WRITERS):
            answer = setup.post("/consortia", p.start(), "nanjing")
            assert answer.status == 201, answer
            assert answer.body is not None
            consortia.append(answer.body["consortium_id"])
    shared, own = consortia[:SHARED], consortia[SHARED:]
    clients = [service.client() for _ in range(WRITERS)]
    writers = [ContendingWriter(Writer(c, service.keys, log), shared, own[i])
               for i, c in enumerate(clients)]
    barrier = threading.Barrier(WRITERS)

    def run(i: int) -> None:
        barrier.wait()
        writers[i].run(COMMANDS, i)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    for c in clients:
        c.close()
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert [w.errors for w in writers] == [[] for _ in writers]

    statuses = Counter(a.status for a in log.answers)
    assert set(statuses) <= {200, 201, 412}, statuses
    assert statuses[200] + statuses[412] == WRITERS * COMMANDS
    assert statuses[412] > 0, "no writer was ever stale: there was no contention"
    service.wait_caught_up()

    # No lost update: each consortium holds exactly the units acknowledged as admitted and not
    # acknowledged as dropped, at the version of its last acknowledged write.
    expected: dict[str, set[str]] = {cid: set() for cid in consortia}
    for w in writers:
        for cid, uscc in w.admitted:
            expected[cid].add(uscc)
        for cid, uscc in w.dropped:
            expected[cid].discard(uscc)
    with service.client() as client:
        for cid in consortia:
            r = client.get(f"/consortia/{cid}",
                           headers={"Authorization": f"Bearer {service.keys['nanjing']}"})
            assert r.status_code == 200, r.text
            assert {m["uscc"] for m in r.json()["members"]} == expected[cid], cid
    service.stop()

    events = ledger_events(database_url)
    assert assert_chain_verifies(database_url) == len(events)
    by_consortium = assert_versions_without_gaps(events)
    acknowledged = log.acknowledged()
    assert_acknowledged_present(events, acknowledged)
    # Every event is one that exactly one writer was told about.
    told = Counter(pos for answer in acknowledged for pos in answer["positions"])
    assert sorted(told) == [e.position for e in events] and set(told.values()) == {1}
    assert {cid: len(evs) for cid, evs in by_consortium.items()} == {
        cid: max(a["version"] for a in acknowledged if a["consortium_id"] == cid)
        for cid in consortia}
    assert assert_views_equal_a_rebuild(database_url) == len(consortia)
