"""Database faults while clients write.

PostgreSQL: the test runs a server of its own and stops, restarts it under 8 writing clients →
they get 503 problem+json with Retry-After (never a 500, never a hang), and each retry with the
same Idempotency-Key ends in exactly one write.

SQLite: the file turned read-only (made immutable, as a volume remounted read-only) or its disk
full (a small tmpfs filled up) under a running service → writes answer 503 problem+json, reads go
on, nothing is half written, and once the fault is lifted the same retries write once.
"""

from __future__ import annotations

import errno
import itertools
import os
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pytest

from audit.store import parse_database_url
from tests.api import payloads as p
from tests.conftest import _require_postgres
from tests.reliability import pgserver
from tests.reliability.ledger_checks import (
    assert_acknowledged_present,
    assert_chain_verifies,
    assert_versions_without_gaps,
    assert_views_equal_a_rebuild,
    ledger_events,
)
from tests.reliability.service import Service, make_keys
from tests.reliability.workload import CALLERS, Answer, Recorder, Writer

pytestmark = pytest.mark.slow

WRITERS = 8
#: How long the server stays down: longer than a request in flight waits for it (10 s for a
#: connection; an answer already written waits up to 10 s to be kept) and then the 10 s the next
#: request waits for a connection, so that the clients see 503s.
OUTAGE = 25.0
#: How long a client keeps retrying one command before the test calls it a hang.
RETRY_FOR = 90.0


@pytest.fixture
def own_postgres() -> Iterator[pgserver.ThrowawayPostgres]:
    reason = pgserver.unavailable()
    if reason:
        if _require_postgres():
            pytest.fail(f"CONSORTIA_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    server = pgserver.ThrowawayPostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


class RetryingClient:
    """Sends each command with its own Idempotency-Key and retries it, with the same key, while
    the service answers 503 (or a concurrent retry is still running), or does not answer."""

    def __init__(self, writer: Writer, stop: threading.Event) -> None:
        self.w = writer
        self.stop = stop
        self.outcomes: list[Answer] = []  # the final answer of each command
        self.consortium_id = ""

    def command(self, path: str, body: dict[str, Any], who: str,
                version: int | None = None) -> Answer:
        key = f"fault-{uuid.uuid4()}"
        deadline = time.monotonic() + RETRY_FOR
        for attempt in itertools.count():
            answer = self.w.post(path, body, who, version, idempotency_key=key)
            retry = answer.status in (0, 503) or (
                answer.status == 409 and (answer.body or {}).get("code")
                == "idempotency-request-in-progress")
            if not retry or time.monotonic() > deadline:
                break
            time.sleep(min(0.05 * 2 ** attempt, 0.5))
        self.outcomes.append(answer)
        return answer

    def run(self) -> None:
        """A consortium started, then members admitted until told to stop."""
        created = self.command("/consortia", p.start(), "nanjing")
        assert created.status == 201, created
        assert created.body is not None
        cid, version = created.body["consortium_id"], 1
        self.consortium_id = cid
        while not self.stop.is_set():
            answer = self.command(f"/consortia/{cid}/members", p.admit(p.unit("enterprise")),
                                  "nanjing", version)
            assert answer.status == 200, answer
            assert answer.body is not None
            version = answer.body["version"]


def test_a_postgres_restart_answers_503_and_retries_write_exactly_once(
        own_postgres: pgserver.ThrowawayPostgres, tmp_path: Path) -> None:
    url = own_postgres.url()
    service = Service(url, log=tmp_path / "service.log", keys=make_keys(url, CALLERS))
    log = Recorder()
    clients: list[RetryingClient] = []
    failures: list[BaseException] = []
    try:
        service.start()
        http = [service.client(timeout=60) for _ in range(WRITERS)]
        stop = threading.Event()
        clients = [RetryingClient(Writer(c, service.keys, log), stop) for c in http]

        def run(client: RetryingClient) -> None:
            try:
                client.run()
            except BaseException as e:  # reported by the main thread
                failures.append(e)

        threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in clients]
        for t in threads:
            t.start()

        def written(more: int) -> None:
            """Wait until the clients have had ``more`` writes acknowledged."""
            target = log.count(lambda a: a.acknowledged) + more
            deadline = time.monotonic() + RETRY_FOR
            while log.count(lambda a: a.acknowledged) < target and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not failures, failures

        written(2 * WRITERS)
        own_postgres.restart("fast")  # every connection is cut; the clients keep writing
        written(2 * WRITERS)
        # A crash of the server, down for longer than the service waits for a connection.
        own_postgres.stop("immediate")
        time.sleep(OUTAGE)
        own_postgres.start()
        written(2 * WRITERS)
        stop.set()
        for t in threads:
            t.join(timeout=2 * RETRY_FOR)
        for c in http:
            c.close()
        assert not any(t.is_alive() for t in threads), "a client hung"
        assert not failures, failures
        service.wait_caught_up()
    finally:
        service.stop()
        (tmp_path / "answers.txt").write_text("\n".join(
            f"{a.status} {a.elapsed:.2f}s {a.path} {a.body} {a.error}" for a in log.answers))

    statuses = Counter(a.status for a in log.answers)
    assert set(statuses) <= {200, 201, 409, 503}, statuses  # no 500, no unanswered request
    assert statuses[503] > 0, f"the outage was never seen: {statuses}"
    for a in log.answers:
        if a.status == 503:
            assert a.headers["content-type"].startswith("application/problem+json"), a
            assert a.body is not None and a.body["code"] == "database-unavailable", a
            assert int(a.headers["retry-after"]) > 0
    assert {a.status for c in clients for a in c.outcomes} == {200, 201}

    events = ledger_events(url)
    assert assert_chain_verifies(url) == len(events)
    by_consortium = assert_versions_without_gaps(events)
    acknowledged = [a.body for c in clients for a in c.outcomes if a.body is not None]
    assert_acknowledged_present(events, acknowledged)
    # Exactly once: one consortium per client, one event per command.
    assert {cid: len(evs) for cid, evs in by_consortium.items()} == {
        c.consortium_id: len(c.outcomes) for c in clients}
    assert assert_views_equal_a_rebuild(url) == WRITERS


# ------------------------------------------------------------------------------------ SQLite
def _sqlite_files(url: str) -> list[Path]:
    path = Path(parse_database_url(url).path)
    return [path.parent, *(f for f in (path, path.with_name(path.name + "-wal"),
                                       path.with_name(path.name + "-shm")) if f.exists())]


@contextmanager
def read_only(url: str) -> Iterator[None]:
    """The database file (its WAL, its directory) made immutable: every write is refused by
    the file system, also through the service's open connections, as on a volume remounted
    read-only."""
    files = [str(f) for f in _sqlite_files(url)]
    subprocess.run(["chattr", "+i", *files], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *files], check=True)


@contextmanager
def small_disk(where: Path, size: str = "16m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where``."""
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                   check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@contextmanager
def disk_full(url: str) -> Iterator[None]:
    """Every free byte of the database's file system taken by another file."""
    filler = Path(parse_database_url(url).path).parent / "filler"
    with filler.open("wb") as f:
        chunk = b"\0" * (1 << 16)
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    try:
        yield
    finally:
        filler.unlink()


FAULTS = {"read-only": read_only, "disk-full": disk_full}
REASONS = {"read-only": "read-only", "disk-full": "storage-full"}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_sqlite_file_that_refuses_writes_is_a_clear_503_and_nothing_half_written(
        fault: str, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a file immutable (chattr +i) and mounting a small disk need root")
    with (small_disk(tmp_path / "disk") if fault == "disk-full" else nullcontext(tmp_path)
          ) as where:
        url = f"sqlite:///{where}/ledger.db"
        service = Service(url, log=tmp_path / "service.log", keys=make_keys(url, CALLERS))
        log = Recorder()
        try:
            service.start()
            with service.client() as client:
                w = Writer(client, service.keys, log)
                created = w.post("/consortia", p.start(), "nanjing")
                assert created.status == 201 and created.body is not None
                cid = created.body["consortium_id"]
                service.wait_caught_up()
                before = ledger_events(url)
                auditor = {"Authorization": f"Bearer {service.keys['auditor']}"}
                with FAULTS[fault](url):
                    refused = [
                        w.post("/consortia", p.start(), "nanjing", idempotency_key="during-1"),
                        w.post(f"/consortia/{cid}/members", p.admit(), "nanjing", 1),
                        w.post(f"/consortia/{cid}/members", p.admit(), "nanjing", 1,
                               idempotency_key="during-2"),
                    ]
                    read = client.get(f"/consortia/{cid}", headers=auditor)
                for answer in refused:
                    assert answer.status == 503, (answer.status, answer.body)
                    assert answer.headers["content-type"].startswith("application/problem+json")
                    assert answer.body is not None
                    assert answer.body["code"] == "database-unavailable", answer.body
                    assert answer.body["reason"] == REASONS[fault], answer.body  # a clear error
                    assert int(answer.headers["retry-after"]) > 0
                assert read.status_code == 200, read.text  # reads go on
                assert ledger_events(url) == before, "a refused write left something behind"
                # The fault lifted, the same retries write once.
                again = w.post("/consortia", p.start(), "nanjing", idempotency_key="during-1")
                assert again.status == 201, again
                member = w.post(f"/consortia/{cid}/members", p.admit(), "nanjing", 1,
                                idempotency_key="during-2")
                assert member.status == 200, member
            service.wait_caught_up()
        finally:
            service.stop()
            (tmp_path / "answers.txt").write_text("\n".join(
                f"{a.status} {a.path} {a.body} {a.error}" for a in log.answers))
        events = ledger_events(url)
        assert len(events) == len(before) + 2
        assert assert_chain_verifies(url) == len(events)
        assert_versions_without_gaps(events)
        assert assert_views_equal_a_rebuild(url) == 2
