"""Reads: the registry list, one consortium, its ledger history, statistics and annual-report
status. Lists and states come from the projections; history comes from the ledger itself.

Read-your-writes: a write answers with the ledger ``position`` it wrote; a read given
``min_position`` waits (at most ``READ_WAIT_SECONDS``) until the view has applied it, and answers
503 problem+json with ``Retry-After`` if it has not.
"""

from __future__ import annotations

import json
from datetime import date
from functools import partial
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from api.deps import IfNoneMatch, PrincipalDep, run_blocking
from api.etags import none_match, version_etag, weak_etag
from api.problems import ApiProblem, problem_responses
from audit.ledger import consortium_history
from projections.views import CursorError, RegistryViewSQL

router = APIRouter(tags=["查询 / reads"])

#: The longest a read waits for the view to reach a position the caller wrote (seconds).
READ_WAIT_SECONDS = 5.0


class Page(BaseModel):
    model_config = ConfigDict(extra="allow")
    items: list[dict[str, Any]] = Field(description="创新联合体（当前状态）/ consortia, current state")
    next_cursor: str | None = Field(description="下一页游标 / cursor of the next page, or null")
    view_position: int = Field(description="视图已处理到的账本位置 / ledger position the view has reached")


class HistoryEntry(BaseModel):
    position: int
    version: int
    event: str
    topic: str
    timestamp: str | None
    effective_date: str | None
    actor: dict[str, Any] | None
    document: dict[str, Any] | None
    data: dict[str, Any]
    hash: str | None
    previous_hash: str | None


class History(BaseModel):
    consortium_id: str
    events: list[HistoryEntry]
    next_after_version: int | None = Field(
        description="下一页的 after_version，无更多事件时为 null / after_version of the next page, "
                    "or null when these are the last events")


#: Events in one page of a consortium's history, by default and at most.
HISTORY_PAGE = 500
HISTORY_PAGE_MAX = 1000


class ReportStatus(BaseModel):
    consortium_id: str
    name: str
    city: str
    year: int
    deadline: str
    state: Literal["filed", "late", "due", "overdue"]
    filed_on: str | None


async def get_view(request: Request) -> RegistryViewSQL:
    view: RegistryViewSQL = request.app.state.view
    return view


ViewDep = Annotated[RegistryViewSQL, Depends(get_view)]
#: Reads that also answer anonymous callers (with less): the API key is optional in OpenAPI terms.
OPTIONAL_AUTH: dict[str, Any] = {"security": [{}]}  # appended to FastAPI's [{"ApiKey": []}]
MinPosition = Annotated[int | None, Query(
    ge=0, description="等待视图处理到该账本位置（写入返回的 position）/ wait until the view has "
                      "applied this ledger position (the `position` a write returned)")]


def _caught_up(request: Request, view: RegistryViewSQL, min_position: int | None) -> int:
    registry = request.app.state.registry
    app_name = registry.name
    if min_position is not None and view.position(app_name) < min_position:
        # A write answers only once committed, so a position beyond the ledger's head was never
        # handed out: waiting for it cannot succeed, and it is the caller's error, not ours.
        head = registry.recorder.max_notification_id() or 0
        if min_position > head:
            raise ApiProblem("position-not-written", f"账本中尚无位置{min_position}（当前最新为{head}）/ "
                             f"the ledger has no position {min_position} (its head is {head})",
                             field="min_position", min_position=min_position,
                             head_position=head)
    if not view.wait_for(app_name, min_position, READ_WAIT_SECONDS):
        raise ApiProblem("view-behind", f"视图尚未处理到位置{min_position} / the view has not yet "
                         f"reached position {min_position}", status=503,
                         headers={"Retry-After": "1"}, min_position=min_position)
    return view.position(app_name)


async def _caught_up_async(request: Request, view: RegistryViewSQL,
                           min_position: int | None) -> int:
    """``_caught_up`` without blocking the event loop: waiting may take seconds."""
    if min_position is None:
        return await run_blocking(request, view.position, request.app.state.registry.name)
    return await run_in_threadpool(_caught_up, request, view, min_position)


def _require_reader(principal: Any) -> None:
    if principal is None:
        raise ApiProblem("unauthenticated", "须提供访问密钥 / an API key is required",
                         headers={"WWW-Authenticate": 'Bearer realm="consortia"'})


_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "未变：If-None-Match 即当前版本 / not modified: If-None-Match names the "
                         "current ETag", "headers": {"ETag": {"schema": {"type": "string"}}}}}


@router.get("/consortia", response_model=Page, openapi_extra=OPTIONAL_AUTH,
            responses={**_NOT_MODIFIED, **problem_responses(400, 401, 422, 503)},
            summary="创新联合体名录 / The registry list")
async def list_consortia(
    request: Request, view: ViewDep, principal: PrincipalDep,
    status: Annotated[str | None, Query(description="状态 / status, e.g. listed")] = None,
    field: Annotated[str | None, Query(description="产业领域代码 / field code")] = None,
    city: Annotated[str | None, Query(description="设区市代码 / city code, e.g. nanjing")] = None,
    uscc: Annotated[str | None, Query(description="牵头或成员单位统一社会信用代码 / lead or member "
                                                  "USCC", max_length=18)] = None,
    q: Annotated[str | None, Query(description="名称包含 / text in the name",
                                   max_length=100)] = None,
    cursor: Annotated[str | None, Query(description="上一页返回的游标 / next_cursor of the "
                                                    "previous page", max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    min_position: MinPosition = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The consortia in the order they were formed, filtered, one page at a time. Without an API
    key only listed consortia (省创新联合体) are shown. The weak ``ETag`` names the view's position
    (and whether the caller is the public): while no event has been applied since, the same
    request with ``If-None-Match`` is answered 304."""
    position = await _caught_up_async(request, view, min_position)
    tag = f"{position}.{'public' if principal is None else 'staff'}"
    headers = {"ETag": weak_etag(tag), "Vary": "Authorization"}
    if none_match(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    try:
        items, next_cursor = await run_blocking(request, partial(
            view.list_consortia_json, status=status, field=field, city=city, uscc=uscc, text=q,
            listed_only=principal is None, cursor=cursor, limit=limit))
    except CursorError as e:
        raise ApiProblem("bad-request", f"游标无效 / {e}", field="cursor") from None
    # The stored documents are JSON already: they are served as stored, not decoded and encoded.
    return _json(b'{"items":[' + b",".join(items) + b'],"next_cursor":'
                 + json.dumps(next_cursor).encode() + b',"view_position":'
                 + str(position).encode() + b"}", headers=headers)


@router.get("/consortia/{consortium_id}", response_model=dict[str, Any],
            openapi_extra=OPTIONAL_AUTH,
            responses={**_NOT_MODIFIED, **problem_responses(400, 401, 404, 422, 503)},
            summary="一个创新联合体的当前状态 / One consortium, current state")
async def get_consortium(request: Request, consortium_id: UUID, view: ViewDep,
                         principal: PrincipalDep, min_position: MinPosition = None,
                         if_none_match: IfNoneMatch = None) -> Response:
    """Its current state from the view; the ``ETag`` is its version, for ``If-Match`` on a write,
    and for ``If-None-Match`` on the next read (304 while it is current). Without an API key only
    a listed consortium is shown."""
    if min_position is not None:
        await _caught_up_async(request, view, min_position)
    found = await run_blocking(request, view.consortium_text, str(consortium_id))
    if found is None or (principal is None and found[0] != "listed"):
        raise ApiProblem("not-found", f"创新联合体{consortium_id}不存在 / no consortium "
                         f"{consortium_id}")
    # Vary: the public is not shown a consortium that is not listed.
    headers = {"ETag": version_etag(found[1]), "Vary": "Authorization"}
    if none_match(if_none_match, str(found[1])):
        return Response(status_code=304, headers=headers)
    return _json(found[2], headers=headers)


def _json(body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, media_type="application/json", headers=headers)


@router.get("/consortia/{consortium_id}/history", response_model=History,
            responses=problem_responses(401, 404, 422),
            summary="账本中的全部事件 / Every event in the ledger")
def get_history(
    request: Request, response: Response, consortium_id: UUID, principal: PrincipalDep,
    after_version: Annotated[int, Query(ge=0, le=2**63 - 1, description="只返回此版本之后的事件 / only the "
                                        "events after this version (next_after_version of the "
                                        "previous page)")] = 0,
    limit: Annotated[int, Query(ge=1, le=HISTORY_PAGE_MAX)] = HISTORY_PAGE,
) -> History:
    """Every lifecycle event of the consortium as recorded in the ledger, in order, each with its
    position, hash and previous hash (see docs/ledger.md to recompute them), a page at a time:
    while ``next_after_version`` is not null (and a ``Link: rel="next"`` header is sent), more
    events follow."""
    _require_reader(principal)
    db = request.app.state.database
    # One more than the page: whether another page follows is known without a second query.
    events = consortium_history(db, consortium_id, after_version=after_version, limit=limit + 1)
    if not events and (after_version == 0 or not consortium_history(db, consortium_id, limit=1)):
        raise ApiProblem("not-found", f"创新联合体{consortium_id}不存在 / no consortium "
                         f"{consortium_id}")
    more = len(events) > limit
    events = events[:limit]
    next_after = events[-1]["version"] if more else None
    if next_after is not None:
        response.headers["Link"] = (f'<{request.url.path}?after_version={next_after}'
                                    f'&limit={limit}>; rel="next"')
    return History(consortium_id=str(consortium_id), events=[HistoryEntry(**e) for e in events],
                   next_after_version=next_after)


@router.get("/statistics", response_model=dict[str, Any],
            responses=problem_responses(400, 422, 503),
            summary="统计 / Statistics")
def get_statistics(request: Request, view: ViewDep,
                   min_position: MinPosition = None) -> dict[str, Any]:
    """Listed consortia against the target of 30 by 2026, by status, city, field and grade."""
    position = _caught_up(request, view, min_position)
    return {**view.statistics(), "view_position": position}


@router.get("/annual-reports", response_model=list[ReportStatus],
            responses=problem_responses(400, 401, 422, 503),
            summary="年度报告报送情况 / Annual-report status")
def get_annual_reports(
    request: Request, view: ViewDep, principal: PrincipalDep,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    state: Annotated[Literal["filed", "late", "due", "overdue"] | None, Query(
        description="overdue = 5月31日后仍未报送 / not filed after 31 May")] = None,
    min_position: MinPosition = None,
) -> list[ReportStatus]:
    """Per listed consortium and year: filed, late, due, or overdue after 31 May (§7.1)."""
    _require_reader(principal)
    _caught_up(request, view, min_position)
    today: date = request.app.state.registry.clock()
    rows = view.annual_reports(today, year=year)
    return [ReportStatus(**r) for r in rows if state is None or r["state"] == state]
