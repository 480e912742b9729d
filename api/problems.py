"""Every error the API answers is an RFC 9457 problem (``application/problem+json``).

One table (``STATUS_BY_KIND``) maps the kind of a ``DomainError`` to its HTTP status; each domain
error class has a stable ``type`` URI built from its ``code``. Refusals made by the HTTP layer itself
(401, 413, 428 …) are ``ApiProblem``s with their own codes from ``HTTP_PROBLEMS``. Nothing internal
(stack traces, SQL, driver messages) ever reaches a client.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from eventsourcing.persistence import DataError, InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope, Send

from api.etags import version_etag
from api.sqlstore import StoreUnavailable
from domain.errors import DomainError, StaleVersion

log = logging.getLogger("consortia.api")

PROBLEM_BASE = "https://consortia.jiangsu.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

#: DomainError.kind → HTTP status. The one place where a broken rule becomes a status code.
STATUS_BY_KIND: dict[str, int] = {
    "invalid": 422,  # the request itself is bad input
    "conflict": 409,  # well formed, but the registry's state forbids it
    "forbidden": 403,  # the actor's role or jurisdiction may not
    "not-found": 404,
    "precondition": 412,  # If-Match names a version that is no longer current
}

#: Problems raised by the HTTP layer: code → (status, 中文 title, English title).
HTTP_PROBLEMS: dict[str, tuple[int, str, str]] = {
    "bad-request": (400, "请求格式错误", "Bad request"),
    "invalid-if-match": (400, "If-Match 格式错误", "Malformed If-Match header"),
    "invalid-idempotency-key": (400, "幂等键格式错误", "Malformed Idempotency-Key header"),
    "position-not-written": (400, "账本中尚无该位置", "No such ledger position has been written"),
    "invalid-cursor": (400, "信息流游标无效", "Invalid feed cursor"),
    "unauthenticated": (401, "需要有效的访问密钥", "A valid API key is required"),
    "read-only-role": (403, "当前角色仅可查询，不能登记", "This role may read but not record"),
    "forbidden": (403, "无权访问", "Forbidden"),
    "not-found": (404, "资源不存在", "Not found"),
    "method-not-allowed": (405, "不支持该请求方法", "Method not allowed"),
    "not-acceptable": (406, "无法提供所需格式", "Not acceptable"),
    "delivery-pending": (409, "该事件仍在投递中", "The delivery is still pending"),
    "consortium-already-started": (
        409, "该幂等键已开始组建一个创新联合体（见 Location）",
        "This Idempotency-Key has already started a consortium (see Location)"),
    "idempotency-request-in-progress": (
        409, "相同幂等键的请求正在处理", "A request with this idempotency key is in progress"),
    "request-timeout": (408, "请求体未在时限内送达", "The request body did not arrive in time"),
    "payload-too-large": (413, "请求体过大", "Request body too large"),
    "unsupported-media-type": (415, "不支持的请求体格式", "Unsupported media type"),
    "validation-error": (422, "请求参数校验失败", "Request validation failed"),
    "idempotency-key-reused": (
        422, "幂等键已用于另一个不同的请求", "Idempotency key reused with a different request"),
    "precondition-required": (
        428, "须在 If-Match 中提供当前版本号", "If-Match with the current version is required"),
    "internal-error": (500, "服务器内部错误", "Internal server error"),
    "database-unavailable": (503, "数据库暂不可用，请稍后重试", "Database unavailable"),
    "not-ready": (503, "服务尚未就绪", "Service not ready"),
    "view-behind": (503, "查询视图尚未更新到所需位置", "The read view has not caught up yet"),
    "response-timeout": (503, "查询未在时限内完成，请稍后重试", "The read did not finish in time"),
}

#: The code of a plain HTTP error (an unknown route, a wrong method …) by its status.
_CODE_BY_STATUS = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
                   405: "method-not-allowed", 406: "not-acceptable", 408: "request-timeout",
                   413: "payload-too-large",
                   415: "unsupported-media-type", 422: "validation-error",
                   428: "precondition-required", 500: "internal-error"}
_KNOWN = frozenset(s.value for s in HTTPStatus)
_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "code", "title_zh",
                       "title_en"})
#: A detail named like a standard member keeps its meaning under a clearer name.
_RENAMED = {"status": "current_status", "type": "detail_type", "title": "detail_title"}
_EN_OVERRIDES = {
    "invalid-uscc": "Invalid unified social credit code (USCC)",
    "stale-version": "The consortium has changed since the given version",
    "effective-date-in-future": "Effective date is in the future",
    "credit-repair-too-early": "Credit repair is not possible yet",
}


def problem_type(code: str) -> str:
    return PROBLEM_BASE + code


def english_title(error_class: type[DomainError]) -> str:
    """An English title derived from the stable code (``lead-unit-cannot-change`` → ``Lead unit
    cannot change``); the Chinese title is the domain's own."""
    code = error_class.code
    if code in _EN_OVERRIDES:
        return _EN_OVERRIDES[code]
    words = [w.upper() if w in ("uscc", "id") else w for w in code.split("-")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def status_for(error: DomainError) -> int:
    return STATUS_BY_KIND.get(error.kind, 409)


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``). Extension members carry the
    rule's details (``field``, ``missing``, ``current_version`` …)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": PROBLEM_BASE + "lead-unit-cannot-change",
        "title": "牵头单位不可发生变动 / Lead unit cannot change",
        "status": 409,
        "detail": "牵头单位不可发生变动，不能退出 / the lead unit can never change: cannot leave",
        "instance": "/api/v1/consortia/1f0c…/members/91320100MA1XYW00X4/drop",
        "code": "lead-unit-cannot-change",
        "title_zh": "牵头单位不可发生变动",
        "title_en": "Lead unit cannot change",
    }]})

    type: str = Field(description="稳定的问题类型 URI / stable problem type URI")
    title: str = Field(description="中文 / English 标题")
    status: int
    detail: str = ""
    instance: str = ""
    code: str = Field(description="稳定的错误代码 / stable error code (the last part of type)")
    title_zh: str = ""
    title_en: str = ""


class ApiProblem(Exception):
    """A refusal made by the HTTP layer (not a rule of the guideline)."""

    def __init__(self, code: str, detail: str = "", *, status: int | None = None,
                 headers: Mapping[str, str] | None = None, **extensions: Any) -> None:
        default_status, self.title_zh, self.title_en = HTTP_PROBLEMS.get(
            code, (status or 500, "请求失败", "Request failed"))
        self.code = code
        self.status = status or default_status
        self.detail = detail or f"{self.title_zh} / {self.title_en}"
        self.headers = dict(headers or {})
        self.extensions = extensions
        super().__init__(self.detail)


def _json_safe(value: Any) -> Any:
    try:
        return jsonable_encoder(value)
    except Exception:  # a detail that cannot be encoded is shown as text
        return str(value)


def problem_body(*, code: str, status: int, title_zh: str, title_en: str, detail: str,
                 instance: str, extensions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": f"{title_zh} / {title_en}",
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "title_zh": title_zh,
        "title_en": title_en,
    }
    for key, value in (extensions or {}).items():
        name = _RENAMED.get(key, f"detail_{key}") if key in _RESERVED else key
        body[name] = _json_safe(value)
    return body


def problem_response(body: dict[str, Any], headers: Mapping[str, str] | None = None
                     ) -> JSONResponse:
    return JSONResponse(body, status_code=int(body["status"]), headers=dict(headers or {}),
                        media_type=PROBLEM_MEDIA_TYPE)


def problem_bytes(code: str, instance: str, detail: str = "", **extensions: Any) -> tuple[
        int, bytes]:
    """A problem of the HTTP layer as (status, JSON bytes), for pure ASGI middleware."""
    p = ApiProblem(code, detail, **extensions)
    body = problem_body(code=p.code, status=p.status, title_zh=p.title_zh, title_en=p.title_en,
                        detail=p.detail, instance=instance, extensions=p.extensions)
    return p.status, json.dumps(body, ensure_ascii=False).encode("utf-8")


async def send_bytes(send: Send, status: int, headers: Sequence[tuple[str, str]],
                     body: bytes) -> None:
    """Answer from pure ASGI middleware: one response of ``status`` with ``headers`` and ``body``."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_problem(scope: Scope, send: Send, code: str, detail: str = "", *,
                       headers: Sequence[tuple[str, str]] = (), **extensions: Any) -> None:
    """Answer the problem ``code`` from pure ASGI middleware, which runs outside the handlers."""
    status, body = problem_bytes(code, scope.get("path", ""), detail, **extensions)
    await send_bytes(send, status, [("content-type", PROBLEM_MEDIA_TYPE), *headers], body)


def for_api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
    body = problem_body(code=exc.code, status=exc.status, title_zh=exc.title_zh,
                        title_en=exc.title_en, detail=exc.detail, instance=request.url.path,
                        extensions=exc.extensions)
    return problem_response(body, exc.headers)


def for_domain_error(request: Request, exc: DomainError) -> JSONResponse:
    cls = type(exc)
    body = problem_body(code=cls.code, status=status_for(exc), title_zh=cls.title_zh,
                        title_en=english_title(cls), detail=exc.message,
                        instance=request.url.path, extensions=exc.details)
    headers = {}
    current = exc.details.get("current_version")
    if isinstance(exc, StaleVersion) and isinstance(current, int):
        headers["ETag"] = version_etag(current)
    return problem_response(body, headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # The input is not echoed back: it may be large, or carry what the client should not log.
    out = []
    for err in exc.errors():
        item: dict[str, Any] = {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")),
                "type": str(err.get("type", ""))}
        ctx = err.get("ctx")
        if ctx:
            item["ctx"] = {k: v if isinstance(v, str | int | bool) else str(v)
                           for k, v in ctx.items()}
        out.append(item)
    return out


def for_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = _validation_errors(exc)
    where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
    p = ApiProblem("validation-error", f"请求参数不符合要求 / the request is invalid: {where}",
                   errors=errors)
    return for_api_problem(request, p)


def for_http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _CODE_BY_STATUS.get(exc.status_code)
    if code is None:
        phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in _KNOWN else "Error"
        code, title_zh, title_en = f"http-{exc.status_code}", "请求失败", phrase
    else:
        _, title_zh, title_en = HTTP_PROBLEMS[code]
    default = HTTPStatus(exc.status_code).phrase if exc.status_code in _KNOWN else ""
    detail = (exc.detail if isinstance(exc.detail, str) and exc.detail and exc.detail != default
              else f"{title_zh} / {title_en}")
    body = problem_body(code=code, status=exc.status_code, title_zh=title_zh, title_en=title_en,
                        detail=detail, instance=request.url.path)
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and "Allow" in headers:
        headers["Allow"] = _allowed_methods(request, headers["Allow"])
    return problem_response(body, headers)


#: The methods a 405's ``Allow`` may name, in the order it names them.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def route_probe(path: str, method: str = "GET", root_path: str = "") -> Scope:
    """A request scope with only what route matching reads: to ask the routes, not to serve."""
    return {"type": "http", "method": method, "path": path, "root_path": root_path,
            "headers": [], "query_string": b""}


def _allowed_methods(request: Request, allow: str) -> str:
    """Every method that some route accepts at the request's path. The router names only those
    of the first route whose path matched, where RFC 9110 §15.5.6 asks for the resource's."""
    methods = {m.strip().upper() for m in allow.split(",") if m.strip()}
    for method in _METHODS:
        if method not in methods:
            probe = route_probe(request.scope["path"], method, request.scope.get("root_path", ""))
            if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
                methods.add(method)
    return ", ".join([m for m in _METHODS if m in methods] + sorted(methods.difference(_METHODS)))


#: What a driver's message says about why the database refuses (checked in this order):
#: reason → (message fragments, 中文 / English detail).
_UNAVAILABLE_REASONS: dict[str, tuple[tuple[str, ...], str]] = {
    "storage-full": (("disk is full", "no space left", "could not extend file"),
                     "数据库存储空间已满，暂不能登记 / the database's storage is full: writes are "
                     "refused until space is freed; nothing was recorded"),
    "read-only": (("readonly", "read-only", "disk i/o error", "operation not permitted"),
                  "数据库当前只读，暂不能登记 / the database cannot be written (read-only file or "
                  "volume, or a storage error): nothing was recorded"),
    "locked": (("database is locked", "database table is locked"),
               "数据库繁忙，请稍后重试 / the database is busy; retry later: nothing was recorded"),
    "unreachable": (("connect", "connection", "terminating", "server closed", "timeout",
                     "unable to open", "pool"),
                    "数据库暂不可用，请稍后重试 / the database is unavailable; retry later"),
}


def unavailable_reason(exc: BaseException) -> str | None:
    """Why the database refused (a key of ``_UNAVAILABLE_REASONS``), from the messages of the
    exception and its causes; None when nothing says it is about availability."""
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(texts) < 5:
        texts.append(f"{type(seen).__name__} {seen}".lower())
        seen = seen.__cause__ or seen.__context__
    text = " ".join(texts)
    for reason, (fragments, _) in _UNAVAILABLE_REASONS.items():
        if any(f in text for f in fragments):
            return reason
    return None


def unavailable_problem(method: str, path: str, exc: BaseException) -> ApiProblem:
    """The 503 for a database that refuses, logged with its cause for the operator; the
    client learns the reason, never the driver's message."""
    reason = unavailable_reason(exc) or "unreachable"
    log.warning("database unavailable (%s) on %s %s: %r", reason, method, path, exc, exc_info=exc)
    return ApiProblem("database-unavailable", _UNAVAILABLE_REASONS[reason][1],
                      headers={"Retry-After": "5"}, reason=reason)


def for_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, sqlite3.OperationalError) and unavailable_reason(exc) is None:
        return for_unexpected(request, exc)  # e.g. "no such table": a fault of ours, not of the DB
    return for_api_problem(request, unavailable_problem(request.method, request.url.path, exc))


def for_data_error(request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot hold or compare (a NUL character in a query, a number out of
    range): the request's fault, not the server's."""
    log.info("value refused by the database on %s %s: %r", request.method, request.url.path, exc)
    return for_api_problem(request, ApiProblem(
        "validation-error", "请求中的值无法由数据库处理（如空字符 U+0000）/ a value in the request "
        "cannot be handled by the database (e.g. a NUL character)"))


def for_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return for_api_problem(request, ApiProblem("internal-error"))


def install(app: FastAPI) -> None:
    """Register the problem handlers: every error leaves the app as problem+json."""
    app.add_exception_handler(DomainError, for_domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(ApiProblem, for_api_problem)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, for_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, for_http_exception)  # type: ignore[arg-type]
    # The drivers' own errors too: some reads use a connection of their own.
    unavailable: tuple[type[Exception], ...] = (
        OperationalError, InterfaceError, StoreUnavailable, sqlite3.OperationalError,
        *_postgres_unavailable())
    for error in unavailable:
        app.add_exception_handler(error, for_unavailable)
    refused: tuple[type[Exception], ...] = (DataError, *_postgres_data_errors())
    for error in refused:
        app.add_exception_handler(error, for_data_error)
    app.add_exception_handler(Exception, for_unexpected)


def _postgres_unavailable() -> tuple[type[Exception], ...]:
    try:
        import psycopg
        from psycopg_pool import PoolTimeout
    except ImportError:  # an installation without PostgreSQL support
        return ()
    return psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout


def _postgres_data_errors() -> tuple[type[Exception], ...]:
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.DataError,)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for these statuses, each a ``Problem``."""
    described = {
        400: "请求头格式错误，或游标、账本位置无效 / malformed header, or an unknown cursor or "
             "ledger position",
        401: "缺少、未知或已吊销的访问密钥 / missing, unknown or revoked API key",
        403: "角色或辖区无权办理 / the role or jurisdiction may not",
        404: "创新联合体不存在 / no such consortium",
        409: "违反指引规则或状态不允许 / a rule of the guideline or the current state refuses it",
        412: "If-Match 版本已过时 / the If-Match version is stale",
        413: "请求体过大 / request body too large",
        422: "请求无效（参数校验或规则认定为无效输入）/ invalid request or input refused by a rule",
        428: "缺少 If-Match / If-Match is required",
        500: "服务器内部错误 / internal error",
        503: "数据库暂不可用 / database unavailable",
    }
    return {s: {"model": Problem, "description": described.get(s, "problem")} for s in statuses}
