"""The HTTP application: ``create_app()`` builds it on one database (SQLite by default, PostgreSQL by
URL), versioned under ``/api/v1``.

``app.state`` holds the ``registry``, the API's stores (``keys``, ``idempotency``, ``sql``), the
``database`` and ``readiness_checks``: callables that ``/readyz`` runs, each returning a JSON-safe
detail or raising when the service is not ready (the projection's lag is meant to join them).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from api import problems
from api.auth import KeyStore
from api.delivery import EmbeddedDelivery, embedded_delivery_enabled
from api.deps import API_V1
from api.idempotency import DEFAULT_RETENTION, IdempotencyMiddleware, IdempotencyStore
from api.limits import (
    DEFAULT_BODY_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_READ_SECONDS,
    BodySizeLimitMiddleware,
    RequestTimeoutMiddleware,
)
from api.problems import PROBLEM_MEDIA_TYPE, ApiProblem
from api.routes_audit import router as audit_router
from api.routes_feed import router as feed_router
from api.routes_lifecycle import router as lifecycle_router
from api.routes_read import router as read_router
from api.routes_webhooks import router as webhooks_router
from api.settings import positive_number
from api.sqlstore import open_sql
from api.web import install as install_web
from audit.store import Database, open_registry, parse_database_url
from domain.registry import Registry, today_in_china
from projections.credit_outbox import open_credit_store
from projections.projection import open_view, supervised_projection_runner

TITLE = "江苏省创新联合体登记簿 API / Jiangsu innovation-consortium registry API"
DESCRIPTION = """\
省创新联合体的登记簿：组建、申报、推荐、评估、认定、补充协议、年度报告、绩效评价、整改、摘牌与失信记录，
全部作为事件写入哈希链账本。 / The registry of record of Jiangsu's provincial innovation consortia:
every lifecycle change is an event in a hash-chained, append-only ledger.

* **Auth**: `Authorization: Bearer <API key>` (create one with `consortia keys create --role …`).
* **Writes** on an existing consortium need `If-Match: "<version>"` (its `ETag`); 428 without, 412
  when stale. POSTs accept `Idempotency-Key`.
* **Errors** are RFC 9457 `application/problem+json`, with a stable `type` per rule.
"""

#: The routers of /api/v1. Routes are matched in turn, so the reads, asked most often, come first.
ROUTERS: list[APIRouter] = [read_router, lifecycle_router, audit_router, feed_router,
                            webhooks_router]

#: A readiness check returns a JSON-safe detail, or raises when the service is not ready.
ReadinessCheck = Callable[[], Any]


def prepare_routes(app: FastAPI) -> None:
    """Have every route ready before the first request. FastAPI builds the routes of an included
    router (their dependencies and response models) when a request first reaches it — 5 to 60 ms
    a router here, on the event loop, in front of whoever asks first. Matching a path that no
    route has against every route builds them all."""
    probe = problems.route_probe("/\x00")
    for route in app.router.routes:
        route.matches(probe)


def database_of(registry: Registry) -> Database:
    """The database a Registry was opened on (from its eventsourcing environment)."""
    env = registry.env
    module = env.get("PERSISTENCE_MODULE", "")
    if module == "eventsourcing.sqlite":
        path = env.get("SQLITE_DBNAME", "")
        if not path or ":memory:" in path or "mode=memory" in path:
            raise ValueError("the API needs a registry on a SQLite file, not in memory")
        return Database(url=f"sqlite:///{path}", backend="sqlite", path=path)
    if module == "eventsourcing.postgres":
        return Database(url="", backend="postgresql", dbname=env.get("POSTGRES_DBNAME", ""),
                        host=env.get("POSTGRES_HOST", "127.0.0.1"),
                        port=int(env.get("POSTGRES_PORT", "5432")),
                        user=env.get("POSTGRES_USER", ""),
                        password=env.get("POSTGRES_PASSWORD", ""))
    raise ValueError(f"the API needs a registry on SQLite or PostgreSQL, not {module!r}")


def create_app(database_url: str | None = None, *, registry: Registry | None = None,
               clock: Callable[[], date] | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               embedded_projection: bool | None = None) -> FastAPI:
    """The registry service on the database named by the URL (or ``CONSORTIA_DATABASE_URL``).
    Pass ``registry`` to serve an existing Registry (tests give one with a fixed clock).

    ``embedded_projection`` (default: ``CONSORTIA_EMBEDDED_PROJECTION``, on unless ``0``) runs the
    projection runner inside this process while the app is served; turn it off when
    ``consortia project`` runs as its own process (PostgreSQL)."""
    if embedded_projection is None:
        embedded_projection = os.environ.get("CONSORTIA_EMBEDDED_PROJECTION", "1") != "0"
    if database_url is not None or registry is None:
        db = parse_database_url(database_url)
    else:
        db = database_of(registry)
    owns_registry = registry is None
    if registry is None:
        registry = open_registry(db.url, clock=clock or today_in_china)
    sql = open_sql(db)
    keys = KeyStore(sql)
    idempotency = IdempotencyStore(sql, retention=timedelta(hours=positive_number(
        os.environ, "CONSORTIA_IDEMPOTENCY_HOURS", DEFAULT_RETENTION / timedelta(hours=1), "hours")))
    try:
        keys.create_table()
        idempotency.create_table()
    except Exception:
        sql.close()
        raise

    settings = dict(registry.env)
    view = open_view(env=settings)
    # Opened here, before any runner thread: two connections creating the same SQLite tables
    # at once would refuse one of them ("database is locked") without waiting.
    credit_store = open_credit_store(env=settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare_routes(app)
        # Supervised: started again after a database restart has cut its connections.
        runner = supervised_projection_runner(settings) if embedded_projection else None
        if runner is not None:
            runner.__enter__()
        app.state.runner = runner
        # The credit outbox and webhook delivery run beside the projections (api.delivery).
        delivery = (EmbeddedDelivery(settings).start()
                    if embedded_delivery_enabled(embedded_projection) else None)
        try:
            yield
        finally:
            app.state.runner = None
            if delivery is not None:
                delivery.stop()
            if runner is not None:
                runner.__exit__(None, None, None)
        sql.close()
        credit_store.datastore.close()
        if owns_registry:
            app.state.registry.close()

    app = FastAPI(title=TITLE, version="1.0.0", description=DESCRIPTION,
                  openapi_url=f"{API_V1}/openapi.json", docs_url=f"{API_V1}/docs",
                  redoc_url=None, lifespan=lifespan)
    app.state.registry = registry
    app.state.database = db
    app.state.sql = sql
    app.state.keys = keys
    app.state.idempotency = idempotency
    app.state.max_body_bytes = max_body_bytes

    def database_reachable() -> dict[str, Any]:
        sql.fetchone("SELECT 1")
        return {"backend": db.backend, "head_position": registry.recorder.max_notification_id()}

    database_reachable.__name__ = "database"
    def projection() -> dict[str, Any]:
        runner = getattr(app.state, "runner", None)
        if runner is not None and not runner.running:
            raise RuntimeError("the embedded projection runner is not running")
        head = registry.recorder.max_notification_id() or 0
        position = view.position(registry.name)
        return {"embedded": embedded_projection, "position": position, "lag": head - position}

    app.state.readiness_checks = [database_reachable, projection]
    app.state.view = view
    app.state.credit_store = credit_store
    app.state.runner = None

    problems.install(app)
    # The probes first: a route is found by testing each in turn, and they are asked often.
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["运行 / operations"],
                      summary="进程存活 / Process alive")
    app.add_api_route("/readyz", readyz, methods=["GET"], tags=["运行 / operations"],
                      summary="数据库可达 / Ready to serve",
                      responses=problems.problem_responses(503))
    for router in ROUTERS:
        app.include_router(router, prefix=API_V1)
    install_web(app)  # the web UI under /web (server-rendered pages, same keys and roles)
    # Outermost last: the size limit runs before idempotency reads a body.
    app.add_middleware(IdempotencyMiddleware, keys=keys, store=idempotency)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(RequestTimeoutMiddleware,
                       body_seconds=positive_number(os.environ, "CONSORTIA_BODY_TIMEOUT",
                                                    DEFAULT_BODY_SECONDS, "seconds"),
                       read_seconds=positive_number(os.environ, "CONSORTIA_READ_TIMEOUT",
                                                    DEFAULT_READ_SECONDS, "seconds"))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def healthz() -> dict[str, str]:
    """The process is alive (says nothing about the database)."""
    return {"status": "ok"}


def readyz(request: Request) -> JSONResponse:
    """The database is reachable and every readiness check passes; 503 problem+json otherwise."""
    checks: dict[str, Any] = {}
    ready = True
    for check in request.app.state.readiness_checks:
        name = getattr(check, "__name__", repr(check))
        try:
            checks[name] = {"ok": True, "detail": check()}
        except Exception as e:  # a check that fails says why, without internals
            ready = False
            checks[name] = {"ok": False, "error": type(e).__name__}
    if ready:
        return JSONResponse({"status": "ready", "checks": checks})
    return problems.for_api_problem(request, ApiProblem(
        "not-ready", "服务尚未就绪 / not ready: " + ", ".join(
            n for n, c in checks.items() if not c["ok"]),
        headers={"Retry-After": "5"}, checks=checks))


_FASTAPI_422 = {"$ref": "#/components/schemas/HTTPValidationError"}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with every 4xx/5xx answer declared as ``application/problem+json``."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    problem = {"$ref": "#/components/schemas/Problem"}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for code, answer in operation.get("responses", {}).items():
                content = answer.get("content", {})
                if code[:1] not in "45" or not content:
                    continue
                # Declared under the route's own media type (JSON, or text for a plain-text
                # route), an error still leaves the app as problem+json.
                media = content.get("application/json") or next(iter(content.values()))
                content.clear()
                content[PROBLEM_MEDIA_TYPE] = media
                if media.get("schema") == _FASTAPI_422:  # FastAPI's own 422 where none is declared
                    media["schema"] = problem
    components = schema.get("components", {}).get("schemas", {})
    if "HTTPValidationError" in components and _FASTAPI_422["$ref"] not in json.dumps(schema):
        components.pop("HTTPValidationError")
        components.pop("ValidationError", None)
    app.openapi_schema = schema
    return schema
