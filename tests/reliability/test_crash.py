"""The service process is killed (SIGKILL) while 8 clients write over HTTP: after a restart every
acknowledged write is there, no unacknowledged command is half there, the chain verifies and the
read models equal a rebuild from position 0 — on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest

from tests.reliability.ledger_checks import (
    assert_acknowledged_present,
    assert_chain_verifies,
    assert_versions_without_gaps,
    assert_views_equal_a_rebuild,
    ledger_events,
)
from tests.reliability.service import Service
from tests.reliability.workload import Interrupted, Recorder, Writer, journey_to_rejection

pytestmark = pytest.mark.slow

WRITERS = 8
#: Acknowledged writes before each kill (the kill lands while all 8 clients are mid-journey).
ACKS_PER_ROUND = 60
ROUNDS = 2


def _write_until_killed(service: Service, log: Recorder) -> None:
    with service.client() as client:
        writer = Writer(client, service.keys, log)
        try:
            while True:
                journey_to_rejection(writer)
        except Interrupted:
            return


def test_a_killed_service_keeps_every_acknowledged_write_and_no_half_command(
        service: Service, database_url: str) -> None:
    log = Recorder()
    for round_ in range(1, ROUNDS + 1):
        service.start()
        threads = [threading.Thread(target=_write_until_killed, args=(service, log), daemon=True)
                   for _ in range(WRITERS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        while (log.count(lambda a: a.acknowledged) < ACKS_PER_ROUND * round_
               and time.monotonic() < deadline):
            time.sleep(0.02)
        service.kill()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a client hung on a killed service"
        assert log.count(lambda a: a.acknowledged) >= ACKS_PER_ROUND * round_
    unanswered = log.count(lambda a: a.status == 0)
    assert unanswered == WRITERS * ROUNDS  # each client stopped at its first unanswered request
    # Nothing but the success of each step and the lost answers of the kill.
    assert log.count(lambda a: a.status not in (0, 200, 201)) == 0

    # The restarted service answers and goes on writing.
    service.start()
    with service.client() as client:
        journey_to_rejection(Writer(client, service.keys, log))
    service.wait_caught_up()
    service.stop()

    events = ledger_events(database_url)
    assert assert_chain_verifies(database_url) == len(events)
    by_consortium = assert_versions_without_gaps(events)
    acknowledged = log.acknowledged()
    assert_acknowledged_present(events, acknowledged)
    # A command's events are all there or none: the dishonesty record and the rejection it
    # causes are written together, next to each other in the ledger.
    index = {e.position: i for i, e in enumerate(events)}
    for evs in by_consortium.values():
        for e in evs:
            if e.name == "CreditViolationRecorded":
                following = events[index[e.position] + 1] if index[e.position] + 1 < len(
                    events) else None
                assert following is not None and following.name == "Rejected" and (
                    following.consortium_id, following.version) == (e.consortium_id,
                                                                    e.version + 1), e
    # Events nobody was told about come only from the requests cut off by the kills (two at most
    # each: the dishonesty record and its rejection).
    told = {pos for answer in acknowledged for pos in answer["positions"]}
    assert len([e for e in events if e.position not in told]) <= 2 * unanswered
    assert assert_views_equal_a_rebuild(database_url) == len(by_consortium)
