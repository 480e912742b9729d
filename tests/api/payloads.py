"""Request bodies for every lifecycle command, and a consortium driven through HTTP alone."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from domain.rules import Mechanism, ReportSection
from tests.api.conftest import Api
from tests.factories import uscc


def doc(title: str) -> dict[str, str]:
    return {"title": title, "sha256": hashlib.sha256(title.encode("utf-8")).hexdigest()}


def unit(kind: str = "enterprise", name: str | None = None, division: str = "320100",
         **extra: Any) -> dict[str, Any]:
    code = uscc(division)
    return {"uscc": code, "name": name or f"测试单位{code[-6:]}", "kind": kind, **extra}


def start(city: str = "nanjing", lead: dict[str, Any] | None = None,
          on: str = "2025-01-10") -> dict[str, Any]:
    return {
        "name": "江苏集成电路先进封装创新联合体", "city": city,
        "lead": lead or unit("enterprise", "江苏芯联微电子股份有限公司",
                             division="320500" if city == "suzhou" else "320100"),
        "qualification": {"category": "industry_leader", "annual_revenue_yuan": 12_600_000_000,
                          "rd_intensity": "0.052"},
        "fields": ["integrated_circuits", "third_gen_semiconductors"],
        "technologies": ["choke_point"], "effective_date": on,
        "document": doc("牵头单位遴选意见"),
    }


def admit(u: dict[str, Any] | None = None, on: str = "2025-01-20") -> dict[str, Any]:
    return {"unit": u or unit("university", "东南大学"), "effective_date": on}


def drop(on: str = "2025-01-25") -> dict[str, Any]:
    return {"reason": "协商一致退出", "effective_date": on}


def agreement(signatories: list[str], on: str = "2025-02-01") -> dict[str, Any]:
    return {"signatories": signatories, "mechanisms": [m.value for m in Mechanism],
            "construction_plan": "围绕先进封装关键工艺开展联合攻关", "effective_date": on,
            "document": doc("共建协议")}


def submit(on: str = "2025-03-01") -> dict[str, Any]:
    return {"effective_date": on, "document": doc("申报书")}


def recommend(on: str = "2025-04-01") -> dict[str, Any]:
    return {"necessity": "契合本市产业链“卡脖子”环节攻关需求", "feasibility": "牵头单位研发实力强",
            "effective_date": on}


def return_(on: str = "2025-03-10") -> dict[str, Any]:
    return {"reason": "年度任务不够具体", "effective_date": on}


def review(on: str = "2025-05-01", recommended: bool = True) -> dict[str, Any]:
    return {"opinion": "建设方案目标明确，任务可行", "score": "86.5", "recommended": recommended,
            "effective_date": on}


def listing(on: str = "2025-06-30") -> dict[str, Any]:
    return {"effective_date": on, "document": doc("关于认定省创新联合体的通知")}


def rejection(on: str = "2025-06-30") -> dict[str, Any]:
    return {"reason": "攻关任务与产业需求结合不够紧密", "effective_date": on}


def supplementary(lead: str, joining: dict[str, Any] | None = None,
                  on: str = "2025-09-01") -> dict[str, Any]:
    joining = joining or unit("other", "江苏省技术产权交易所有限公司", specialisation={
        "role": "technology_transfer", "technology_managers": 12})
    return {"changes": [{"kind": "member_joins", "description": "引入成果转移转化机构",
                         "unit": joining}],
            "signatories": [lead, joining["uscc"]], "effective_date": on,
            "document": doc("补充协议（一）")}


def annual_report(year: int = 2025, on: str = "2026-05-20",
                  explanations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"year": year, "sections": {s.value: f"{year}年度{s.value}" for s in ReportSection},
            "explanations": explanations or {}, "effective_date": on,
            "document": doc(f"{year}年度自评报告")}


def evaluation(grade: str = "good", on: str = "2026-06-15") -> dict[str, Any]:
    return {"agency": "江苏省科技评估中心", "period": "2025—2026",
            "scores": {"协同攻关": "88", "成果转化": 84}, "grade": grade, "effective_date": on}


def rectification(on: str = "2026-07-01", deadline: str = "2027-03-31") -> dict[str, Any]:
    return {"requirements": "完善理事会议事规则", "deadline": deadline, "effective_date": on,
            "document": doc("整改通知")}


def completion(on: str = "2026-10-15") -> dict[str, Any]:
    return {"outcome": "已完成整改，复核通过", "effective_date": on}


def delisting(reason: str = "poor_evaluation", on: str = "2026-11-01") -> dict[str, Any]:
    return {"reason": reason, "effective_date": on, "document": doc("摘牌决定")}


def violation(subject: str, *, severity: str = "serious", context: str = "annual_report",
              on: str = "2026-09-01", publicity_start: str = "2026-09-01",
              earliest_repair: str = "2027-09-01", publicity_end: str = "2029-08-31",
              ) -> dict[str, Any]:
    return {"subject_uscc": subject, "severity": severity, "context": context,
            "facts": "年度报告虚报成果转化收入", "legal_basis": "《指引》七（三）",
            "deciding_authority": "江苏省科学技术厅", "publicity_start": publicity_start,
            "publicity_end": publicity_end, "earliest_repair_date": earliest_repair,
            "remedy": "整改到位满一年后可申请信用修复", "effective_date": on,
            "document": doc("失信行为认定决定书")}


def repair(on: str = "2026-03-15") -> dict[str, Any]:
    return {"measures": "已退回违规资金并公开作出信用承诺", "effective_date": on,
            "document": doc("信用修复决定书")}


def revocation(on: str = "2026-04-01") -> dict[str, Any]:
    return {"reason": "认定主体有误", "effective_date": on, "document": doc("撤销决定书")}


def publicity_end(on: str = "2026-10-01") -> dict[str, Any]:
    return {"effective_date": on}


@dataclass
class Journey:
    """One consortium driven through HTTP: keeps its id and its version (from each ETag)."""

    api: Api
    id: str = ""
    version: int = 0
    lead: str = ""
    members: list[str] = field(default_factory=list)

    def start(self, who: str = "nanjing", **kw: Any) -> dict[str, Any]:
        body = start(**kw)
        r = self.api.post("/consortia", body, who)
        assert r.status_code == 201, r.text
        self.id, self.version, self.lead = r.json()["consortium_id"], 1, body["lead"]["uscc"]
        assert r.headers["ETag"] == '"1"'
        assert r.headers["Location"] == f"/api/v1/consortia/{self.id}"
        assert "result" not in r.json()  # only commands with a result answer one
        return dict(r.json())

    def do(self, action: str, body: dict[str, Any], who: str,
           expect: int = 200) -> dict[str, Any]:
        r = self.api.post(f"/consortia/{self.id}/{action}", body, who, self.version)
        assert r.status_code == expect, r.text
        out: dict[str, Any] = r.json()
        if expect == 200:
            assert r.headers["ETag"] == f'"{out["version"]}"'
            assert out["version"] > self.version
            self.version = out["version"]
        return out

    def admit(self, kind: str = "university", name: str | None = None,
              on: str = "2025-01-20") -> str:
        u = unit(kind, name)
        self.do("members", admit(u, on), "nanjing")
        self.members.append(u["uscc"])
        return str(u["uscc"])

    def to_submitted(self) -> Journey:
        self.start()
        self.admit("university", "东南大学")
        self.admit("research_institute", "南京集成电路产业研究院")
        self.do("agreement", agreement([self.lead, *self.members]), "nanjing")
        self.do("application", submit(), "nanjing")
        return self

    def to_listed(self) -> Journey:
        self.to_submitted()
        self.do("recommendation", recommend(), "nanjing")
        self.do("expert-review", review(), "province")
        out = self.do("listing", listing(), "province")
        assert out["status"] == "listed"
        return self
