"""The web UI without a browser: sessions and their cookie, CSRF, logout, which forms each role
is offered, escaping, the stale-version (412) and rule (409) messages, validation next to the
field, and a resubmitted form recorded once."""

from __future__ import annotations

import re

import pytest

from api.web import sessions
from tests.api.conftest import Api
from tests.api.payloads import doc, unit
from tests.web.conftest import caught_up, csrf_of, form_fields, journey, login


def _cookie_header(response: object, name: str) -> str:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    found = [h for h in headers if h.startswith(name + "=")]
    assert found, headers
    return str(found[0])


# ------------------------------------------------------------------------------ sessions
def test_login_opens_a_session_in_an_httponly_samesite_cookie(web_db: Api) -> None:
    response = login(web_db, "province")
    assert response.status_code == 303
    assert response.headers["location"] == "/web/registry"
    cookie = _cookie_header(response, sessions.SESSION_COOKIE).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    page = web_db.client.get("/web/registry")
    assert "wang.li" in page.text and "省科技厅" in page.text
    # Only the token's hash is stored.
    token = web_db.client.cookies[sessions.SESSION_COOKIE]
    stored = web_db.app.state.sql.fetchall("SELECT token_hash FROM web_sessions")
    assert token not in {row[0] for row in stored} and len(stored) == 1


def test_the_session_cookie_is_secure_over_tls(web: Api) -> None:
    from fastapi.testclient import TestClient

    with TestClient(web.app, base_url="https://registry.example") as client:
        response = login(web, "province", client)
        assert response.status_code == 303
        assert "secure" in _cookie_header(response, sessions.SESSION_COOKIE).lower()


def test_a_wrong_key_is_refused_next_to_its_input(web: Api) -> None:
    page = web.client.get("/web/login")
    response = web.client.post("/web/login", data={"csrf_token": csrf_of(page),
                                                   "api_key": "cr_nope"})
    assert response.status_code == 401
    assert 'id="api_key-error"' in response.text and "访问密钥无效或已吊销" in response.text
    assert sessions.SESSION_COOKIE not in web.client.cookies


def test_logout_ends_the_session_on_the_server(web_db: Api) -> None:
    login(web_db, "nanjing")
    old = web_db.client.cookies[sessions.SESSION_COOKIE]
    page = web_db.client.get("/web/registry")
    response = web_db.client.post("/web/logout", data={"csrf_token": csrf_of(page)},
                                  follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/web/login?logged_out=1"
    assert 'max-age=0' in _cookie_header(response, sessions.SESSION_COOKIE).lower()
    # The old cookie, replayed, opens nothing.
    web_db.client.cookies.set(sessions.SESSION_COOKIE, old)
    response = web_db.client.get("/web/consortia/new", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/web/login")


def test_revoking_the_key_ends_its_sessions_at_once(web_db: Api) -> None:
    login(web_db, "province")
    assert web_db.app.state.keys.revoke(web_db.key_ids["province"])
    page = web_db.client.get("/web/registry")
    assert "wang.li" not in page.text and "登录" in page.text


# ------------------------------------------------------------------------------ CSRF
def test_a_command_without_the_csrf_token_is_refused_and_records_nothing(web: Api) -> None:
    j = journey(web)
    login(web, "nanjing")
    page = web.client.get(f"/web/consortia/{j.id}/admit_member")
    fields = form_fields(page)
    head = web.head()
    data = {**fields, "unit.uscc": unit()["uscc"], "unit.name": "东南大学", "unit.kind": "university",
            "effective_date": "2025-01-20"}
    for bad in ({k: v for k, v in data.items() if k != "csrf_token"},
                {**data, "csrf_token": "forged-token-0123456789abcdef"}):
        response = web.client.post(f"/web/consortia/{j.id}/admit_member", data=bad)
        assert response.status_code == 403
        assert "页面已过期或请求来源无效" in response.text
    response = web.client.post(f"/web/consortia/{j.id}/admit_member", data=data,
                               headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert web.head() == head


def test_the_login_form_needs_its_double_submit_token(web: Api) -> None:
    page = web.client.get("/web/login")
    cookie = _cookie_header(page, sessions.CSRF_COOKIE).lower()
    assert "samesite=strict" in cookie and "httponly" in cookie
    response = web.client.post("/web/login", data={"api_key": web.keys["province"]})
    assert response.status_code == 403
    assert sessions.SESSION_COOKIE not in web.client.cookies


def test_logout_without_the_token_keeps_the_session(web: Api) -> None:
    login(web, "nanjing")
    response = web.client.post("/web/logout", data={})
    assert response.status_code == 403
    assert "chen.hao" in web.client.get("/web/registry").text


# ------------------------------------------------------------------------------ forms by role
def _offered(page_text: str, cid: str) -> set[str]:
    return set(re.findall(rf'href="/web/consortia/{cid}/([a-z_]+)"', page_text))


def test_forms_are_offered_to_the_roles_allowed_in_the_states_allowed(web: Api) -> None:
    forming = journey(web)
    login(web, "nanjing")
    page = web.client.get(f"/web/consortia/{forming.id}").text
    assert _offered(page, forming.id) == {"admit_member", "drop_member", "sign_agreement",
                                          "submit_application"}
    login(web, "suzhou")  # another city's bureau: nothing in Nanjing
    assert _offered(web.client.get(f"/web/consortia/{forming.id}").text, forming.id) == set()
    assert web.client.get(f"/web/consortia/{forming.id}/admit_member").status_code == 409
    login(web, "province")
    page = web.client.get(f"/web/consortia/{forming.id}").text
    assert _offered(page, forming.id) == {"record_credit_violation"}
    response = web.client.get(f"/web/consortia/{forming.id}/approve")
    assert response.status_code == 409 and "不能办理该事项" in response.text
    login(web, "auditor")
    assert _offered(web.client.get(f"/web/consortia/{forming.id}").text, forming.id) == set()
    assert web.client.get(f"/web/consortia/{forming.id}/admit_member").status_code == 403
    assert web.client.get("/web/consortia/new").status_code == 403


def test_the_province_is_offered_supervision_once_listed(web: Api) -> None:
    listed = journey(web, "listed")
    login(web, "province")
    page = web.client.get(f"/web/consortia/{listed.id}").text
    assert _offered(page, listed.id) == {
        "sign_supplementary_agreement", "file_annual_report", "record_evaluation",
        "order_rectification", "complete_rectification", "delist", "record_credit_violation"}
    login(web, "agency")
    page = web.client.get(f"/web/consortia/{listed.id}").text
    assert _offered(page, listed.id) == {"record_evaluation"}


# ------------------------------------------------------------------------------ reads
def test_html_in_names_is_escaped(web: Api) -> None:
    j = journey(web, "listed")
    from tests.api.payloads import unit as make_unit

    member = make_unit("university", '<img src=x onerror="alert(1)">大学')
    page = web.client.get("/web/registry")  # anonymous
    assert "<script" not in page.text.split("</head>")[1].replace(
        '<script type="application/json"', "")
    login(web, "province")
    body = {"changes": [{"kind": "member_joins", "description": "<b>加入</b>", "unit": member}],
            "signatories": [j.lead, member["uscc"]], "effective_date": "2025-09-01",
            "document": doc("<script>alert('x')</script>")}
    j.do("supplementary-agreements", body, "province")
    caught_up(web)
    page = web.client.get(f"/web/consortia/{j.id}").text
    assert '<img src=x onerror="alert(1)">' not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;大学" in page
    assert "<script>alert('x')</script>" not in page and "&lt;script&gt;" in page
    assert "<b>加入</b>" not in page


def test_the_timeline_shows_the_latest_events_and_pages_back(
        web: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.web import routes

    monkeypatch.setattr(routes, "TIMELINE_PAGE", 4)
    j = journey(web, "listed")
    n = j.version  # formation to listing: more than two pages of 4
    assert n >= 6
    login(web, "auditor")

    def shown(query: str = "") -> tuple[list[str], str]:
        page = web.client.get(f"/web/consortia/{j.id}{query}").text
        positions = re.findall(r'<li class="event" id="event-(\d+)">', page)
        return positions, page

    latest, page = shown()
    assert len(latest) == 4 and f"第 {n - 3}–{n} 个事件，共 {n} 个" in page
    assert f'href="?upto={n - 4}#timeline-h" rel="prev"' in page and 'rel="next"' not in page
    middle, page = shown(f"?upto={n - 3}")
    assert len(middle) == 4 and f"第 {n - 6}–{n - 3} 个事件，共 {n} 个" in page
    assert f'href="?upto={n}#timeline-h" rel="next"' in page
    assert f'href="?upto={n - 7}#timeline-h" rel="prev"' in page
    first, page = shown("?upto=1")
    assert len(first) == 1 and 'rel="prev"' not in page and "第 1–1 个事件" in page
    assert 'href="?upto=5#timeline-h" rel="next"' in page  # the next page: events 2–5
    everything = [int(x) for x in first + middle + latest]
    assert everything == sorted(everything) and len(set(everything)) == 1 + 4 + 4 - 1
    # A version past the latest, or not a number, shows the latest page.
    assert shown("?upto=99")[0] == latest and shown("?upto=x")[0] == latest


def test_the_public_sees_listed_consortia_only(web: Api) -> None:
    forming = journey(web)
    listed = journey(web, "listed")
    page = web.client.get("/web/registry").text
    assert f"/web/consortia/{listed.id}" in page and f"/web/consortia/{forming.id}" not in page
    assert web.client.get(f"/web/consortia/{forming.id}").status_code == 404
    public = web.client.get(f"/web/consortia/{listed.id}").text
    assert "登录后可查看账本记录" in public and 'class="event"' not in public
    login(web, "province")
    page = web.client.get(f"/web/consortia/{listed.id}").text
    assert page.count('class="event"') == 8  # formation … listing, each a ledger record
    assert "牵头单位" in page


def test_the_registry_filters_and_searches_by_uscc(web: Api) -> None:
    j = journey(web, "listed")
    other = journey(web)
    login(web, "province")
    page = web.client.get("/web/registry", params={"q": j.lead}).text
    assert f"/web/consortia/{j.id}" in page
    page = web.client.get("/web/registry", params={"status": "forming"}).text
    assert f"/web/consortia/{other.id}" in page and f"/web/consortia/{j.id}" not in page
    page = web.client.get("/web/registry", params={"city": "suzhou"}).text
    assert "没有符合条件的创新联合体" in page


# ------------------------------------------------------------------------------ writes
def test_a_stale_version_says_someone_else_changed_it(web: Api) -> None:
    j = journey(web)
    login(web, "nanjing")
    page = web.client.get(f"/web/consortia/{j.id}/admit_member")
    fields = form_fields(page)
    assert fields["version"] == "1"
    j.admit("university", "另一位工作人员加入的大学")  # someone else, through the API
    response = web.client.post(f"/web/consortia/{j.id}/admit_member", data={
        **fields, "unit.uscc": unit()["uscc"], "unit.name": "东南大学", "unit.kind": "university",
        "effective_date": "2025-01-20"})
    assert response.status_code == 412
    assert "他人已修改了该创新联合体（当前版本 2，您提交时为 1）" in response.text
    assert f'href="/web/consortia/{j.id}"' in response.text
    # What the user typed is kept.
    assert 'value="东南大学"' in response.text


def test_a_broken_rule_is_shown_in_chinese_next_to_its_field(web: Api) -> None:
    j = journey(web)
    j.admit()
    caught_up(web)
    login(web, "nanjing")
    page = web.client.get(f"/web/consortia/{j.id}/drop_member")
    response = web.client.post(f"/web/consortia/{j.id}/drop_member", data={
        **form_fields(page), "@uscc": j.lead, "effective_date": "2025-01-25"})
    assert response.status_code == 409
    error = re.search(r'<p class="error" id="f-at-uscc-error">(.*?)</p>', response.text)
    assert error and "牵头单位不可发生变动" in error.group(1)
    assert 'aria-invalid="true"' in response.text


def test_schema_errors_are_shown_in_chinese_next_to_their_fields(web: Api) -> None:
    j = journey(web, "submitted")
    login(web, "nanjing")
    page = web.client.get(f"/web/consortia/{j.id}/recommend")
    response = web.client.post(f"/web/consortia/{j.id}/recommend", data={
        **form_fields(page), "feasibility": "可行", "effective_date": "2025-04-01",
        "document.title": "推荐意见", "document.sha256": "not-a-hash"})
    assert response.status_code == 422
    assert re.search(r'id="f-necessity-error">此项为必填<', response.text)
    assert re.search(r'id="f-document-sha256-error">应为64位小写十六进制 SHA-256<', response.text)
    web.client.get("/web/lang/en")
    response = web.client.post(f"/web/consortia/{j.id}/recommend", data={
        **form_fields(page), "feasibility": "可行", "effective_date": "2025-04-01"})
    assert re.search(r'id="f-necessity-error">This is required<', response.text)


def test_an_effective_date_in_the_future_is_refused_by_the_domain(web: Api) -> None:
    j = journey(web, "submitted")
    login(web, "nanjing")
    page = web.client.get(f"/web/consortia/{j.id}/recommend")
    response = web.client.post(f"/web/consortia/{j.id}/recommend", data={
        **form_fields(page), "necessity": "必要", "feasibility": "可行",
        "effective_date": "2030-01-01"})
    assert response.status_code == 422
    assert re.search(r'id="f-effective_date-error">生效日期不能晚于今天：', response.text)


def test_a_resubmitted_form_is_recorded_once(web_db: Api) -> None:
    j = journey(web_db)
    login(web_db, "nanjing")
    page = web_db.client.get(f"/web/consortia/{j.id}/admit_member")
    data = {**form_fields(page), "unit.uscc": unit()["uscc"], "unit.name": "东南大学",
            "unit.kind": "university", "effective_date": "2025-01-20"}
    head = web_db.head()
    first = web_db.client.post(f"/web/consortia/{j.id}/admit_member", data=data,
                               follow_redirects=False)
    again = web_db.client.post(f"/web/consortia/{j.id}/admit_member", data=data,
                               follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert "done=admit_member" in first.headers["location"]
    assert web_db.head() == head + 1
    shown = web_db.client.get(first.headers["location"])
    assert "已登记：吸收成员单位" in shown.text and "东南大学" in shown.text


def test_a_city_bureau_starts_a_consortium_through_the_form(web: Api) -> None:
    login(web, "nanjing")
    page = web.client.get("/web/consortia/new")
    assert page.status_code == 200
    assert '<option value="nanjing" selected>' in page.text and "suzhou" not in page.text
    lead = unit("enterprise", "南京新材料科技股份有限公司")
    response = web.client.post("/web/consortia/new", data={
        **form_fields(page), "name": "南京新材料创新联合体", "city": "nanjing",
        "lead.uscc": lead["uscc"], "lead.name": lead["name"], "lead.kind": "enterprise",
        "qualification.category": "industry_leader",
        "qualification.annual_revenue_yuan": "3200000000", "qualification.rd_intensity": "0.046",
        "fields": ["new_materials", "general_ai"], "technologies": "choke_point",
        "effective_date": "2026-11-25"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    doc_page = web.client.get(response.headers["location"]).text
    assert "南京新材料创新联合体" in doc_page and "新材料" in doc_page and "通用人工智能" in doc_page
    # A bad USCC is refused by the domain's own rule, next to its input.
    response = web.client.post("/web/consortia/new", data={
        **form_fields(page), "name": "x", "city": "nanjing", "lead.uscc": "91320100MA1W00016B",
        "lead.name": "x", "lead.kind": "enterprise", "qualification.category": "unicorn",
        "fields": "new_materials", "effective_date": "2026-11-25"})
    assert response.status_code == 422
    assert re.search(r'id="f-lead-uscc-error">统一社会信用代码无效：校验码应为', response.text)


@pytest.mark.parametrize("who,status", [("auditor", 200), ("province", 200), ("nanjing", 403)])
def test_the_audit_page_is_for_auditors(web: Api, who: str, status: int) -> None:
    journey(web)
    login(web, who)
    response = web.client.get("/web/audit")
    assert response.status_code == status
    if status == 200:
        assert "账本记录数" in response.text and "尚无已签名的检查点" in response.text


def test_an_auditor_runs_a_verification_and_downloads_the_bundle(web: Api) -> None:
    import json
    import time

    journey(web, "listed")
    login(web, "auditor")
    page = web.client.get("/web/audit")
    response = web.client.post("/web/audit/verifications", data={
        "csrf_token": csrf_of(page), "semantic": "1"}, follow_redirects=False)
    assert response.status_code == 303
    status_url = response.headers["location"] + "/status"
    deadline = time.monotonic() + 30
    while web.client.get(status_url).json()["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    report = web.client.get(response.headers["location"]).text
    assert "校验通过：账本完整，未发现问题" in report
    bundle = web.client.get("/web/audit/evidence")
    assert bundle.status_code == 200
    assert "attachment" in bundle.headers["content-disposition"]
    assert json.loads(bundle.content)["format"] == "jiangsu-consortia-evidence/v1"
    proof = web.client.get("/web/audit/proofs/1")
    assert proof.status_code == 200 and "包含证明：账本位置 1" in proof.text
    assert web.client.get("/web/audit/proofs/999999").status_code == 404


def test_pages_carry_a_content_security_policy(web: Api) -> None:
    response = web.client.get("/web/registry")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert web.client.get("/", follow_redirects=False).headers["location"] == "/web/registry"


def test_a_second_click_after_the_state_moved_on_gets_the_first_answer(web: Api) -> None:
    j = journey(web)
    j.admit()
    from tests.api.payloads import agreement

    j.do("agreement", agreement([j.lead, *j.members]), "nanjing")
    caught_up(web)
    login(web, "nanjing")
    page = web.client.get(f"/web/consortia/{j.id}/submit_application")
    data = {**form_fields(page), "effective_date": "2025-03-01"}
    head = web.head()
    first = web.client.post(f"/web/consortia/{j.id}/submit_application", data=data,
                            follow_redirects=False)
    # Submitted: the form is no longer offered, yet the resubmission replays the first answer.
    again = web.client.post(f"/web/consortia/{j.id}/submit_application", data=data,
                            follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert web.head() == head + 1


def test_a_step_taken_by_someone_else_meanwhile_is_a_stale_form(web: Api) -> None:
    j = journey(web)
    j.admit()
    from tests.api.payloads import agreement, submit

    j.do("agreement", agreement([j.lead, *j.members]), "nanjing")
    caught_up(web)
    login(web, "nanjing")
    page = web.client.get(f"/web/consortia/{j.id}/submit_application")
    j.do("application", submit(), "nanjing2")  # a colleague, through the API
    caught_up(web)
    response = web.client.post(f"/web/consortia/{j.id}/submit_application", data={
        **form_fields(page), "effective_date": "2025-03-01"})
    assert response.status_code == 412
    assert "他人已修改了该创新联合体" in response.text
