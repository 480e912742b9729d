"""The web UI in a real browser (Debian's Chromium through Playwright) against the app served by
uvicorn on the embedded SQLite default: staff record a consortium's formation and listing through
the forms, the lead unit's removal is refused in Chinese, the registry and the timeline show it,
the dashboard draws its charts, the audit page verifies, keyboard-only login works and a
390-px screen has no horizontal overflow."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from domain.units import make_uscc
from tests.browser.conftest import Site, login

LEAD = make_uscc("320100", "MA1W0001")
SEU = make_uscc("320000", "46600731")
JOINING = make_uscc("320100", "MA1W0002")
NAME = "南京新材料创新联合体"
SHA = hashlib.sha256("补充协议".encode()).hexdigest()


def _submit(page: Any, done: str) -> None:
    page.get_by_role("button", name="提交登记").click()
    page.get_by_role("status").filter(has_text=f"已登记：{done}").wait_for()


def _step(page: Any, command: str) -> None:
    page.get_by_role("link", name=command, exact=True).click()
    page.get_by_role("heading", level=1, name=command).wait_for()


def _check_all(page: Any, legend: str) -> None:
    group = page.get_by_role("group", name=legend)
    for box in group.get_by_role("checkbox").all():
        box.check()


@pytest.fixture(scope="module")
def consortium_url(site: Site, browser: Any) -> str:
    """A city bureau records the formation through the forms; the province reviews and lists it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    login(page, site, "nanjing")
    page.get_by_role("link", name="新建创新联合体").click()
    page.get_by_label("创新联合体名称").fill(NAME)
    page.get_by_label("牵头单位统一社会信用代码").fill(LEAD)
    page.get_by_label("牵头单位名称").fill("南京新材料科技股份有限公司")
    page.get_by_label("牵头单位类型").select_option("enterprise")
    page.get_by_label("牵头单位条件类别").select_option("industry_leader")
    page.get_by_label("年销售收入（元）").fill("3200000000")
    page.get_by_label("研发投入强度（如 0.052）").fill("0.046")
    page.get_by_role("checkbox", name="新材料", exact=True).check()
    page.get_by_role("checkbox", name="“卡脖子”技术").check()
    site.shot(page, "form-new-consortium")
    _submit(page, "遴选牵头单位、开始组建")
    url = page.url.split("?")[0]

    _step(page, "吸收成员单位")
    page.get_by_label("统一社会信用代码").fill(SEU)
    page.get_by_label("单位名称").fill("东南大学")
    page.get_by_label("单位类型").select_option("university")
    _submit(page, "吸收成员单位")

    _step(page, "签署共建协议")
    _check_all(page, "签署单位")
    _check_all(page, "合作机制（§3.2、§5.3）")
    page.get_by_label("建设方案").fill("围绕高性能复合材料开展联合攻关")
    _submit(page, "签署共建协议")

    _step(page, "申报")
    _submit(page, "申报")
    _step(page, "设区市推荐")
    page.get_by_label("必要性意见").fill("契合本市新材料产业链攻关需求")
    page.get_by_label("可行性意见").fill("牵头单位研发实力强")
    _submit(page, "设区市推荐")
    context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    login(page, site, "province")
    page.goto(url)
    _step(page, "专家评估论证")
    page.get_by_label("专家评估意见").fill("目标明确，任务可行")
    page.get_by_label("评分（0–100）").fill("88")
    page.get_by_role("radio", name="是").check()
    _submit(page, "专家评估论证")
    _step(page, "认定为省创新联合体")
    page.get_by_label("文件标题").fill("关于认定省创新联合体的通知")
    page.get_by_label("文件 SHA-256（64位十六进制）").fill(SHA)
    _submit(page, "认定为省创新联合体")
    context.close()
    return url


def test_a_province_files_a_supplementary_agreement_and_cannot_remove_the_lead(
        site: Site, page: Any, consortium_url: str) -> None:
    login(page, site, "province")
    page.goto(consortium_url)
    assert page.locator(".meta .status").inner_text() == "省创新联合体"

    _step(page, "签署补充协议")
    row = page.get_by_role("group", name="变动事项 1")
    row.get_by_label("变动类型").select_option("member_joins")
    row.get_by_label("变动说明").fill("引入成果转移转化机构")
    row.get_by_label("加入单位统一社会信用代码").fill(JOINING)
    row.get_by_label("加入单位名称").fill("南京材料检测有限公司")
    row.get_by_label("加入单位类型").select_option("enterprise")
    page.get_by_role("group", name="签署单位").get_by_role("checkbox").first.check()
    page.get_by_label("其他签署单位（新加入单位）统一社会信用代码").fill(JOINING)
    # The document's hash is computed in the browser from the chosen file (never uploaded).
    signed = "补充协议（一）签署文本".encode()
    page.get_by_label("从文件计算 SHA-256（文件不会上传）").set_input_files(files=[{
        "name": "补充协议（一）.pdf", "mimeType": "application/pdf", "buffer": signed}])
    sha = page.get_by_label("文件 SHA-256（64位十六进制）")
    page.wait_for_function("document.getElementById('f-document-sha256').value.length === 64")
    assert sha.input_value() == hashlib.sha256(signed).hexdigest()
    assert page.get_by_label("文件标题").input_value() == "补充协议（一）"
    site.shot(page, "form-supplementary-agreement")
    _submit(page, "签署补充协议")
    assert page.get_by_role("cell", name="南京材料检测有限公司").is_visible()

    # Removing the lead unit is refused by the domain, in Chinese, next to the field.
    _step(page, "签署补充协议")
    row = page.get_by_role("group", name="变动事项 1")
    row.get_by_label("变动类型").select_option("member_withdraws")
    row.get_by_label("退出或涉及的单位").select_option(LEAD)
    page.get_by_role("group", name="签署单位").get_by_role("checkbox").first.check()
    page.get_by_label("文件标题").fill("补充协议（二）")
    page.get_by_label("文件 SHA-256（64位十六进制）").fill(SHA)
    page.get_by_role("button", name="提交登记").click()
    error = page.locator("#f-changes-0-uscc-error")
    error.wait_for()
    assert "牵头单位不可发生变动" in error.inner_text()
    assert page.get_by_label("退出或涉及的单位").first.get_attribute("aria-invalid") == "true"
    site.shot(page, "form-lead-removal-refused")

    # The registry lists it; the timeline shows every step with its ledger position and hash.
    page.goto(f"{site.url}/web/registry")
    page.get_by_label("名称或统一社会信用代码").fill(LEAD)
    page.get_by_role("button", name="查询").click()
    row_link = page.get_by_role("link", name=NAME)
    row_link.wait_for()
    assert page.locator("table.registry tbody tr").count() == 1
    site.shot(page, "registry-search")
    row_link.click()
    events = page.locator(".timeline .event")
    assert events.count() == 8
    texts = events.all_inner_texts()
    for step in ["遴选牵头单位", "吸收成员单位", "签署共建协议", "申报", "设区市推荐", "专家评估论证",
                 "认定为省创新联合体", "签署补充协议"]:
        assert any(step in text for text in texts), step
    assert page.locator(".badge.lead-badge").first.is_visible()
    assert all(re.search(r"[0-9a-f]{64}", text) for text in texts)
    page.get_by_role("link", name=re.compile("包含证明")).last.click()
    page.get_by_role("heading", level=1, name=re.compile("包含证明")).wait_for()
    site.shot(page, "inclusion-proof")
    page.goto(consortium_url)
    site.shot(page, "consortium")


def test_the_dashboard_draws_its_charts_beside_their_numbers(site: Site, page: Any) -> None:
    login(page, site, "province")
    page.get_by_role("link", name="统计").click()
    page.wait_for_url(f"{site.url}/web/dashboard")
    page.wait_for_function("document.documentElement.dataset.chartsDrawn === '5'")
    drawn = page.evaluate("""() => Object.entries(window.consortiaCharts).map(([id, chart]) => ({
        id, same: window.Chart.getChart(document.getElementById('chart-' + id)) === chart,
        width: chart.width, height: chart.height, points: chart.data.datasets[0].data}))""")
    assert {d["id"] for d in drawn} == {"progress", "by_field", "by_city", "by_grade", "overdue"}
    assert all(d["same"] and d["width"] > 0 and d["height"] > 0 for d in drawn)
    # The canvas holds pixels, and the table beside it holds the same numbers.
    painted = page.evaluate("""() => { const c = document.getElementById('chart-by_city');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < px.length; i += 4) { if (px[i]) n++; } return n; }""")
    assert painted > 100
    city_numbers = [int(x) for x in page.locator("#table-by_city td.num").all_inner_texts()]
    assert city_numbers == next(d["points"] for d in drawn if d["id"] == "by_city")
    site.shot(page, "dashboard")


def test_keyboard_only_login(site: Site, page: Any) -> None:
    page.goto(f"{site.url}/web/login")
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "api_key":
            break
    else:
        pytest.fail("the API key input is not reachable with Tab")
    page.keyboard.type(site.keys["auditor"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.url}/web/registry")
    assert "audit.1" in page.locator("header .who").inner_text()


def test_the_auditor_verifies_the_ledger_and_downloads_the_evidence(site: Site, page: Any,
                                                                     tmp_path: Path) -> None:
    login(page, site, "auditor")
    page.get_by_role("link", name="审计").click()
    assert int(page.locator("#ledger-size").inner_text()) > 0
    assert int(page.locator("#checkpoint-size").inner_text()) > 0
    site.shot(page, "audit")
    page.get_by_role("button", name="开始校验").click()
    page.locator("#verdict").wait_for(timeout=60_000)
    assert "校验通过" in page.locator("#verdict").inner_text()
    site.shot(page, "verification")
    page.goto(f"{site.url}/web/audit")
    with page.expect_download() as download:
        page.get_by_role("link", name="下载证据包").click()
    path = tmp_path / "bundle.json"
    download.value.save_as(path)
    assert json.loads(path.read_text(encoding="utf-8"))["format"].startswith(
        "jiangsu-consortia-evidence/")


def test_english_by_a_switch(site: Site, page: Any, consortium_url: str) -> None:
    page.goto(f"{site.url}/web/registry")
    assert page.get_by_role("heading", level=1).inner_text() == "创新联合体名录"
    page.get_by_role("link", name="English").click()
    page.get_by_role("heading", level=1, name="Consortium registry").wait_for()
    assert page.locator("html").get_attribute("lang") == "en"
    site.shot(page, "registry-en")
    login(page, site, "province")
    page.goto(consortium_url)
    assert page.locator(".meta .status").inner_text() == "Listed provincial consortium"
    assert page.get_by_role("heading", name="Timeline (ledger records)").is_visible()
    site.shot(page, "consortium-en")
    page.get_by_role("link", name="Sign a supplementary agreement", exact=True).click()
    page.get_by_role("button", name="Record").click()
    assert "This is required" in page.locator("#f-changes-0-kind-error").inner_text()
    site.shot(page, "form-en")
    page.get_by_role("link", name="中文").click()
    page.get_by_role("heading", level=1, name="签署补充协议").wait_for()


def test_a_390_px_screen_has_no_horizontal_overflow(site: Site, browser: Any,
                                                    consortium_url: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        login(page, site, "province")
        pages = {"registry": "/web/registry", "consortium": consortium_url.replace(site.url, ""),
                 "form": consortium_url.replace(site.url, "") + "/sign_supplementary_agreement",
                 "dashboard": "/web/dashboard", "audit": "/web/audit"}
        for name, path in pages.items():
            page.goto(site.url + path)
            page.wait_for_load_state("load")
            width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], (name, width)
            site.shot(page, f"mobile-{name}")
    finally:
        context.close()
