"""The guideline's rules as named checks. Commands call them before any event is triggered; the
auditor calls the same functions when it replays raw history. Each raises one ``DomainError``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from enum import StrEnum

from domain import errors
from domain.records import Actor, Role
from domain.units import Unit


class Status(StrEnum):
    FORMING = "forming"  # 组建中
    SUBMITTED = "submitted"  # 已报送设区市科技局
    RECOMMENDED = "recommended"  # 设区市已推荐
    REVIEWED = "reviewed"  # 省专家评估论证完成
    LISTED = "listed"  # 省创新联合体（已认定）
    REJECTED = "rejected"  # 未予支持
    DELISTED = "delisted"  # 已摘牌

    @property
    def label_zh(self) -> str:
        return {"forming": "组建中", "submitted": "已申报", "recommended": "设区市已推荐",
                "reviewed": "专家评估完成", "listed": "省创新联合体", "rejected": "未予支持",
                "delisted": "已摘牌"}[self.value]


class Mechanism(StrEnum):
    """Co-operation mechanisms a co-construction agreement must settle (§3.2, §5.3)."""

    RESPONSIBILITIES = "responsibilities"  # 责任落实
    DECISION_MAKING_AND_OPERATION = "decision_making_and_operation"  # 决策运行（研究方向决策）
    FUNDING = "funding"  # 资金筹措（项目资金投入）
    COLLABORATIVE_RD = "collaborative_rd"  # 协同攻关
    INTELLECTUAL_PROPERTY = "intellectual_property"  # 知识产权
    RESULT_APPLICATION = "result_application"  # 成果推广应用
    BENEFIT_SHARING = "benefit_sharing"  # 利益分配


class ReportSection(StrEnum):
    """The six parts of the annual self-assessment report (§7.1)."""

    STRATEGIC_GOALS_AND_MAJOR_TASKS = "strategic_goals_and_major_tasks"  # 战略目标实施和重大项目任务执行
    RD_PLATFORMS = "rd_platforms"  # 高水平研发平台建设
    PEOPLE_AND_TEAMS = "people_and_teams"  # 人员团队建设
    RESULTS_TRANSFERRED = "results_transferred"  # 科技成果转化
    FLAGSHIP_PRODUCTS = "flagship_products"  # 标志性产品应用推广
    NEXT_YEAR_PLAN = "next_year_plan"  # 下年度工作计划


class Grade(StrEnum):
    EXCELLENT = "excellent"  # 优秀
    GOOD = "good"  # 良好
    QUALIFIED = "qualified"  # 合格
    POOR = "poor"  # 较差


class ChangeKind(StrEnum):
    """What a supplementary agreement may change (§7.3). The lead unit is not among them."""

    MEMBER_JOINS = "member_joins"
    MEMBER_WITHDRAWS = "member_withdraws"
    STRATEGIC_PLAN = "strategic_plan"  # 战略规划
    ORGANISATIONAL_STRUCTURE = "organisational_structure"  # 组织架构
    OPERATING_MECHANISM = "operating_mechanism"  # 运行机制
    # Refused whenever requested: kept so that a request for it gets a named refusal.
    LEAD_REPLACED = "lead_replaced"


class DelistingReason(StrEnum):
    POOR_EVALUATION = "poor_evaluation"  # 评价结果较差
    SERIOUS_DISHONESTY = "serious_dishonesty"  # 严重弄虚作假等失信行为
    OTHER = "other"


class Severity(StrEnum):
    MINOR = "minor"  # 轻微
    GENERAL = "general"  # 一般
    SERIOUS = "serious"  # 严重

    @property
    def label_zh(self) -> str:
        return {"minor": "轻微", "general": "一般", "serious": "严重"}[self.value]


class ViolationContext(StrEnum):
    """Where the dishonesty happened (§7.3: 组织申报、项目实施、年度报告)."""

    APPLICATION = "application"
    PROJECT = "project"
    ANNUAL_REPORT = "annual_report"
    OTHER = "other"


#: §7.3 — a serious violation in these contexts delists the consortium.
DELISTING_CONTEXTS = frozenset(
    {ViolationContext.APPLICATION, ViolationContext.PROJECT, ViolationContext.ANNUAL_REPORT}
)

_CITY, _PROVINCE, _AGENCY = Role.CITY_BUREAU, Role.PROVINCE, Role.EVALUATION_AGENCY

#: Which role records which step. City bureaus run formation in their own city (§5.1–§5.4);
#: the province reviews, approves and supervises (§5.4, §7); third-party agencies evaluate (§7.2).
PERMITTED_ROLES: dict[str, frozenset[Role]] = {
    "select_lead": frozenset({_CITY}),
    "admit_member": frozenset({_CITY}),
    "drop_member": frozenset({_CITY}),
    "sign_agreement": frozenset({_CITY}),
    "submit_application": frozenset({_CITY}),
    "recommend": frozenset({_CITY}),
    "return_application": frozenset({_CITY}),
    "record_expert_review": frozenset({_PROVINCE}),
    "approve": frozenset({_PROVINCE}),
    "reject": frozenset({_PROVINCE}),
    "sign_supplementary_agreement": frozenset({_PROVINCE}),
    "file_annual_report": frozenset({_PROVINCE}),
    "record_evaluation": frozenset({_PROVINCE, _AGENCY}),
    "order_rectification": frozenset({_PROVINCE}),
    "complete_rectification": frozenset({_PROVINCE}),
    "delist": frozenset({_PROVINCE}),
    "record_credit_violation": frozenset({_PROVINCE}),
    "repair_credit": frozenset({_PROVINCE}),
    "revoke_credit": frozenset({_PROVINCE}),
    "end_credit_publicity": frozenset({_PROVINCE}),
}


def check_actor_may(command: str, actor: Actor, consortium_city: str) -> None:
    """The actor's role may record this command, and a city bureau only in its own city."""
    allowed = PERMITTED_ROLES[command]
    if actor.role not in allowed:
        raise errors.RoleNotPermitted(
            f"{actor.role.label_zh}无权办理“{command}” / role {actor.role.value} may not {command}",
            command=command, role=actor.role.value,
            allowed=sorted(r.value for r in allowed))
    if actor.role is Role.CITY_BUREAU and actor.city != consortium_city:
        raise errors.OutsideJurisdiction(
            f"该创新联合体属于{consortium_city}，不属于{actor.city} / the consortium belongs to "
            f"{consortium_city}, not {actor.city}", city=consortium_city)


def check_effective_date(on: date, today: date, previous: date | None) -> None:
    """Effective dates are never in the future and never before the consortium's previous event."""
    if on > today:
        raise errors.EffectiveDateInFuture(
            f"生效日期{on}晚于今天{today} / effective date {on} is after today {today}",
            field="effective_date", effective_date=on.isoformat())
    if previous is not None and on < previous:
        raise errors.EffectiveDateBeforePreviousEvent(
            f"生效日期{on}早于上一事项的{previous} / effective date {on} is before the previous "
            f"event's {previous}", field="effective_date", previous=previous.isoformat())


def check_status(command: str, status: Status, allowed: Iterable[Status]) -> None:
    """The command is valid in the consortium's current state; nothing but credit after delisting."""
    allowed = frozenset(allowed)
    if status in allowed:
        return
    if status is Status.DELISTED:
        raise errors.ConsortiumDelisted(
            "已摘牌的创新联合体只能记录信用信息 / a delisted consortium takes only credit records",
            command=command)
    raise errors.InvalidTransition(
        f"“{status.label_zh}”状态下不能办理“{command}” / cannot {command} while {status.value}",
        command=command, status=status.value, allowed=sorted(s.value for s in allowed))


def check_change_after_listing(command: str) -> None:
    """After listing, members, plan, structure and mechanisms change only by a supplementary
    agreement (§7.3)."""
    raise errors.ChangeRequiresSupplementaryAgreement(
        "认定后成员、战略规划、组织架构、运行机制的变动须签署补充协议 / after listing, members, "
        "plan, structure and mechanisms change only through a supplementary agreement",
        command=command)


def check_not_lead(lead_uscc: str, uscc: str, what: str) -> None:
    """The lead unit can never change and never leave (§7.3)."""
    if uscc == lead_uscc:
        raise errors.LeadUnitCannotChange(
            f"牵头单位不可发生变动，不能{what} / the lead unit can never change: cannot {what}",
            uscc=uscc)


def check_new_member(lead_uscc: str, members: Iterable[str], unit: Unit) -> None:
    """No unit appears twice; the lead cannot be admitted again as a member."""
    if unit.uscc == lead_uscc:
        raise errors.DuplicateMember(
            "该单位已是牵头单位 / this unit is already the lead unit", uscc=unit.uscc)
    if unit.uscc in set(members):
        raise errors.DuplicateMember(
            f"成员单位{unit.uscc}重复 / {unit.uscc} is already a member", uscc=unit.uscc)


def check_university_or_institute(units: Iterable[Unit], justification: str | None) -> None:
    """In principle at least one university or research institute, or a recorded justification."""
    if any(u.is_university_or_institute for u in units):
        return
    if justification and justification.strip():
        return
    raise errors.UniversityOrInstituteRequired(
        "原则上应包含高校或科研院所，否则须说明理由 / at least one university or research institute "
        "is required, or a recorded justification (§4.2)")


def check_mechanisms(mechanisms: Iterable[Mechanism]) -> None:
    """A co-construction agreement settles every mechanism of §3.2/§5.3."""
    missing = [m.value for m in Mechanism if m not in set(mechanisms)]
    if missing:
        raise errors.AgreementIncomplete(
            f"共建协议缺少合作机制：{', '.join(missing)} / the agreement does not cover: "
            f"{', '.join(missing)}", missing=missing, field="mechanisms")


def check_signed_by(required: Iterable[str], signatories: Iterable[str],
                    error: type[errors.DomainError]) -> None:
    missing = sorted(set(required) - set(signatories))
    if missing:
        raise error(f"以下单位未签署：{', '.join(missing)} / not signed by: {', '.join(missing)}",
                    missing=missing, field="signatories")


def annual_report_deadline(year: int) -> date:
    """The report for ``year`` is due by 31 May of the next year (§7.1)."""
    return date(year + 1, 5, 31)


def is_late(year: int, filed_on: date) -> bool:
    return filed_on > annual_report_deadline(year)


def check_annual_report(year: int, filed_on: date, listed_on: date,
                        filed_years: Iterable[int]) -> None:
    """One report per year, for a year that has ended, not before the listing year."""
    if year in set(filed_years):
        raise errors.AnnualReportAlreadyFiled(
            f"{year}年度报告已报送 / the {year} report was already filed", year=year)
    if year < listed_on.year:
        raise errors.AnnualReportYearNotAllowed(
            f"{year}年早于认定年度{listed_on.year} / {year} is before the listing year "
            f"{listed_on.year}", year=year, field="year")
    if filed_on.year <= year:
        raise errors.AnnualReportYearNotAllowed(
            f"{year}年度尚未结束 / the year {year} has not ended on {filed_on}", year=year,
            field="year")


def check_report_sections(sections: dict[str, str]) -> None:
    missing = [s.value for s in ReportSection if not sections.get(s.value, "").strip()]
    if missing:
        raise errors.AnnualReportIncomplete(
            f"年度报告缺少：{', '.join(missing)} / the report lacks: {', '.join(missing)}",
            missing=missing, field="sections")


def check_explanations(agreement_ids: Iterable[str], explanations: dict[str, str]) -> None:
    """Every supplementary agreement of the year is explained in that year's report (§7.3)."""
    missing = sorted(a for a in agreement_ids if not explanations.get(a, "").strip())
    if missing:
        raise errors.SupplementaryAgreementNotExplained(
            f"年度报告未说明补充协议：{', '.join(missing)} / the report does not explain "
            f"supplementary agreements: {', '.join(missing)}", missing=missing,
            field="explanations")


#: In which states each command on an existing consortium is valid: the aggregate's commands
#: check the same states (``check_status``). Credit records are kept in every state (§7.3).
COMMAND_STATUSES: dict[str, frozenset[Status]] = {
    **dict.fromkeys(("admit_member", "drop_member", "sign_agreement", "submit_application"),
                    frozenset({Status.FORMING})),
    "recommend": frozenset({Status.SUBMITTED}),
    "return_application": frozenset({Status.SUBMITTED}),
    "record_expert_review": frozenset({Status.RECOMMENDED}),
    "approve": frozenset({Status.REVIEWED}),
    "reject": frozenset({Status.RECOMMENDED, Status.REVIEWED}),
    **dict.fromkeys(("sign_supplementary_agreement", "file_annual_report", "record_evaluation",
                     "order_rectification", "complete_rectification", "delist"),
                    frozenset({Status.LISTED})),
    **dict.fromkeys(("record_credit_violation", "repair_credit", "revoke_credit",
                     "end_credit_publicity"), frozenset(Status)),
}


def may_record(command: str, actor: Actor, consortium_city: str | None = None) -> bool:
    """Whether ``check_actor_may`` lets the actor record the command (in the consortium's city;
    for a new consortium, in the actor's own)."""
    try:
        check_actor_may(command, actor, consortium_city or actor.city or "")
    except (errors.RoleNotPermitted, errors.OutsideJurisdiction):
        return False
    return True


def available_commands(status: Status | str, actor: Actor, consortium_city: str) -> list[str]:
    """The commands the actor may record on a consortium in this state, in lifecycle order."""
    current = Status(status)
    return [command for command, states in COMMAND_STATUSES.items()
            if current in states and may_record(command, actor, consortium_city)]
