"""Clients that drive the registry over HTTP from many threads and remember every answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.api import payloads as p

#: The callers the reliability tests use: name → (role, city).
CALLERS: dict[str, tuple[str, str | None]] = {
    "nanjing": ("city_bureau", "nanjing"),
    "province": ("province", None),
    "auditor": ("auditor", None),
}


@dataclass
class Answer:
    """One request and what came back (``status`` 0: no answer, the connection failed)."""

    path: str
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""
    elapsed: float = 0.0  # seconds from sending to the answer

    @property
    def acknowledged(self) -> bool:
        return 200 <= self.status < 300


class Recorder:
    """Thread-safe log of every answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.answers: list[Answer] = []

    def add(self, answer: Answer) -> Answer:
        with self._lock:
            self.answers.append(answer)
        return answer

    def acknowledged(self) -> list[dict[str, Any]]:
        with self._lock:
            return [a.body for a in self.answers if a.acknowledged and a.body is not None]

    def count(self, predicate: Callable[[Answer], bool]) -> int:
        with self._lock:
            return sum(1 for a in self.answers if predicate(a))


class Writer:
    """One client: its HTTP connection, its keys and the log it writes to."""

    def __init__(self, client: httpx.Client, keys: dict[str, str], log: Recorder) -> None:
        self.client = client
        self.keys = keys
        self.log = log

    def post(self, path: str, body: dict[str, Any], who: str, version: int | None = None,
             idempotency_key: str | None = None) -> Answer:
        headers = {"Authorization": f"Bearer {self.keys[who]}"}
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        started = time.monotonic()
        try:
            r = self.client.post(path, json=body, headers=headers)
        except httpx.HTTPError as e:
            return self.log.add(Answer(path, 0, error=repr(e),
                                       elapsed=time.monotonic() - started))
        try:
            parsed = r.json()
        except ValueError:
            parsed = {"raw": r.text[:500]}
        return self.log.add(Answer(path, r.status_code, parsed if isinstance(parsed, dict)
                                   else {"value": parsed}, dict(r.headers),
                                   elapsed=time.monotonic() - started))


class Interrupted(Exception):
    """The service stopped answering (killed)."""


def _expect(answer: Answer, status: int) -> dict[str, Any]:
    if answer.status == 0:
        raise Interrupted(answer.error)
    assert answer.status == status, (answer.path, answer.status, answer.body)
    assert answer.body is not None
    return answer.body


def journey_to_rejection(w: Writer) -> str:
    """A consortium from formation to submission, then a serious dishonesty record that rejects
    it in the same command (two events written together). Raises ``Interrupted`` when the
    service stops answering."""
    body = p.start()
    out = _expect(w.post("/consortia", body, "nanjing"), 201)
    cid, version, lead = out["consortium_id"], out["version"], body["lead"]["uscc"]
    members = []
    for kind in ("university", "research_institute"):
        u = p.unit(kind)
        version = _expect(w.post(f"/consortia/{cid}/members", p.admit(u), "nanjing", version),
                          200)["version"]
        members.append(u["uscc"])
    for path, payload in (("agreement", p.agreement([lead, *members])),
                          ("application", p.submit())):
        version = _expect(w.post(f"/consortia/{cid}/{path}", payload, "nanjing", version),
                          200)["version"]
    out = _expect(w.post(f"/consortia/{cid}/credit-violations",
                         p.violation(lead, context="application"), "province", version), 200)
    assert out["status"] == "rejected" and len(out["positions"]) == 2, out
    return str(cid)
