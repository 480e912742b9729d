"""API keys: who is calling, in which role, for which city.

A key is ``cr_<key id>_<secret>`` (the secret is 32 random bytes, URL-safe base64) and is shown once,
when created. Only its SHA-256 is stored, in the table ``api_keys`` of the registry's database,
next to the role, the city (city bureaus), the name recorded as the events' user id, and the
organisation. Every request looks its key up again, so a revoked key is refused at once.

Which role may record which step is the domain's business (``domain.rules.PERMITTED_ROLES``): the
API only refuses a write without a credential (401) and a write by a read-only role (403).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from api.sqlstore import SqlStore, utcnow
from domain.cities import CITIES, check_city
from domain.records import Actor, Role

KEY_PREFIX = "cr_"
_KEY_RE = re.compile(r"^cr_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
#: Roles that read and never record.
READ_ONLY_ROLES = frozenset({Role.AUDITOR, Role.CREDIT_CONSUMER})


def hash_key(plain: str) -> str:
    """The stored form of a key: SHA-256 of its full text, lowercase hex."""
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh (key id, plain key)."""
    key_id = secrets.token_hex(8)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(plain: str) -> str | None:
    m = _KEY_RE.match(plain)
    return m.group(1) if m else None


def default_organisation(role: Role, city: str | None) -> str:
    if role is Role.CITY_BUREAU and city in CITIES:
        return f"{CITIES[city][0]}科学技术局"
    return {Role.PROVINCE: "江苏省科学技术厅"}.get(role, role.label_zh)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record, without its hash."""

    key_id: str
    role: Role
    city: str | None
    name: str
    organisation: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def read_only(self) -> bool:
        return self.role in READ_ONLY_ROLES

    def actor(self) -> Actor:
        """The principal as the domain records it on every event."""
        return Actor(user_id=self.name or f"key:{self.key_id}", role=self.role,
                     organisation=self.organisation, city=self.city)


class KeyStore:
    """The ``api_keys`` table."""

    def __init__(self, sql: SqlStore) -> None:
        self.sql = sql

    def create_table(self) -> None:
        ts = self.sql.timestamp_type
        self.sql.execute(
            "CREATE TABLE IF NOT EXISTS api_keys ("
            "key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, role TEXT NOT NULL, city TEXT, "
            "name TEXT NOT NULL, organisation TEXT NOT NULL, "
            f"created_at {ts} NOT NULL, revoked_at {ts})")

    def create(self, role: Role | str, *, city: str | None = None, name: str | None = None,
               organisation: str | None = None) -> tuple[ApiKey, str]:
        """Store a new key; returns its record and the plain key (never stored, shown once)."""
        role = Role(role)
        if role is Role.CITY_BUREAU:
            if not city:
                raise ValueError("a city_bureau key needs --city")
            check_city(city)
        elif city:
            raise ValueError("only a city_bureau key is bound to a city")
        key_id, plain = new_key()
        record = ApiKey(key_id=key_id, role=role, city=city or None,
                        name=(name or "").strip() or f"key:{key_id}",
                        organisation=(organisation or "").strip()
                        or default_organisation(role, city),
                        created_at=utcnow())
        record.actor()  # refuse now what the domain would refuse on every request
        self.sql.execute(
            "INSERT INTO api_keys (key_id, key_hash, role, city, name, organisation, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key_id, hash_key(plain), role.value, record.city, record.name,
             record.organisation, self.sql.to_db_time(record.created_at)))
        return record, plain

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when no such unrevoked key exists."""
        return self.sql.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
            (self.sql.to_db_time(utcnow()), key_id)) == 1

    def list(self) -> list[ApiKey]:
        rows = self.sql.fetchall(
            "SELECT key_id, role, city, name, organisation, created_at, revoked_at "
            "FROM api_keys ORDER BY created_at, key_id")
        return [self._record(r) for r in rows]

    def get(self, key_id: str) -> ApiKey | None:
        row = self.sql.fetchone(
            "SELECT key_id, role, city, name, organisation, created_at, revoked_at "
            "FROM api_keys WHERE key_id = ?", (key_id,))
        return None if row is None else self._record(row)

    def authenticate(self, plain: str) -> ApiKey | None:
        """The key's record when the key is known, matches its hash and is not revoked."""
        key_id = key_id_of(plain)
        if key_id is None:
            return None
        row = self.sql.fetchone(
            "SELECT key_id, role, city, name, organisation, created_at, revoked_at, key_hash "
            "FROM api_keys WHERE key_id = ?", (key_id,))
        if row is None or not hmac.compare_digest(str(row[7]), hash_key(plain)):
            return None
        record = self._record(row[:7])
        return None if record.revoked_at is not None else record

    def _record(self, row: tuple[object, ...]) -> ApiKey:
        key_id, role, city, name, organisation, created_at, revoked_at = row
        created = self.sql.from_db_time(created_at)
        assert created is not None
        return ApiKey(key_id=str(key_id), role=Role(str(role)),
                      city=None if city is None else str(city), name=str(name),
                      organisation=str(organisation), created_at=created,
                      revoked_at=self.sql.from_db_time(revoked_at))
