"""The credit feed and its push delivery on SQLite and PostgreSQL: pages in ledger order that never
skip a record under concurrent writers, withdrawal of repaired records, exactly-once enqueueing,
and at-least-once delivery to a real HTTP receiver on loopback that is down, slow and failing."""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from api.delivery import DeliveryPolicy, DeliveryWorker
from api.webhooks import new_hmac_secret, verify
from audit.store import open_registry
from domain.registry import Registry
from projections.credit_events import EVENT_TYPES, decode_cursor, event_type
from projections.credit_outbox import (
    DEAD,
    DELIVERED,
    DISABLED,
    PENDING,
    CreditOutboxRunner,
    CreditOutboxSQL,
    SigningKey,
    catch_up,
    open_credit_store,
)
from tests.credit_helpers import Receiver, credit_history, wait_until
from tests.factories import TODAY

#: Quick retries for tests: tenths of seconds instead of minutes.
FAST = DeliveryPolicy(base=0.02, factor=2, cap=0.2, max_attempts=1000, jitter=0.5, timeout=0.5,
                      poll_interval=0.05, concurrency=4)


@pytest.fixture
def reg(database_url: str) -> Iterator[Registry]:
    registry = open_registry(database_url, clock=lambda: TODAY)
    yield registry
    registry.close()


@pytest.fixture
def store(database_url: str) -> Iterator[CreditOutboxSQL]:
    s = open_credit_store(database_url)
    yield s
    s.datastore.close()


def everything(store: CreditOutboxSQL) -> list[dict[str, Any]]:
    return store.page(0, 1000).events


def subscribe(store: CreditOutboxSQL, url: str, sid: str = "s1",
              types: tuple[str, ...] = EVENT_TYPES) -> str:
    """A subscription with one HMAC key; returns the secret."""
    secret = new_hmac_secret()
    now = time.time()
    store.create_subscription(subscription_id=sid, url=url, event_types=types, signing="hmac",
                              description="test", created_by="test",
                              key=SigningKey("k1", secret, None, now, None), now=now)
    return secret


def enqueue_all(reg: Registry, store: CreditOutboxSQL) -> None:
    catch_up(reg, store)


# ----------------------------------------------------------------------------------- pull feed
def test_pages_follow_the_ledger_and_the_cursor_resumes_where_the_last_page_ended(
        reg: Registry, store: CreditOutboxSQL) -> None:
    credit_history(reg, 1)
    credit_history(reg, 2)
    seen: list[dict[str, Any]] = []
    position = 0
    while True:
        page = store.page(position, 4)
        seen.extend(page.events)
        position = decode_cursor(page.cursor)
        if not page.events:
            break
    assert [e["type"].split(".")[-2] for e in seen[:6]] == [
        "violation-recorded", "violation-repaired", "violation-recorded", "violation-recorded",
        "violation-revoked", "publicity-ended"]
    assert len(seen) == 12 and len({e["id"] for e in seen}) == 12
    sequences = [e["sequence"] for e in seen]
    assert sequences == sorted(sequences)
    assert position == reg.recorder.max_notification_id()  # the last page reached the head
    assert store.page(position, 4).events == []


def test_four_writers_and_a_paging_consumer_see_every_credit_event_exactly_once(
        database_url: str, store: CreditOutboxSQL) -> None:
    writers = [open_registry(database_url, clock=lambda: TODAY) for _ in range(4)]
    errors: list[BaseException] = []

    def write(registry: Registry, w: int) -> None:
        try:
            for i in range(2):
                credit_history(registry, 10 * w + i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(r, w)) for w, r in enumerate(writers)]
    received: list[dict[str, Any]] = []
    position, head_when_done = 0, None
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if head_when_done is None and not any(t.is_alive() for t in threads):
                head_when_done = store.head()
            page = store.page(position, 3)  # small pages: many cursors cross the writes
            received.extend(page.events)
            position = decode_cursor(page.cursor)
            if head_when_done is not None and position >= head_when_done:
                break
        for t in threads:
            t.join()
    finally:
        for r in writers:
            r.close()
    assert not errors
    assert head_when_done is not None and position >= head_when_done
    ids = [e["id"] for e in received]
    assert len(ids) == len(set(ids)) == 4 * 2 * 6  # every event, none twice, even before dedup
    assert [e["sequence"] for e in received] == sorted(e["sequence"] for e in received)
    assert set(ids) == {e["id"] for e in everything(store)}


def test_a_closed_record_is_served_withdrawn_and_the_snapshot_holds_what_is_in_publicity(
        reg: Registry, store: CreditOutboxSQL) -> None:
    from tests.credit_helpers import D, violation
    from tests.factories import PROVINCE, doc

    history = credit_history(reg, 1)
    events = everything(store)
    recorded = [e for e in events if e["type"] == event_type("violation-recorded")]
    assert [e["data"]["withdrawn"] for e in recorded] == [True, True, True]
    body = str(events)
    assert not any(f in body for f in history.facts)
    assert store.snapshot().events == []

    reg.record_credit_violation(history.consortium_id, violation(history.member, "仍在公示的记录"),
                                actor=PROVINCE, effective_date=D(2026, 3, 3), document=doc("认定4"))
    snapshot = store.snapshot()
    assert [e["data"]["record_id"] for e in snapshot.events] == ["CR-4"]
    assert snapshot.events[0]["data"]["reason"] == "仍在公示的记录"
    assert decode_cursor(snapshot.cursor) == reg.recorder.max_notification_id()
    assert store.page(decode_cursor(snapshot.cursor), 10).events == []  # nothing left to read
    reg.repair_credit(history.consortium_id, "CR-4", measures="已整改", actor=PROVINCE,
                      effective_date=D(2026, 3, 4), document=doc("修复4"))
    after = store.page(decode_cursor(snapshot.cursor), 10).events
    assert [e["type"] for e in after] == [event_type("violation-repaired")]
    assert store.snapshot().events == []
    again = [e for e in everything(store) if e["data"].get("record_id") == "CR-4"]
    assert again[0]["data"]["withdrawn"] is True and "reason" not in again[0]["data"]


# ------------------------------------------------------------------------------------ outbox
def test_each_event_is_enqueued_once_per_subscription_also_across_runner_restarts(
        database_url: str, reg: Registry, store: CreditOutboxSQL) -> None:
    subscribe(store, "http://127.0.0.1:9/all", "all")
    subscribe(store, "http://127.0.0.1:9/recorded", "recorded",
              (event_type("violation-recorded"),))
    credit_history(reg, 1)
    last = int(everything(store)[-1]["sequence"])
    for _ in range(2):  # a restarted runner continues from its tracking record
        with CreditOutboxRunner(database_url) as runner:
            wait_until(lambda: runner.store.position(reg.name) >= last, 30, "the outbox")
    assert catch_up(reg, store) == last
    assert store.counts("all") == {PENDING: 6, DELIVERED: 0, DEAD: 0}
    assert [d.event_type for d in store.deliveries("recorded")] == [
        event_type("violation-recorded")] * 3

    subscribe(store, "http://127.0.0.1:9/late", "late")  # sees only what comes after it
    catch_up(reg, store)
    assert store.deliveries("late") == []
    credit_history(reg, 2)
    catch_up(reg, store)
    assert len(store.deliveries("late")) == 6 and len(store.deliveries("all")) == 12


# ---------------------------------------------------------------------------------- delivery
def test_an_unreliable_receiver_gets_every_event_signed_and_in_order_per_subject(
        reg: Registry, store: CreditOutboxSQL) -> None:
    def flaky(n: int) -> tuple[int, dict[str, str], float]:
        if n < 2:
            return 204, {}, 2.0  # slow: answers after the sender has given up
        if n < 6:
            return 500, {}, 0.0
        if n == 6:
            return 503, {"Retry-After": "0"}, 0.0
        return 204, {}, 0.0

    receiver = Receiver(script=flaky)  # down: nothing listens yet
    secret = subscribe(store, receiver.url)
    histories = [credit_history(reg, n) for n in range(3)]
    enqueue_all(reg, store)
    expected = everything(store)
    assert len(expected) == 18
    worker = DeliveryWorker(store, FAST).start()
    try:
        wait_until(lambda: any(d.attempts for d in store.deliveries("s1")), 30, "a refused try")
        assert all(d.state == PENDING for d in store.deliveries("s1"))
        receiver.start()
        wait_until(lambda: store.counts("s1")[DELIVERED] == len(expected), 120, "every delivery")
    finally:
        worker.stop()
        receiver.stop()

    arrivals = receiver.snapshot()
    assert store.counts("s1") == {PENDING: 0, DELIVERED: 18, DEAD: 0}
    assert any(not a.ok for a in arrivals)  # it did fail, and recovered
    for a in arrivals:
        assert verify([secret], a.body, a.headers) == a.event["id"] == a.headers["webhook-id"]
        assert a.headers["content-type"].startswith("application/cloudevents+json")
    assert {a.event["id"] for a in arrivals if a.ok} == {e["id"] for e in expected}
    # Per subject, no event arrived before the previous one of its subject had been accepted.
    first_arrival = {}
    first_ok = {}
    for a in arrivals:
        first_arrival.setdefault(a.event["id"], a.index)
        if a.ok:
            first_ok.setdefault(a.event["id"], a.index)
    by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in expected:
        by_subject[e["subject"]].append(e)
    for events in by_subject.values():
        for earlier, later in itertools.pairwise(events):
            assert first_arrival[later["id"]] > first_ok[earlier["id"]]
    # Every record was closed before the receiver came back: none was sent with its content.
    facts = [f for h in histories for f in h.facts]
    for a in arrivals:
        assert not any(f.encode() in a.body for f in facts)
        if a.event["type"] == event_type("violation-recorded"):
            assert a.event["data"]["withdrawn"] is True


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def stepwise(store: CreditOutboxSQL, policy: DeliveryPolicy = FAST) -> tuple[DeliveryWorker,
                                                                               Clock]:
    """A worker driven by hand (``run_once``) on a clock the test moves; one request at a time,
    so that requests arrive in the order of the due list."""
    clock = Clock()
    return DeliveryWorker(store, replace(policy, concurrency=1), clock=clock), clock


def test_retry_after_is_honoured_and_a_later_event_of_the_subject_waits(
        reg: Registry, store: CreditOutboxSQL) -> None:
    receiver = Receiver(script=lambda n: (503, {"Retry-After": "120"}, 0.0) if n == 0
                        else (204, {}, 0.0)).start()
    try:
        subscribe(store, receiver.url)
        credit_history(reg, 1)
        enqueue_all(reg, store)
        worker, clock = stepwise(store)
        assert worker.run_once() == 2  # the first event of each of the two subjects
        first = store.deliveries("s1")[0]
        assert first.state == PENDING and first.last_status == 503
        assert first.next_attempt_at - (first.last_attempt_at or 0) == pytest.approx(120, abs=1)
        delivered_before = {d.position for d in store.deliveries("s1", state=DELIVERED)}
        assert worker.run_once() == 1  # only the member's next event: the lead's waits
        assert first.position not in delivered_before
        assert all(d.subject != first.subject for d in store.deliveries("s1", state=DELIVERED))
        clock.now += 121
        while worker.run_once():
            pass
        assert store.counts("s1")[DELIVERED] == 6
        worker.stop()
    finally:
        receiver.stop()


def test_410_gone_disables_the_subscription_until_the_province_enables_it(
        reg: Registry, store: CreditOutboxSQL) -> None:
    gone = {"on": True}
    receiver = Receiver(script=lambda n: (410, {}, 0.0) if gone["on"] else (204, {}, 0.0)).start()
    try:
        subscribe(store, receiver.url)
        credit_history(reg, 1)
        enqueue_all(reg, store)
        worker, clock = stepwise(store)
        worker.run_once()
        subscription = store.subscription("s1")
        assert subscription is not None and subscription.state == DISABLED
        assert subscription.disabled_reason == "410 Gone"
        tried = len(receiver.snapshot())
        clock.now += 3600
        assert worker.run_once() == 0 and len(receiver.snapshot()) == tried
        assert store.counts("s1")[PENDING] == 6  # nothing lost while disabled
        gone["on"] = False
        store.set_state("s1", "active")
        while worker.run_once():
            pass
        assert store.counts("s1") == {PENDING: 0, DELIVERED: 6, DEAD: 0}
        worker.stop()
    finally:
        receiver.stop()


def test_after_the_last_attempt_a_delivery_is_dead_until_it_is_redelivered(
        reg: Registry, store: CreditOutboxSQL) -> None:
    failing = {"on": True}
    receiver = Receiver(script=lambda n: (500, {}, 0.0) if failing["on"] else (204, {}, 0.0))
    receiver.start()
    try:
        subscribe(store, receiver.url)
        credit_history(reg, 1)
        enqueue_all(reg, store)
        policy = DeliveryPolicy(base=1, factor=2, cap=10, max_attempts=3, jitter=0.0,
                                timeout=2.0)
        worker, clock = stepwise(store, policy)
        for _ in range(3):
            worker.run_once()
            clock.now += 11
        dead = store.deliveries("s1", state=DEAD)
        assert len(dead) == 2 and all(d.attempts == 3 for d in dead)  # one per subject
        # Dead letters no longer hold their subjects back.
        failing["on"] = False
        while worker.run_once():
            pass
        assert store.counts("s1") == {PENDING: 0, DELIVERED: 4, DEAD: 2}
        assert store.redeliver("s1", now=clock.now) == 2
        while worker.run_once():
            pass
        assert store.counts("s1") == {PENDING: 0, DELIVERED: 6, DEAD: 0}
        worker.stop()
    finally:
        receiver.stop()


def test_a_rotated_key_signs_beside_the_new_one_until_it_retires(
        reg: Registry, store: CreditOutboxSQL) -> None:
    receiver = Receiver().start()
    try:
        old = subscribe(store, receiver.url)
        credit_history(reg, 1)
        enqueue_all(reg, store)
        new = new_hmac_secret()
        worker, clock = stepwise(store)
        store.add_key("s1", SigningKey("k2", new, None, clock.now, None),
                      retire_others_at=clock.now + 60)
        assert worker.run_once() == 2
        clock.now += 61
        while worker.run_once():
            pass
        worker.stop()
        arrivals = receiver.snapshot()
        assert [len(a.headers["webhook-signature"].split()) for a in arrivals[:2]] == [2, 2]
        assert len(arrivals[-1].headers["webhook-signature"].split()) == 1
        for a in arrivals:
            verify([new], a.body, a.headers, tolerance=None)
        verify([old], arrivals[0].body, arrivals[0].headers, tolerance=None)
    finally:
        receiver.stop()
