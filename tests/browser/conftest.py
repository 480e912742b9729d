"""The registry served by uvicorn on a free loopback port (embedded SQLite default, the demo
history recorded), one API key per kind of user, and Debian's Chromium driven by Playwright.
Screenshots go to test-artifacts/screenshots/ (git-ignored)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CONSORTIA_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
TODAY = date(2026, 11, 25)

if not Path(CHROMIUM).exists():
    _missing = f"Debian's Chromium is not installed at {CHROMIUM} (scripts/test installs it)"
    if os.environ.get("CONSORTIA_REQUIRE_BROWSER", "") in ("1", "true", "yes"):
        raise pytest.UsageError(f"CONSORTIA_REQUIRE_BROWSER=1 but {_missing}")
    pytest.skip(_missing, allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api")


@dataclass
class Site:
    url: str
    keys: dict[str, str] = field(default_factory=dict)
    app: Any = None

    def shot(self, page: Any, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    import uvicorn

    from api.app import create_app
    from api.demo import record_demo
    from audit import signing
    from audit.store import open_registry

    if not (ROOT / "api/web/static/vendor/chart.umd.min.js").is_file():
        subprocess.run([str(ROOT / "scripts/fetch-web-assets")], check=False)
    folder = tmp_path_factory.mktemp("site")
    url = f"sqlite:///{folder / 'ledger.db'}"
    registry = open_registry(url, clock=lambda: TODAY)
    record_demo(registry)
    key_file = folder / "signing.pem"
    signing.create_signing_key(registry, key_file)
    app = create_app(url, registry=registry)
    signing.sign_checkpoint(app.state.database, key_file)
    result = Site(url="", app=app)
    for who, role, city, name in [("nanjing", "city_bureau", "nanjing", "chen.hao"),
                                  ("province", "province", None, "wang.li"),
                                  ("auditor", "auditor", None, "audit.1")]:
        result.keys[who] = app.state.keys.create(role, city=city, name=name)[1]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="web-ui-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    result.url = f"http://127.0.0.1:{port}"
    try:
        yield result
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        registry.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.set_default_timeout(30_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def login(page: Any, site: Site, who: str) -> None:
    page.goto(f"{site.url}/web/login")
    page.locator("#api_key").fill(site.keys[who])  # labelled 访问密钥 / API key
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(f"{site.url}/web/registry")


