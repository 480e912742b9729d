"""Benchmarks that compare against a baseline measured in the same run and print ratios.

``chain``: the same command mix through the registry on the hash-chained recorders and on
eventsourcing's stock recorders, on SQLite and on PostgreSQL. Runs alternate (baseline, chained,
baseline, chained, …) so that drift of the machine touches both alike; medians are compared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from audit.store import open_registry
from domain.records import Actor, Document, Role
from domain.registry import Registry
from domain.rules import Grade, Mechanism, ReportSection
from domain.units import (
    LeadCategory,
    LeadQualification,
    Unit,
    UnitKind,
    make_uscc,
)

TODAY = date(2026, 11, 25)
CITY = Actor("bench.city", Role.CITY_BUREAU, "南京市科学技术局", city="nanjing")
PROVINCE = Actor("bench.prov", Role.PROVINCE, "江苏省科学技术厅")
DOC = Document("文件", "0" * 64)
SECTIONS = {s.value: "内容" for s in ReportSection}
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _uscc(n: int) -> str:
    body = ""
    for _ in range(8):
        n, r = divmod(n, 31)
        body = ALPHABET[r] + body
    return make_uscc("320100", body)


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
    backends: list[tuple[str, Callable[[], Any]]] = [("sqlite", sqlite_database)]
    if postgres_reachable():
        backends.append(("postgresql", postgres_database))
    else:
        print("PostgreSQL unreachable: measuring SQLite only", file=sys.stderr)
    print(f"chain overhead: {consortia} consortia × (12 writes + 2 reads) per run, {rounds} rounds, "
          "alternating baseline/chained runs on fresh databases")
    print(f"{'backend':<12}{'plain (s)':>12}{'chained (s)':>14}{'ratio':>9}{'cmd/s chained':>16}")
    for backend, make_db in backends:
        times: dict[bool, list[float]] = {False: [], True: []}
        commands = 0
        for r in range(rounds):
            for chained in (False, True) if r % 2 == 0 else (True, False):
                with make_db() as url:
                    reg = open_registry(url, clock=lambda: TODAY, chained=chained)
                    command_mix(reg, 2, offset=10_000)  # warm-up: tables, caches, prepared SQL
                    started = time.perf_counter()
                    commands = command_mix(reg, consortia, offset=0)
                    times[chained].append(time.perf_counter() - started)
                    reg.close()
        plain, chained_t = statistics.median(times[False]), statistics.median(times[True])
        print(f"{backend:<12}{plain:>12.3f}{chained_t:>14.3f}{chained_t / plain:>8.3f}×"
              f"{commands / chained_t:>16,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench")
    sub = parser.add_subparsers(dest="what", required=False)
    p = sub.add_parser("chain", help="chain overhead against plain eventsourcing recorders")
    p.add_argument("--consortia", type=int, default=40)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--once", choices=["plain", "chained"],
                   help="one run of one variant only (to time the process from outside)")
    p.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    if args.what == "chain" and args.once:
        run_once(args.backend, args.once == "chained", args.consortia)
    elif args.what in (None, "chain"):
        bench_chain(getattr(args, "consortia", 40), getattr(args, "rounds", 6))


if __name__ == "__main__":
    main()
