"""The credit outbox: webhook subscriptions and their deliveries, kept beside the ledger.

A projection follows the ledger's credit events (``CreditOutboxProjection``) and, for each, writes
one delivery per matching subscription **with its tracking record in the same transaction**: each
event is enqueued exactly once per subscription, also after a crash. A delivery row holds only the
event's position, id, type and subject; the body is rendered from the ledger at each attempt, so a
record withdrawn while its delivery waits is sent withdrawn.

Tables: ``credit_subscriptions``, ``credit_subscription_keys`` (signing secrets: several while a
key rotates), ``credit_deliveries`` (state ``pending`` → ``delivered`` or ``dead``),
``credit_outbox_lock`` (one row: creating a subscription and enqueueing an event serialise on it,
so a subscription sees exactly the events after the ledger head it was created at), and the
tracking table ``credit_outbox_tracking``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection, ProjectionRunner

from audit.store import POSTGRES_EVENTS_TABLE, SQLITE_EVENTS_TABLE, registry_env
from domain.registry import Registry
from projections.credit_events import FEED_TOPICS
from projections.credit_feed import CreditLedgerSQL
from projections.tables import PostgresTables, SQLiteTables, for_backend

OUTBOX_NAME = "credit_outbox"
TRACKING_TABLE = f"{OUTBOX_NAME}_tracking"

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
ACTIVE, DISABLED = "active", "disabled"

_DDL = [
    "CREATE TABLE IF NOT EXISTS credit_subscriptions ("
    " id TEXT PRIMARY KEY, url TEXT NOT NULL, event_types TEXT NOT NULL, signing TEXT NOT NULL,"
    " state TEXT NOT NULL, disabled_reason TEXT, start_position BIGINT NOT NULL,"
    " description TEXT NOT NULL, created_by TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS credit_subscription_keys ("
    " subscription_id TEXT NOT NULL, key_id TEXT NOT NULL, secret TEXT NOT NULL, public_key TEXT,"
    " created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION,"
    " PRIMARY KEY (subscription_id, key_id))",
    "CREATE TABLE IF NOT EXISTS credit_deliveries ("
    " subscription_id TEXT NOT NULL, position BIGINT NOT NULL, event_id TEXT NOT NULL,"
    " event_type TEXT NOT NULL, subject TEXT NOT NULL, state TEXT NOT NULL,"
    " attempts INTEGER NOT NULL, next_attempt_at DOUBLE PRECISION NOT NULL,"
    " leased_until DOUBLE PRECISION, last_attempt_at DOUBLE PRECISION, last_status INTEGER,"
    " last_error TEXT, delivered_at DOUBLE PRECISION, created_at DOUBLE PRECISION NOT NULL,"
    " PRIMARY KEY (subscription_id, position))",
    "CREATE INDEX IF NOT EXISTS credit_deliveries_due ON credit_deliveries (state, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS credit_deliveries_subject ON credit_deliveries"
    " (subscription_id, subject, state, position)",
    "CREATE TABLE IF NOT EXISTS credit_outbox_lock (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)",
    "INSERT INTO credit_outbox_lock (id, n) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
]

_SUBSCRIPTION_COLUMNS = ("id, url, event_types, signing, state, disabled_reason, start_position, "
                         "description, created_by, created_at")
_DELIVERY_COLUMNS = ("subscription_id, position, event_id, event_type, subject, state, attempts, "
                     "next_attempt_at, leased_until, last_attempt_at, last_status, last_error, "
                     "delivered_at, created_at")


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    url: str
    event_types: tuple[str, ...]
    signing: str  # hmac | ed25519
    state: str  # active | disabled
    disabled_reason: str | None
    start_position: int
    description: str
    created_by: str
    created_at: float


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: str
    secret: str  # whsec_… (HMAC) or whsk_… (Ed25519 private key)
    public_key: str | None  # whpk_… for Ed25519
    created_at: float
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class Delivery:
    subscription_id: str
    position: int
    event_id: str
    event_type: str
    subject: str
    state: str
    attempts: int
    next_attempt_at: float
    leased_until: float | None
    last_attempt_at: float | None
    last_status: int | None
    last_error: str | None
    delivered_at: float | None
    created_at: float


class CreditOutboxSQL(CreditLedgerSQL):
    """Backend-neutral part of the outbox: the SQL of subscriptions, keys and deliveries."""

    def _track(self, cursor: Any, tracking: Tracking) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by the tracking recorder that follows in the MRO
        datastore: Any

        def max_tracking_id(self, application_name: str) -> int | None: ...

    def _lock(self, c: Any) -> None:
        # A write to the one lock row: SQLite takes its write lock here (before any read, so the
        # transaction reads the latest data); PostgreSQL locks the row until commit.
        c.execute("UPDATE credit_outbox_lock SET n = n + 1 WHERE id = 1")

    def position(self, application_name: str) -> int:
        return self.max_tracking_id(application_name) or 0

    # ----------------------------------------------------------------------------- enqueueing
    def enqueue(self, event: Mapping[str, Any] | None, tracking: Tracking,
                now: float) -> int:
        """One pending delivery of this CloudEvent per subscription that wants it, and the
        tracking record, atomically. Returns how many deliveries were written."""
        position = tracking.notification_id
        with self._tx(commit=True) as c:
            self._lock(c)
            written = 0
            if event is not None:
                c.execute(self._q("SELECT id, event_types FROM credit_subscriptions "
                                  "WHERE start_position < ?"), (position,))
                for row in c.fetchall():
                    if event["type"] not in json.loads(row["event_types"]):
                        continue
                    c.execute(self._q(
                        f"INSERT INTO credit_deliveries ({_DELIVERY_COLUMNS}) VALUES "
                        "(?,?,?,?,?,?,0,?,NULL,NULL,NULL,NULL,NULL,?) "
                        "ON CONFLICT (subscription_id, position) DO NOTHING"),
                        (row["id"], position, event["id"], event["type"], event["subject"],
                         PENDING, now, now))
                    written += 1
            self._track(c, tracking)
        return written

    # -------------------------------------------------------------------------- subscriptions
    def create_subscription(self, *, subscription_id: str, url: str,
                            event_types: Sequence[str], signing: str, description: str,
                            created_by: str, key: SigningKey, now: float) -> Subscription:
        """A new subscription that receives every matching event after the ledger's head."""
        with self._tx(commit=True) as c:
            self._lock(c)
            start = self._head(c)
            c.execute(self._q(f"INSERT INTO credit_subscriptions ({_SUBSCRIPTION_COLUMNS}) "
                              "VALUES (?,?,?,?,?,NULL,?,?,?,?)"),
                      (subscription_id, url, json.dumps(list(event_types)), signing, ACTIVE,
                       start, description, created_by, now))
            self._insert_key(c, subscription_id, key)
        found = self.subscription(subscription_id)
        assert found is not None
        return found

    def _insert_key(self, c: Any, subscription_id: str, key: SigningKey) -> None:
        c.execute(self._q("INSERT INTO credit_subscription_keys (subscription_id, key_id, secret, "
                          "public_key, created_at, expires_at) VALUES (?,?,?,?,?,?)"),
                  (subscription_id, key.key_id, key.secret, key.public_key, key.created_at,
                   key.expires_at))

    def subscription(self, subscription_id: str) -> Subscription | None:
        with self._tx(commit=False) as c:
            c.execute(self._q(f"SELECT {_SUBSCRIPTION_COLUMNS} FROM credit_subscriptions "
                              "WHERE id = ?"), (subscription_id,))
            row = c.fetchone()
        return None if row is None else _subscription(row)

    def subscriptions(self) -> list[Subscription]:
        with self._tx(commit=False) as c:
            c.execute(f"SELECT {_SUBSCRIPTION_COLUMNS} FROM credit_subscriptions "
                      "ORDER BY created_at, id")
            return [_subscription(r) for r in c.fetchall()]

    def set_state(self, subscription_id: str, state: str, reason: str | None = None) -> bool:
        """Enable or disable a subscription (its deliveries wait while it is disabled)."""
        with self._tx(commit=True) as c:
            c.execute(self._q("UPDATE credit_subscriptions SET state = ?, disabled_reason = ? "
                              "WHERE id = ?"), (state, reason, subscription_id))
            return _rowcount(c) == 1

    def delete_subscription(self, subscription_id: str) -> bool:
        with self._tx(commit=True) as c:
            self._lock(c)
            for table, column in (("credit_deliveries", "subscription_id"),
                                  ("credit_subscription_keys", "subscription_id")):
                c.execute(self._q(f"DELETE FROM {table} WHERE {column} = ?"), (subscription_id,))
            c.execute(self._q("DELETE FROM credit_subscriptions WHERE id = ?"),
                      (subscription_id,))
            return _rowcount(c) == 1

    def add_key(self, subscription_id: str, key: SigningKey, *, retire_others_at: float) -> bool:
        """Add a signing key; the others stay valid until ``retire_others_at`` (rotation)."""
        with self._tx(commit=True) as c:
            c.execute(self._q("SELECT 1 AS found FROM credit_subscriptions WHERE id = ?"),
                      (subscription_id,))
            if c.fetchone() is None:
                return False
            c.execute(self._q("UPDATE credit_subscription_keys SET expires_at = ? WHERE "
                              "subscription_id = ? AND (expires_at IS NULL OR expires_at > ?)"),
                      (retire_others_at, subscription_id, retire_others_at))
            self._insert_key(c, subscription_id, key)
            return True

    def keys(self, subscription_id: str, *, now: float | None = None) -> list[SigningKey]:
        """The subscription's signing keys (those still valid at ``now`` when given), oldest
        first."""
        sql = ("SELECT key_id, secret, public_key, created_at, expires_at FROM "
               "credit_subscription_keys WHERE subscription_id = ?")
        params: list[Any] = [subscription_id]
        if now is not None:
            sql += " AND (expires_at IS NULL OR expires_at > ?)"
            params.append(now)
        with self._tx(commit=False) as c:
            c.execute(self._q(sql + " ORDER BY created_at, key_id"), params)
            return [SigningKey(str(r["key_id"]), str(r["secret"]), r["public_key"],
                               float(r["created_at"]),
                               None if r["expires_at"] is None else float(r["expires_at"]))
                    for r in c.fetchall()]

    # ----------------------------------------------------------------------------- deliveries
    def deliveries(self, subscription_id: str, *, state: str | None = None, after: int = 0,
                   limit: int = 100) -> list[Delivery]:
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM credit_deliveries WHERE subscription_id = ? " \
              "AND position > ?"
        params: list[Any] = [subscription_id, after]
        if state is not None:
            sql += " AND state = ?"
            params.append(state)
        with self._tx(commit=False) as c:
            c.execute(self._q(sql + " ORDER BY position LIMIT ?"), [*params, limit])
            return [_delivery(r) for r in c.fetchall()]

    def delivery(self, subscription_id: str, position: int) -> Delivery | None:
        with self._tx(commit=False) as c:
            c.execute(self._q(f"SELECT {_DELIVERY_COLUMNS} FROM credit_deliveries WHERE "
                              "subscription_id = ? AND position = ?"), (subscription_id, position))
            row = c.fetchone()
        return None if row is None else _delivery(row)

    def counts(self, subscription_id: str) -> dict[str, int]:
        with self._tx(commit=False) as c:
            c.execute(self._q("SELECT state, count(*) AS n FROM credit_deliveries "
                              "WHERE subscription_id = ? GROUP BY state"), (subscription_id,))
            found = {str(r["state"]): int(r["n"]) for r in c.fetchall()}
        return {s: found.get(s, 0) for s in (PENDING, DELIVERED, DEAD)}

    _ELIGIBLE = (
        "d.state = 'pending' AND s.state = 'active'"
        " AND (d.leased_until IS NULL OR d.leased_until <= ?)"
        # Per-subject order: never a later event of a subject while an earlier one is pending.
        " AND NOT EXISTS (SELECT 1 FROM credit_deliveries e WHERE"
        " e.subscription_id = d.subscription_id AND e.subject = d.subject"
        " AND e.state = 'pending' AND e.position < d.position)"
    )

    def due(self, now: float, limit: int) -> list[tuple[Delivery, Subscription]]:
        """Deliveries that may be attempted now: pending, due, not leased, first of their
        subject, on an active subscription; oldest first."""
        cols = ", ".join(f"d.{c.strip()}" for c in _DELIVERY_COLUMNS.split(","))
        scols = ", ".join(f"s.{c.strip()} AS s_{c.strip()}"
                          for c in _SUBSCRIPTION_COLUMNS.split(","))
        sql = (f"SELECT {cols}, {scols} FROM credit_deliveries d JOIN credit_subscriptions s "
               f"ON s.id = d.subscription_id WHERE {self._ELIGIBLE} AND d.next_attempt_at <= ? "
               "ORDER BY d.next_attempt_at, d.position LIMIT ?")
        with self._tx(commit=False) as c:
            c.execute(self._q(sql), (now, now, limit))
            rows = c.fetchall()
        names = [c.strip() for c in _SUBSCRIPTION_COLUMNS.split(",")]
        return [(_delivery(r), _subscription({n: r[f"s_{n}"] for n in names})) for r in rows]

    def next_due_at(self, now: float) -> float | None:
        """When the next delivery becomes due (None when nothing waits)."""
        sql = (f"SELECT min(d.next_attempt_at) AS t FROM credit_deliveries d JOIN "
               f"credit_subscriptions s ON s.id = d.subscription_id WHERE {self._ELIGIBLE}")
        with self._tx(commit=False) as c:
            c.execute(self._q(sql), (now,))
            row = c.fetchone()
        return None if row is None or row["t"] is None else float(row["t"])

    def claim(self, subscription_id: str, position: int, *, now: float, until: float) -> bool:
        """Lease a pending delivery for one attempt (False when another worker holds it)."""
        with self._tx(commit=True) as c:
            c.execute(self._q("UPDATE credit_deliveries SET leased_until = ? WHERE "
                              "subscription_id = ? AND position = ? AND state = 'pending' AND "
                              "(leased_until IS NULL OR leased_until <= ?)"),
                      (until, subscription_id, position, now))
            return _rowcount(c) == 1

    def record_attempt(self, subscription_id: str, position: int, *, now: float,
                       state: str, status: int | None, error: str | None,
                       next_attempt_at: float | None = None,
                       disable: str | None = None) -> None:
        """The outcome of one attempt: delivered, pending again at ``next_attempt_at``, or dead;
        ``disable`` also disables the subscription with that reason (410 Gone)."""
        with self._tx(commit=True) as c:
            c.execute(self._q(
                "UPDATE credit_deliveries SET state = ?, attempts = attempts + 1, "
                "leased_until = NULL, last_attempt_at = ?, last_status = ?, last_error = ?, "
                "next_attempt_at = COALESCE(?, next_attempt_at), delivered_at = ? "
                "WHERE subscription_id = ? AND position = ?"),
                (state, now, status, error, next_attempt_at,
                 now if state == DELIVERED else None, subscription_id, position))
            if disable is not None:
                c.execute(self._q("UPDATE credit_subscriptions SET state = ?, disabled_reason = ? "
                                  "WHERE id = ?"), (DISABLED, disable, subscription_id))

    def redeliver(self, subscription_id: str, *, now: float, position: int | None = None,
                  states: Sequence[str] = (DEAD,)) -> int:
        """Make dead (or delivered) deliveries pending again, due now, attempts reset. Returns
        how many."""
        where, params = self._in("state", list(states))
        sql = (f"UPDATE credit_deliveries SET state = 'pending', attempts = 0, "
               f"next_attempt_at = ?, leased_until = NULL, delivered_at = NULL "
               f"WHERE subscription_id = ? AND {where}")
        args: list[Any] = [now, subscription_id, *params]
        if position is not None:
            sql += " AND position = ?"
            args.append(position)
        with self._tx(commit=True) as c:
            c.execute(self._q(sql), args)
            return _rowcount(c)


def _rowcount(c: Any) -> int:
    # eventsourcing's SQLite cursor wraps sqlite3's, which has the count.
    return int(getattr(c, "sqlite_cursor", c).rowcount)


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=str(row["id"]), url=str(row["url"]),
        event_types=tuple(json.loads(row["event_types"])), signing=str(row["signing"]),
        state=str(row["state"]), disabled_reason=row["disabled_reason"],
        start_position=int(row["start_position"]), description=str(row["description"]),
        created_by=str(row["created_by"]), created_at=float(row["created_at"]))


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _delivery(row: Any) -> Delivery:
    return Delivery(
        subscription_id=str(row["subscription_id"]), position=int(row["position"]),
        event_id=str(row["event_id"]), event_type=str(row["event_type"]),
        subject=str(row["subject"]), state=str(row["state"]), attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        leased_until=_opt_float(row["leased_until"]),
        last_attempt_at=_opt_float(row["last_attempt_at"]),
        last_status=None if row["last_status"] is None else int(row["last_status"]),
        last_error=row["last_error"], delivered_at=_opt_float(row["delivered_at"]),
        created_at=float(row["created_at"]))


class SQLiteCreditStore(SQLiteTables, CreditOutboxSQL):
    """The credit feed and outbox on SQLite, in the ledger's file."""

    tracking_table = TRACKING_TABLE
    ddl = _DDL
    events_table = SQLITE_EVENTS_TABLE
    position_column = "rowid"


class PostgresCreditStore(PostgresTables, CreditOutboxSQL):
    """The credit feed and outbox on PostgreSQL, in the ledger's database."""

    tracking_table = TRACKING_TABLE
    ddl = _DDL
    placeholder = "%s"
    events_table = POSTGRES_EVENTS_TABLE
    position_column = "notification_id"


def store_class_for(env: Mapping[str, str]) -> type[CreditOutboxSQL]:
    return for_backend(env, SQLiteCreditStore, PostgresCreditStore, "credit outbox")


def _settings(url: str | None, env: Mapping[str, str] | None) -> dict[str, str]:
    settings = dict(env) if env is not None else registry_env(url)
    # The outbox needs few connections: one kept open, a few more while a worker is busy
    # (names prefixed with the outbox's name apply to its tables' datastore only).
    prefix = OUTBOX_NAME.upper()
    settings.setdefault(f"{prefix}_POSTGRES_POOL_SIZE", "1")
    settings.setdefault(f"{prefix}_POSTGRES_MAX_OVERFLOW", "4")
    return settings


def open_credit_store(url: str | None = None, *, env: Mapping[str, str] | None = None
                      ) -> CreditOutboxSQL:
    """The credit feed and outbox tables (created when missing), without a runner."""
    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.utils import Environment

    settings = _settings(url, env)
    factory: Any = InfrastructureFactory.construct(Environment(OUTBOX_NAME, settings))
    store = factory.tracking_recorder(store_class_for(settings))
    assert isinstance(store, CreditOutboxSQL)
    return store


# ------------------------------------------------------------------------------- projection
class CreditOutboxProjection(Projection[Any]):
    """Enqueues each credit event for the subscriptions that want it (exactly once each)."""

    name = OUTBOX_NAME
    topics = tuple(FEED_TOPICS)

    def __init__(self, view: Any) -> None:
        super().__init__(view)
        self.clock: Callable[[], float] = time.time
        #: Called after each event that wrote deliveries (wakes an in-process worker).
        self.on_enqueued: Callable[[], None] | None = None

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        store: CreditOutboxSQL = self.view
        event = store.events_at([tracking.notification_id]).get(tracking.notification_id)
        written = store.enqueue(event, tracking, self.clock())
        if written and self.on_enqueued is not None:
            self.on_enqueued()


class CreditOutboxRunner(ProjectionRunner[Registry, Any]):
    """eventsourcing's runner of the outbox projection, on the database of a URL or of a
    Registry's environment."""

    def __init__(self, url: str | None = None, *, env: Mapping[str, str] | None = None,
                 on_enqueued: Callable[[], None] | None = None) -> None:
        settings = _settings(url, env)
        super().__init__(application_class=Registry, projection_class=CreditOutboxProjection,
                         view_class=store_class_for(settings), env=settings)
        projection = self.projection
        assert isinstance(projection, CreditOutboxProjection)
        # Set once the subscription runs: an event enqueued before is found by the worker's
        # next poll instead of waking it.
        projection.on_enqueued = on_enqueued

    @property
    def store(self) -> CreditOutboxSQL:
        view = self.view
        assert isinstance(view, CreditOutboxSQL)
        return view


def catch_up(registry: Registry, store: CreditOutboxSQL,
             on_enqueued: Callable[[], None] | None = None) -> int:
    """Enqueue every credit event after the outbox's position (what the runner would do), and
    return the position reached."""
    projection = CreditOutboxProjection(store)
    projection.on_enqueued = on_enqueued
    position = store.position(registry.name)
    while True:
        notifications = registry.recorder.select_notifications(
            start=position, limit=500, topics=FEED_TOPICS, inclusive_of_start=False)
        if not notifications:
            return position
        for n in notifications:
            projection.process_event(None, Tracking(registry.name, n.id))
            position = n.id
