"""Builders for tests: valid units, actors and consortia at each lifecycle stage (no database)."""

from __future__ import annotations

import hashlib
import itertools
from datetime import date
from decimal import Decimal

from domain.consortium import Consortium
from domain.records import Actor, Document, Role
from domain.rules import Mechanism, ReportSection
from domain.units import LeadCategory, LeadQualification, Unit, UnitKind, make_uscc

TODAY = date(2026, 11, 25)
NANJING = Actor("city.nj", Role.CITY_BUREAU, "南京市科学技术局", city="nanjing")
SUZHOU = Actor("city.sz", Role.CITY_BUREAU, "苏州市科学技术局", city="suzhou")
PROVINCE = Actor("prov.1", Role.PROVINCE, "江苏省科学技术厅")
AGENCY = Actor("agency.1", Role.EVALUATION_AGENCY, "江苏省科技评估中心")
AUDITOR = Actor("audit.1", Role.AUDITOR, "江苏省审计厅")

_serial = itertools.count(1)
_BODY_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def body(n: int) -> str:
    """A distinct 8-character organisation-code body for each n."""
    out = ""
    for _ in range(8):
        n, r = divmod(n, len(_BODY_ALPHABET))
        out = _BODY_ALPHABET[r] + out
    return out


def uscc(division: str = "320100", n: int | None = None) -> str:
    return make_uscc(division, body(next(_serial) if n is None else n))


def unit(kind: UnitKind = UnitKind.ENTERPRISE, name: str | None = None,
         division: str = "320100", **kw: object) -> Unit:
    code = uscc(division)
    return Unit(code, name or f"测试单位{code[-6:]}", kind, **kw)  # type: ignore[arg-type]


def doc(title: str = "文件") -> Document:
    return Document(title, hashlib.sha256(title.encode()).hexdigest())


def lead_qualification() -> LeadQualification:
    return LeadQualification(LeadCategory.INDUSTRY_LEADER, annual_revenue_yuan=2_000_000_000,
                             rd_intensity=Decimal("0.05"))


def sections(text: str = "内容") -> dict[str, str]:
    return {s.value: text for s in ReportSection}


D = date  # short alias for readable dates in tests


def forming(lead: Unit | None = None, *, on: date = D(2024, 1, 10),
            city: str = "nanjing") -> Consortium:
    actor = NANJING if city == "nanjing" else SUZHOU
    return Consortium.select_lead(
        name="测试创新联合体", city=city, lead=lead or unit(), qualification=lead_qualification(),
        fields=["integrated_circuits"], actor=actor, effective_date=on, today=TODAY)


def with_members(c: Consortium | None = None, *, on: date = D(2024, 1, 20)) -> Consortium:
    c = c or forming()
    c.admit_member(unit(UnitKind.UNIVERSITY), actor=NANJING, effective_date=on, today=TODAY)
    c.admit_member(unit(UnitKind.ENTERPRISE), actor=NANJING, effective_date=on, today=TODAY)
    return c


def signed(c: Consortium | None = None, *, on: date = D(2024, 2, 1)) -> Consortium:
    c = c or with_members()
    c.sign_agreement(signatories=[c.lead.uscc, *c.members], mechanisms=list(Mechanism),
                     construction_plan="建设方案", actor=NANJING, effective_date=on, today=TODAY,
                     document=doc("共建协议"))
    return c


def submitted(c: Consortium | None = None, *, on: date = D(2024, 3, 1)) -> Consortium:
    c = c or signed()
    c.submit_application(actor=NANJING, effective_date=on, today=TODAY)
    return c


def recommended(c: Consortium | None = None, *, on: date = D(2024, 4, 1)) -> Consortium:
    c = c or submitted()
    c.recommend(necessity="必要", feasibility="可行", actor=NANJING, effective_date=on,
                today=TODAY)
    return c


def reviewed(c: Consortium | None = None, *, on: date = D(2024, 5, 1)) -> Consortium:
    c = c or recommended()
    c.record_expert_review(opinion="同意", recommended=True, actor=PROVINCE, effective_date=on,
                           today=TODAY)
    return c


def listed(c: Consortium | None = None, *, on: date = D(2024, 6, 30)) -> Consortium:
    c = c or reviewed()
    c.approve(actor=PROVINCE, effective_date=on, today=TODAY, document=doc("认定通知"))
    return c
