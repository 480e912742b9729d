"""Dependencies shared by the routers (``Annotated`` aliases, so a route stays a few lines).

- ``RegistryDep``: the application's ``Registry``.
- ``PrincipalDep``: the caller's API key record, or ``None`` for an anonymous caller; a header that
  is present but malformed, unknown or revoked is a 401.
- ``WriterDep``: the ``Actor`` recorded on the events; 401 without a credential, 403 for a
  read-only role. Which writer may record which step is the domain's rule, not checked here.
- ``IfMatchDep``: the version named by ``If-Match`` (428 when missing, 400 when malformed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from uuid import UUID, uuid5

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import ApiKey, KeyStore
from api.etags import version_of
from api.problems import ApiProblem
from domain.records import Actor, Role
from domain.registry import Registry

T = TypeVar("T")

#: Every route of this version lives under this prefix.
API_V1 = "/api/v1"

bearer = HTTPBearer(
    auto_error=False, scheme_name="ApiKey", bearerFormat="cr_<key id>_<secret>",
    description="API key created with `consortia keys create --role …`, sent as "
                "`Authorization: Bearer <key>` / 访问密钥")

_CHALLENGE = 'Bearer realm="consortia"'


async def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def get_keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


RegistryDep = Annotated[Registry, Depends(get_registry)]


def _unauthenticated(detail: str, *, invalid: bool) -> ApiProblem:
    challenge = _CHALLENGE + (', error="invalid_token"' if invalid else "")
    return ApiProblem("unauthenticated", detail, headers={"WWW-Authenticate": challenge})


async def run_blocking(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run a short database call: in place on SQLite (a local read, microseconds, cheaper than a
    hop to the thread pool), in the thread pool on PostgreSQL (a network round trip)."""
    if request.app.state.database.backend == "sqlite":
        return fn(*args)
    return await run_in_threadpool(fn, *args)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiKey | None:
    """The caller's key, looked up on every request (a revoked key is refused at once)."""
    if credentials is None:
        if request.headers.get("authorization") is not None:
            raise _unauthenticated("Authorization 应为 “Bearer <访问密钥>” / the Authorization "
                                   "header must be 'Bearer <API key>'", invalid=True)
        return None
    token = credentials.credentials.strip()
    found = getattr(request.state, "principal", None)  # looked up by the idempotency layer
    if found is not None and found[0] == token:
        principal: ApiKey | None = found[1]
    else:
        principal = await run_blocking(request, get_keys(request).authenticate, token)
    if principal is None:
        raise _unauthenticated("访问密钥无效或已吊销 / the API key is unknown or revoked",
                               invalid=True)
    return principal


PrincipalDep = Annotated[ApiKey | None, Depends(current_principal)]


async def require_writer(principal: PrincipalDep) -> Actor:
    """The actor of a write: 401 without a credential, 403 for a read-only role."""
    if principal is None:
        raise _unauthenticated("登记须提供访问密钥 / recording needs an API key", invalid=False)
    if principal.read_only:
        raise ApiProblem("read-only-role",
                         f"{principal.role.label_zh}仅可查询 / role {principal.role.value} may "
                         "read but not record", role=principal.role.value)
    return principal.actor()


WriterDep = Annotated[Actor, Depends(require_writer)]


async def require_if_match(
    if_match: Annotated[str | None, Header(
        alias="If-Match",
        description='当前版本号，如 `"3"`（来自 ETag）/ the current version from the ETag, '
                    'e.g. `"3"`', examples=['"1"'])] = None,
) -> int:
    """The version the writer saw: 428 when missing, 400 when it is not a version ETag."""
    if if_match is None or not if_match.strip():
        raise ApiProblem("precondition-required",
                         "修改已有创新联合体须提供 If-Match（ETag 中的版本号）/ a write on an existing "
                         "consortium needs If-Match with the version from its ETag")
    version = version_of(if_match)
    if version is None:
        raise ApiProblem("invalid-if-match",
                         'If-Match 应为单个版本号，如 "3" / If-Match must be one version, e.g. "3"')
    return version


IfMatchDep = Annotated[int, Depends(require_if_match)]

IfNoneMatch = Annotated[str | None, Header(
    alias="If-None-Match",
    description='可选：已持有的 ETag，未变时答 304 / optional: the ETag already held; 304 Not '
                'Modified while it is still current', examples=['"3"'])]


def idempotency_key_header(
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key",
        description="可选：重试时使用相同的键，只登记一次 / optional: a retry with the same key "
                    "returns the first answer and records nothing (1–255 visible ASCII "
                    "characters, kept per API key)", examples=["2f6c1a0e-form-0001"])] = None,
) -> None:
    """Declares the header in OpenAPI; ``api.idempotency.IdempotencyMiddleware`` acts on it."""


#: The namespace of the consortium ids derived from idempotency keys (``formation_id_for``).
FORMATION_NAMESPACE = UUID("6f1d3c52-4a8e-5b7f-9c20-3e1a7d5b9f04")


def formation_id_for(key_id: str, idempotency_key: str) -> UUID:
    """The id of the consortium that a ``POST /consortia`` with this Idempotency-Key of this API
    key starts. However often the request is run (a retry whose first answer was lost, after
    the key's lease has passed), it can start one consortium only: a second run finds the id
    taken and is refused."""
    return uuid5(FORMATION_NAMESPACE, f"{key_id}\n{idempotency_key}")


def formation_id(request: Request, principal: PrincipalDep) -> UUID | None:
    """The key-derived id of a new consortium, when the request has an Idempotency-Key."""
    key = request.headers.get("idempotency-key")
    if not key or principal is None:
        return None
    return formation_id_for(principal.key_id, key)


FormationIdDep = Annotated[UUID | None, Depends(formation_id)]


def require_role(*roles: Role) -> Callable[[ApiKey | None], ApiKey]:
    """A dependency for reads restricted to some roles: 401 anonymous, 403 another role."""

    def dependency(principal: PrincipalDep) -> ApiKey:
        if principal is None:
            raise _unauthenticated("须提供访问密钥 / an API key is required", invalid=False)
        if principal.role not in roles:
            raise ApiProblem("forbidden", f"角色{principal.role.value}无权访问 / role "
                             f"{principal.role.value} may not read this",
                             allowed=sorted(r.value for r in roles))
        return principal

    return dependency
