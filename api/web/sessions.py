"""Browser sessions: a login with an API key opens a session held in the table ``web_sessions``
of the registry's database; the browser keeps only a random token in an HttpOnly, SameSite
cookie (Secure over TLS). Only the token's SHA-256 is stored. Every request looks the API key up
again, so revoking the key ends its sessions at once.

CSRF: every form carries a token. A signed-in user's token is bound to the session; the login
form (no session yet) uses a double-submit token kept in its own cookie. A POST whose ``Origin``
names another site is refused too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response

from api.auth import ApiKey, KeyStore
from api.sqlstore import SqlStore, utcnow

SESSION_COOKIE = "consortia_session"
CSRF_COOKIE = "consortia_csrf"
LANG_COOKIE = "consortia_lang"
COOKIE_PATH = "/"
#: A session lasts this long from its login, then the user signs in again.
SESSION_LIFETIME = timedelta(hours=12)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in browser: its key's record and the session's CSRF token."""

    token_hash: str
    principal: ApiKey
    csrf: str
    expires_at: datetime


class SessionStore:
    """The ``web_sessions`` table."""

    def __init__(self, sql: SqlStore, keys: KeyStore) -> None:
        self.sql = sql
        self.keys = keys

    def create_table(self) -> None:
        ts = self.sql.timestamp_type
        self.sql.execute(
            "CREATE TABLE IF NOT EXISTS web_sessions (token_hash TEXT PRIMARY KEY, "
            f"key_id TEXT NOT NULL, csrf TEXT NOT NULL, created_at {ts} NOT NULL, "
            f"expires_at {ts} NOT NULL)")

    def open(self, principal: ApiKey) -> tuple[str, WebSession]:
        """A new session for this key; returns the cookie's token (never stored) and the session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        expires = now + SESSION_LIFETIME
        self.sql.execute(
            "INSERT INTO web_sessions (token_hash, key_id, csrf, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (_digest(token), principal.key_id, csrf, self.sql.to_db_time(now),
             self.sql.to_db_time(expires)))
        return token, WebSession(_digest(token), principal, csrf, expires)

    def find(self, token: str | None) -> WebSession | None:
        """The live session of this cookie token: not expired, its key not revoked."""
        if not token or len(token) > 100:
            return None
        row = self.sql.fetchone(
            "SELECT key_id, csrf, expires_at FROM web_sessions WHERE token_hash = ?",
            (_digest(token),))
        if row is None:
            return None
        expires = self.sql.from_db_time(row[2])
        if expires is None or expires <= utcnow():
            self.close(token)
            return None
        principal = self.keys.get(str(row[0]))
        if principal is None or principal.revoked_at is not None:
            return None
        return WebSession(_digest(token), principal, str(row[1]), expires)

    def close(self, token: str | None) -> None:
        if token:
            self.sql.execute("DELETE FROM web_sessions WHERE token_hash = ?", (_digest(token),))
        self.sql.execute("DELETE FROM web_sessions WHERE expires_at <= ?",
                         (self.sql.to_db_time(utcnow()),))


def is_secure(request: Request) -> bool:
    """Served over TLS (uvicorn's ``--proxy-headers`` sets the scheme behind a proxy)."""
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=int(SESSION_LIFETIME.total_seconds()),
                        path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=is_secure(request))


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax",
                           secure=is_secure(request))


def anonymous_csrf(request: Request, response: Response | None = None) -> str:
    """The double-submit token of a browser without a session (set on ``response`` if new)."""
    token = request.cookies.get(CSRF_COOKIE)
    if token and 20 <= len(token) <= 100:
        return token
    token = secrets.token_urlsafe(32)
    request.state.new_csrf_cookie = token
    if response is not None:
        set_csrf_cookie(response, request, token)
    return token


def set_csrf_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(CSRF_COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=is_secure(request))


def same_origin(request: Request) -> bool:
    """A browser's POST names its origin; one from another site is refused (missing: allowed,
    the token decides)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1].rstrip("/") == host


def csrf_ok(request: Request, submitted: str | None, session: WebSession | None) -> bool:
    """The form's token matches the session's (signed in) or the browser's cookie (login)."""
    if not submitted or not same_origin(request):
        return False
    expected = session.csrf if session is not None else request.cookies.get(CSRF_COOKIE)
    return bool(expected) and hmac.compare_digest(submitted.encode(), str(expected).encode())
