"""Webhook subscriptions to the credit feed, managed by the province (省科技厅): where to push, which
event types, the signing keys (rotation), and the deliveries (dead letters, redelivery).

Delivery itself is ``api.delivery``; the tables are ``projections.credit_outbox``.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, UrlConstraints

from api.auth import ApiKey
from api.deps import require_role
from api.problems import ApiProblem, problem_responses
from api.routes_feed import StoreDep
from api.webhooks import new_ed25519_key, new_hmac_secret
from domain.records import Role
from projections.credit_events import EVENT_TYPES
from projections.credit_outbox import (
    ACTIVE,
    DEAD,
    DELIVERED,
    DISABLED,
    CreditOutboxSQL,
    Delivery,
    SigningKey,
    Subscription,
)

router = APIRouter(prefix="/webhooks/subscriptions", tags=["信用推送 / credit webhooks"])
ProvinceDep = Annotated[ApiKey, Depends(require_role(Role.PROVINCE))]
SubscriptionId = Annotated[str, Path(max_length=64, description="订阅编号 / subscription id")]

EventType = Literal[
    "cn.jiangsu.consortium.credit.violation-recorded.v1",
    "cn.jiangsu.consortium.credit.violation-repaired.v1",
    "cn.jiangsu.consortium.credit.violation-revoked.v1",
    "cn.jiangsu.consortium.credit.publicity-ended.v1",
    "cn.jiangsu.consortium.credit.consortium-delisted.v1",
]
assert set(get_args(EventType)) == set(EVENT_TYPES)
WebhookUrl = Annotated[AnyHttpUrl, UrlConstraints(max_length=2048,
                                                  allowed_schemes=["http", "https"])]
#: How long the previous keys keep signing after a rotation, by default (seconds).
DEFAULT_OVERLAP = 86_400


class SubscriptionIn(BaseModel):
    """A receiver of the credit feed (推送地址)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "url": "https://credit.jiangsu.example/hooks/consortia",
        "event_types": list(EVENT_TYPES), "signing": "hmac",
        "description": "江苏省公共信用信息平台"}]})

    url: WebhookUrl
    event_types: list[EventType] = Field(default_factory=lambda: list(get_args(EventType)),
                                         min_length=1,
                                         description="默认全部 / every type by default")
    signing: Literal["hmac", "ed25519"] = Field(
        "hmac", description="hmac: 共享密钥 whsec_…（v1）; ed25519: 公钥 whpk_…（v1a）")
    description: str = Field("", max_length=200)


class KeyOut(BaseModel):
    key_id: str
    created_at: float
    expires_at: float | None = Field(description="轮换后旧密钥的失效时间 / when a rotated-out key "
                                                 "stops signing (Unix seconds)")
    public_key: str | None = Field(None, description="Ed25519 公钥 whpk_… / the public key")


class SubscriptionOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    signing: str
    state: Literal["active", "disabled"]
    disabled_reason: str | None
    start_position: int = Field(description="只推送此账本位置之后的事件 / events after this ledger "
                                            "position are delivered")
    description: str
    created_by: str
    created_at: float
    deliveries: dict[str, int] = Field(description="pending / delivered / dead")
    keys: list[KeyOut]


class NewKeyOut(BaseModel):
    """A signing key as created: its secret (HMAC) is shown this once."""

    key_id: str
    secret: str | None = Field(None, description="HMAC 密钥 whsec_…，仅显示一次 / shown once")
    public_key: str | None = Field(None, description="Ed25519 公钥 whpk_… / for the receiver")


class SubscriptionCreated(SubscriptionOut):
    key: NewKeyOut


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: int = Field(DEFAULT_OVERLAP, ge=0, le=30 * 86_400, description=(
        "旧密钥继续签名的秒数（期间一次投递带多个签名）/ how long the previous keys keep signing "
        "(meanwhile a delivery carries several signatures)"))


class DeliveryOut(BaseModel):
    position: int
    event_id: str
    event_type: str
    subject: str
    state: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_at: float
    last_attempt_at: float | None
    last_status: int | None
    last_error: str | None
    delivered_at: float | None


class RedeliveredOut(BaseModel):
    redelivered: int


def _out(store: CreditOutboxSQL, s: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=s.id, url=s.url, event_types=list(s.event_types), signing=s.signing,
        state="active" if s.state == ACTIVE else "disabled", disabled_reason=s.disabled_reason,
        start_position=s.start_position, description=s.description, created_by=s.created_by,
        created_at=s.created_at, deliveries=store.counts(s.id),
        keys=[KeyOut(key_id=k.key_id, created_at=k.created_at, expires_at=k.expires_at,
                     public_key=k.public_key) for k in store.keys(s.id)])


def _found(store: CreditOutboxSQL, subscription_id: str) -> Subscription:
    s = store.subscription(subscription_id)
    if s is None:
        raise ApiProblem("not-found", f"没有推送订阅{subscription_id} / no subscription "
                         f"{subscription_id}")
    return s


def _new_key(signing: str, now: float) -> tuple[SigningKey, NewKeyOut]:
    key_id = uuid.uuid4().hex[:16]
    if signing == "ed25519":
        private, public = new_ed25519_key()
        return (SigningKey(key_id, private, public, now, None),
                NewKeyOut(key_id=key_id, secret=None, public_key=public))
    secret = new_hmac_secret()
    return (SigningKey(key_id, secret, None, now, None),
            NewKeyOut(key_id=key_id, secret=secret, public_key=None))


def _delivery(d: Delivery) -> DeliveryOut:
    return DeliveryOut(position=d.position, event_id=d.event_id, event_type=d.event_type,
                       subject=d.subject, state=d.state,  # type: ignore[arg-type]
                       attempts=d.attempts, next_attempt_at=d.next_attempt_at,
                       last_attempt_at=d.last_attempt_at, last_status=d.last_status,
                       last_error=d.last_error, delivered_at=d.delivered_at)


@router.post("", response_model=SubscriptionCreated, status_code=201,
             responses=problem_responses(400, 401, 403, 413, 422, 503),
             summary="新建推送订阅 / Subscribe a receiver")
def create_subscription(body: SubscriptionIn, principal: ProvinceDep,
                        store: StoreDep) -> SubscriptionCreated:
    """Push every matching credit event recorded from now on; the signing secret is shown once."""
    now = time.time()
    key, shown = _new_key(body.signing, now)
    s = store.create_subscription(
        subscription_id=uuid.uuid4().hex, url=str(body.url),
        event_types=list(dict.fromkeys(body.event_types)), signing=body.signing,
        description=body.description, created_by=principal.actor().user_id, key=key, now=now)
    return SubscriptionCreated(**_out(store, s).model_dump(), key=shown)


@router.get("", response_model=list[SubscriptionOut], responses=problem_responses(401, 403, 503),
            summary="推送订阅列表 / Subscriptions")
def list_subscriptions(_: ProvinceDep, store: StoreDep) -> list[SubscriptionOut]:
    """Every subscription with its delivery counts and keys (never a secret)."""
    return [_out(store, s) for s in store.subscriptions()]


@router.get("/{subscription_id}", response_model=SubscriptionOut,
            responses=problem_responses(401, 403, 404, 503),
            summary="推送订阅 / A subscription")
def get_subscription(subscription_id: SubscriptionId, _: ProvinceDep,
                     store: StoreDep) -> SubscriptionOut:
    """One subscription with its delivery counts and keys."""
    return _out(store, _found(store, subscription_id))


@router.delete("/{subscription_id}", status_code=204,
               responses=problem_responses(401, 403, 404, 503),
               summary="删除推送订阅 / Delete a subscription")
def delete_subscription(subscription_id: SubscriptionId, _: ProvinceDep,
                        store: StoreDep) -> Response:
    """Stop pushing to this receiver and forget its deliveries."""
    if not store.delete_subscription(subscription_id):
        _found(store, subscription_id)
    return Response(status_code=204)


@router.post("/{subscription_id}/disable", response_model=SubscriptionOut,
             responses=problem_responses(401, 403, 404, 503),
             summary="暂停推送 / Disable a subscription")
def disable_subscription(subscription_id: SubscriptionId, _: ProvinceDep,
                         store: StoreDep) -> SubscriptionOut:
    """Pause delivery; events keep being queued for this receiver."""
    _found(store, subscription_id)
    store.set_state(subscription_id, DISABLED, "disabled by the province")
    return _out(store, _found(store, subscription_id))


@router.post("/{subscription_id}/enable", response_model=SubscriptionOut,
             responses=problem_responses(401, 403, 404, 503),
             summary="恢复推送 / Enable a subscription")
def enable_subscription(subscription_id: SubscriptionId, _: ProvinceDep,
                        store: StoreDep) -> SubscriptionOut:
    """Resume delivery (also after a 410 Gone), starting with what waited."""
    _found(store, subscription_id)
    store.set_state(subscription_id, ACTIVE, None)
    return _out(store, _found(store, subscription_id))


@router.post("/{subscription_id}/keys", response_model=NewKeyOut, status_code=201,
             responses=problem_responses(400, 401, 403, 404, 413, 422, 503),
             summary="轮换签名密钥 / Rotate the signing key")
def rotate_key(subscription_id: SubscriptionId, body: RotateIn, _: ProvinceDep,
               store: StoreDep) -> NewKeyOut:
    """A new signing key; the previous ones keep signing for ``overlap_seconds``."""
    s = _found(store, subscription_id)
    now = time.time()
    key, shown = _new_key(s.signing, now)
    if not store.add_key(subscription_id, key, retire_others_at=now + body.overlap_seconds):
        _found(store, subscription_id)
    return shown


@router.get("/{subscription_id}/deliveries", response_model=list[DeliveryOut],
            responses=problem_responses(401, 403, 404, 422, 503),
            summary="投递记录 / Deliveries")
def list_deliveries(
    subscription_id: SubscriptionId, _: ProvinceDep, store: StoreDep,
    state: Literal["pending", "delivered", "dead"] | None = None,
    after: Annotated[int, Query(ge=0, description="账本位置 / ledger position")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    """Deliveries in ledger order, optionally of one state (``dead``: the dead letters)."""
    _found(store, subscription_id)
    return [_delivery(d) for d in store.deliveries(subscription_id, state=state, after=after,
                                                   limit=limit)]


@router.post("/{subscription_id}/deliveries/{position}/redelivery", response_model=DeliveryOut,
             responses=problem_responses(401, 403, 404, 409, 503),
             summary="重新投递 / Redeliver one event")
def redeliver(subscription_id: SubscriptionId, position: Annotated[int, Path(ge=1)],
              _: ProvinceDep, store: StoreDep) -> DeliveryOut:
    """Send a dead (or already delivered) event again, now, with a fresh set of attempts."""
    _found(store, subscription_id)
    if store.delivery(subscription_id, position) is None:
        raise ApiProblem("not-found", f"位置{position}没有投递 / no delivery at position "
                         f"{position}")
    if not store.redeliver(subscription_id, now=time.time(), position=position,
                           states=(DEAD, DELIVERED)):
        raise ApiProblem("delivery-pending", "该事件正在投递中 / this event is still pending")
    found = store.delivery(subscription_id, position)
    assert found is not None
    return _delivery(found)


@router.post("/{subscription_id}/dead-letters/redelivery", response_model=RedeliveredOut,
             responses=problem_responses(401, 403, 404, 503),
             summary="重新投递全部死信 / Redeliver every dead letter")
def redeliver_dead(subscription_id: SubscriptionId, _: ProvinceDep,
                   store: StoreDep) -> RedeliveredOut:
    """Every dead delivery of this subscription becomes pending again, due now."""
    _found(store, subscription_id)
    return RedeliveredOut(redelivered=store.redeliver(subscription_id, now=time.time()))
