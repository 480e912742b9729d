"""Every write endpoint refuses, with problem+json and nothing stored: no credential (401), a
read-only role, a wrong role or another city (403), a missing (428) or stale (412) If-Match, and
an unknown consortium (404)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api import payloads as p
from tests.api.conftest import Api, assert_problem

CITY_WRITERS = ("nanjing",)
PROVINCE_ONLY = ("province",)


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # relative to /consortia/{id}; "" for the creation
    body: Callable[[p.Journey], dict[str, Any]]
    allowed: tuple[str, ...]  # callers whose role the domain accepts

    @property
    def creates(self) -> bool:
        return self.path == ""

    def url(self, consortium_id: str, j: p.Journey) -> str:
        if self.creates:
            return "/consortia"
        return f"/consortia/{consortium_id}/" + self.path.format(member=j.members[0])


ENDPOINTS = [
    Endpoint("start_formation", "", lambda j: p.start(), CITY_WRITERS),
    Endpoint("admit_member", "members", lambda j: p.admit(), CITY_WRITERS),
    Endpoint("drop_member", "members/{member}/drop", lambda j: p.drop(), CITY_WRITERS),
    Endpoint("sign_agreement", "agreement",
             lambda j: p.agreement([j.lead, *j.members]), CITY_WRITERS),
    Endpoint("submit_application", "application", lambda j: p.submit(), CITY_WRITERS),
    Endpoint("recommend", "recommendation", lambda j: p.recommend(), CITY_WRITERS),
    Endpoint("return_application", "return", lambda j: p.return_(), CITY_WRITERS),
    Endpoint("expert_review", "expert-review", lambda j: p.review(), PROVINCE_ONLY),
    Endpoint("listing", "listing", lambda j: p.listing(), PROVINCE_ONLY),
    Endpoint("rejection", "rejection", lambda j: p.rejection(), PROVINCE_ONLY),
    Endpoint("supplementary_agreement", "supplementary-agreements",
             lambda j: p.supplementary(j.lead), PROVINCE_ONLY),
    Endpoint("annual_report", "annual-reports", lambda j: p.annual_report(), PROVINCE_ONLY),
    Endpoint("evaluation", "evaluations", lambda j: p.evaluation(), ("province", "agency")),
    Endpoint("rectification", "rectification", lambda j: p.rectification(), PROVINCE_ONLY),
    Endpoint("rectification_completion", "rectification/completion",
             lambda j: p.completion(), PROVINCE_ONLY),
    Endpoint("delisting", "delisting", lambda j: p.delisting(), PROVINCE_ONLY),
    Endpoint("credit_violation", "credit-violations", lambda j: p.violation(j.lead),
             PROVINCE_ONLY),
    Endpoint("credit_repair", "credit-violations/CR-1/repair", lambda j: p.repair(),
             PROVINCE_ONLY),
    Endpoint("credit_revocation", "credit-violations/CR-1/revocation",
             lambda j: p.revocation(), PROVINCE_ONLY),
    Endpoint("credit_publicity_end", "credit-violations/CR-1/publicity-end",
             lambda j: p.publicity_end(), PROVINCE_ONLY),
]
WRITERS = ("nanjing", "province", "agency")


def _forming_with_a_member(api: Api) -> p.Journey:
    j = p.Journey(api)
    j.start("nanjing")
    j.admit("university")
    return j


def test_the_table_covers_every_write_route(sqlite_api: Api) -> None:
    schema = sqlite_api.client.get("/api/v1/openapi.json").json()
    posts = {path for path, item in schema["paths"].items()
             if "post" in item and path.startswith("/api/v1/consortia")}
    assert len(posts) == len(ENDPOINTS) == 20


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_a_write_is_refused_without_the_right_credential(api: Api, endpoint: Endpoint) -> None:
    j = _forming_with_a_member(api)
    url, body = endpoint.url(j.id, j), endpoint.body(j)
    version = None if endpoint.creates else j.version
    head = api.head()

    # No credential at all → 401 with a Bearer challenge.
    r = api.client.post("/api/v1" + url, json=body, headers=api.headers(None, version))
    problem = assert_problem(r, 401, "unauthenticated")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert problem["instance"] == "/api/v1" + url
    # An unknown key and a malformed header → 401 invalid_token.
    forged = "cr_0123456789abcdef_" + "A" * 43
    r = api.client.post("/api/v1" + url, json=body,
                        headers={"Authorization": f"Bearer {forged}"})
    assert_problem(r, 401, "unauthenticated")
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    r = api.client.post("/api/v1" + url, json=body, headers={"Authorization": "Basic eDp5"})
    assert_problem(r, 401, "unauthenticated")

    # Read-only roles → 403 from the API.
    for reader in ("auditor", "credit_consumer"):
        assert_problem(api.post(url, body, reader, version), 403, "read-only-role")

    # Writers in the wrong role → 403 from the domain's role table.
    for writer in WRITERS:
        if writer not in endpoint.allowed:
            assert_problem(api.post(url, body, writer, version), 403, "role-not-permitted")

    # A city bureau of another city → 403 (jurisdiction or role).
    r = api.post(url, body, "suzhou", version)
    expected = "outside-jurisdiction" if "nanjing" in endpoint.allowed else "role-not-permitted"
    assert_problem(r, 403, expected)

    assert api.head() == head, "a refused write stored something"


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if not e.creates],
                         ids=lambda e: e.name)
def test_a_write_needs_a_current_if_match_on_a_known_consortium(api: Api,
                                                                endpoint: Endpoint) -> None:
    j = _forming_with_a_member(api)
    url, body, who = endpoint.url(j.id, j), endpoint.body(j), endpoint.allowed[0]
    head = api.head()

    assert_problem(api.post(url, body, who), 428, "precondition-required")
    assert_problem(api.post(url, body, who, "v2"), 400, "invalid-if-match")
    r = api.post(url, body, who, j.version + 5)
    problem = assert_problem(r, 412, "stale-version")
    assert problem["current_version"] == j.version
    assert r.headers["ETag"] == f'"{j.version}"'
    unknown = endpoint.url(str(uuid.uuid4()), j)
    assert_problem(api.post(unknown, body, who, 1), 404, "consortium-not-found")

    assert api.head() == head, "a refused write stored something"
