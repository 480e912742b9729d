"""Idempotency-Key: a retry returns the first answer and writes nothing; If-Match: of two writers
holding the same version, one wins and the other gets 412."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from unittest import mock

import httpx

from api.idempotency import fingerprint
from api.sqlstore import utcnow
from audit.store import parse_database_url
from audit.verify import verify_chain
from tests.api import payloads as p
from tests.api.conftest import Api, assert_problem


def _together(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls at the same moment, each in its own thread."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_a_retried_creation_returns_the_first_answer_and_writes_once(api: Api) -> None:
    body = p.start()
    first = api.post("/consortia", body, "nanjing", **{"Idempotency-Key": "form-0001"})
    assert first.status_code == 201
    head = api.head()
    again = api.post("/consortia", body, "nanjing", **{"Idempotency-Key": "form-0001"})
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.head() == head

    # The same key, the same body with other spacing and key order: still the same request.
    reordered = dict(reversed(list(body.items())))
    r = api.client.post("/api/v1/consortia", content=httpx.Request(
        "POST", "/", json=reordered).content, headers={
        **api.headers("nanjing"), "Content-Type": "application/json",
        "Idempotency-Key": "form-0001"})
    assert r.status_code == 201 and r.json() == first.json()
    assert api.head() == head


def test_a_creation_run_again_after_its_answer_was_lost_cannot_start_a_second_consortium(
        api: Api) -> None:
    body = p.start()
    first = api.post("/consortia", body, "nanjing", **{"Idempotency-Key": "form-0002"})
    assert first.status_code == 201
    head = api.head()
    # The kept answer is gone, as when the process died before keeping it and the key's lease
    # has passed: the retry runs the command again.
    api.app.state.sql.execute("DELETE FROM idempotency_keys WHERE idempotency_key = ?",
                              ("form-0002",))
    again = api.post("/consortia", body, "nanjing", **{"Idempotency-Key": "form-0002"})
    problem = assert_problem(again, 409, "consortium-already-started")
    assert problem["consortium_id"] == first.json()["consortium_id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert api.head() == head  # nothing written

    # Another key, or the same key of another client, starts another consortium.
    other = api.post("/consortia", body, "nanjing2", **{"Idempotency-Key": "form-0002"})
    assert other.status_code == 201
    assert other.json()["consortium_id"] != first.json()["consortium_id"]
    without = api.post("/consortia", body, "nanjing")
    assert without.status_code == 201


def test_keys_are_forgotten_after_the_retention_and_a_late_retry_still_writes_nothing(
        api: Api) -> None:
    j = p.Journey(api)
    j.start()
    body, key = p.admit(), {"Idempotency-Key": "admit-late"}
    first = api.post(f"/consortia/{j.id}/members", body, "nanjing", j.version, **key)
    assert first.status_code == 200
    store = api.app.state.idempotency
    assert store.retention == timedelta(hours=24)
    assert store.prune(utcnow() + timedelta(hours=23)) == 0  # still remembered
    count = "SELECT COUNT(*) FROM idempotency_keys WHERE idempotency_key = ?"
    assert api.app.state.sql.fetchone(count, ("admit-late",)) == (1,)
    # A claim prunes what is due (at most every ``prune_every``): a day later the key is gone.
    store._next_prune = 0.0
    later = utcnow() + timedelta(hours=25)
    with mock.patch("api.idempotency.utcnow", return_value=later):
        api.post("/consortia", p.start(), "nanjing", **{"Idempotency-Key": "another"})
    assert api.app.state.sql.fetchone(count, ("admit-late",)) == (0,)
    head = api.head()
    # The late retry runs again, and its If-Match is stale now: refused, nothing written twice.
    again = api.post(f"/consortia/{j.id}/members", body, "nanjing", j.version, **key)
    assert_problem(again, 412)
    assert api.head() == head


def test_a_key_reused_for_another_request_is_a_422(api: Api) -> None:
    api.post("/consortia", p.start(), "nanjing", **{"Idempotency-Key": "k-1"})
    head = api.head()
    other = p.start()
    other["name"] = "另一个创新联合体"
    r = api.post("/consortia", other, "nanjing", **{"Idempotency-Key": "k-1"})
    problem = assert_problem(r, 422, "idempotency-key-reused")
    assert problem["type"].endswith("/idempotency-key-reused")
    assert api.head() == head


def test_a_retry_of_a_command_with_if_match_replays_its_answer(api: Api) -> None:
    j = p.Journey(api)
    j.start()
    body = p.admit()
    key = {"Idempotency-Key": "admit-7f3a"}
    first = api.post(f"/consortia/{j.id}/members", body, "nanjing", j.version, **key)
    assert first.status_code == 200
    head = api.head()
    again = api.post(f"/consortia/{j.id}/members", body, "nanjing", j.version, **key)
    assert (again.status_code, again.json(), again.headers["ETag"]) == (
        200, first.json(), first.headers["ETag"])
    assert api.head() == head
    # Another If-Match is another request.
    r = api.post(f"/consortia/{j.id}/members", body, "nanjing", j.version + 1, **key)
    assert_problem(r, 422, "idempotency-key-reused")


def test_a_refusal_is_replayed_too(api: Api) -> None:
    j = p.Journey(api)
    j.start()
    key = {"Idempotency-Key": "submit-early"}
    first = api.post(f"/consortia/{j.id}/application", p.submit(), "nanjing", j.version, **key)
    assert_problem(first, 409, "agreement-not-signed-by-all")
    again = api.post(f"/consortia/{j.id}/application", p.submit(), "nanjing", j.version, **key)
    assert again.status_code == 409 and again.json() == first.json()
    assert again.headers["content-type"].startswith("application/problem+json")


def test_keys_belong_to_their_client(api: Api) -> None:
    body = p.start()
    a = api.post("/consortia", body, "nanjing", **{"Idempotency-Key": "shared"})
    b = api.post("/consortia", body, "nanjing2", **{"Idempotency-Key": "shared"})
    assert a.status_code == b.status_code == 201
    assert a.json()["consortium_id"] != b.json()["consortium_id"]
    rows = api.app.state.sql.fetchall(
        "SELECT client_id, state, status_code FROM idempotency_keys ORDER BY client_id")
    assert sorted(rows) == sorted([(api.key_ids["nanjing"], "done", 201),
                                   (api.key_ids["nanjing2"], "done", 201)])


def test_concurrent_retries_write_once_and_answer_alike(api: Api) -> None:
    body = p.start()
    events = api.events()
    results = _together(*[
        (lambda: api.post("/consortia", body, "nanjing", **{"Idempotency-Key": "burst"}))
        for _ in range(4)])
    assert [r.status_code for r in results] == [201] * 4
    assert len({r.json()["consortium_id"] for r in results}) == 1
    assert api.events() == events + 1


def test_a_malformed_idempotency_key_is_a_400(sqlite_api: Api) -> None:
    r = sqlite_api.post("/consortia", p.start(), "nanjing", **{"Idempotency-Key": "x" * 300})
    assert_problem(r, 400, "invalid-idempotency-key")


def test_fingerprint_ignores_json_layout_but_not_content() -> None:
    a = fingerprint("POST", "/c", '"1"', b'{"a": 1, "b": [1, 2]}')
    assert a == fingerprint("POST", "/c", '"1"', b'{"b":[1,2],"a":1}')
    assert a != fingerprint("POST", "/c", '"1"', b'{"b":[2,1],"a":1}')
    assert a != fingerprint("POST", "/d", '"1"', b'{"a": 1, "b": [1, 2]}')
    assert a != fingerprint("POST", "/c", '"2"', b'{"a": 1, "b": [1, 2]}')


def test_two_writers_with_the_same_if_match_one_wins_one_gets_412(api: Api) -> None:
    j = p.Journey(api)
    j.start()
    for round_ in range(3):
        events = api.events()
        a, b = p.admit(p.unit("university")), p.admit(p.unit("enterprise"))
        url = f"/consortia/{j.id}/members"
        results = _together(lambda: api.post(url, a, "nanjing", j.version),  # noqa: B023
                            lambda: api.post(url, b, "nanjing2", j.version))  # noqa: B023
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 412], [r.text for r in results]
        loser = next(r for r in results if r.status_code == 412)
        assert_problem(loser, 412, "stale-version")
        assert api.events() == events + 1, f"round {round_}: exactly one event"
        j.version += 1
        assert api.registry.get(j.id).version == j.version
    assert verify_chain(parse_database_url(api.url)).ok
