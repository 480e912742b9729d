"""Every error is an RFC 9457 problem: validation, broken rules, unknown routes, oversized bodies,
an unreachable database and unexpected failures — never a stack trace."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import anyio
import pytest
from eventsourcing.persistence import OperationalError
from starlette.types import Message, Receive, Scope, Send

from api.limits import BodySizeLimitMiddleware
from api.problems import PROBLEM_BASE, STATUS_BY_KIND, english_title, status_for
from domain import errors
from tests.api import payloads as p
from tests.api.conftest import Api, assert_problem, make_api


def test_every_domain_error_kind_has_a_status() -> None:
    for cls in errors.all_error_classes():
        assert cls.kind in STATUS_BY_KIND, cls
        assert status_for(cls("x")) == STATUS_BY_KIND[cls.kind]
        assert english_title(cls)
    assert status_for(errors.StaleVersion("x")) == 412
    assert status_for(errors.ConsortiumNotFound("x")) == 404
    assert status_for(errors.OutsideJurisdiction("x")) == 403
    assert status_for(errors.InvalidUSCC("x")) == 422
    assert status_for(errors.LeadUnitCannotChange("x")) == 409


def test_request_validation_errors_are_listed_in_a_422_problem(api: Api) -> None:
    head = api.head()
    body = p.start()
    body["effective_date"] = "10/01/2025"
    body["qualification"]["rd_intensity"] = 0.052  # a float ratio
    body["surprise"] = True  # unknown member
    problem = assert_problem(api.post("/consortia", body, "nanjing"), 422, "validation-error")
    where = {tuple(e["loc"]) for e in problem["errors"]}
    assert ("body", "effective_date") in where
    assert ("body", "qualification", "rd_intensity") in where
    assert ("body", "surprise") in where
    assert all(set(e) <= {"loc", "msg", "type", "ctx"} for e in problem["errors"])

    r = api.client.post("/api/v1/consortia", content=b"{not json",
                        headers={**api.headers("nanjing"), "Content-Type": "application/json"})
    assert_problem(r, 422, "validation-error")
    assert api.head() == head


def test_money_is_integer_yuan_and_dates_are_iso_strings(api: Api) -> None:
    for path, value in ((("qualification", "annual_revenue_yuan"), "12600000000"),
                        (("qualification", "annual_revenue_yuan"), 1.5e9),
                        (("effective_date",), 20250110)):
        body = p.start()
        target = body
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        assert_problem(api.post("/consortia", body, "nanjing"), 422, "validation-error")


def test_a_rule_refusing_bad_input_is_a_422_with_its_own_type(api: Api) -> None:
    body = p.start()
    body["lead"]["uscc"] = body["lead"]["uscc"][:-1] + (
        "0" if body["lead"]["uscc"][-1] != "0" else "1")
    problem = assert_problem(api.post("/consortia", body, "nanjing"), 422, "invalid-uscc")
    assert problem["type"] == PROBLEM_BASE + "invalid-uscc"
    assert problem["title"].startswith("统一社会信用代码无效 / ")
    assert problem["reason"] == "check"  # the rule's details are extension members

    outside = p.start(lead=p.unit("enterprise", division="310100"))  # Shanghai
    assert_problem(api.post("/consortia", outside, "nanjing"), 422,
                   "lead-not-registered-in-jiangsu")


def test_a_rule_refusing_the_current_state_is_a_409(api: Api) -> None:
    j = p.Journey(api)
    j.start()
    j.admit()
    r = api.post(f"/consortia/{j.id}/application", p.submit(), "nanjing", j.version)
    problem = assert_problem(r, 409, "agreement-not-signed-by-all")
    assert problem["title_zh"] == "共建协议未由全体成员签署"
    r = api.post(f"/consortia/{j.id}/members/{j.lead}/drop", p.drop(), "nanjing", j.version)
    problem = assert_problem(r, 409, "lead-unit-cannot-change")
    assert problem["title"] == "牵头单位不可发生变动 / Lead unit cannot change"
    assert problem["uscc"] == j.lead
    r = api.post(f"/consortia/{j.id}/listing", p.listing(), "province", j.version)
    problem = assert_problem(r, 409, "invalid-transition")
    assert problem["current_status"] == "forming"  # the rule's "status" detail, renamed


def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    assert_problem(api.client.get("/api/v1/nowhere"), 404, "not-found")
    r = api.client.delete("/api/v1/consortia")
    assert_problem(r, 405, "method-not-allowed")
    assert r.headers["Allow"] == "GET, POST"  # every method of the resource, from two routers
    r = api.client.put(f"/api/v1/consortia/{uuid.uuid4()}/history")
    assert_problem(r, 405, "method-not-allowed")
    assert r.headers["Allow"] == "GET"
    assert_problem(api.post("/consortia/not-a-uuid/members", p.admit(), "nanjing", 1), 422)


def test_an_oversized_body_is_refused_with_413_by_length_or_while_streaming(api: Api) -> None:
    head = api.head()
    big = p.start()
    big["name"] = "联" * 400_000  # over 1 MiB of UTF-8
    r = api.post("/consortia", big, "nanjing")
    problem = assert_problem(r, 413, "payload-too-large")
    assert problem["max_bytes"] == 1024 * 1024

    def chunks() -> Iterator[bytes]:  # no Content-Length: a chunked upload
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    r = api.client.post("/api/v1/consortia", content=chunks(),
                        headers={**api.headers("nanjing"), "Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "payload-too-large")
    r = api.client.post("/api/v1/consortia", content=chunks(),
                        headers={**api.headers("nanjing"), "Content-Type": "application/json",
                                 "Idempotency-Key": "big-1"})
    assert_problem(r, 413, "payload-too-large")
    assert api.head() == head


def test_a_body_longer_than_its_declared_length_is_cut_off_at_the_limit() -> None:
    answered: list[Message] = []
    app_answered: list[bool] = []

    async def reader(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        app_answered.append(True)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    incoming = [{"type": "http.request", "body": b"x" * 60, "more_body": True},
                {"type": "http.request", "body": b"x" * 60, "more_body": False}]

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        answered.append(message)

    scope = {"type": "http", "path": "/api/v1/consortia", "headers": [(b"content-length", b"10")]}
    anyio.run(BodySizeLimitMiddleware(reader, max_bytes=100), scope, receive, send)
    assert not app_answered
    assert answered[0]["status"] == 413
    assert json.loads(answered[1]["body"])["code"] == "payload-too-large"


@pytest.fixture
def quiet_api(sqlite_url: str) -> Iterator[Api]:
    """The app as a server runs it: an unexpected error becomes a response, not a test crash."""
    yield from make_api(sqlite_url, {"raise_server_exceptions": False})


def test_an_unreachable_database_is_a_503_without_internals(quiet_api: Api,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    def down(**_: object) -> None:
        raise OperationalError("connection to server at 10.1.2.3 refused; password=secret")

    monkeypatch.setattr(quiet_api.registry, "select_lead", down)
    r = quiet_api.post("/consortia", p.start(), "nanjing")
    assert_problem(r, 503, "database-unavailable")
    assert r.headers["Retry-After"]
    assert "10.1.2.3" not in r.text and "secret" not in r.text


def test_an_unexpected_error_is_a_500_problem_without_internals(quiet_api: Api,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    def broken(**_: object) -> None:
        raise RuntimeError("internal detail: /srv/consortia/secret.py line 42")

    monkeypatch.setattr(quiet_api.registry, "select_lead", broken)
    r = quiet_api.post("/consortia", p.start(), "nanjing")
    assert_problem(r, 500, "internal-error")
    assert "secret" not in r.text and "Traceback" not in r.text


def test_openapi_declares_problem_responses_and_examples(sqlite_api: Api) -> None:
    schema = sqlite_api.client.get("/api/v1/openapi.json").json()
    assert "江苏省创新联合体" in schema["info"]["title"]
    assert "Jiangsu" in schema["info"]["title"]
    assert "Problem" in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        operation = item.get("post")
        if operation is None or not path.startswith("/api/v1/consortia"):
            continue  # the lifecycle commands (the audit routes are checked on their own)
        expected = {"401", "403", "409", "413", "422", "503"}
        if path != "/api/v1/consortia":
            expected |= {"404", "412", "428"}
        assert expected <= set(operation["responses"]), path
        for code in expected:
            content = operation["responses"][code]["content"]
            assert list(content) == ["application/problem+json"], (path, code)
        assert operation["summary"] and operation["description"]
        assert operation["security"] == [{"ApiKey": []}]
        headers = {q["name"] for q in operation["parameters"] if q["in"] == "header"}
        assert "Idempotency-Key" in headers
        assert ("If-Match" in headers) is (path != "/api/v1/consortia")
        ok = operation["responses"]["201" if path == "/api/v1/consortia" else "200"]
        assert "ETag" in ok["headers"]
    start = schema["components"]["schemas"]["StartFormation"]
    assert start["examples"][0]["lead"]["name"] == "江苏芯联微电子股份有限公司"
    assert start["additionalProperties"] is False


def test_openapi_examples_are_valid_requests(api: Api) -> None:
    """The start-formation example from the schema records a consortium as it stands."""
    schema = api.client.get("/api/v1/openapi.json").json()
    example = schema["components"]["schemas"]["StartFormation"]["examples"][0]
    r = api.post("/consortia", example, "nanjing")
    assert r.status_code == 201, r.text
