"""Push delivery of the credit feed: at least once, in order per subject, signed (Standard
Webhooks 1.0), with retries.

The outbox projection (``projections.credit_outbox``) enqueues each credit event once per
subscription; this worker sends what is due. A delivery is a ``POST`` of the CloudEvent
(structured mode, ``application/cloudevents+json``), rendered from the ledger at each attempt, so a
record withdrawn meanwhile is sent withdrawn. Outcomes:

* ``2xx``: delivered.
* ``410 Gone``: the subscription is disabled (its deliveries wait until the province enables it).
* anything else (another status, a timeout, a refused connection): retried after an exponential
  back-off with jitter, or after the response's ``Retry-After``; after the last attempt the
  delivery is dead (a dead letter), until someone asks for its redelivery.

A later event of a subject is never sent while an earlier one of the same subject is pending.
Several workers may run at once (``consortia deliver`` and the service's own): a delivery is leased
before each attempt.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from api.webhooks import webhook_headers
from projections.credit_outbox import (
    DEAD,
    DELIVERED,
    PENDING,
    CreditOutboxRunner,
    CreditOutboxSQL,
    Delivery,
    Subscription,
    open_credit_store,
)
from projections.projection import SupervisedRunner, close_view

log = logging.getLogger("consortia.delivery")

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
USER_AGENT = "jiangsu-consortia-registry/1 (credit feed; Standard Webhooks 1.0)"


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """When to retry and when to give up. The n-th retry waits ``base · factor^(n-1)`` seconds
    (at most ``cap``), times a random factor within ``1 ± jitter``; defaults: 5 s, 20 s, 80 s,
    5 min, 21 min, 85 min, 5.7 h, 22.8 h, 24 h — ten attempts over about two and a half days."""

    base: float = 5.0
    factor: float = 4.0
    cap: float = 86_400.0
    max_attempts: int = 10
    jitter: float = 0.2
    timeout: float = 15.0  # per request (connect, read, write)
    max_retry_after: float = 86_400.0  # a longer Retry-After is shortened to this
    poll_interval: float = 1.0  # the longest the worker sleeps without looking
    concurrency: int = 4  # requests in flight at once (different subjects)
    batch: int = 50

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds before the next attempt, after ``attempts`` failed ones (≥ 1)."""
        raw = min(self.cap, self.base * self.factor ** max(0, attempts - 1))
        spread = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return max(0.0, raw * spread)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DeliveryPolicy:
        """``CONSORTIA_WEBHOOK_RETRY_BASE``, ``…_RETRY_FACTOR``, ``…_RETRY_CAP``,
        ``…_MAX_ATTEMPTS``, ``…_JITTER``, ``…_TIMEOUT`` override the defaults."""
        env = os.environ if env is None else env
        fields = {"base": "RETRY_BASE", "factor": "RETRY_FACTOR", "cap": "RETRY_CAP",
                  "jitter": "JITTER", "timeout": "TIMEOUT", "poll_interval": "POLL_INTERVAL"}
        values: dict[str, Any] = {}
        for name, suffix in fields.items():
            raw = env.get(f"CONSORTIA_WEBHOOK_{suffix}")
            if raw:
                values[name] = float(raw)
        raw = env.get("CONSORTIA_WEBHOOK_MAX_ATTEMPTS")
        if raw:
            values["max_attempts"] = int(raw)
        return cls(**values)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header (delay in seconds, or an HTTP date) as seconds from ``now``."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


def body_of(event: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON, UTF-8."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class DeliveryWorker:
    """Sends due deliveries and records each outcome."""

    def __init__(self, store: CreditOutboxSQL, policy: DeliveryPolicy | None = None, *,
                 client: httpx.Client | None = None, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.store = store
        self.policy = policy or DeliveryPolicy.from_env()
        self._own_client = client is None
        self.client = client or httpx.Client(
            timeout=self.policy.timeout, follow_redirects=False,
            headers={"User-Agent": USER_AGENT})
        self.clock = clock
        self.rng = rng or random.Random()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=max(1, self.policy.concurrency),
                                        thread_name_prefix="credit-delivery")

    # ------------------------------------------------------------------------------ one round
    def run_once(self) -> int:
        """Attempt every delivery due now (one attempt each); returns how many were attempted."""
        now = self.clock()
        lease = now + 4 * self.policy.timeout + 10  # beyond the longest an attempt can take
        claimed = [(d, s) for d, s in self.store.due(now, self.policy.batch)
                   if self.store.claim(d.subscription_id, d.position, now=now, until=lease)]
        if not claimed:
            return 0
        events = self.store.events_at({d.position for d, _ in claimed})
        list(self._pool.map(lambda pair: self._attempt(pair[0], pair[1],
                                                       events.get(pair[0].position)), claimed))
        return len(claimed)

    def _attempt(self, delivery: Delivery, subscription: Subscription,
                 event: dict[str, Any] | None) -> None:
        try:
            self._send(delivery, subscription, event)
        except Exception:  # one delivery's failure must not stop the others
            log.exception("credit delivery %s@%s failed", delivery.subscription_id,
                          delivery.position)

    def _send(self, delivery: Delivery, subscription: Subscription,
              event: dict[str, Any] | None) -> None:
        now = self.clock()
        keys = [k.secret for k in self.store.keys(subscription.id, now=now)]
        if event is None or not keys:
            why = "the ledger no longer serves this event" if event is None else "no signing key"
            self._failed(delivery, None, why, None)
            return
        body = body_of(event)
        headers = webhook_headers(keys, delivery.event_id, body, timestamp=int(now))
        headers["Content-Type"] = CONTENT_TYPE
        try:
            response = self.client.post(subscription.url, content=body, headers=headers)
        except httpx.HTTPError as e:
            self._failed(delivery, None, f"{type(e).__name__}: {e}"[:300], None)
            return
        status = response.status_code
        done = self.clock()
        if 200 <= status < 300:
            self.store.record_attempt(delivery.subscription_id, delivery.position, now=done,
                                      state=DELIVERED, status=status, error=None)
        elif status == 410:
            self.store.record_attempt(
                delivery.subscription_id, delivery.position, now=done, state=PENDING,
                status=status, error="410 Gone: the receiver asked for no more deliveries",
                next_attempt_at=done, disable="410 Gone")
        else:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"), done)
            self._failed(delivery, status, f"HTTP {status}", retry_after)

    def _failed(self, delivery: Delivery, status: int | None, error: str,
                retry_after: float | None) -> None:
        now = self.clock()
        attempts = delivery.attempts + 1
        if attempts >= self.policy.max_attempts:
            self.store.record_attempt(delivery.subscription_id, delivery.position, now=now,
                                      state=DEAD, status=status, error=error)
            return
        wait = (min(retry_after, self.policy.max_retry_after) if retry_after is not None
                else self.policy.delay(attempts, self.rng))
        self.store.record_attempt(delivery.subscription_id, delivery.position, now=now,
                                  state=PENDING, status=status, error=error,
                                  next_attempt_at=now + wait)

    # ------------------------------------------------------------------------------ the loop
    def wake(self) -> None:
        """Look for due deliveries now (the outbox has just enqueued some)."""
        self._wake.set()

    def run(self) -> None:
        """Deliver until ``stop()``: sleep until the next delivery is due, a wake-up, or the
        poll interval, whichever comes first."""
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if self.run_once():
                    continue
                next_due = self.store.next_due_at(self.clock())
            except Exception:  # the database may be away for a moment: try again later
                log.exception("credit delivery round failed")
                next_due = None
            timeout = self.policy.poll_interval
            if next_due is not None:
                timeout = min(timeout, max(0.01, next_due - self.clock()))
            self._wake.wait(timeout)

    def start(self) -> DeliveryWorker:
        self._thread = threading.Thread(target=self.run, name="credit-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._own_client:
            self.client.close()


class EmbeddedDelivery:
    """The outbox projection runner and a delivery worker, inside the service (embedded mode).
    The runner is supervised: started again after a database restart has cut its connections;
    the worker, on a store of its own, retries its rounds by itself."""

    def __init__(self, env: Mapping[str, str], policy: DeliveryPolicy | None = None) -> None:
        settings = dict(env)
        self.store = open_credit_store(env=settings)
        self.worker = DeliveryWorker(self.store, policy)
        self.runner = SupervisedRunner(
            lambda: CreditOutboxRunner(env=settings, on_enqueued=self.worker.wake),
            name="credit-outbox", close=close_view)

    def start(self) -> EmbeddedDelivery:
        self.runner.__enter__()
        self.worker.start()
        return self

    def stop(self) -> None:
        self.worker.stop()
        self.runner.__exit__(None, None, None)
        self.store.datastore.close()


def embedded_delivery_enabled(embedded_projection: bool) -> bool:
    """Delivery runs in the service with the projections, unless
    ``CONSORTIA_EMBEDDED_DELIVERY=0`` (then ``consortia deliver`` runs it)."""
    return embedded_projection and os.environ.get("CONSORTIA_EMBEDDED_DELIVERY", "1") != "0"
