"""The credit feed over HTTP (SQLite and PostgreSQL): pages and cursors, long-polling, the first-load
snapshot, withdrawn records, inclusion proofs, and who may read it."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from projections.credit_events import encode_cursor, event_type
from tests.api.conftest import PREFIX, Api, assert_problem
from tests.credit_helpers import D, credit_history, violation
from tests.factories import PROVINCE, doc

FEED = f"{PREFIX}/feeds/credit"


def read(api: Api, path: str = FEED, who: str = "credit_consumer", **params: Any) -> Any:
    response = api.client.get(path, params=params, headers=api.headers(who))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_credit_consumer_pages_through_the_feed_and_resumes_from_its_cursor(api: Api) -> None:
    credit_history(api.registry, 1)
    first = read(api, limit=4)
    assert len(first["events"]) == 4 and first["more"] is True
    rest = read(api, after=first["cursor"], limit=4)
    assert len(rest["events"]) == 2 and rest["more"] is False
    events = first["events"] + rest["events"]
    assert [e["type"] for e in events][:2] == [event_type("violation-recorded"),
                                               event_type("violation-repaired")]
    assert all(e["specversion"] == "1.0" and e["datacontenttype"] == "application/json"
               for e in events)
    again = read(api, after=rest["cursor"])
    assert again == {"events": [], "cursor": rest["cursor"], "more": False}
    assert read(api)["events"] == events  # from the beginning, the same events and ids


def test_a_repaired_record_is_not_served_with_its_content(api: Api) -> None:
    history = credit_history(api.registry, 1)
    response = api.client.get(FEED, headers=api.headers("credit_consumer"))
    for fact in history.facts:
        assert fact not in response.text
    recorded = [e for e in response.json()["events"]
                if e["type"] == event_type("violation-recorded")]
    assert [e["data"]["withdrawal"]["reason"] for e in recorded] == [
        "repaired", "publicity_ended", "revoked"]


def test_the_snapshot_holds_the_records_in_publicity_and_the_cursor_to_continue(
        api: Api) -> None:
    history = credit_history(api.registry, 1)
    api.registry.record_credit_violation(
        history.consortium_id, violation(history.lead, "公示中的失信记录"), actor=PROVINCE,
        effective_date=D(2026, 3, 3), document=doc("认定4"))
    snapshot = read(api, f"{FEED}/snapshot")
    assert [(e["data"]["record_id"], e["data"]["reason"]) for e in snapshot["events"]] == [
        ("CR-4", "公示中的失信记录")]
    assert read(api, after=snapshot["cursor"])["events"] == []
    api.registry.revoke_credit(history.consortium_id, "CR-4", reason="认定有误", actor=PROVINCE,
                               effective_date=D(2026, 3, 4), document=doc("撤销4"))
    later = read(api, after=snapshot["cursor"])["events"]
    assert [e["type"] for e in later] == [event_type("violation-revoked")]
    assert read(api, f"{FEED}/snapshot")["events"] == []


def test_a_long_poll_answers_with_the_event_recorded_while_it_waits(api: Api) -> None:
    credit_history(api.registry, 1)
    cursor = read(api)["cursor"]
    store = api.app.state.credit_store
    waiting = threading.Event()
    page = store.page

    def watched_page(after: int, limit: int) -> Any:
        result = page(after, limit)
        waiting.set()  # the request has read the (empty) page and is now waiting
        return result

    store.page = watched_page
    answer: list[Any] = []
    poll = threading.Thread(target=lambda: answer.append(read(api, after=cursor, wait=20)))
    poll.start()
    assert waiting.wait(20)
    cid = credit_history(api.registry, 2).consortium_id  # written while the request waits
    poll.join(30)
    assert not poll.is_alive()
    events = answer[0]["events"]
    assert events and events[0]["data"]["consortium"]["id"] == cid


def test_each_event_names_its_ledger_position_and_hash_for_the_inclusion_proof(
        api: Api) -> None:
    credit_history(api.registry, 1)
    event = read(api)["events"][0]
    ledger = event["data"]["ledger"]
    assert int(event["sequence"]) == ledger["position"]
    proof = api.client.get(f"{PREFIX}/audit/proofs/inclusion",
                           params={"position": ledger["position"]},
                           headers=api.headers("auditor"))
    assert proof.status_code == 200, proof.text
    assert proof.json()["record_hash"] == ledger["record_hash"]
    assert ledger["inclusion_proof"].startswith(f"{PREFIX}/audit/proofs/inclusion?position=")


@pytest.mark.parametrize("cursor", ["not-a-cursor", "Y3JlZGl0", "A" * 64])
def test_a_cursor_the_registry_did_not_hand_out_is_a_400_problem(api: Api, cursor: str) -> None:
    response = api.client.get(FEED, params={"after": cursor},
                              headers=api.headers("credit_consumer"))
    body = assert_problem(response, 400, "invalid-cursor")
    assert body["field"] == "after"


def test_a_cursor_beyond_the_ledger_is_refused(api: Api) -> None:
    response = api.client.get(FEED, params={"after": encode_cursor(10**9)},
                              headers=api.headers("credit_consumer"))
    assert_problem(response, 400, "invalid-cursor")


@pytest.mark.parametrize("who", ["province", "nanjing", "agency", "auditor"])
def test_only_credit_consumers_read_the_feed(sqlite_api: Api, who: str) -> None:
    for path in (FEED, f"{FEED}/snapshot"):
        response = sqlite_api.client.get(path, headers=sqlite_api.headers(who))
        assert_problem(response, 403, "forbidden")
    assert_problem(sqlite_api.client.get(FEED), 401, "unauthenticated")
