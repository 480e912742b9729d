"""Webhook subscriptions over HTTP (SQLite and PostgreSQL), with the service's own delivery worker
pushing to a real receiver on loopback: signed deliveries, key rotation, 410, dead letters and
redelivery, and who may manage subscriptions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.webhooks import verify
from projections.credit_events import EVENT_TYPES, event_type
from tests.api.conftest import PREFIX, Api, assert_problem, make_api
from tests.credit_helpers import Receiver, credit_history, wait_until

SUBS = f"{PREFIX}/webhooks/subscriptions"


@pytest.fixture
def hooked(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """An app whose embedded delivery worker retries within tenths of a second."""
    for name, value in {"RETRY_BASE": "0.02", "RETRY_FACTOR": "2", "RETRY_CAP": "0.2",
                        "TIMEOUT": "2", "POLL_INTERVAL": "0.05", "MAX_ATTEMPTS": "3"}.items():
        monkeypatch.setenv(f"CONSORTIA_WEBHOOK_{name}", value)
    yield from make_api(database_url)


def subscribe(api: Api, url: str, **body: Any) -> dict[str, Any]:
    response = api.client.post(SUBS, json={"url": url, **body}, headers=api.headers("province"))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def get(api: Api, path: str, **params: Any) -> Any:
    response = api.client.get(path, params=params, headers=api.headers("province"))
    assert response.status_code == 200, response.text
    return response.json()


def post(api: Api, path: str, body: Any = None) -> Any:
    response = api.client.post(path, json=body, headers=api.headers("province"))
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_a_subscriber_receives_each_credit_event_signed_with_its_secret(hooked: Api) -> None:
    receiver = Receiver().start()
    try:
        created = subscribe(hooked, receiver.url, description="江苏省公共信用信息平台")
        secret = created["key"]["secret"]
        assert secret.startswith("whsec_") and created["event_types"] == list(EVENT_TYPES)
        assert created["state"] == "active"
        credit_history(hooked.registry, 1)
        wait_until(lambda: len(receiver.snapshot()) >= 6, 60, "six deliveries")
        arrivals = receiver.snapshot()
        for a in arrivals:
            assert verify([secret], a.body, a.headers) == a.event["id"]
        feed = hooked.client.get(f"{PREFIX}/feeds/credit",
                                 headers=hooked.headers("credit_consumer")).json()
        assert {a.event["id"] for a in arrivals} == {e["id"] for e in feed["events"]}
        sid = created["id"]
        wait_until(lambda: get(hooked, f"{SUBS}/{sid}")["deliveries"]["delivered"] == 6, 30)
        listed = hooked.client.get(SUBS, headers=hooked.headers("province"))
        assert secret not in listed.text  # the secret is shown once, when created
        assert [d["state"] for d in get(hooked, f"{SUBS}/{sid}/deliveries")] == ["delivered"] * 6
    finally:
        receiver.stop()


def test_an_ed25519_subscriber_verifies_with_the_public_key(hooked: Api) -> None:
    receiver = Receiver().start()
    try:
        created = subscribe(hooked, receiver.url, signing="ed25519",
                            event_types=[event_type("violation-recorded")])
        public = created["key"]["public_key"]
        assert public.startswith("whpk_") and created["key"]["secret"] is None
        credit_history(hooked.registry, 1)
        wait_until(lambda: len(receiver.snapshot()) >= 3, 60, "three deliveries")
        for a in receiver.snapshot():
            assert a.headers["webhook-signature"].startswith("v1a,")
            assert verify([public], a.body, a.headers) == a.event["id"]
            assert a.event["type"] == event_type("violation-recorded")
    finally:
        receiver.stop()


def test_after_a_rotation_a_delivery_carries_the_old_and_the_new_signature(
        hooked: Api) -> None:
    receiver = Receiver().start()
    try:
        created = subscribe(hooked, receiver.url)
        rotated = post(hooked, f"{SUBS}/{created['id']}/keys", {"overlap_seconds": 3600})
        keys = get(hooked, f"{SUBS}/{created['id']}")["keys"]
        assert len(keys) == 2 and keys[0]["expires_at"] is not None
        credit_history(hooked.registry, 1)
        wait_until(lambda: len(receiver.snapshot()) >= 1, 60, "a delivery")
        a = receiver.snapshot()[0]
        assert len(a.headers["webhook-signature"].split()) == 2
        verify([created["key"]["secret"]], a.body, a.headers)
        verify([rotated["secret"]], a.body, a.headers)
    finally:
        receiver.stop()


def test_410_disables_and_enabling_delivers_what_waited(hooked: Api) -> None:
    gone = {"on": True}
    receiver = Receiver(script=lambda n: (410, {}, 0.0) if gone["on"] else (204, {}, 0.0))
    receiver.start()
    try:
        sid = subscribe(hooked, receiver.url)["id"]
        credit_history(hooked.registry, 1)
        wait_until(lambda: get(hooked, f"{SUBS}/{sid}")["state"] == "disabled", 60, "disabled")
        assert get(hooked, f"{SUBS}/{sid}")["disabled_reason"] == "410 Gone"
        gone["on"] = False
        assert post(hooked, f"{SUBS}/{sid}/enable")["state"] == "active"
        wait_until(lambda: get(hooked, f"{SUBS}/{sid}")["deliveries"]["delivered"] == 6, 60)
    finally:
        receiver.stop()


def test_dead_letters_are_listed_and_redelivered_on_request(hooked: Api) -> None:
    failing = {"on": True}
    receiver = Receiver(script=lambda n: (500, {}, 0.0) if failing["on"] else (204, {}, 0.0))
    receiver.start()
    try:
        sid = subscribe(hooked, receiver.url)["id"]
        credit_history(hooked.registry, 1)
        # Three attempts each (CONSORTIA_WEBHOOK_MAX_ATTEMPTS): the first event of each subject
        # dies, then the next ones of the subject go out and die too.
        wait_until(lambda: get(hooked, f"{SUBS}/{sid}")["deliveries"]["dead"] == 6, 60, "dead")
        dead = get(hooked, f"{SUBS}/{sid}/deliveries", state="dead")
        assert len(dead) == 6 and all(d["attempts"] == 3 and d["last_status"] == 500
                                      for d in dead)
        failing["on"] = False
        one = post(hooked, f"{SUBS}/{sid}/deliveries/{dead[0]['position']}/redelivery")
        assert one["state"] in ("pending", "delivered") and one["position"] == dead[0]["position"]
        assert post(hooked, f"{SUBS}/{sid}/dead-letters/redelivery")["redelivered"] == 5
        wait_until(lambda: get(hooked, f"{SUBS}/{sid}")["deliveries"]["delivered"] == 6, 60)
    finally:
        receiver.stop()


def test_redelivering_a_pending_or_unknown_delivery_is_refused(sqlite_api: Api) -> None:
    sid = subscribe(sqlite_api, "http://127.0.0.1:9/unreachable")["id"]
    h = sqlite_api.headers("province")
    assert_problem(sqlite_api.client.post(f"{SUBS}/{sid}/deliveries/1/redelivery", headers=h),
                   404, "not-found")
    assert_problem(sqlite_api.client.get(f"{SUBS}/nope", headers=h), 404, "not-found")
    credit_history(sqlite_api.registry, 1)  # nothing listens on port 9: the deliveries wait
    wait_until(lambda: len(get(sqlite_api, f"{SUBS}/{sid}/deliveries")) == 6, 30, "queued")
    position = get(sqlite_api, f"{SUBS}/{sid}/deliveries")[0]["position"]
    assert_problem(sqlite_api.client.post(f"{SUBS}/{sid}/deliveries/{position}/redelivery",
                                          headers=h), 409, "delivery-pending")
    assert sqlite_api.client.delete(f"{SUBS}/{sid}", headers=h).status_code == 204
    assert_problem(sqlite_api.client.delete(f"{SUBS}/{sid}", headers=h), 404, "not-found")


def test_a_subscription_needs_an_http_url_and_known_event_types(sqlite_api: Api) -> None:
    h = sqlite_api.headers("province")
    for body in ({"url": "ftp://example.org/x"}, {"url": "not a url"},
                 {"url": "https://example.org/x", "event_types": ["user.created"]},
                 {"url": "https://example.org/x", "event_types": []}):
        assert_problem(sqlite_api.client.post(SUBS, json=body, headers=h), 422,
                       "validation-error")


@pytest.mark.parametrize("who", ["credit_consumer", "nanjing", "agency", "auditor"])
def test_only_the_province_manages_subscriptions(sqlite_api: Api, who: str) -> None:
    h = sqlite_api.headers(who)
    assert_problem(sqlite_api.client.post(SUBS, json={"url": "https://example.org/x"}, headers=h),
                   403, "forbidden")
    assert_problem(sqlite_api.client.get(SUBS, headers=h), 403, "forbidden")
    assert_problem(sqlite_api.client.get(SUBS), 401, "unauthenticated")
