"""Helpers for the credit feed's tests: a credit history written through the Registry, and a real
HTTP receiver on loopback that can be down, slow, failing or well."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from domain.consortium import CreditViolation
from domain.registry import Registry
from domain.rules import Severity, ViolationContext
from domain.units import UnitKind
from tests.factories import NANJING, PROVINCE, doc, lead_qualification, unit

D = date


def violation(subject: str, facts: str, *, severity: Severity = Severity.GENERAL,
              context: ViolationContext = ViolationContext.PROJECT) -> CreditViolation:
    return CreditViolation(
        subject_uscc=subject, severity=severity, context=context, facts=facts,
        legal_basis="《江苏省创新联合体建设工作指引（试行）》七（三）",
        deciding_authority="江苏省科学技术厅", publicity_start=D(2025, 3, 1),
        publicity_end=D(2026, 3, 1), earliest_repair_date=D(2025, 9, 1),
        remedy="整改到位满半年后可申请信用修复")


@dataclass
class History:
    """What ``credit_history`` wrote for one consortium."""

    consortium_id: str
    lead: str
    member: str
    facts: list[str]


def credit_history(reg: Registry, n: int) -> History:
    """A forming consortium with a lead and a member, and six credit events over two subjects:
    CR-1 on the lead (repaired), CR-2 on the member (publicity ended), CR-3 on the lead (revoked)."""
    lead = unit()
    cid = str(reg.select_lead(name=f"信用测试联合体{n}", city="nanjing", lead=lead,
                              qualification=lead_qualification(), fields=["new_materials"],
                              actor=NANJING, effective_date=D(2025, 1, 1))["consortium_id"])
    member = unit(UnitKind.UNIVERSITY)
    reg.admit_member(cid, member, actor=NANJING, effective_date=D(2025, 1, 2))
    facts = [f"第{n}号联合体虚报项目经费{i}" for i in (1, 2, 3)]
    reg.record_credit_violation(cid, violation(lead.uscc, facts[0]), actor=PROVINCE,
                                effective_date=D(2025, 3, 1), document=doc("失信认定1"))
    reg.repair_credit(cid, "CR-1", measures="已退回资金", actor=PROVINCE,
                      effective_date=D(2025, 10, 1), document=doc("信用修复1"))
    reg.record_credit_violation(cid, violation(member.uscc, facts[1]), actor=PROVINCE,
                                effective_date=D(2025, 10, 2), document=doc("失信认定2"))
    reg.record_credit_violation(cid, violation(lead.uscc, facts[2]), actor=PROVINCE,
                                effective_date=D(2025, 10, 3), document=doc("失信认定3"))
    reg.revoke_credit(cid, "CR-3", reason="认定主体有误", actor=PROVINCE,
                      effective_date=D(2025, 10, 4), document=doc("撤销决定3"))
    reg.end_credit_publicity(cid, "CR-2", actor=PROVINCE, effective_date=D(2026, 3, 2))
    return History(cid, lead.uscc, member.uscc, facts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Arrival:
    """One request the receiver got, and what it answered."""

    index: int
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


#: (status, extra headers, seconds to wait before answering) for the n-th request (from 0).
Script = Callable[[int], tuple[int, dict[str, str], float]]


def always_ok(_: int) -> tuple[int, dict[str, str], float]:
    return 204, {}, 0.0


@dataclass
class Receiver:
    """A threaded ``http.server`` on 127.0.0.1. Until ``start()`` nothing listens on its port, so
    a sender's connection is refused (the receiver is down)."""

    script: Script = always_ok
    port: int = field(default_factory=free_port)
    arrivals: list[Arrival] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/credit"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    index = len(receiver.arrivals)
                    status, headers, delay = receiver.script(index)
                    receiver.arrivals.append(Arrival(index, {k.lower(): v for k, v in
                                                             self.headers.items()}, body, status))
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self._server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="test-receiver").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def snapshot(self) -> list[Arrival]:
        with self._lock:
            return list(self.arrivals)


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Poll until ``predicate()`` holds; fail after ``timeout`` seconds (a bound, not a timing
    assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting {timeout} s for {what or predicate}")
        time.sleep(0.02)
