"""The credit feed for credit-management systems (信用管理系统): CloudEvents read from the ledger in
order, with an opaque resumable cursor, long-polling, and a first-load snapshot.

What the events mean and how withdrawn content is withheld is ``projections.credit_events``; how
the ledger is read without ever skipping a record is ``projections.credit_feed``. Here: parse,
call, map — and wait, when asked to, for the next event.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import ApiKey
from api.deps import require_role
from api.problems import ApiProblem, problem_responses
from domain.records import Role
from projections.credit_events import CursorError, decode_cursor
from projections.credit_feed import MAX_PAGE, FeedPage
from projections.credit_outbox import CreditOutboxSQL

router = APIRouter(prefix="/feeds", tags=["信用信息 / credit feed"])
ConsumerDep = Annotated[ApiKey, Depends(require_role(Role.CREDIT_CONSUMER))]

#: The longest a long-poll waits, and how often it looks again while waiting (seconds).
MAX_WAIT = 30.0
POLL_EVERY = 0.2


def credit_store(request: Request) -> CreditOutboxSQL:
    """The app's credit feed and outbox tables (opened with the app, on its database)."""
    store: CreditOutboxSQL = request.app.state.credit_store
    return store


StoreDep = Annotated[CreditOutboxSQL, Depends(credit_store)]


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in structured JSON (docs/credit-feed.md lists the types and data)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "specversion": "1.0", "id": "754812f7-9d1f-4c66-bcdd-f64fc8d734cd:10",
        "source": "https://consortia.jiangsu.example/ledger",
        "type": "cn.jiangsu.consortium.credit.violation-recorded.v1",
        "subject": "91320200MA1G8H994E", "time": "2026-09-01T02:00:00+00:00",
        "datacontenttype": "application/json", "sequence": "00000000000000000036",
        "data": {"record_id": "CR-1", "withdrawn": False, "severity": "serious"}}]})

    specversion: str
    id: str = Field(description="稳定的事件编号（重投时不变）/ stable id, the same on every delivery")
    source: str
    type: str = Field(description="cn.jiangsu.consortium.credit.<name>.v1")
    subject: str = Field(description="单位统一社会信用代码 / the unit's USCC")
    time: str | None
    datacontenttype: str
    sequence: str = Field(description="账本位置（补零）/ the ledger position, zero-padded")
    data: dict[str, Any]


class FeedOut(BaseModel):
    """Events in ledger order and the cursor to continue from."""

    events: list[CloudEvent]
    cursor: str = Field(description="下次请求的 after / pass as ``after`` next time (opaque)")
    more: bool = Field(description="账本中还有未读记录 / the ledger has records beyond this page")


class SnapshotOut(BaseModel):
    """The records in publicity now, and the cursor of the ledger position they were read at."""

    events: list[CloudEvent]
    cursor: str = Field(description="从此继续读取信息流 / continue the feed from here (opaque)")


def _page(store: CreditOutboxSQL, after: int, limit: int) -> FeedPage:
    try:
        return store.page(after, limit)
    except CursorError as e:
        raise ApiProblem("invalid-cursor", f"游标无效 / {e}", field="after") from None


def _feed_out(page: FeedPage) -> FeedOut:
    return FeedOut(events=[CloudEvent(**e) for e in page.events], cursor=page.cursor,
                   more=page.position < page.head)


@router.get("/credit", response_model=FeedOut,
            responses=problem_responses(400, 401, 403, 422, 503),
            summary="信用信息流 / The credit feed (CloudEvents)")
async def credit_feed(
    request: Request, _: ConsumerDep, store: StoreDep,
    after: Annotated[str | None, Query(max_length=64, description=(
        "上次返回的游标；省略则从头读取 / the cursor returned last time; omit to read from the "
        "beginning"))] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT, description=(
        "无新事件时最多等待的秒数（长轮询）/ seconds to wait for a new event when there is none "
        "(long poll)"))] = 0,
) -> FeedOut:
    """Credit events after the cursor, in ledger order, with the cursor of the last one."""
    try:
        position = decode_cursor(after)
    except CursorError as e:
        raise ApiProblem("invalid-cursor", f"游标无效 / {e}", field="after") from None
    page = await to_thread.run_sync(_page, store, position, limit)
    deadline = time.monotonic() + wait
    while not page.events and time.monotonic() < deadline:
        if await request.is_disconnected():
            break
        await asyncio.sleep(min(POLL_EVERY, max(0.0, deadline - time.monotonic())))
        if await to_thread.run_sync(store.head) > page.position:
            page = await to_thread.run_sync(_page, store, page.position, limit)
    return _feed_out(page)


@router.get("/credit/snapshot", response_model=SnapshotOut,
            responses=problem_responses(401, 403, 503),
            summary="公示中的失信记录快照 / Snapshot of the records in publicity")
async def credit_snapshot(_: ConsumerDep, store: StoreDep) -> SnapshotOut:
    """First load: every record in publicity now, and the cursor to continue the feed from."""
    page = await to_thread.run_sync(store.snapshot)
    return SnapshotOut(events=[CloudEvent(**e) for e in page.events], cursor=page.cursor)
