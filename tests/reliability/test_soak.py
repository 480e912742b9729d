"""Soak: a bounded run of mixed reads and writes against a real service process, its memory
(VmRSS) and its open files and sockets sampled from /proc — none of them grows after warm-up.

``CONSORTIA_SOAK_SECONDS`` sets the length of the run (default 120 s on each backend; give more for a longer
soak). The checks compare levels and a linear trend, never timings."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import pytest

from tests.api import payloads as p
from tests.reliability.ledger_checks import assert_chain_verifies, ledger_events
from tests.reliability.service import Service
from tests.reliability.workload import Answer, Recorder, Writer

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("CONSORTIA_SOAK_SECONDS", "120"))
WARM_UP = 0.4  # the first part of the run is not judged
WRITERS, READERS = 4, 4
#: Allowed growth after warm-up: memory (KiB, or a share of it), files and sockets.
RSS_SLACK_KIB, RSS_SLACK_SHARE = 12 * 1024, 0.08
FD_SLACK = 6


@dataclass
class Sample:
    at: float
    rss_kib: int
    fds: int
    sockets: int


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys over xs."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


#: Commands per consortium before a writer starts the next one: the ledger grows, and so does the
#: number of consortia, while what one request reads or writes stays the size of a real
#: consortium's state and history.
PER_CONSORTIUM = 42  # seven rounds of three admitted, three dropped


def _write(service: Service, log: Recorder, cids: list[tuple[str, int]], first: str,
           stop: threading.Event) -> None:
    """Admit and drop a few units, then start another consortium, again and again. ``cids``
    gets each new consortium with the ledger position that started it."""
    units = [p.unit("enterprise") for _ in range(3)]
    cid, version = first, 1
    with service.client() as client:
        w = Writer(client, service.keys, log)
        i = 0
        while not stop.is_set():
            if i and i % PER_CONSORTIUM == 0:
                answer = w.post("/consortia", p.start(), "nanjing")
                assert answer.status == 201 and answer.body is not None, answer
                cid, version = answer.body["consortium_id"], 1
                cids.append((cid, answer.body["position"]))
            j = i % PER_CONSORTIUM
            u = units[j % len(units)]
            admit = (j // len(units)) % 2 == 0
            path = (f"/consortia/{cid}/members" if admit
                    else f"/consortia/{cid}/members/{u['uscc']}/drop")
            body = p.admit(u, "2025-01-25") if admit else p.drop("2025-01-25")
            answer = w.post(path, body, "nanjing", version,
                            idempotency_key=f"soak-{cid}-{i}" if i % 2 else None)
            assert answer.status == 200 and answer.body is not None, answer
            version = answer.body["version"]
            i += 1


def _read(service: Service, log: Recorder, cids: list[tuple[str, int]],
          stop: threading.Event) -> None:
    """Lists, states (reading their own writers' writes), histories and statistics; a new
    connection every 50 requests."""
    auth = {"Authorization": f"Bearer {service.keys['auditor']}"}
    i = 0
    while not stop.is_set():
        with service.client() as client:
            for _ in range(50):
                cid, position = cids[-1 - i % min(len(cids), 8)]  # the latest consortia
                path = [f"/consortia/{cid}", f"/consortia/{cid}/history", "/consortia",
                        "/statistics"][i % 4]
                try:
                    r = client.get(path, headers=auth, params={"min_position": position}
                                   if i % 4 == 0 else None)
                    status = r.status_code
                except httpx.HTTPError:
                    status = 0
                log.add(Answer(path, status))
                i += 1
                if stop.is_set():
                    break


def test_memory_files_and_connections_stay_flat_under_load(service: Service,
                                                           database_url: str) -> None:
    service.start()
    writes, reads = Recorder(), Recorder()
    with service.client() as client:
        setup = Writer(client, service.keys, writes)
        cids: list[tuple[str, int]] = []
        for _ in range(WRITERS):
            answer = setup.post("/consortia", p.start(), "nanjing")
            assert answer.status == 201 and answer.body is not None
            cids.append((answer.body["consortium_id"], answer.body["position"]))
    stop = threading.Event()
    failures: list[BaseException] = []

    def guarded(target: object, *args: object) -> None:
        try:
            target(*args)  # type: ignore[operator]
        except BaseException as e:
            failures.append(e)
            stop.set()

    threads = [threading.Thread(target=guarded, args=(_write, service, writes, cids, cid, stop),
                                daemon=True) for cid, _ in list(cids)]
    threads += [threading.Thread(target=guarded, args=(_read, service, reads, cids, stop),
                                 daemon=True) for _ in range(READERS)]
    for t in threads:
        t.start()
    samples: list[Sample] = []
    started = time.monotonic()
    while time.monotonic() - started < SECONDS and not stop.is_set():
        samples.append(Sample(time.monotonic() - started, service.rss_kib(), service.open_fds(),
                              service.open_sockets()))
        time.sleep(0.25)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert not failures, failures
    service.stop()

    read_statuses = Counter(a.status for a in reads.answers)
    assert set(read_statuses) == {200}, read_statuses
    assert writes.count(lambda a: a.acknowledged) > 100, "too little load to judge"
    judged = [s for s in samples if s.at >= WARM_UP * SECONDS]
    assert len(judged) >= 10
    warm = [s for s in samples if s.at < WARM_UP * SECONDS]
    report = (f"{len(writes.answers)} writes, {len(reads.answers)} reads; rss KiB "
              f"{[s.rss_kib for s in samples]}; fds {[s.fds for s in samples]}; sockets "
              f"{[s.sockets for s in samples]}")
    print(report)
    rss = [s.rss_kib for s in judged]
    slack = max(RSS_SLACK_KIB, RSS_SLACK_SHARE * rss[0])
    # Level: the highest after warm-up is close to the level at the end of warm-up …
    assert max(rss) - max(s.rss_kib for s in warm) <= slack, report
    # … and the trend over the judged window does not add up to more than the slack.
    span = judged[-1].at - judged[0].at
    assert slope([s.at for s in judged], rss) * span <= slack, report
    for name in ("fds", "sockets"):
        values = [getattr(s, name) for s in judged]
        assert max(values) <= max(getattr(s, name) for s in warm) + FD_SLACK, report
        assert slope([s.at for s in judged], values) * span <= FD_SLACK, report

    events = ledger_events(database_url)
    assert assert_chain_verifies(database_url) == len(events)
