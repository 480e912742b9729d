"""Reads through HTTP: the registry list (public and staff), one consortium with its ETag, its
ledger history, statistics and annual-report status — with read-your-writes."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from typing import Any

from audit.chain import GENESIS
from tests.api import payloads as p
from tests.api.conftest import PREFIX, Api, assert_problem, make_api


def formed_and_listed(api: Api) -> tuple[str, int, dict[str, Any]]:
    """Form and list one Nanjing consortium through HTTP; its id, version and last response."""
    start = p.start()
    r = api.post("/consortia", start, who="nanjing")
    assert r.status_code == 201, r.text
    cid, version = r.json()["consortium_id"], 1
    lead = start["lead"]["uscc"]
    member = p.unit("university", "东南大学")
    steps: list[tuple[str, dict[str, Any], str]] = [
        ("/members", p.admit(member), "nanjing"),
        ("/agreement", p.agreement([lead, member["uscc"]]), "nanjing"),
        ("/application", p.submit(), "nanjing"),
        ("/recommendation", p.recommend(), "nanjing"),
        ("/expert-review", p.review(), "province"),
        ("/listing", p.listing(), "province"),
    ]
    body: dict[str, Any] = {}
    for path, payload, who in steps:
        r = api.post(f"/consortia/{cid}{path}", payload, who=who, version=version)
        assert r.status_code == 200, (path, r.text)
        body = r.json()
        version = body["version"]
    return cid, version, body


def test_a_write_is_read_back_at_its_position_with_the_version_as_etag(api: Api) -> None:
    cid, version, last = formed_and_listed(api)
    r = api.client.get(f"{PREFIX}/consortia/{cid}", params={"min_position": last["position"]},
                       headers=api.headers("auditor"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert r.headers["etag"] == f'"{version}"'
    assert doc["status"] == "listed" and doc["status_zh"] == "省创新联合体"
    assert doc["lead"]["name"] == "江苏芯联微电子股份有限公司"
    assert [m["name"] for m in doc["members"]] == ["东南大学"]
    assert doc["technologies"] == ["choke_point"]
    assert doc["listed_on"] == "2025-06-30"


def test_the_public_sees_listed_consortia_only(api: Api) -> None:
    listed_id, _, last = formed_and_listed(api)
    forming = api.post("/consortia", p.start(lead=p.unit("enterprise", "常州储能科技股份有限公司")),
                       who="nanjing").json()
    position = max(last["position"], forming["position"])
    public = api.client.get(f"{PREFIX}/consortia", params={"min_position": position}).json()
    assert [c["id"] for c in public["items"]] == [listed_id]
    staff = api.client.get(f"{PREFIX}/consortia", params={"min_position": position},
                           headers=api.headers("nanjing")).json()
    assert {c["id"] for c in staff["items"]} == {listed_id, forming["consortium_id"]}
    hidden = api.client.get(f"{PREFIX}/consortia/{forming['consortium_id']}")
    assert_problem(hidden, 404, "not-found")


def test_filters_and_cursor_pages_through_every_consortium_once(api: Api) -> None:
    position = 0
    for n in range(5):
        lead = p.unit("enterprise", f"牵头企业{n}")
        position = api.post("/consortia", p.start(lead=lead), who="nanjing").json()["position"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "min_position": position}
        if cursor:
            params["cursor"] = cursor
        page = api.client.get(f"{PREFIX}/consortia", params=params,
                              headers=api.headers("province")).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    only = api.client.get(f"{PREFIX}/consortia", params={"q": "集成电路", "city": "nanjing",
                                                         "status": "forming"},
                          headers=api.headers("province")).json()
    assert len(only["items"]) == 5
    none = api.client.get(f"{PREFIX}/consortia", params={"city": "suzhou"},
                          headers=api.headers("province")).json()
    assert none["items"] == []
    bad = api.client.get(f"{PREFIX}/consortia", params={"cursor": "xyz"},
                         headers=api.headers("province"))
    assert_problem(bad, 400)


def test_history_shows_every_event_with_its_chain_links(api: Api) -> None:
    cid, version, _ = formed_and_listed(api)
    assert_problem(api.client.get(f"{PREFIX}/consortia/{cid}/history"), 401)
    r = api.client.get(f"{PREFIX}/consortia/{cid}/history", headers=api.headers("auditor"))
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    assert [e["version"] for e in events] == list(range(1, version + 1))
    assert events[0]["event"] == "LeadUnitSelected"
    assert events[0]["actor"]["role"] == "city_bureau"
    assert events[0]["document"]["sha256"] == hashlib.sha256("牵头单位遴选意见".encode()).hexdigest()
    assert events[0]["previous_hash"] == GENESIS.hex()
    assert all(len(e["hash"]) == 64 for e in events)
    assert events[-1]["event"] == "Listed"
    assert r.json()["next_after_version"] is None and "Link" not in r.headers


def test_history_is_paged_by_version_with_a_next_link(api: Api) -> None:
    cid, version, _ = formed_and_listed(api)  # 7 events
    auditor = api.headers("auditor")
    seen: list[int] = []
    url: str | None = f"{PREFIX}/consortia/{cid}/history?limit=3"
    pages = 0
    while url is not None:
        r = api.client.get(url, headers=auditor)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [e["version"] for e in body["events"]]
        pages += 1
        if body["next_after_version"] is None:
            assert "Link" not in r.headers
            url = None
        else:
            assert body["next_after_version"] == body["events"][-1]["version"]
            link = r.headers["Link"]
            assert link.endswith('>; rel="next"')
            url = link[1:link.index(">")]
    assert seen == list(range(1, version + 1)) and pages == 3
    # Past the end: an empty page of a consortium that exists; an unknown one is still a 404.
    r = api.client.get(f"{PREFIX}/consortia/{cid}/history", params={"after_version": version},
                       headers=auditor)
    assert r.status_code == 200 and r.json()["events"] == []
    assert r.json()["next_after_version"] is None
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_problem(api.client.get(f"{PREFIX}/consortia/{unknown}/history",
                                  params={"after_version": 3}, headers=auditor), 404)
    for bad in ({"limit": 0}, {"limit": 1001}, {"after_version": -1},
                {"after_version": 2**63}):
        assert_problem(api.client.get(f"{PREFIX}/consortia/{cid}/history", params=bad,
                                      headers=auditor), 422)


def test_statistics_and_overdue_annual_reports(api: Api) -> None:
    cid, _, last = formed_and_listed(api)
    stats = api.client.get(f"{PREFIX}/statistics", params={"min_position": last["position"]})
    assert stats.status_code == 200
    body = stats.json()
    assert (body["target"], body["listed"]) == (30, 1)
    assert body["by_field"] == {"integrated_circuits": 1, "third_gen_semiconductors": 1}
    # Listed in 2025, today 2026-11-25: the 2025 report was due by 31 May 2026.
    r = api.client.get(f"{PREFIX}/annual-reports", params={"state": "overdue"},
                       headers=api.headers("province"))
    assert r.status_code == 200, r.text
    assert [(x["consortium_id"], x["year"], x["state"]) for x in r.json()] == [
        (cid, 2025, "overdue")]
    assert_problem(api.client.get(f"{PREFIX}/annual-reports"), 401)


def test_a_read_waiting_for_a_position_never_written_is_refused_at_once(api: Api) -> None:
    head = api.post("/consortia", p.start(), who="nanjing").json()["position"]
    for path in ("/consortia", "/statistics", "/annual-reports"):
        r = api.client.get(f"{PREFIX}{path}", params={"min_position": 10_000},
                           headers=api.headers("province"))
        body = assert_problem(r, 400, "position-not-written")
        assert body["min_position"] == 10_000 and body["head_position"] == head


def test_a_read_waiting_for_a_position_not_yet_applied_answers_503(database_url: str,
                                                                    monkeypatch: Any) -> None:
    from api import routes_read

    monkeypatch.setenv("CONSORTIA_EMBEDDED_PROJECTION", "0")  # nothing applies the write
    monkeypatch.setattr(routes_read, "READ_WAIT_SECONDS", 0.2)
    with contextmanager(make_api)(database_url) as api:
        position = api.post("/consortia", p.start(), who="nanjing").json()["position"]
        r = api.client.get(f"{PREFIX}/consortia", params={"min_position": position})
        body = assert_problem(r, 503, "view-behind")
        assert r.headers["retry-after"] == "1" and body["min_position"] == position


def test_readiness_reports_the_projection_lag(api: Api) -> None:
    _, _, last = formed_and_listed(api)
    api.client.get(f"{PREFIX}/statistics", params={"min_position": last["position"]})
    r = api.client.get("/readyz")
    assert r.status_code == 200
    projection = r.json()["checks"]["projection"]["detail"]
    assert projection["lag"] == 0 and projection["position"] == last["position"]


def test_a_reader_holding_the_current_etag_gets_304_until_the_next_write(api: Api) -> None:
    cid, version, last = formed_and_listed(api)
    url, staff = f"{PREFIX}/consortia/{cid}", api.headers("auditor")
    assert api.client.get(url, params={"min_position": last["position"]}).status_code == 200
    for held in (f'"{version}"', f'W/"{version}"', f'"0", "{version}"', "*"):
        r = api.client.get(url, headers={**staff, "If-None-Match": held})
        assert (r.status_code, r.content, r.headers["ETag"]) == (304, b"", f'"{version}"'), held
    for held in (f'"{version - 1}"', f"{version}", "garbage"):
        r = api.client.get(url, headers={**staff, "If-None-Match": held})
        assert r.status_code == 200 and r.json()["id"] == cid, held
    # The public holds the ETag of a listed consortium as well.
    r = api.client.get(url, headers={"If-None-Match": f'"{version}"'})
    assert r.status_code == 304
    report = api.post(f"/consortia/{cid}/annual-reports", p.annual_report(2025), who="province",
                      version=version)
    assert report.status_code == 200, report.text
    r = api.client.get(url, params={"min_position": report.json()["position"]},
                       headers={**staff, "If-None-Match": f'"{version}"'})
    assert r.status_code == 200 and r.headers["ETag"] == f'"{version + 1}"'


def test_if_none_match_reveals_nothing_the_caller_may_not_read(api: Api) -> None:
    forming = api.post("/consortia", p.start(), who="nanjing").json()
    r = api.client.get(f"{PREFIX}/consortia/{forming['consortium_id']}",
                       params={"min_position": forming["position"]},
                       headers={"If-None-Match": "*"})
    assert_problem(r, 404, "not-found")


def test_if_none_match_is_a_list_of_entity_tags_compared_weakly() -> None:
    from api.etags import none_match
    assert none_match('"7"', "7") and none_match('W/"7"', "7") and none_match(" * ", "7")
    assert none_match('"1", W/"7" ,"9"', "7") and none_match('"7",', "7")
    assert not none_match(None, "7") and not none_match('"8"', "7")
    assert not none_match("7", "7") and not none_match('"7" "8"', "7")
    assert not none_match('"1", 7', "7") and not none_match("", "7")


def test_a_list_is_not_modified_until_the_view_applies_another_event(api: Api) -> None:
    _, _, last = formed_and_listed(api)
    staff = api.headers("province")
    params = {"min_position": last["position"], "city": "nanjing"}
    first = api.client.get(f"{PREFIX}/consortia", params=params, headers=staff)
    tag = first.headers["ETag"]
    assert first.status_code == 200 and tag.startswith('W/"')
    assert first.headers["Vary"] == "Authorization"
    again = api.client.get(f"{PREFIX}/consortia", params=params,
                           headers={**staff, "If-None-Match": tag})
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", tag)
    # The public is shown less than staff: its tag differs, so a staff tag is no good to it.
    public = api.client.get(f"{PREFIX}/consortia", params=params, headers={"If-None-Match": tag})
    assert public.status_code == 200 and public.headers["ETag"] != tag
    assert api.client.get(f"{PREFIX}/consortia", params=params, headers={
        "If-None-Match": public.headers["ETag"]}).status_code == 304
    # Any event applied (here another city's) is a new tag: the page is sent again.
    other = api.post("/consortia", p.start(lead=p.unit("enterprise", "苏州光电科技股份有限公司")),
                     who="nanjing").json()
    fresh = api.client.get(f"{PREFIX}/consortia", headers={**staff, "If-None-Match": tag},
                           params={**params, "min_position": other["position"]})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != tag
    assert fresh.json()["view_position"] >= other["position"]
