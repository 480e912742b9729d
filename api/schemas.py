"""Request and response bodies of the lifecycle commands.

Strict on the wire: unknown members are refused (``extra="forbid"``), dates are ISO ``YYYY-MM-DD``
strings, money is integer yuan, ratios and scores are decimal strings (or integers) and never
floats, booleans are JSON booleans. Each model turns itself into the domain's value objects
(``to_domain``); the rules themselves (a valid USCC, a qualified lead, a known field …) are
checked by the domain, which answers with a named problem.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    model_validator,
)

from domain.consortium import Change, CreditViolation
from domain.fields import TechnologyKind
from domain.records import Document
from domain.rules import (
    ChangeKind,
    DelistingReason,
    Grade,
    Mechanism,
    ReportSection,
    Severity,
    ViolationContext,
)
from domain.units import (
    LeadCategory,
    LeadQualification,
    Specialisation,
    SpecialisedRole,
    Unit,
    UnitKind,
    make_uscc,
)

# Valid codes for the examples, computed by the domain's own GB 32100-2015 arithmetic.
EX_LEAD = make_uscc("320100", "MA1XYW00")
EX_UNIVERSITY = make_uscc("320000", "46600730")
EX_INSTITUTE = make_uscc("320100", "MA1Q3K21")
EX_JOINING = make_uscc("320100", "MA1U2C88")
_EX_SHA = hashlib.sha256("共建协议".encode()).hexdigest()

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECIMAL = re.compile(r"^-?\d{1,12}(\.\d{1,12})?$")


def _iso_date(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("应为 ISO 日期 YYYY-MM-DD / must be an ISO date YYYY-MM-DD")
    return date.fromisoformat(value)


def _decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool | float):
        raise ValueError("比例与分数须写作十进制字符串，如 \"0.052\"，不得用浮点数 / ratios and scores "
                         "are decimal strings such as \"0.052\", never floats")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str) and _DECIMAL.match(value):
        try:
            return Decimal(value)
        except InvalidOperation:
            pass
    raise ValueError("应为十进制字符串，如 \"0.052\" / must be a decimal string such as \"0.052\"")


IsoDate = Annotated[date, BeforeValidator(_iso_date),
                    WithJsonSchema({"type": "string", "format": "date", "examples": ["2025-01-10"]})]
DecimalText = Annotated[Decimal, BeforeValidator(_decimal), WithJsonSchema({
    "anyOf": [{"type": "string", "pattern": _DECIMAL.pattern}, {"type": "integer"}],
    "description": "十进制字符串（或整数），不用浮点数 / a decimal string (or an integer), never a float",
})]
Text = Annotated[StrictStr, Field(max_length=20_000)]
ShortText = Annotated[StrictStr, Field(max_length=500)]
UsccText = Annotated[StrictStr, Field(max_length=64, examples=[EX_LEAD],
                                      description="统一社会信用代码 / unified social credit code")]
Sha256 = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$",
                                    description="文件的 SHA-256（64位小写十六进制）/ SHA-256 of the "
                                                "document, 64 lowercase hex digits")]


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL text cannot hold U+0000: refused here, it would stop the read models there.
        if _contains_nul(data):
            raise ValueError("文本不得包含空字符 U+0000 / text may not contain the NUL character")
        return data


# ------------------------------------------------------------------------------ value objects
class DocumentIn(Strict):
    """来源文件 / source document: its title and the SHA-256 of its bytes."""

    title: ShortText = Field(examples=["江苏集成电路先进封装创新联合体共建协议"])
    sha256: Sha256 = Field(examples=[_EX_SHA])

    def to_domain(self) -> Document:
        return Document(self.title, self.sha256)


def document_of(d: DocumentIn | None) -> Document | None:
    return None if d is None else d.to_domain()


class SpecialisationIn(Strict):
    """专业机构成员的资质 / a specialised member's qualification (§4.2.3)."""

    role: SpecialisedRole
    jiangsu_poc_centre: StrictBool = False
    accreditation: ShortText = ""
    technology_managers: Annotated[StrictInt, Field(ge=0)] = 0
    startup_services: ShortText = ""

    def to_domain(self) -> Specialisation:
        return Specialisation(self.role, self.jiangsu_poc_centre, self.accreditation,
                              self.technology_managers, self.startup_services)


class UnitIn(Strict):
    """单位 / a unit: identity is its USCC."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"uscc": EX_UNIVERSITY, "name": "东南大学", "kind": "university"}]})

    uscc: UsccText
    name: Annotated[StrictStr, Field(max_length=200, examples=["东南大学"])]
    kind: UnitKind
    specialisation: SpecialisationIn | None = None

    def to_domain(self) -> Unit:
        return Unit(self.uscc, self.name, self.kind,
                    None if self.specialisation is None else self.specialisation.to_domain())


class QualificationIn(Strict):
    """牵头单位条件 / evidence that the lead may lead (§4.1). Money in integer yuan."""

    category: LeadCategory
    annual_revenue_yuan: Annotated[StrictInt, Field(ge=0, examples=[12_600_000_000])] | None = None
    rd_intensity: DecimalText | None = Field(default=None, examples=["0.052"])
    has_independent_legal_personality: StrictBool = True

    def to_domain(self) -> LeadQualification:
        return LeadQualification(self.category, self.annual_revenue_yuan, self.rd_intensity,
                                 self.has_independent_legal_personality)


class Dated(Strict):
    effective_date: IsoDate = Field(description="生效日期 / effective date (not in the future)")
    document: DocumentIn | None = None


# ------------------------------------------------------------------------------ formation (§5)
class StartFormation(Dated):
    """设区市科技局遴选牵头单位 / a city bureau selects the lead unit (§5.1)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "江苏集成电路先进封装创新联合体", "city": "nanjing",
        "lead": {"uscc": EX_LEAD, "name": "江苏芯联微电子股份有限公司", "kind": "enterprise"},
        "qualification": {"category": "industry_leader", "annual_revenue_yuan": 12_600_000_000,
                          "rd_intensity": "0.052"},
        "fields": ["integrated_circuits", "third_gen_semiconductors"],
        "technologies": ["choke_point"], "effective_date": "2025-01-10",
        "document": {"title": "牵头单位遴选意见", "sha256": _EX_SHA},
    }]})

    name: Annotated[StrictStr, Field(max_length=200)]
    city: Annotated[StrictStr, Field(max_length=32, description="设区市代码，如 nanjing / city code")]
    lead: UnitIn
    qualification: QualificationIn
    fields: list[Annotated[StrictStr, Field(max_length=64)]] = Field(
        max_length=64, description="§3.1 产业领域代码 / field codes")
    technologies: list[TechnologyKind] = Field(default_factory=list, max_length=8)


class AdmitMember(Dated):
    """牵头单位遴选成员单位 / admit a member unit while forming (§5.2)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "unit": {"uscc": EX_UNIVERSITY, "name": "东南大学", "kind": "university"},
        "effective_date": "2025-01-20"}]})

    unit: UnitIn


class DropMember(Dated):
    """成员单位退出（组建期间）/ a member leaves while forming."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reason": "协商一致退出", "effective_date": "2025-01-25"}]})

    reason: Text = ""


class SignAgreement(Dated):
    """签署共建协议 / the lead and every member sign the co-construction agreement (§5.3)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "signatories": [EX_LEAD, EX_UNIVERSITY, EX_INSTITUTE],
        "mechanisms": [m.value for m in Mechanism],
        "construction_plan": "围绕先进封装关键工艺开展联合攻关，三年内形成标志性产品",
        "effective_date": "2025-02-01",
        "document": {"title": "共建协议", "sha256": _EX_SHA}}]})

    signatories: list[UsccText] = Field(max_length=500)
    mechanisms: list[Mechanism] = Field(max_length=20)
    construction_plan: Text
    no_university_justification: Text | None = None


class SubmitApplication(Dated):
    """牵头单位向设区市科技局申报 / the lead applies to its city bureau (§5.4)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "effective_date": "2025-03-01", "document": {"title": "申报书", "sha256": _EX_SHA}}]})


class Recommend(Dated):
    """设区市科技局审核推荐 / the city bureau recommends, on necessity and feasibility (§5.4)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "necessity": "契合本市产业链“卡脖子”环节攻关需求", "feasibility": "牵头单位研发实力强，成员互补",
        "effective_date": "2025-04-01"}]})

    necessity: Text
    feasibility: Text


class ReturnApplication(Dated):
    """设区市科技局退回申报材料 / the city bureau returns the application for revision."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reason": "建设方案中年度任务不够具体", "effective_date": "2025-03-10"}]})

    reason: Text


class ExpertReview(Dated):
    """省科技厅组织专家评估论证 / the province's expert review of the plan (§5.4)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "opinion": "建设方案目标明确，任务可行", "score": "86.5", "recommended": True,
        "effective_date": "2025-05-01"}]})

    opinion: Text
    score: DecimalText | None = None
    recommended: StrictBool


class Approve(Dated):
    """省科技厅择优认定为省创新联合体 / the province lists the consortium (§5.4)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "effective_date": "2025-06-30",
        "document": {"title": "关于认定省创新联合体的通知", "sha256": _EX_SHA}}]})


class Reject(Dated):
    """不予支持 / the province does not support the application."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reason": "专家评估认为攻关任务与产业需求结合不够紧密", "effective_date": "2025-06-30"}]})

    reason: Text


# ------------------------------------------------------------------------------ operation (§7)
class ChangeIn(Strict):
    """补充协议的一项变动 / one change made by a supplementary agreement."""

    kind: ChangeKind
    description: Text = ""
    unit: UnitIn | None = Field(default=None, description="加入的单位 / the joining unit")
    uscc: UsccText | None = Field(default=None, description="退出或涉及的单位 / the unit concerned")

    def to_domain(self) -> Change:
        return Change(self.kind, self.description,
                      None if self.unit is None else self.unit.to_domain(), self.uscc)


class SupplementaryAgreement(Dated):
    """签署补充协议（认定后唯一的变动方式）/ a supplementary agreement, the only way to change after
    listing (§7.3). The document is required."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "changes": [{"kind": "member_joins", "description": "引入成果转移转化机构",
                     "unit": {"uscc": EX_JOINING, "name": "江苏省技术产权交易所有限公司",
                              "kind": "other",
                              "specialisation": {"role": "technology_transfer",
                                                 "technology_managers": 12}}}],
        "signatories": [EX_LEAD, EX_JOINING], "effective_date": "2025-09-01",
        "document": {"title": "补充协议（一）", "sha256": _EX_SHA}}]})

    changes: list[ChangeIn] = Field(max_length=100)
    signatories: list[UsccText] = Field(max_length=500)
    no_university_justification: Text | None = None


class AnnualReport(Dated):
    """报送年度自评报告（次年5月31日前）/ the year's self-assessment report, due by 31 May of the
    next year (§7.1). ``effective_date`` is the filing date."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "year": 2025,
        "sections": {s.value: f"2025年度{s.value}情况" for s in ReportSection},
        "explanations": {"SA-1": "引入技术产权交易所，已签补充协议"},
        "effective_date": "2026-05-20"}]})

    year: Annotated[StrictInt, Field(ge=2000, le=2100)]
    sections: dict[Annotated[StrictStr, Field(max_length=64)], Text] = Field(
        description="六部分内容 / the six parts: " + ", ".join(s.value for s in ReportSection))
    explanations: dict[Annotated[StrictStr, Field(max_length=32)], Text] = Field(
        default_factory=dict, description="补充协议编号 → 说明 / supplementary agreement id → "
                                          "explanation")


class Evaluation(Dated):
    """第三方机构绩效评价 / a third-party performance evaluation (§7.2)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "agency": "江苏省科技评估中心", "period": "2025—2026",
        "scores": {"协同攻关": "88", "成果转化": "84.5"}, "grade": "good",
        "effective_date": "2026-06-15"}]})

    agency: ShortText
    period: Annotated[StrictStr, Field(max_length=64)]
    scores: dict[Annotated[StrictStr, Field(max_length=200)], DecimalText] = Field(
        default_factory=dict)
    grade: Grade


class OrderRectification(Dated):
    """评价较差，督促整改 / the province orders rectification after a poor evaluation (§7.2)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "requirements": "完善理事会议事规则，明确年度攻关任务", "deadline": "2027-03-31",
        "effective_date": "2026-07-01"}]})

    requirements: Text
    deadline: IsoDate


class CompleteRectification(Dated):
    """整改完成 / the rectification was completed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "outcome": "已完成整改，复核通过", "effective_date": "2026-10-15"}]})

    outcome: Text


class Delisting(Dated):
    """摘牌 / the province delists, on a decision document (§7.2, §7.3)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reason": "poor_evaluation", "effective_date": "2026-11-01",
        "document": {"title": "关于撤销省创新联合体认定的决定", "sha256": _EX_SHA}}]})

    reason: DelistingReason
    explanation: Text = ""


class CreditViolationIn(Dated):
    """失信信息记录 / a dishonesty record against the lead or a member (§7.3). A serious one in the
    application, project work or annual report delists the consortium."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "subject_uscc": EX_LEAD, "severity": "serious", "context": "annual_report",
        "facts": "2025年度报告虚报成果转化收入",
        "legal_basis": "《江苏省创新联合体建设工作指引（试行）》七（三）",
        "deciding_authority": "江苏省科学技术厅", "publicity_start": "2026-09-01",
        "publicity_end": "2029-08-31", "earliest_repair_date": "2027-09-01",
        "remedy": "整改到位满一年后可申请信用修复", "effective_date": "2026-09-01",
        "document": {"title": "失信行为认定决定书", "sha256": _EX_SHA}}]})

    subject_uscc: UsccText
    severity: Severity
    context: ViolationContext
    facts: Text
    legal_basis: Text
    deciding_authority: ShortText
    publicity_start: IsoDate
    publicity_end: IsoDate
    earliest_repair_date: IsoDate
    remedy: Text = ""

    def violation(self) -> CreditViolation:
        return CreditViolation(
            subject_uscc=self.subject_uscc, severity=self.severity, context=self.context,
            facts=self.facts, legal_basis=self.legal_basis,
            deciding_authority=self.deciding_authority, publicity_start=self.publicity_start,
            publicity_end=self.publicity_end, earliest_repair_date=self.earliest_repair_date,
            remedy=self.remedy)


class CreditRepair(Dated):
    """信用修复 / repair of a dishonesty record, not before its earliest repair date."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "measures": "已退回违规资金并公开作出信用承诺", "effective_date": "2027-09-15",
        "document": {"title": "信用修复决定书", "sha256": _EX_SHA}}]})

    measures: Text


class CreditRevocation(Dated):
    """撤销失信记录（认定有误）/ revoke a dishonesty record made in error."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reason": "认定主体有误", "effective_date": "2026-10-01",
        "document": {"title": "撤销决定书", "sha256": _EX_SHA}}]})

    reason: Text


class PublicityEnd(Strict):
    """公示期满 / the record's publicity period is over."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "effective_date": "2026-09-01"}]})

    effective_date: IsoDate


# ------------------------------------------------------------------------------ answers
class CommandResult(BaseModel):
    """The outcome of a command: the consortium's new version (also the ``ETag``) and the ledger
    positions written, for read-your-writes."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "consortium_id": "0b6f3c1e-6a52-4f7e-9a43-7d0f8f1f9b11", "version": 2, "position": 42,
        "positions": [42], "status": "forming"}]})

    consortium_id: str
    version: int
    position: int | None
    positions: list[int]
    status: str = Field(description="forming | submitted | recommended | reviewed | listed | "
                                    "rejected | delisted")
    result: Any = Field(default=None, description="补充协议编号 SA-n、失信记录编号 CR-n 或年度报告"
                                                  "是否逾期 / the agreement id, the record id, or "
                                                  "{late} for a report")
