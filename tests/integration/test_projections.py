"""Read models built from the notification log exactly once, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from typing import Any

import pytest

from api.demo import record_demo
from audit.store import open_registry
from domain.registry import Registry
from projections.projection import RegistryProjectionRunner, open_view, rebuild
from projections.views import RegistryViewSQL
from tests.factories import NANJING, TODAY, lead_qualification, unit


def snapshot(view: RegistryViewSQL) -> dict[str, Any]:
    page, _ = view.list_consortia(limit=10_000)
    return {"docs": page, "reports": view.annual_reports(TODAY), "stats": view.statistics()}


def new_consortium(reg: Registry, n: int = 0) -> str:
    return str(reg.select_lead(name=f"投影测试联合体{n}", city="nanjing", lead=unit(),
                               qualification=lead_qualification(), fields=["new_materials"],
                               actor=NANJING, effective_date=date(2024, 1, 1))["consortium_id"])


def test_incremental_views_equal_a_rebuild_from_zero(database_url: str) -> None:
    reg = open_registry(database_url, clock=lambda: TODAY)
    record_demo(reg)
    head = reg.recorder.max_notification_id()
    with RegistryProjectionRunner(database_url) as runner:
        runner.wait(head, timeout=30)
        incremental = snapshot(runner.registry_view)
    assert len(incremental["docs"]) == 4
    assert incremental["stats"]["listed"] == 2
    assert {(r["year"], r["state"]) for r in incremental["reports"]} >= {(2024, "late"),
                                                                         (2025, "overdue")}
    assert rebuild(database_url) == head
    assert snapshot(open_view(database_url)) == incremental


def test_a_write_is_readable_as_soon_as_the_view_reaches_its_position(database_url: str) -> None:
    reg = open_registry(database_url, clock=lambda: TODAY)
    with RegistryProjectionRunner(database_url) as runner:
        view = runner.registry_view
        written = reg.select_lead(name="读己之写联合体", city="nanjing", lead=unit(),
                                  qualification=lead_qualification(), fields=["quantum"],
                                  actor=NANJING, effective_date=date(2024, 1, 1))
        assert view.wait_for(reg.name, written["position"], timeout=5)
        doc = view.consortium(written["consortium_id"])
        assert doc is not None and doc["version"] == 1 and doc["status"] == "forming"
        assert doc["fields"][0]["zh"] == "量子科技"


def test_a_lost_notification_does_not_stall_the_runner(database_url: str) -> None:
    # A writer in "another process" (its own recorder, so no in-process wake-up) whose NOTIFY is
    # lost: the runner still catches up by its periodic poll.
    writer = open_registry(database_url, clock=lambda: TODAY)
    if hasattr(writer.recorder, "_notify_channel"):
        writer.recorder._notify_channel = lambda curs: None  # type: ignore[attr-defined]
    with RegistryProjectionRunner(database_url) as runner:
        time.sleep(0.2)
        position = writer.select_lead(name="丢失通知联合体", city="nanjing", lead=unit(),
                                      qualification=lead_qualification(), fields=["quantum"],
                                      actor=NANJING, effective_date=date(2024, 1, 1))["position"]
        assert runner.registry_view.wait_for(writer.name, position, timeout=5)


def test_a_killed_projection_process_resumes_and_applies_each_event_once(
        database_url: str) -> None:
    reg = open_registry(database_url, clock=lambda: TODAY)
    for n in range(40):
        cid = new_consortium(reg, n)
        for _ in range(24):
            reg.admit_member(cid, unit(), actor=NANJING, effective_date=date(2024, 1, 2))
    head = reg.recorder.max_notification_id()
    view = open_view(database_url)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "api.cli", "--database", database_url, "project"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while view.position(reg.name) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = view.position(reg.name)
    assert 0 < killed_at < head, (killed_at, head)
    resumed = subprocess.run([*cmd, "--once"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert view.position(reg.name) == head
    once = snapshot(view)
    assert all(d["version"] == 25 for d in once["docs"])
    assert rebuild(database_url) == head
    assert snapshot(open_view(database_url)) == once


def test_filters_and_cursor_pagination(database_url: str) -> None:
    reg = open_registry(database_url, clock=lambda: TODAY)
    record_demo(reg)
    rebuild(database_url)
    view = open_view(database_url)
    seen, cursor = [], None
    while True:
        page, cursor = view.list_consortia(limit=3, cursor=cursor)
        seen += [d["name"] for d in page]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 4
    assert [d["city"] for d in view.list_consortia(city="wuxi")[0]] == ["wuxi"]
    assert [d["status"] for d in view.list_consortia(listed_only=True)[0]] == ["listed"] * 2
    assert len(view.list_consortia(field="biomedicine")[0]) == 1
    assert len(view.list_consortia(text="集成电路")[0]) == 1
    assert view.list_consortia(text="%")[0] == []  # LIKE wildcards are taken literally
    member = view.list_consortia(city="suzhou")[0][0]["members"][0]["uscc"]
    assert [d["city"] for d in view.list_consortia(uscc=member)[0]] == ["suzhou"]
    with pytest.raises(ValueError):
        view.list_consortia(cursor="not-a-cursor")


def test_records_of_other_aggregates_move_the_position_but_not_the_views(
        database_url: str, tmp_path: Any) -> None:
    from audit import signing

    reg = open_registry(database_url, clock=lambda: TODAY)
    record_demo(reg)
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    signing.create_signing_key(reg, keys / "ledger.pem")  # keyring records in the same chain
    head = reg.recorder.max_notification_id()
    with RegistryProjectionRunner(database_url) as runner:
        runner.wait(head, timeout=30)
        incremental = snapshot(runner.registry_view)
    assert len(incremental["docs"]) == 4
    assert rebuild(database_url) == head
    assert snapshot(open_view(database_url)) == incremental
