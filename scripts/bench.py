"""Benchmarks that compare against a baseline measured in the same run and print ratios.

``chain``: the same command mix through the registry on the hash-chained recorders and on
eventsourcing's stock recorders, on SQLite and on PostgreSQL. Runs alternate (baseline, chained,
baseline, chained, …) so that drift of the machine touches both alike; medians are compared.

``projection``: a ledger of N events (built quickly: domain commands on in-memory aggregates, 500
consortia in flight, all saved by one ``registry.save(*aggregates)`` per step), then
``rebuild(url)`` against a baseline that only reads and decodes the same notifications
(``select_notifications`` + ``mapper.to_domain_event``), alternating, medians; SQLite and PostgreSQL.

``reads``: the real service (``consortia serve``: uvicorn in a subprocess) on a SQLite ledger of
1,000 consortia with its views rebuilt, an auditor key, 100 concurrent keep-alive clients (asyncio)
on GET one consortium (random ids) and GET the list (50 a page, a filter); baseline: GET /healthz
under the same concurrency. p50/p99, requests/s, the service's CPU per request, and the latency of
one client alone.

``writes``: the formation sequence of a consortium (9 commands, each with If-Match) through HTTP
(``consortia serve`` on PostgreSQL, a Nanjing city-bureau key and a province key) against the same
commands as direct Registry calls, one writer and several concurrent writers; HTTP both as served by
default (embedded projection) and without the projection. Rotating order, medians.

With no sub-command every benchmark runs in sequence; ``--quick`` takes smaller sizes. Nothing here
asserts a timing: targets are stated beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from audit.store import open_registry
from domain.cities import CITIES
from domain.consortium import Change, Consortium
from domain.fields import FIELDS, TechnologyKind
from domain.records import Actor, Document, Role
from domain.registry import Registry
from domain.rules import ChangeKind, Grade, Mechanism, ReportSection
from domain.units import (
    LeadCategory,
    LeadQualification,
    Unit,
    UnitKind,
    make_uscc,
)

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2026, 11, 25)
CITY = Actor("bench.city", Role.CITY_BUREAU, "南京市科学技术局", city="nanjing")
PROVINCE = Actor("bench.prov", Role.PROVINCE, "江苏省科学技术厅")
DOC = Document("文件", "0" * 64)
SECTIONS = {s.value: "内容" for s in ReportSection}
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _uscc(n: int, division: str = "320100") -> str:
    body = ""
    for _ in range(8):
        n, r = divmod(n, 31)
        body = ALPHABET[r] + body
    return make_uscc(division, body)


def command_mix(reg: Registry, consortia: int, offset: int) -> int:
    """Formation to listing, two reports and an evaluation per consortium: 12 writes and 2 reads."""
    commands = 0
    for i in range(consortia):
        base = (offset + i) * 10
        lead = Unit(_uscc(base), f"牵头企业{base}", UnitKind.ENTERPRISE)
        cid = reg.select_lead(
            name=f"基准联合体{base}", city="nanjing", lead=lead,
            qualification=LeadQualification(LeadCategory.INDUSTRY_LEADER,
                                            annual_revenue_yuan=2_000_000_000,
                                            rd_intensity=Decimal("0.05")),
            fields=["new_materials"], actor=CITY, effective_date=date(2024, 1, 1))["consortium_id"]
        members = [Unit(_uscc(base + k), f"成员{base + k}",
                        UnitKind.UNIVERSITY if k == 1 else UnitKind.ENTERPRISE) for k in (1, 2, 3)]
        for m in members:
            reg.admit_member(cid, m, actor=CITY, effective_date=date(2024, 1, 2))
        reg.sign_agreement(cid, signatories=[lead.uscc, *[m.uscc for m in members]],
                           mechanisms=list(Mechanism), construction_plan="方案", actor=CITY,
                           effective_date=date(2024, 2, 1), document=DOC)
        reg.submit_application(cid, actor=CITY, effective_date=date(2024, 3, 1))
        reg.recommend(cid, necessity="必要", feasibility="可行", actor=CITY,
                      effective_date=date(2024, 4, 1))
        reg.record_expert_review(cid, opinion="同意", recommended=True, actor=PROVINCE,
                                 effective_date=date(2024, 5, 1))
        reg.approve(cid, actor=PROVINCE, effective_date=date(2024, 6, 1), document=DOC)
        reg.file_annual_report(cid, year=2024, sections=SECTIONS, actor=PROVINCE,
                               effective_date=date(2025, 5, 1))
        reg.record_evaluation(cid, agency="评估中心", period="2024", scores={"a": Decimal(80)},
                              grade=Grade.GOOD, actor=PROVINCE, effective_date=date(2025, 9, 1))
        reg.file_annual_report(cid, year=2025, sections=SECTIONS, actor=PROVINCE,
                               effective_date=date(2026, 5, 1))
        for _ in range(2):
            reg.get(cid)  # reads belong to the mix too
        commands += 14
    return commands


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as d:
        yield f"sqlite:///{d}/bench.db"


@contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg

    admin = os.environ.get("CONSORTIA_TEST_POSTGRES_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"consortia_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    p = urlsplit(admin)
    try:
        yield urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(os.environ.get("CONSORTIA_TEST_POSTGRES_URL",
                                            "postgresql://postgres@127.0.0.1:5432/postgres"),
                             connect_timeout=3):
            return True
    except Exception:
        return False


def run_once(backend: str, chained: bool, consortia: int) -> None:
    """One run of one variant, for timing the whole process from outside."""
    make_db = sqlite_database if backend == "sqlite" else postgres_database
    with make_db() as url:
        reg = open_registry(url, clock=lambda: TODAY, chained=chained)
        command_mix(reg, consortia, offset=0)
        reg.close()


def bench_chain(consortia: int, rounds: int) -> None:
    """Each round opens a plain and a chained Registry on two fresh databases and runs the mix
    on them interleaved, one consortium at a time, in alternating order, adding up each
    variant's time; the round's ratio is chained ÷ plain and the figure is the median over the
    rounds. Interleaved so finely, the machine's slow spells (a slow fsync, another process)
    fall on both variants alike instead of on whichever run they happen to hit."""
    print(f"chain overhead: {consortia} consortia × (12 writes + 2 reads) per variant and round, "
          f"{rounds} rounds; in each round the plain and the chained Registry (fresh databases) "
          "take turns, one consortium at a time; ratio = median over the rounds of chained ÷ "
          "plain")
    print(f"{'backend':<12}{'plain (s)':>12}{'chained (s)':>14}{'ratio':>9}{'rounds':>16}"
          f"{'cmd/s chained':>16}")
    for backend, make_db in _backends():
        times: dict[bool, list[float]] = {False: [], True: []}
        commands = 0
        for _ in range(rounds):
            with make_db() as plain_url, make_db() as chained_url:
                regs = {False: open_registry(plain_url, clock=lambda: TODAY, chained=False),
                        True: open_registry(chained_url, clock=lambda: TODAY, chained=True)}
                spent = {False: 0.0, True: 0.0}
                for reg in regs.values():
                    command_mix(reg, 2, offset=10_000)  # warm-up: tables, caches, prepared SQL
                commands = 0
                for i in range(consortia):
                    for chained in (False, True) if i % 2 == 0 else (True, False):
                        started = time.perf_counter()
                        n = command_mix(regs[chained], 1, offset=i)
                        spent[chained] += time.perf_counter() - started
                    commands += n
                for chained, reg in regs.items():
                    times[chained].append(spent[chained])
                    reg.close()
        ratios = sorted(c / p for p, c in zip(times[False], times[True], strict=True))
        plain, chained_t = statistics.median(times[False]), statistics.median(times[True])
        print(f"{backend:<12}{plain:>12.3f}{chained_t:>14.3f}{statistics.median(ratios):>8.3f}×"
              f"{f'{ratios[0]:.2f}–{ratios[-1]:.2f}×':>16}{commands / chained_t:>16,.0f}")
    print("rounds = the lowest and highest ratio of one round; target ≤ 1.10×")


# ------------------------------------------------------------------------------ shared helpers
def _median_rate(count: int, seconds: Sequence[float]) -> float:
    return count / statistics.median(seconds)


def _backends() -> list[tuple[str, Callable[[], Any]]]:
    backends: list[tuple[str, Callable[[], Any]]] = [("sqlite", sqlite_database)]
    if postgres_reachable():
        backends.append(("postgresql", postgres_database))
    else:
        print("PostgreSQL unreachable: measuring SQLite only", file=sys.stderr)
    return backends


def _percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


# ---------------------------------------------------------------------- a realistic ledger, fast
CITY_CODES = list(CITIES)
FIELD_CODES = list(FIELDS)
CITY_ACTORS = {c: Actor(f"bench.{c}", Role.CITY_BUREAU, f"{CITIES[c][0]}科学技术局", city=c)
               for c in CITY_CODES}
QUALIFICATION = LeadQualification(LeadCategory.INDUSTRY_LEADER, annual_revenue_yuan=2_000_000_000,
                                  rd_intensity=Decimal("0.05"))
MEMBER_KINDS = (UnitKind.UNIVERSITY, UnitKind.RESEARCH_INSTITUTE, UnitKind.ENTERPRISE,
                UnitKind.ENTERPRISE)


def lifecycle(i: int) -> Iterator[Consortium]:
    """Consortium number ``i`` in memory, yielded after each command with its event pending.
    Of every 20: 2 still forming, 1 with a member dropped, 1 submitted, 1 recommended, 1
    rejected, 14 listed with two annual reports and an evaluation (3 of them also with a
    supplementary agreement) — 10.2 events on average."""
    city = CITY_CODES[i % len(CITY_CODES)]
    actor = CITY_ACTORS[city]
    division = CITIES[city][2] + "00"
    base = i * 10
    lead = Unit(_uscc(base, division), f"牵头企业{base}", UnitKind.ENTERPRISE)
    c = Consortium.select_lead(
        name=f"{CITIES[city][0]}{FIELDS[FIELD_CODES[i % len(FIELD_CODES)]].zh}创新联合体{i}",
        city=city, lead=lead, qualification=QUALIFICATION,
        fields=[FIELD_CODES[i % len(FIELD_CODES)], FIELD_CODES[(i + 5) % len(FIELD_CODES)]],
        technologies=[list(TechnologyKind)[i % len(TechnologyKind)]], actor=actor,
        effective_date=date(2024, 1, 1), today=TODAY, document=DOC)
    yield c
    kind = i % 20
    members = [Unit(_uscc(base + k, division), f"成员{base + k}", MEMBER_KINDS[k - 1])
               for k in range(1, 3 if kind < 2 else 4)]
    for m in members:
        c.admit_member(m, actor=actor, effective_date=date(2024, 1, 2), today=TODAY)
        yield c
    if kind < 2:
        return
    if kind == 2:
        c.drop_member(members[-1].uscc, reason="协商一致退出", actor=actor,
                      effective_date=date(2024, 1, 3), today=TODAY)
        yield c
        return
    c.sign_agreement(signatories=[lead.uscc, *[m.uscc for m in members]],
                     mechanisms=list(Mechanism), construction_plan="方案", actor=actor,
                     effective_date=date(2024, 2, 1), today=TODAY, document=DOC)
    yield c
    c.submit_application(actor=actor, effective_date=date(2024, 3, 1), today=TODAY)
    yield c
    if kind == 3:
        return
    c.recommend(necessity="必要", feasibility="可行", actor=actor, effective_date=date(2024, 4, 1),
                today=TODAY)
    yield c
    if kind == 4:
        return
    c.record_expert_review(opinion="同意" if kind != 5 else "不同意", score=Decimal("85.5"),
                           recommended=kind != 5, actor=PROVINCE,
                           effective_date=date(2024, 5, 1), today=TODAY)
    yield c
    if kind == 5:
        c.reject(reason="攻关任务不够具体", actor=PROVINCE, effective_date=date(2024, 6, 1),
                 today=TODAY)
        yield c
        return
    c.approve(actor=PROVINCE, effective_date=date(2024, 6, 1), today=TODAY, document=DOC)
    yield c
    c.file_annual_report(year=2024, sections=SECTIONS, actor=PROVINCE,
                         effective_date=date(2025, 5, 1), today=TODAY)
    yield c
    explanations: dict[str, str] = {}
    if kind in (8, 12, 16):
        joining = Unit(_uscc(base + 9, division), f"转化机构{base + 9}", UnitKind.OTHER)
        agreement_id = c.sign_supplementary_agreement(
            changes=[Change(ChangeKind.MEMBER_JOINS, "引入成果转移转化机构", unit=joining)],
            signatories=[lead.uscc, joining.uscc], actor=PROVINCE,
            effective_date=date(2025, 7, 1), today=TODAY, document=DOC)
        explanations[agreement_id] = "引入转化机构"
        yield c
    c.record_evaluation(agency="评估中心", period="2024", scores={"协同攻关": Decimal(80)},
                        grade=list(Grade)[i % 3], actor=PROVINCE,
                        effective_date=date(2025, 9, 1), today=TODAY)
    yield c
    c.file_annual_report(year=2025, sections=SECTIONS, explanations=explanations,
                         actor=PROVINCE, effective_date=date(2026, 5, 1), today=TODAY)
    yield c


#: Average events per consortium of ``lifecycle``.
EVENTS_PER_CONSORTIUM = 10.2


def build_ledger(reg: Registry, *, events: int | None = None, consortia: int | None = None,
                 in_flight: int = 500) -> tuple[int, list[str]]:
    """Record about ``events`` events (or exactly ``consortia`` consortia) without going through
    the Registry's commands: ``in_flight`` consortia advance one command each, then all of them
    are saved by one ``registry.save(*aggregates)`` — so the ledger interleaves consortia as a
    real one does, and a rebuild batch touches many of them. Returns the events and the ids."""
    written, started = 0, 0
    ids: list[str] = []
    active: list[Iterator[Consortium]] = []

    def more() -> bool:
        if consortia is not None:
            return started < consortia
        assert events is not None
        return written + EVENTS_PER_CONSORTIUM * len(active) < events

    while True:
        while len(active) < in_flight and more():
            active.append(lifecycle(started))
            started += 1
        stepped: list[Consortium] = []
        for steps in list(active):
            aggregate = next(steps, None)
            if aggregate is None:
                active.remove(steps)
            else:
                if aggregate.version == 1:
                    ids.append(str(aggregate.id))
                stepped.append(aggregate)
        if not stepped and not active:
            return written, ids
        written += len(reg.save(*stepped))


# ------------------------------------------------------------------------------------ projection
def read_and_decode(url: str, batch: int) -> int:
    """The baseline of a rebuild: every notification read and decoded, nothing folded or written."""
    registry = open_registry(url)
    try:
        position, count = 0, 0
        while True:
            notifications = registry.recorder.select_notifications(
                start=position, limit=batch, inclusive_of_start=False)
            if not notifications:
                return count
            for n in notifications:
                registry.mapper.to_domain_event(n)
            count += len(notifications)
            position = notifications[-1].id
    finally:
        registry.close()


def bench_projection(events: int, rounds: int) -> None:
    from projections.projection import REBUILD_BATCH, open_view, rebuild
    from projections.rebuild_parallel import default_workers

    workers = default_workers()
    print(f"\nprojection rebuild: a ledger of ~{events:,} events ({EVENTS_PER_CONSORTIUM} per "
          f"consortium, 500 consortia in flight), {rounds} rounds in rotating order; baseline = "
          f"read + decode the same notifications; rebuild = `consortia project --rebuild` "
          f"({workers} processes), and with --workers 1")
    print(f"{'backend':<12}{'events':>8}{'build (s)':>11}{'decode ev/s':>13}{'rebuild ev/s':>14}"
          f"{'ratio':>9}{'1 process ev/s':>16}{'ratio':>9}")
    figures: dict[str, float] = {}
    variants = ("decode", "rebuild", "one process")
    for backend, make_db in _backends():
        with make_db() as url:
            reg = open_registry(url, clock=lambda: TODAY)
            started = time.perf_counter()
            written, _ = build_ledger(reg, events=events)
            built = time.perf_counter() - started
            reg.close()
            open_view(url)  # the view's tables exist before anything is timed
            times: dict[str, list[float]] = {v: [] for v in variants}
            decoded = 0
            for r in range(rounds):
                for variant in variants[r % 3:] + variants[:r % 3]:
                    started = time.perf_counter()
                    if variant == "decode":
                        decoded = read_and_decode(url, REBUILD_BATCH)
                    else:
                        rebuild(url, workers=workers if variant == "rebuild" else 1)
                    times[variant].append(time.perf_counter() - started)
            assert decoded == written, (decoded, written)
            base, rebuilt, single = (_median_rate(written, times[v]) for v in variants)
            figures[backend] = rebuilt
            print(f"{backend:<12}{written:>8,}{built:>11.1f}{base:>13,.0f}{rebuilt:>14,.0f}"
                  f"{base / rebuilt:>8.2f}×{single:>16,.0f}{base / single:>8.2f}×")
    if "sqlite" in figures:
        verdict = "met" if figures["sqlite"] >= 20_000 else "NOT met"
        print(f"target: rebuild ≥ 20,000 events/s on SQLite — {figures['sqlite']:,.0f} "
              f"events/s: {verdict} (ratio = rebuild time / decode time)")


# ------------------------------------------------------------------------------ the real service
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(url: str, *args: str) -> str:
    """Run ``consortia --database URL …`` and return its standard output."""
    out = subprocess.run([sys.executable, "-m", "api.cli", "--database", url, *args], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def create_key(url: str, role: str, city: str | None = None) -> str:
    return _cli(url, "keys", "create", "--role", role, *(["--city", city] if city else []),
                "--name", f"bench.{role}")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class Server:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def cpu(self) -> float | None:
        return cpu_seconds(self.process.pid)


@contextmanager
def serve(url: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """``consortia serve`` on a free port of 127.0.0.1 (access log off: --log-level warning),
    until it answers /readyz. ``env``: extra environment of the service."""
    import httpx

    port = _free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "--database", url, "serve", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        server = Server("127.0.0.1", port, process)
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"the service exited: {log.read().decode()[-2000:]}")
                try:
                    if httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the service did not become ready within 60 s")
                time.sleep(0.1)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the load generator's client.

    Not httpx: on this machine a shared ``httpx.AsyncClient`` spent ~5.6 ms of CPU per request at
    100 concurrent requests (its connection pool; encode/httpx#3215) and one client per connection
    ~1.4 ms, on the same 2 cores as the service — it measured the client more than the service.
    This one spends ~0.1 ms (``scripts/bench reads --client httpx`` for the comparison)."""

    #: Reconnect before a request when the connection idled this long (uvicorn closes at 5 s).
    MAX_IDLE = 2.0

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.host, self.port = host, port
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._used = 0.0

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        if self._streams is None or time.monotonic() - self._used > self.MAX_IDLE:
            await self.close()
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.headers}"
                + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()))
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write((head + "\r\n").encode("latin-1") + (body or b""))
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        answer = {k.strip().lower(): v.strip() for k, _, v in
                  (line.partition(":") for line in lines if line)}
        if answer.get("transfer-encoding", "").lower() == "chunked":
            content = b""
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                content += (await reader.readexactly(size + 2))[:-2]
            await reader.readuntil(b"\r\n")
        else:
            content = await reader.readexactly(int(answer.get("content-length", "0")))
        self._used = time.monotonic()
        if answer.get("connection", "").lower() == "close":
            await self.close()
        return status, answer, content

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


class HttpxConnection:
    """The same interface on one ``httpx.AsyncClient`` per connection (for comparison)."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        import httpx

        self.client = httpx.AsyncClient(base_url=f"http://{host}:{port}", headers=headers,
                                        timeout=120)

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        r = await self.client.request(method, path, content=body, headers=headers)
        return r.status_code, dict(r.headers), r.content

    async def close(self) -> None:
        await self.client.aclose()


# ----------------------------------------------------------------------------------------- reads
@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    errors: int = 0


async def _closed_loop(connections: Sequence[Connection | HttpxConnection],
                       paths: Callable[[], str], requests: int, phase: Phase,
                       server: Server | None = None) -> None:
    """One client per connection, each sending its next GET as soon as the previous one was
    answered, until ``requests`` have been sent."""
    remaining = requests

    async def client_loop(connection: Connection | HttpxConnection) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            path = paths()
            started = time.perf_counter()
            status, _, _ = await connection.request("GET", path)
            phase.latencies.append(time.perf_counter() - started)
            if status != 200:
                phase.errors += 1

    cpu_before = server.cpu() if server else None
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(c) for c in connections))
    phase.rates.append(requests / (time.perf_counter() - started))
    cpu_after = server.cpu() if server else None
    if cpu_before is not None and cpu_after is not None:
        phase.server_cpu.append((cpu_after - cpu_before) / requests)


async def _paced(connections: Sequence[Connection | HttpxConnection],
                 mix: Sequence[tuple[str, Callable[[], str]]], rate: float, duration: float,
                 phases: dict[str, Phase]) -> None:
    """Open loop: every client sends on its own schedule, together ``rate`` requests a second,
    for ``duration`` seconds, whatever the answers' speed; a request's latency counts from the
    moment it was due, so a server that falls behind is not flattered by clients that wait
    (no coordinated omission). Each request is drawn from ``mix`` in turn."""
    interval = len(connections) / rate
    rng = random.Random(11)

    async def client(connection: Connection | HttpxConnection, offset: float,
                     start: float) -> None:
        due, turn = start + offset, int(offset * 1000)
        while due < start + duration:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            name, path = mix[turn % len(mix)]
            turn += 1
            status, _, _ = await connection.request("GET", path())
            phases[name].latencies.append(time.perf_counter() - due)
            if status != 200:
                phases[name].errors += 1
            due += interval

    start = time.perf_counter() + 0.05
    await asyncio.gather(*(client(c, rng.uniform(0, interval), start) for c in connections))
    for phase in phases.values():
        phase.rates.append(len(phase.latencies) / duration)


async def _writing(connections: Sequence[Connection | HttpxConnection], keys: dict[str, str],
                   rate: float, duration: float, phase: Phase) -> None:
    """Writers beside the open-loop readers: each takes consortia through their formation (the
    nine commands, each with its If-Match), together ``rate`` commands a second; a command's
    latency counts from the moment it was due."""
    interval = len(connections) / rate

    async def writer(w: int, connection: Connection | HttpxConnection, start: float) -> None:
        due, n = start + w * interval / len(connections), 0
        while due < start + duration:
            body, steps = _formation_http(20_000 + w * 1_000 + n)
            n += 1
            cid, version = "", 0
            for path, payload, who in [("", body, "city"), *steps]:
                if due >= start + duration:
                    return
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                headers = {"Authorization": f"Bearer {keys[who]}"}
                if cid:
                    headers["If-Match"] = f'"{version}"'
                status, _, raw = await connection.request(
                    "POST", "/api/v1/consortia" + (f"/{cid}/{path}" if cid else ""),
                    json.dumps(payload).encode(), headers)
                phase.latencies.append(time.perf_counter() - due)
                due += interval
                if status not in (200, 201):
                    phase.errors += 1
                    break
                answer = json.loads(raw)
                cid, version = answer["consortium_id"], answer["version"]

    start = time.perf_counter() + 0.05
    await asyncio.gather(*(writer(w, c, start) for w, c in enumerate(connections)))
    phase.rates.append(len(phase.latencies) / duration)


def bench_reads(consortia: int, requests: int, rounds: int, concurrency: int,
                client: str = "stream", rate: float = 300.0, duration: float = 20.0,
                writers: int = 8, write_rate: float = 40.0) -> None:
    from projections.projection import rebuild

    print(f"\nreads: `consortia serve` (uvicorn, 1 process, access log off) on SQLite, "
          f"{consortia:,} consortia, {concurrency} concurrent keep-alive clients ({client} client), "
          f"{requests:,} requests per endpoint per round, {rounds} rounds in rotating order; "
          "baseline = GET /healthz")
    with sqlite_database() as url:
        reg = open_registry(url, clock=lambda: TODAY)
        events, ids = build_ledger(reg, consortia=consortia)
        reg.close()
        rebuild(url)
        key = create_key(url, "auditor")
        writer_keys = {"city": create_key(url, "city_bureau", "nanjing"),
                       "province": create_key(url, "province")}
        rng = random.Random(20261125)
        filters = ([f"city={c}" for c in CITY_CODES] + ["status=listed"]
                   + [f"field={f}" for f in FIELD_CODES])
        endpoints: dict[str, Callable[[], str]] = {
            "GET /healthz": lambda: "/healthz",
            "GET one": lambda: f"/api/v1/consortia/{rng.choice(ids)}",
            "GET list": lambda: f"/api/v1/consortia?limit=50&{rng.choice(filters)}",
        }
        loaded = {name: Phase() for name in endpoints}
        alone = {name: Phase() for name in endpoints}
        kind = Connection if client == "stream" else HttpxConnection
        with serve(url) as server:

            async def run() -> float:
                auth = {"Authorization": f"Bearer {key}"}
                connections = [kind(server.host, server.port, auth) for _ in range(concurrency)]
                writing = [kind(server.host, server.port) for _ in range(writers)]
                try:
                    for paths in endpoints.values():  # warm-up: connections, caches, imports
                        await _closed_loop(connections, paths, 2 * concurrency, Phase())
                    for name, paths in endpoints.items():  # service time: one client alone
                        await _closed_loop(connections[:1], paths, max(100, requests // 5),
                                           alone[name])
                    client_cpu = time.process_time()
                    names = list(endpoints)
                    for r in range(rounds):
                        for name in names[r % len(names):] + names[:r % len(names)]:
                            await _closed_loop(connections, endpoints[name], requests,
                                               loaded[name], server)
                    client_cpu = time.process_time() - client_cpu
                    mix = [(n, endpoints[n]) for n in ("GET one",) * 6 + ("GET list",) * 3
                           + ("GET /healthz",)]
                    await _paced(connections, mix, rate, duration, paced)
                    # Again, with writers beside the readers.
                    await asyncio.gather(
                        _paced(connections, mix, rate, duration, paced_writing),
                        _writing(writing, writer_keys, write_rate, duration, written))
                    return client_cpu
                finally:
                    for c in [*connections, *writing]:
                        await c.close()

            paced = {name: Phase() for name in endpoints}
            paced_writing = {name: Phase() for name in endpoints}
            written = Phase()
            client_cpu = asyncio.run(run())
    total = rounds * requests * len(endpoints)
    print(f"{events:,} events in the ledger, views rebuilt before serving")
    print(f"{'endpoint':<14}{'p50 (ms)':>10}{'p99 (ms)':>10}{'req/s':>8}{'p99 ratio':>11}"
          f"{'CPU/req (ms)':>14}{'alone p50/p99':>15}{'errors':>8}")
    base_p99 = 0.0
    for name, phase in loaded.items():
        lat = sorted(phase.latencies)
        p50, p99 = _percentile(lat, 50) * 1000, _percentile(lat, 99) * 1000
        if name == "GET /healthz":
            base_p99 = p99
        cpu = f"{statistics.median(phase.server_cpu) * 1000:.2f}" if phase.server_cpu else "n/a"
        single = sorted(alone[name].latencies)
        single_text = f"{_percentile(single, 50) * 1000:.1f}/{_percentile(single, 99) * 1000:.1f}"
        print(f"{name:<14}{p50:>10.1f}{p99:>10.1f}{statistics.median(phase.rates):>8,.0f}"
              f"{p99 / base_p99:>10.2f}×{cpu:>14}{single_text:>15}"
              f"{phase.errors + alone[name].errors:>8}")
    print(f"CPU/req = the service's CPU time per request; alone = one client, no concurrency; "
          f"the load generator used {client_cpu * 1000 / total:.2f} ms CPU per request on the "
          "same 2 cores")
    print(f"\nopen loop: the same {concurrency} readers, each on its own schedule, {rate:,.0f} "
          f"requests/s together for {duration:.0f} s (6 one : 3 list : 1 healthz); latency from "
          "the moment a request was due")
    print(f"{'endpoint':<14}{'p50 (ms)':>10}{'p99 (ms)':>10}{'req/s':>8}{'p99 ratio':>11}"
          f"{'errors':>8}")
    base = _percentile(sorted(paced["GET /healthz"].latencies), 99)

    def rows(phases: dict[str, Phase]) -> None:
        for name, phase in phases.items():
            lat = sorted(phase.latencies)
            print(f"{name:<14}{_percentile(lat, 50) * 1000:>10.1f}"
                  f"{_percentile(lat, 99) * 1000:>10.1f}{phase.rates[0]:>8,.0f}"
                  f"{_percentile(lat, 99) / base:>10.2f}×{phase.errors:>8}")

    rows(paced)
    print(f"the same readers with {writers} writers beside them, {write_rate:,.0f} commands/s "
          "together (formations with If-Match; p99 ratio against /healthz without writers)")
    rows({**paced_writing, "POST command": written})
    print("target: p99 < 20 ms for reads on SQLite with 100 concurrent readers and 8 writers "
          "(stated, not asserted): the closed loop measures saturation, the open loop latency "
          "at a load")


# ---------------------------------------------------------------------------------------- writes
FORMATION_STEPS = 9  # start, 3 members, agreement, application, recommendation, review, listing


def _doc(title: str) -> dict[str, str]:
    return {"title": title, "sha256": "0" * 64}


def _formation_http(n: int) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any], str]]]:
    """The body that starts consortium ``n`` in Nanjing and the steps that list it: (path,
    body, caller)."""
    base = n * 10
    lead = _uscc(base)
    members = [{"uscc": _uscc(base + k), "name": f"成员{base + k}", "kind": kind.value}
               for k, kind in zip((1, 2, 3), MEMBER_KINDS, strict=False)]
    start = {"name": f"南京市基准创新联合体{n}", "city": "nanjing",
             "lead": {"uscc": lead, "name": f"牵头企业{base}", "kind": "enterprise"},
             "qualification": {"category": "industry_leader", "annual_revenue_yuan": 2_000_000_000,
                               "rd_intensity": "0.05"},
             "fields": ["integrated_circuits", "third_gen_semiconductors"],
             "technologies": ["choke_point"], "effective_date": "2024-01-01",
             "document": _doc("牵头单位遴选意见")}
    steps: list[tuple[str, dict[str, Any], str]] = [
        *[("members", {"unit": m, "effective_date": "2024-01-02"}, "city") for m in members],
        ("agreement", {"signatories": [lead, *[m["uscc"] for m in members]],
                       "mechanisms": [m.value for m in Mechanism], "construction_plan": "方案",
                       "effective_date": "2024-02-01", "document": _doc("共建协议")}, "city"),
        ("application", {"effective_date": "2024-03-01", "document": _doc("申报书")}, "city"),
        ("recommendation", {"necessity": "必要", "feasibility": "可行",
                            "effective_date": "2024-04-01"}, "city"),
        ("expert-review", {"opinion": "同意", "score": "86.5", "recommended": True,
                           "effective_date": "2024-05-01"}, "province"),
        ("listing", {"effective_date": "2024-06-01", "document": _doc("认定通知")}, "province"),
    ]
    return start, steps


def _formation_direct(reg: Registry, n: int) -> None:
    """The same nine commands as direct Registry calls, each with its expected version."""
    base = n * 10
    lead = Unit(_uscc(base), f"牵头企业{base}", UnitKind.ENTERPRISE)
    out = reg.select_lead(
        name=f"南京市基准创新联合体{n}", city="nanjing", lead=lead, qualification=QUALIFICATION,
        fields=["integrated_circuits", "third_gen_semiconductors"],
        technologies=[TechnologyKind.CHOKE_POINT], actor=CITY, effective_date=date(2024, 1, 1),
        document=Document("牵头单位遴选意见", "0" * 64))
    cid, version = out["consortium_id"], out["version"]
    members = [Unit(_uscc(base + k), f"成员{base + k}", kind)
               for k, kind in zip((1, 2, 3), MEMBER_KINDS, strict=False)]
    for m in members:
        version = reg.admit_member(cid, m, actor=CITY, effective_date=date(2024, 1, 2),
                                   expected_version=version)["version"]
    version = reg.sign_agreement(
        cid, signatories=[lead.uscc, *[m.uscc for m in members]], mechanisms=list(Mechanism),
        construction_plan="方案", actor=CITY, effective_date=date(2024, 2, 1),
        document=Document("共建协议", "0" * 64), expected_version=version)["version"]
    version = reg.submit_application(cid, actor=CITY, effective_date=date(2024, 3, 1),
                                     document=Document("申报书", "0" * 64),
                                     expected_version=version)["version"]
    version = reg.recommend(cid, necessity="必要", feasibility="可行", actor=CITY,
                            effective_date=date(2024, 4, 1), expected_version=version)["version"]
    version = reg.record_expert_review(cid, opinion="同意", score=Decimal("86.5"),
                                       recommended=True, actor=PROVINCE,
                                       effective_date=date(2024, 5, 1),
                                       expected_version=version)["version"]
    reg.approve(cid, actor=PROVINCE, effective_date=date(2024, 6, 1),
                document=Document("认定通知", "0" * 64), expected_version=version)


async def _http_writers(server: Server, keys: dict[str, str], numbers: list[int],
                        concurrency: int) -> None:
    """``concurrency`` HTTP clients (one keep-alive connection each), each forming its share of
    the consortia one after another, every write on an existing consortium with If-Match."""
    auth = {who: {"Authorization": f"Bearer {k}"} for who, k in keys.items()}

    def body(data: dict[str, Any]) -> bytes:
        return json.dumps(data, ensure_ascii=False).encode("utf-8")

    async def writer(share: list[int]) -> None:
        connection = Connection(server.host, server.port)
        try:
            for n in share:
                start, steps = _formation_http(n)
                status, answer, content = await connection.request(
                    "POST", "/api/v1/consortia", body(start), auth["city"])
                if status != 201:
                    raise RuntimeError(f"POST /consortia → {status}: {content.decode()}")
                cid, etag = json.loads(content)["consortium_id"], answer["etag"]
                for path, data, who in steps:
                    status, answer, content = await connection.request(
                        "POST", f"/api/v1/consortia/{cid}/{path}", body(data),
                        {**auth[who], "If-Match": etag})
                    if status != 200:
                        raise RuntimeError(f"POST …/{path} → {status}: {content.decode()}")
                    etag = answer["etag"]
        finally:
            await connection.close()

    await asyncio.gather(*(writer(numbers[k::concurrency]) for k in range(concurrency)))


def _direct_writers(reg: Registry, numbers: list[int], concurrency: int) -> None:
    if concurrency == 1:
        for n in numbers:
            _formation_direct(reg, n)
        return
    with ThreadPoolExecutor(concurrency) as pool:
        def form_all(share: list[int]) -> None:
            for n in share:
                _formation_direct(reg, n)

        for f in [pool.submit(form_all, numbers[k::concurrency]) for k in range(concurrency)]:
            f.result()


def _wait_for_projection(server: Server, timeout: float = 120) -> None:
    """Until the embedded projection has caught up (so that it does not run into the next run)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        checks = httpx.get(f"{server.base_url}/readyz", timeout=10).json().get("checks", {})
        detail = checks.get("projection", {}).get("detail", {})
        if not detail.get("embedded") or detail.get("lag", 0) <= 0:
            return
        time.sleep(0.05)


WRITE_VARIANTS = ("direct", "HTTP", "HTTP, no projection")


def bench_writes(consortia: int, rounds: int, concurrency: int) -> None:
    if not postgres_reachable():
        print("\nwrites: PostgreSQL unreachable, skipped", file=sys.stderr)
        return
    levels = sorted({1, concurrency})
    print(f"\nwrites on PostgreSQL: {consortia} consortia × {FORMATION_STEPS} commands (formation "
          "to listing, each with If-Match) per run; direct Registry calls vs HTTP (`consortia "
          "serve` as it runs by default: embedded projection following the writes) and HTTP with "
          f"CONSORTIA_EMBEDDED_PROJECTION=0; {rounds} rounds, rotating order; one database each")
    times: dict[tuple[str, int], list[float]] = {(v, c): [] for v in WRITE_VARIANTS
                                                 for c in levels}
    counter = iter(range(1_000_000))
    with (postgres_database() as direct_url, postgres_database() as http_url,
          postgres_database() as bare_url):
        reg = open_registry(direct_url)
        _formation_direct(reg, next(counter))  # warm-up: tables, pool, prepared statements
        with serve(http_url, {"CONSORTIA_EMBEDDED_PROJECTION": "1"}) as server, \
                serve(bare_url, {"CONSORTIA_EMBEDDED_PROJECTION": "0"}) as bare:
            keys = {url: {"city": create_key(url, "city_bureau", "nanjing"),
                          "province": create_key(url, "province")} for url in (http_url, bare_url)}
            servers = {"HTTP": (server, keys[http_url]),
                       "HTTP, no projection": (bare, keys[bare_url])}
            for s, k in servers.values():
                asyncio.run(_http_writers(s, k, [next(counter)], 1))
            for r in range(rounds):
                for level in levels:
                    shift = (r * len(levels) + level) % len(WRITE_VARIANTS)
                    for variant in WRITE_VARIANTS[shift:] + WRITE_VARIANTS[:shift]:
                        numbers = [next(counter) for _ in range(consortia)]
                        started = time.perf_counter()
                        if variant == "direct":
                            _direct_writers(reg, numbers, level)
                        else:
                            asyncio.run(_http_writers(*servers[variant], numbers, level))
                        times[(variant, level)].append(time.perf_counter() - started)
                        if variant == "HTTP":
                            _wait_for_projection(server)
        reg.close()
    commands = consortia * FORMATION_STEPS
    print(f"{'writers':<9}{'direct cmd/s':>14}{'HTTP cmd/s':>12}{'ratio':>9}{'ms/cmd':>8}"
          f"{'HTTP no proj.':>15}{'ratio':>9}")
    for level in levels:
        direct, http, bare_rate = (_median_rate(commands, times[(v, level)])
                                   for v in WRITE_VARIANTS)
        print(f"{level:<9}{direct:>14,.0f}{http:>12,.0f}{direct / http:>8.2f}×"
              f"{1000 / http * level:>8.1f}{bare_rate:>15,.0f}{direct / bare_rate:>8.2f}×")
    print("ratio = HTTP time / direct time; ms/cmd = mean time an HTTP writer waits per command")


# ------------------------------------------------------------------------------------------ main
def _synthetic_ledger(url: str, records: int) -> None:
    """``records`` chained records of realistic size, written in batches straight through the
    chained recorder (one transaction per 5,000): fast to build, the same bytes to verify."""
    from eventsourcing.persistence import StoredEvent

    reg = open_registry(url)
    state = json.dumps({"unit": {"name": "某某科技股份有限公司" * 4, "uscc": "91320100MA1W00016A"},
                        "facts": "x" * 400}, ensure_ascii=False).encode()
    written, oid, version = 0, uuid.uuid4(), 0
    while written < records:
        batch = []
        for _ in range(min(5_000, records - written)):
            if version == 12:
                oid, version = uuid.uuid4(), 0
            version += 1
            batch.append(StoredEvent(oid, version, "domain.consortium:Consortium.MemberAdmitted",
                                     state))
        reg.recorder.insert_events(batch)
        written += len(batch)
    reg.close()


def bench_ledger(records: int, proofs: int, json_out: str | None = None, rounds: int = 3
                 ) -> None:
    """Full verification against a raw SHA-256 walk over the same stored bytes, then RFC 9162
    proofs at the same size."""
    import hashlib

    from audit import ledger, tree
    from audit.store import Database, parse_database_url
    from audit.verify import verify_chain

    backends: list[tuple[str, Callable[[], Any], int]] = [("sqlite", sqlite_database, 300_000)]
    if postgres_reachable():
        backends.append(("postgresql", postgres_database, 150_000))
    print(f"ledger: {records:,} records; verification against a raw SHA-256 walk over the same "
          f"stored bytes ({rounds} rounds alternating, medians), then {proofs} proofs of each "
          f"kind")
    print(f"{'backend':<12}{'raw walk/s':>12}{'verify/s':>12}{'ratio':>8}{'target':>10}"
          f"{'integrate/s':>13}{'inclusion':>11}{'consistency':>13}{'hashes':>8}"
          f"{'verify MiB':>12}")
    for backend, make_db, target in backends:
        with make_db() as url:
            _synthetic_ledger(url, records)
            db = parse_database_url(url)

            def raw_walk(db: Database = db) -> None:
                h, sha = bytes(32), hashlib.sha256
                # The same reads as the verifier (records and links), one SHA-256 per record.
                for records_read, _ in ledger.raw_batches(db):
                    for row in records_read:
                        h = sha(h + row[4]).digest()

            def verify_all(db: Database = db) -> None:
                report = verify_chain(db)
                assert report.ok and report.records == records

            times: dict[str, list[float]] = {"raw": [], "verify": []}
            for r in range(rounds):  # alternating, medians: the machine's speed drifts
                for variant in ("raw", "verify") if r % 2 == 0 else ("verify", "raw"):
                    started = time.perf_counter()
                    (raw_walk if variant == "raw" else verify_all)()
                    times[variant].append(time.perf_counter() - started)
            raw, verify = (_median_rate(records, times[v]) for v in ("raw", "verify"))
            verify_mib = _verifier_peak(url)
            started = time.perf_counter()
            size = tree.integrate(db)
            integrate = size / (time.perf_counter() - started)
            rng = random.Random(7)
            started = time.perf_counter()
            lengths = []
            for _ in range(proofs):
                lengths.append(len(tree.inclusion_proof(db, rng.randint(1, size)).proof))
            inclusion_ms = (time.perf_counter() - started) / proofs * 1000
            started = time.perf_counter()
            for _ in range(proofs):
                m = rng.randint(1, size - 1)
                tree.consistency_proof(db, m, size)
            consistency_ms = (time.perf_counter() - started) / proofs * 1000
        print(f"{backend:<12}{raw:>12,.0f}{verify:>12,.0f}{raw / verify:>7.2f}×{target:>10,}"
              f"{integrate:>13,.0f}{inclusion_ms:>9.2f}ms{consistency_ms:>11.2f}ms"
              f"{max(lengths):>8}{verify_mib:>12.0f}")
        if json_out:
            with open(json_out, "a", encoding="utf-8") as out:
                out.write(json.dumps({"backend": backend, "records": records, "raw": raw,
                                      "verify": verify, "integrate": integrate,
                                      "inclusion_ms": inclusion_ms,
                                      "consistency_ms": consistency_ms,
                                      "hashes": max(lengths), "verify_mib": verify_mib})
                          + "\n")
    print("ratio = verification time ÷ raw walk time; targets: verify ≥ target records/s, proofs "
          "< 2 ms, ≤ 20 hashes per inclusion proof (at 1M records); verify MiB = peak resident "
          "memory of `consortia verify` run on its own")


def _verifier_peak(url: str) -> float:
    """Peak resident memory (MiB) of a full ``consortia verify`` in a process of its own, read
    from its ``VmHWM`` as it ends: a child's rusage would count the pages it shared, when forked,
    with this process (which has just built the ledger)."""
    code = ("import sys\nfrom api.cli import main\ncode = main(sys.argv[1:])\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
            "print(hwm[0].split()[1] if hwm else 0)\nsys.exit(code)")
    out = subprocess.run([sys.executable, "-c", code, "--database", url, "verify", "--json"],
                         cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"consortia verify failed ({out.returncode}): {out.stderr[-500:]}")
    return int(out.stdout.strip().splitlines()[-1]) / 1024


# ------------------------------------------------------------------------------------------ all
def _child(args: Sequence[str]) -> tuple[str, float, float]:
    """Run ``scripts/bench.py *args`` as a child: its output (echoed as it comes), wall seconds
    and peak resident memory (MiB, from the child's own rusage)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"bench {' '.join(args)} failed ({proc.returncode})")
    return "".join(lines), time.perf_counter() - started, usage.ru_maxrss / 1024


def bench_all(sizes: Sequence[int], quick: bool, write: str | None) -> None:
    """Every benchmark, each in its own process (its peak memory is its own), then the ledger at
    growing sizes; a summary; with ``write``, the whole output replaces the marked block of
    that Markdown file."""
    import platform

    steps: list[tuple[str, list[str]]] = [
        (what, [what] + (["--quick"] if quick else []))
        for what in ("chain", "projection", "reads", "writes")]
    steps += [(f"ledger {n:,}", ["ledger", "--records", str(n), "--proofs", "200"])
              for n in sizes]
    header = (f"`scripts/bench all{' --quick' if quick else ''}` on {time.strftime('%Y-%m-%d')}: "
              f"{platform.machine()}, {os.cpu_count()} cores, "
              f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
              f"Python {platform.python_version()}, load average "
              f"{os.getloadavg()[0]:.1f} at the start")
    print(header)
    outputs, summary = [], []
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "ledger.jsonl"
        for name, args in steps:
            if args[0] == "ledger":
                args = [*args, "--json-out", str(figures)]
            out, seconds, peak = _child(args)
            outputs.append(out)
            summary.append((name, seconds, peak))
        rows = [json.loads(line) for line in figures.read_text().splitlines()]
    growth = ["", "ledger growth (per backend: rate at each size, and the rate at the largest "
              "size ÷ the rate at the smallest: ≥ 1 means linear or better)",
              f"{'backend':<12}{'records':>10}{'verify/s':>12}{'verify÷raw':>12}"
              f"{'integrate/s':>13}{'inclusion':>11}{'consistency':>13}{'verify MiB':>12}"]
    for backend in dict.fromkeys(r["backend"] for r in rows):
        mine = [r for r in rows if r["backend"] == backend]
        for r in mine:
            growth.append(f"{backend:<12}{r['records']:>10,}{r['verify']:>12,.0f}"
                          f"{r['raw'] / r['verify']:>11.2f}×{r['integrate']:>13,.0f}"
                          f"{r['inclusion_ms']:>9.2f}ms{r['consistency_ms']:>11.2f}ms"
                          f"{r['verify_mib']:>12.0f}")
        if len(mine) > 1:
            growth.append(f"{backend:<12}{'':>10}{mine[-1]['verify'] / mine[0]['verify']:>11.2f}×"
                          f"{'':>12}{mine[-1]['integrate'] / mine[0]['integrate']:>12.2f}×  "
                          f"(rate at {mine[-1]['records']:,} ÷ rate at {mine[0]['records']:,})")
    lines = [*growth, "", f"{'step':<18}{'wall (s)':>10}{'peak memory (MiB)':>20}"]
    lines += [f"{name:<18}{seconds:>10.0f}{peak:>20.0f}" for name, seconds, peak in summary]
    print("\n".join(lines))
    if write:
        _write_block(Path(write), header, "".join(outputs) + "\n".join(lines))


BEGIN, END = "<!-- scripts/bench all: begin -->", "<!-- scripts/bench all: end -->"


def _write_block(path: Path, header: str, body: str) -> None:
    """Replace the block between the markers of ``path`` (appended when missing)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{BEGIN}\n{header}\n\n```text\n{body.rstrip()}\n```\n{END}"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n## Latest full run\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
    print(f"written to {path}")


QUICK: dict[str, dict[str, Any]] = {"chain": {"consortia": 10, "rounds": 2},
         "projection": {"events": 10_000, "rounds": 2},
         "reads": {"requests": 300, "rounds": 2, "duration": 8.0},
         "writes": {"consortia": 15, "rounds": 2},
         "ledger": {"records": 50_000, "proofs": 50}}
DEFAULTS: dict[str, dict[str, Any]] = {"chain": {"consortia": 40, "rounds": 10},
            "projection": {"events": 50_000, "rounds": 3},
            "reads": {"consortia": 1_000, "requests": 1_000, "rounds": 2, "concurrency": 100,
                      "client": "stream", "rate": 300.0, "duration": 20.0, "writers": 8,
                      "write_rate": 40.0},
            "writes": {"consortia": 40, "rounds": 3, "concurrency": 8},
            "ledger": {"records": 200_000, "proofs": 200, "json_out": None}}
RUNNERS: dict[str, Callable[..., None]] = {"chain": bench_chain, "projection": bench_projection,
                                           "reads": bench_reads, "writes": bench_writes,
                                           "ledger": bench_ledger}


def _settings(what: str, args: argparse.Namespace) -> dict[str, Any]:
    """Defaults, then --quick sizes, then any size given on the command line."""
    settings = dict(DEFAULTS[what])
    if getattr(args, "quick", False):
        settings.update(QUICK[what])
    for name in DEFAULTS[what]:
        given = getattr(args, name, None)
        if given is not None:
            settings[name] = given
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench", description="without a sub-command: "
                                     "chain, projection, reads and writes in sequence")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    sub = parser.add_subparsers(dest="what", required=False)

    def add_quick(p: argparse.ArgumentParser) -> None:
        p.add_argument("--quick", action="store_true", default=argparse.SUPPRESS,
                       help="smaller sizes")

    p = sub.add_parser("chain", help="chain overhead against plain eventsourcing recorders")
    p.add_argument("--consortia", type=int)
    p.add_argument("--rounds", type=int)
    p.add_argument("--once", choices=["plain", "chained"],
                   help="one run of one variant only (to time the process from outside)")
    p.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    add_quick(p)
    p = sub.add_parser("projection", help="rebuild(url) against reading and decoding the ledger")
    p.add_argument("--events", type=int)
    p.add_argument("--rounds", type=int)
    add_quick(p)
    p = sub.add_parser("reads", help="read latency of the served API against GET /healthz")
    p.add_argument("--consortia", type=int)
    p.add_argument("--requests", type=int, help="per endpoint per round")
    p.add_argument("--rounds", type=int)
    p.add_argument("--concurrency", type=int)
    p.add_argument("--client", choices=["stream", "httpx"],
                   help="load generator: asyncio streams (default) or httpx.AsyncClient")
    p.add_argument("--rate", type=float, help="open loop: requests per second, all readers")
    p.add_argument("--duration", type=float, help="open loop: seconds")
    p.add_argument("--writers", type=int, help="open loop: writers beside the readers")
    p.add_argument("--write-rate", type=float, help="open loop: commands per second, all writers")
    add_quick(p)
    p = sub.add_parser("writes", help="HTTP write throughput against direct Registry calls")
    p.add_argument("--consortia", type=int, help="per run")
    p.add_argument("--rounds", type=int)
    p.add_argument("--concurrency", type=int, help="writers in the concurrent runs")
    add_quick(p)
    p = sub.add_parser("ledger", help="verification vs a raw SHA-256 walk; proofs")
    p.add_argument("--records", type=int, help="ledger size (1000000 for the 1M figures)")
    p.add_argument("--proofs", type=int, help="proofs of each kind to time")
    p.add_argument("--json-out", metavar="FILE", help="also append the figures to FILE (JSON lines)")
    add_quick(p)
    p = sub.add_parser("all", help="every benchmark in its own process, the ledger at 10k, "
                       "100k and 1M records, peak memory of each; --write FILE updates the "
                       "marked block of FILE")
    p.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")],
                   default=[10_000, 100_000, 1_000_000], help="ledger sizes, comma-separated")
    p.add_argument("--write", metavar="FILE", help="e.g. docs/performance.md")
    add_quick(p)
    args = parser.parse_args()
    if args.what == "all":
        sizes = [10_000, 50_000] if args.quick and args.sizes == [10_000, 100_000, 1_000_000] \
            else args.sizes
        bench_all(sizes, bool(getattr(args, "quick", False)), args.write)
        return
    if args.what == "chain" and args.once:
        run_once(args.backend, args.once == "chained", _settings("chain", args)["consortia"])
        return
    started = time.perf_counter()
    for what in [args.what] if args.what else list(RUNNERS):
        if hasattr(os, "getloadavg"):  # the figures mean little on a machine busy with other work
            print(f"[{what}: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
                  "before starting]")
        RUNNERS[what](**_settings(what, args))
        sys.stdout.flush()
    if not args.what:
        print(f"\nall benchmarks: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
