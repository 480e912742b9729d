"""Every rule the Consortium aggregate enforces: one test that breaks it (the named DomainError is
raised and no event is triggered) and one that keeps it. No database: aggregates in memory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from domain import errors
from domain.consortium import Change, Consortium, CreditViolation
from domain.records import Actor, Document, Role
from domain.rules import (
    PERMITTED_ROLES,
    ChangeKind,
    DelistingReason,
    Grade,
    Mechanism,
    ReportSection,
    Severity,
    Status,
    ViolationContext,
    annual_report_deadline,
)
from domain.units import LeadCategory, LeadQualification, Unit, UnitKind
from tests.factories import (
    AGENCY,
    AUDITOR,
    NANJING,
    PROVINCE,
    SUZHOU,
    TODAY,
    D,
    doc,
    forming,
    lead_qualification,
    listed,
    recommended,
    reviewed,
    sections,
    signed,
    submitted,
    unit,
    with_members,
)

CREDIT_CONSUMER = Actor("credit.1", Role.CREDIT_CONSUMER, "江苏省公共信用信息中心")
ALL_ACTORS = [NANJING, PROVINCE, AGENCY, AUDITOR, CREDIT_CONSUMER]
ON = D(2026, 6, 1)  # a date after every builder's last event
CREDIT_EVENTS = {"CreditViolationRecorded", "CreditRepaired", "CreditRevoked",
                 "CreditPublicityEnded"}


# --- helpers --------------------------------------------------------------------------------------
def refused(c: Consortium, error: type[errors.DomainError], fn: Callable[..., Any], *args: Any,
            **kw: Any) -> errors.DomainError:
    """``fn`` raises ``error`` and the aggregate triggers no event."""
    version = c.version
    with pytest.raises(error) as info:
        fn(*args, **kw)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert c.version == version, "a refused command must not trigger an event"
    return info.value


def accepted(c: Consortium, fn: Callable[..., Any], *args: Any, events: int = 1,
             **kw: Any) -> Any:
    version = c.version
    result = fn(*args, **kw)
    assert c.version == version + events
    return result


def collect(c: Consortium) -> list[Any]:
    """Drain the aggregate's pending events (typed loosely: event attributes are dynamic)."""
    return list(c.collect_events())


def event_names(c: Consortium) -> list[str]:
    return [type(e).__name__ for e in collect(c)]


def member(c: Consortium, kind: UnitKind) -> Unit:
    return next(u for u in c.members.values() if u.kind is kind)


def violation(subject: str, *, severity: Severity = Severity.MINOR,
              context: ViolationContext = ViolationContext.OTHER, start: date = D(2025, 1, 10),
              repair: date = D(2025, 7, 10), end: date = D(2026, 1, 10), facts: str = "虚报材料",
              legal_basis: str = "《江苏省社会信用条例》",
              authority: str = "江苏省科学技术厅") -> CreditViolation:
    return CreditViolation(subject_uscc=subject, severity=severity, context=context, facts=facts,
                           legal_basis=legal_basis, deciding_authority=authority,
                           publicity_start=start, publicity_end=end, earliest_repair_date=repair)


def record(c: Consortium, v: CreditViolation, on: date = D(2025, 1, 10), *,
           actor: Actor = PROVINCE, document: Document | None = None) -> str:
    return c.record_credit_violation(v, actor=actor, effective_date=on, today=TODAY,
                                     document=document or doc("失信认定书"))


def evaluate(c: Consortium, grade: Grade, on: date = D(2025, 3, 1), actor: Actor = AGENCY) -> None:
    c.record_evaluation(agency="江苏省科技评估中心", period="2024", scores={"总分": Decimal("60")},
                        grade=grade, actor=actor, effective_date=on, today=TODAY)


def supplement(c: Consortium, changes: list[Change], signatories: list[str] | None = None, *,
               on: date = D(2025, 3, 1), document: Document | None = None,
               justification: str | None = None, actor: Actor = PROVINCE) -> str:
    if signatories is None:
        joining = [ch.unit.uscc for ch in changes if ch.unit is not None]
        signatories = [c.lead_uscc, *c.members, *joining]
    return c.sign_supplementary_agreement(
        changes=changes, signatories=signatories, no_university_justification=justification,
        actor=actor, effective_date=on, today=TODAY,
        document=document if document is not None else doc("补充协议"))


def report(c: Consortium, year: int, on: date, *, secs: dict[str, str] | None = None,
           explanations: dict[str, str] | None = None) -> bool:
    return c.file_annual_report(year=year, sections=secs if secs is not None else sections(),
                                explanations=explanations, actor=PROVINCE, effective_date=on,
                                today=TODAY)


def rejected() -> Consortium:
    c = reviewed()
    c.reject(reason="综合排名靠后", actor=PROVINCE, effective_date=D(2024, 6, 30), today=TODAY)
    return c


def delisted() -> Consortium:
    c = listed()
    c.delist(reason=DelistingReason.OTHER, explanation="自愿退出", actor=PROVINCE,
             effective_date=D(2025, 12, 1), today=TODAY, document=doc("摘牌决定"))
    return c


def poor() -> Consortium:
    c = listed()
    evaluate(c, Grade.POOR)
    return c


def rectifying() -> Consortium:
    c = poor()
    c.order_rectification(requirements="限期整改", deadline=D(2025, 9, 1), actor=PROVINCE,
                          effective_date=D(2025, 3, 10), today=TODAY)
    return c


def with_record() -> Consortium:
    c = listed()
    record(c, violation(c.lead_uscc))
    return c


def no_university_members() -> Consortium:
    c = forming()
    for _ in range(2):
        c.admit_member(unit(UnitKind.ENTERPRISE), actor=NANJING, effective_date=D(2024, 1, 20),
                       today=TODAY)
    return c


# --- one call per command, for the tables below ---------------------------------------------------
Call = Callable[[Consortium, Actor, date], Any]

COMMANDS: dict[str, tuple[Callable[[], Consortium], Call]] = {
    "admit_member": (forming, lambda c, a, on: c.admit_member(
        unit(UnitKind.UNIVERSITY), actor=a, effective_date=on, today=TODAY)),
    "drop_member": (with_members, lambda c, a, on: c.drop_member(
        member(c, UnitKind.ENTERPRISE).uscc, reason="退出", actor=a, effective_date=on,
        today=TODAY)),
    "sign_agreement": (with_members, lambda c, a, on: c.sign_agreement(
        signatories=[c.lead_uscc, *c.members], mechanisms=list(Mechanism),
        construction_plan="建设方案", actor=a, effective_date=on, today=TODAY, document=doc())),
    "submit_application": (signed, lambda c, a, on: c.submit_application(
        actor=a, effective_date=on, today=TODAY)),
    "recommend": (submitted, lambda c, a, on: c.recommend(
        necessity="必要", feasibility="可行", actor=a, effective_date=on, today=TODAY)),
    "return_application": (submitted, lambda c, a, on: c.return_application(
        reason="补充材料", actor=a, effective_date=on, today=TODAY)),
    "record_expert_review": (recommended, lambda c, a, on: c.record_expert_review(
        opinion="同意", score=Decimal("88.5"), recommended=True, actor=a, effective_date=on,
        today=TODAY)),
    "approve": (reviewed, lambda c, a, on: c.approve(
        actor=a, effective_date=on, today=TODAY, document=doc("认定通知"))),
    "reject": (reviewed, lambda c, a, on: c.reject(
        reason="不予支持", actor=a, effective_date=on, today=TODAY)),
    "sign_supplementary_agreement": (listed, lambda c, a, on: c.sign_supplementary_agreement(
        changes=[Change(ChangeKind.STRATEGIC_PLAN, "调整战略规划")],
        signatories=[c.lead_uscc, *c.members], actor=a, effective_date=on, today=TODAY,
        document=doc("补充协议"))),
    "file_annual_report": (listed, lambda c, a, on: c.file_annual_report(
        year=2025, sections=sections(), actor=a, effective_date=on, today=TODAY)),
    "record_evaluation": (listed, lambda c, a, on: c.record_evaluation(
        agency="评估中心", period="2025", scores={"总分": Decimal("90")}, grade=Grade.GOOD,
        actor=a, effective_date=on, today=TODAY)),
    "order_rectification": (poor, lambda c, a, on: c.order_rectification(
        requirements="限期整改", deadline=on + timedelta(days=90), actor=a, effective_date=on,
        today=TODAY)),
    "complete_rectification": (rectifying, lambda c, a, on: c.complete_rectification(
        outcome="整改完成", actor=a, effective_date=on, today=TODAY)),
    "delist": (listed, lambda c, a, on: c.delist(
        reason=DelistingReason.OTHER, explanation="自愿退出", actor=a, effective_date=on,
        today=TODAY, document=doc("摘牌决定"))),
    "record_credit_violation": (listed, lambda c, a, on: c.record_credit_violation(
        violation(c.lead_uscc), actor=a, effective_date=on, today=TODAY, document=doc())),
    "repair_credit": (with_record, lambda c, a, on: c.repair_credit(
        "CR-1", measures="已整改", actor=a, effective_date=on, today=TODAY, document=doc())),
    "revoke_credit": (with_record, lambda c, a, on: c.revoke_credit(
        "CR-1", reason="认定有误", actor=a, effective_date=on, today=TODAY, document=doc())),
    "end_credit_publicity": (with_record, lambda c, a, on: c.end_credit_publicity(
        "CR-1", actor=a, effective_date=on, today=TODAY)),
}
CREDIT_COMMANDS = ["record_credit_violation", "repair_credit", "revoke_credit",
                   "end_credit_publicity"]
NON_CREDIT_COMMANDS = [n for n in COMMANDS if n not in CREDIT_COMMANDS]
CITY_COMMANDS = [n for n, roles in PERMITTED_ROLES.items()
                 if Role.CITY_BUREAU in roles and n != "select_lead"]


def _permitted(command: str) -> list[Actor]:
    return [a for a in ALL_ACTORS if a.role in PERMITTED_ROLES[command]]


def _forbidden(command: str) -> list[Actor]:
    return [a for a in ALL_ACTORS if a.role not in PERMITTED_ROLES[command]]


def test_command_table_covers_every_permitted_command():
    assert set(COMMANDS) | {"select_lead"} == set(PERMITTED_ROLES)


# --- role permissions and jurisdiction ------------------------------------------------------------
@pytest.mark.parametrize(("command", "actor"), [
    (n, a) for n in COMMANDS for a in _permitted(n)], ids=lambda x: getattr(x, "user_id", x))
def test_command_is_accepted_from_a_permitted_role(command, actor):
    setup, call = COMMANDS[command]
    c = setup()
    accepted(c, call, c, actor, ON)
    assert c.last_actor == actor
    assert c.last_effective_date == ON


@pytest.mark.parametrize(("command", "actor"), [
    (n, a) for n in COMMANDS for a in _forbidden(n)], ids=lambda x: getattr(x, "user_id", x))
def test_command_is_refused_to_other_roles(command, actor):
    setup, call = COMMANDS[command]
    c = setup()
    err = refused(c, errors.RoleNotPermitted, call, c, actor, ON)
    assert err.details["command"] == command
    assert err.details["role"] == actor.role.value


def test_read_only_roles_may_record_nothing():
    for allowed in PERMITTED_ROLES.values():
        assert Role.AUDITOR not in allowed
        assert Role.CREDIT_CONSUMER not in allowed


def test_evaluation_agency_records_only_evaluations():
    assert [n for n, roles in PERMITTED_ROLES.items() if Role.EVALUATION_AGENCY in roles] == [
        "record_evaluation"]


@pytest.mark.parametrize("command", CITY_COMMANDS)
def test_city_bureau_is_refused_outside_its_jurisdiction(command):
    setup, call = COMMANDS[command]
    c = setup()
    assert c.city == "nanjing"
    err = refused(c, errors.OutsideJurisdiction, call, c, SUZHOU, ON)
    assert err.details["city"] == "nanjing"


def test_city_bureau_acts_in_its_own_city():
    c = forming(city="suzhou")
    accepted(c, c.admit_member, unit(UnitKind.UNIVERSITY), actor=SUZHOU,
             effective_date=D(2024, 2, 1), today=TODAY)
    refused(c, errors.OutsideJurisdiction, c.admit_member, unit(), actor=NANJING,
            effective_date=D(2024, 2, 1), today=TODAY)


def test_select_lead_by_the_city_bureau_of_the_city():
    c = Consortium.select_lead(name="联合体", city="nanjing", lead=unit(),
                               qualification=lead_qualification(), fields=["quantum"],
                               actor=NANJING, effective_date=D(2024, 1, 1), today=TODAY)
    assert c.status is Status.FORMING
    assert event_names(c) == ["LeadUnitSelected"]


def test_select_lead_under_an_id_the_caller_names_replays_under_that_id():
    named = UUID("0b7c2a7e-3f61-5d2a-9a51-6c1f0e2d4b88")
    c = Consortium.select_lead(name="联合体", city="nanjing", lead=unit(),
                               qualification=lead_qualification(), fields=["quantum"],
                               actor=NANJING, effective_date=D(2024, 1, 1), today=TODAY,
                               consortium_id=named)
    events = collect(c)
    assert c.id == named and events[0].originator_id == named
    replayed = events[0].mutate(None)
    assert replayed.id == named and replayed.lead == c.lead


@pytest.mark.parametrize("actor", [PROVINCE, AGENCY, AUDITOR, CREDIT_CONSUMER])
def test_select_lead_is_refused_to_other_roles(actor):
    with pytest.raises(errors.RoleNotPermitted):
        Consortium.select_lead(name="联合体", city="nanjing", lead=unit(),
                               qualification=lead_qualification(), fields=["quantum"],
                               actor=actor, effective_date=D(2024, 1, 1), today=TODAY)


def test_select_lead_is_refused_outside_jurisdiction():
    with pytest.raises(errors.OutsideJurisdiction):
        Consortium.select_lead(name="联合体", city="nanjing", lead=unit(),
                               qualification=lead_qualification(), fields=["quantum"],
                               actor=SUZHOU, effective_date=D(2024, 1, 1), today=TODAY)


def test_select_lead_needs_a_name():
    with pytest.raises(errors.InvalidValue):
        Consortium.select_lead(name="  ", city="nanjing", lead=unit(),
                               qualification=lead_qualification(), fields=["quantum"],
                               actor=NANJING, effective_date=D(2024, 1, 1), today=TODAY)


# --- effective dates ------------------------------------------------------------------------------
@pytest.mark.parametrize("command", list(COMMANDS))
def test_effective_date_in_the_future_is_refused(command):
    setup, call = COMMANDS[command]
    c = setup()
    actor = _permitted(command)[0]
    refused(c, errors.EffectiveDateInFuture, call, c, actor, TODAY + timedelta(days=1))


@pytest.mark.parametrize("command", list(COMMANDS))
def test_effective_date_today_is_accepted(command):
    setup, call = COMMANDS[command]
    c = setup()
    accepted(c, call, c, _permitted(command)[0], TODAY)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_effective_date_before_the_previous_event_is_refused(command):
    setup, call = COMMANDS[command]
    c = setup()
    previous = c.last_effective_date
    err = refused(c, errors.EffectiveDateBeforePreviousEvent, call, c, _permitted(command)[0],
                  previous - timedelta(days=1))
    assert err.details["previous"] == previous.isoformat()


@pytest.mark.parametrize("command", ["admit_member", "drop_member", "sign_agreement",
                                     "submit_application", "recommend", "return_application",
                                     "record_expert_review", "approve", "reject",
                                     "sign_supplementary_agreement", "record_evaluation",
                                     "order_rectification", "complete_rectification", "delist",
                                     "record_credit_violation", "revoke_credit"])
def test_effective_date_equal_to_the_previous_event_is_accepted(command):
    setup, call = COMMANDS[command]
    c = setup()
    accepted(c, call, c, _permitted(command)[0], c.last_effective_date)


def test_select_lead_refuses_a_future_effective_date():
    with pytest.raises(errors.EffectiveDateInFuture):
        Consortium.select_lead(name="联合体", city="nanjing", lead=unit(),
                               qualification=lead_qualification(), fields=["quantum"],
                               actor=NANJING, effective_date=TODAY + timedelta(days=1),
                               today=TODAY)


def test_select_lead_accepts_today():
    c = Consortium.select_lead(name="联合体", city="nanjing", lead=unit(),
                               qualification=lead_qualification(), fields=["quantum"],
                               actor=NANJING, effective_date=TODAY, today=TODAY)
    assert c.last_effective_date == TODAY


def test_command_without_today_is_refused():
    c = forming()
    refused(c, errors.InvalidValue, c.admit_member, unit(), actor=NANJING,
            effective_date=D(2024, 2, 1), today=None)  # type: ignore[arg-type]


# --- status transitions ---------------------------------------------------------------------------
def test_formation_path_moves_through_every_status():
    c = forming()
    assert c.status is Status.FORMING
    with_members(c)
    signed(c)
    assert c.status is Status.FORMING
    submitted(c)
    assert c.status is Status.SUBMITTED
    recommended(c)
    assert c.status is Status.RECOMMENDED
    reviewed(c)
    assert c.status is Status.REVIEWED
    listed(c)
    assert c.status is Status.LISTED
    assert c.listed_on == D(2024, 6, 30)


def test_returned_application_goes_back_to_forming_and_can_be_resubmitted():
    c = submitted()
    c.return_application(reason="补充材料", actor=NANJING, effective_date=D(2024, 3, 5),
                         today=TODAY)
    assert c.status is Status.FORMING
    c.submit_application(actor=NANJING, effective_date=D(2024, 3, 10), today=TODAY)
    assert c.status is Status.SUBMITTED


@pytest.mark.parametrize("setup", [recommended, reviewed])
def test_province_rejects_a_recommended_or_reviewed_application(setup):
    c = setup()
    accepted(c, c.reject, reason="不予支持", actor=PROVINCE, effective_date=D(2024, 6, 1),
             today=TODAY)
    assert c.status is Status.REJECTED
    assert c.rejected_on == D(2024, 6, 1)


WRONG_STAGES = [
    ("admit_member", submitted), ("admit_member", recommended), ("admit_member", reviewed),
    ("admit_member", rejected), ("drop_member", submitted), ("drop_member", rejected),
    ("sign_agreement", submitted), ("sign_agreement", reviewed),
    ("submit_application", submitted), ("submit_application", listed),
    ("submit_application", rejected),
    ("recommend", signed), ("recommend", recommended), ("recommend", listed),
    ("return_application", signed), ("return_application", recommended),
    ("record_expert_review", submitted), ("record_expert_review", reviewed),
    ("approve", recommended), ("approve", listed), ("approve", rejected),
    ("reject", submitted), ("reject", listed), ("reject", rejected),
    ("sign_supplementary_agreement", signed), ("sign_supplementary_agreement", reviewed),
    ("sign_supplementary_agreement", rejected),
    ("file_annual_report", reviewed), ("file_annual_report", rejected),
    ("record_evaluation", submitted), ("record_evaluation", reviewed),
    ("order_rectification", reviewed), ("complete_rectification", signed),
    ("delist", reviewed), ("delist", forming), ("delist", rejected),
]


@pytest.mark.parametrize(("command", "setup"), WRONG_STAGES,
                         ids=[f"{n}-{s.__name__}" for n, s in WRONG_STAGES])
def test_command_in_the_wrong_status_is_an_invalid_transition(command, setup):
    c = setup()
    _, call = COMMANDS[command]
    err = refused(c, errors.InvalidTransition, call, c, _permitted(command)[0], ON)
    assert err.details["command"] == command
    assert err.details["status"] == c.status.value


# --- the lead unit can never change (§7.3) --------------------------------------------------------
def test_lead_unit_cannot_be_dropped_while_forming():
    c = with_members()
    err = refused(c, errors.LeadUnitCannotChange, c.drop_member, c.lead_uscc, actor=NANJING,
                  effective_date=D(2024, 2, 1), today=TODAY)
    assert err.details["uscc"] == c.lead_uscc
    assert c.lead_uscc not in c.members


def test_lead_unit_cannot_be_dropped_after_listing():
    c = listed()
    refused(c, errors.LeadUnitCannotChange, c.drop_member, c.lead_uscc, actor=NANJING,
            effective_date=ON, today=TODAY)


def test_lead_unit_cannot_withdraw_by_supplementary_agreement():
    c = listed()
    lead = c.lead
    refused(c, errors.LeadUnitCannotChange, supplement, c,
            [Change(ChangeKind.MEMBER_WITHDRAWS, "牵头单位退出", uscc=c.lead_uscc)])
    assert c.lead == lead


def test_lead_unit_cannot_be_replaced_by_supplementary_agreement():
    c = listed()
    lead = c.lead
    newcomer = unit(UnitKind.ENTERPRISE)
    refused(c, errors.LeadUnitCannotChange, supplement, c,
            [Change(ChangeKind.LEAD_REPLACED, "更换牵头单位", unit=newcomer,
                    uscc=newcomer.uscc)])
    assert c.lead == lead


def test_lead_replacement_hidden_among_valid_changes_is_refused_as_a_whole():
    c = listed()
    members = dict(c.members)
    joining = unit(UnitKind.RESEARCH_INSTITUTE)
    refused(c, errors.LeadUnitCannotChange, supplement, c, [
        Change(ChangeKind.MEMBER_JOINS, "新成员加入", unit=joining),
        Change(ChangeKind.LEAD_REPLACED, "更换牵头单位"),
    ])
    assert c.members == members
    assert c.supplementary_agreements == []


def test_lead_unit_cannot_rejoin_as_member_by_supplementary_agreement():
    c = listed()
    clone = Unit(c.lead_uscc, "改名后的牵头单位", UnitKind.RESEARCH_INSTITUTE)
    refused(c, errors.LeadUnitCannotChange, supplement, c,
            [Change(ChangeKind.MEMBER_JOINS, "加入", unit=clone)])
    assert c.lead_uscc not in c.members


def test_lead_unit_change_is_refused_whoever_asks():
    c = listed()
    for actor in ALL_ACTORS:
        with pytest.raises((errors.LeadUnitCannotChange, errors.RoleNotPermitted)):
            supplement(c, [Change(ChangeKind.LEAD_REPLACED, "更换")], actor=actor)
    assert c.supplementary_agreements == []


def test_lead_unit_cannot_be_admitted_again_as_a_member():
    c = forming()
    clone = Unit(c.lead_uscc, "另一名称", UnitKind.UNIVERSITY)
    err = refused(c, errors.DuplicateMember, c.admit_member, clone, actor=NANJING,
                  effective_date=D(2024, 2, 1), today=TODAY)
    assert err.details["uscc"] == c.lead_uscc
    assert c.lead_uscc not in c.members


def test_lead_unit_stays_through_the_whole_life():
    c = listed()
    lead = c.lead
    supplement(c, [Change(ChangeKind.MEMBER_JOINS, "加入", unit=unit(UnitKind.UNIVERSITY)),
                   Change(ChangeKind.MEMBER_WITHDRAWS, "退出",
                          uscc=member(c, UnitKind.ENTERPRISE).uscc)])
    supplement(c, [Change(ChangeKind.ORGANISATIONAL_STRUCTURE, "调整理事会")],
               on=D(2025, 4, 1))
    c.delist(reason=DelistingReason.OTHER, explanation="退出", actor=PROVINCE,
             effective_date=D(2025, 5, 1), today=TODAY, document=doc())
    assert c.lead == lead
    assert lead.uscc not in c.members
    assert lead.uscc not in c.former_members


def test_change_kinds_offer_no_way_to_change_the_lead_but_a_named_refusal():
    assert ChangeKind.LEAD_REPLACED in ChangeKind
    for kind in ChangeKind:
        if kind is ChangeKind.LEAD_REPLACED:
            continue
        assert "lead" not in kind.value


# --- after listing, changes only by supplementary agreement ---------------------------------------
def test_admitting_a_member_after_listing_requires_a_supplementary_agreement():
    c = listed()
    refused(c, errors.ChangeRequiresSupplementaryAgreement, c.admit_member,
            unit(UnitKind.UNIVERSITY), actor=NANJING, effective_date=ON, today=TODAY)


def test_dropping_a_member_after_listing_requires_a_supplementary_agreement():
    c = listed()
    refused(c, errors.ChangeRequiresSupplementaryAgreement, c.drop_member,
            member(c, UnitKind.ENTERPRISE).uscc, actor=NANJING, effective_date=ON, today=TODAY)


def test_signing_a_new_agreement_after_listing_requires_a_supplementary_agreement():
    c = listed()
    refused(c, errors.ChangeRequiresSupplementaryAgreement, c.sign_agreement,
            signatories=[c.lead_uscc, *c.members], mechanisms=list(Mechanism),
            construction_plan="新方案", actor=NANJING, effective_date=ON, today=TODAY)


def test_member_joins_and_withdraws_after_listing_by_supplementary_agreement():
    c = listed()
    joining = unit(UnitKind.ENTERPRISE)
    leaving = member(c, UnitKind.ENTERPRISE)
    sa = accepted(c, supplement, c, [
        Change(ChangeKind.MEMBER_JOINS, "加入", unit=joining),
        Change(ChangeKind.MEMBER_WITHDRAWS, "退出", uscc=leaving.uscc)])
    assert sa == "SA-1"
    assert joining.uscc in c.members
    assert leaving.uscc not in c.members
    assert c.former_members[leaving.uscc] == leaving
    assert c.supplementary_agreements[0].changes[0].unit == joining


def test_former_member_may_rejoin_by_a_later_supplementary_agreement():
    c = listed()
    leaving = member(c, UnitKind.ENTERPRISE)
    supplement(c, [Change(ChangeKind.MEMBER_WITHDRAWS, "退出", uscc=leaving.uscc)])
    sa = supplement(c, [Change(ChangeKind.MEMBER_JOINS, "重新加入", unit=leaving)],
                    on=D(2025, 6, 1))
    assert sa == "SA-2"
    assert leaving.uscc in c.members
    assert leaving.uscc not in c.former_members


@pytest.mark.parametrize("kind", [ChangeKind.STRATEGIC_PLAN, ChangeKind.ORGANISATIONAL_STRUCTURE,
                                  ChangeKind.OPERATING_MECHANISM])
def test_plan_structure_and_mechanism_change_by_supplementary_agreement(kind):
    c = listed()
    accepted(c, supplement, c, [Change(kind, "调整")])
    assert c.supplementary_agreements[0].changes[0].kind is kind


# --- university or research institute (§4.2) ------------------------------------------------------
def test_agreement_without_university_or_institute_is_refused():
    c = no_university_members()
    refused(c, errors.UniversityOrInstituteRequired, c.sign_agreement,
            signatories=[c.lead_uscc, *c.members], mechanisms=list(Mechanism),
            construction_plan="方案", actor=NANJING, effective_date=D(2024, 2, 1), today=TODAY)


def test_agreement_without_university_with_blank_justification_is_refused():
    c = no_university_members()
    refused(c, errors.UniversityOrInstituteRequired, c.sign_agreement,
            signatories=[c.lead_uscc, *c.members], mechanisms=list(Mechanism),
            construction_plan="方案", no_university_justification="   ", actor=NANJING,
            effective_date=D(2024, 2, 1), today=TODAY)


def test_agreement_without_university_but_with_justification_is_accepted():
    c = no_university_members()
    accepted(c, c.sign_agreement, signatories=[c.lead_uscc, *c.members],
             mechanisms=list(Mechanism), construction_plan="方案",
             no_university_justification="行业内无对口高校", actor=NANJING,
             effective_date=D(2024, 2, 1), today=TODAY)
    assert c.no_university_justification == "行业内无对口高校"


def test_a_research_institute_as_lead_does_not_count_as_the_members_institute():
    """§4.2: the participating units (参与单位) are to include a university or institute; a
    provincial laboratory leading enterprises only needs the justification too."""
    lab = unit(UnitKind.RESEARCH_INSTITUTE, name="江苏省某实验室")
    c = Consortium.select_lead(
        name="实验室牵头的创新联合体", city="nanjing", lead=lab,
        qualification=LeadQualification(LeadCategory.PROVINCIAL_LABORATORY,
                                        has_independent_legal_personality=True),
        fields=["integrated_circuits"], actor=NANJING, effective_date=D(2024, 1, 10),
        today=TODAY)
    for _ in range(2):
        c.admit_member(unit(UnitKind.ENTERPRISE), actor=NANJING, effective_date=D(2024, 1, 20),
                       today=TODAY)
    sign = {"signatories": [c.lead_uscc, *c.members], "mechanisms": list(Mechanism),
            "construction_plan": "方案", "actor": NANJING, "effective_date": D(2024, 2, 1),
            "today": TODAY}
    refused(c, errors.UniversityOrInstituteRequired, c.sign_agreement, **sign)
    accepted(c, c.sign_agreement, **sign, no_university_justification="实验室自身承担基础研究")


@pytest.mark.parametrize("kind", [UnitKind.UNIVERSITY, UnitKind.RESEARCH_INSTITUTE])
def test_agreement_with_a_university_or_institute_is_accepted(kind):
    c = no_university_members()
    c.admit_member(unit(kind), actor=NANJING, effective_date=D(2024, 1, 25), today=TODAY)
    accepted(c, c.sign_agreement, signatories=[c.lead_uscc, *c.members],
             mechanisms=list(Mechanism), construction_plan="方案", actor=NANJING,
             effective_date=D(2024, 2, 1), today=TODAY)


def test_supplementary_agreement_withdrawing_the_last_university_is_refused():
    c = listed()
    uni = member(c, UnitKind.UNIVERSITY)
    refused(c, errors.UniversityOrInstituteRequired, supplement, c,
            [Change(ChangeKind.MEMBER_WITHDRAWS, "高校退出", uscc=uni.uscc)])
    assert uni.uscc in c.members


def test_supplementary_agreement_withdrawing_the_last_university_with_justification():
    c = listed()
    uni = member(c, UnitKind.UNIVERSITY)
    accepted(c, supplement, c, [Change(ChangeKind.MEMBER_WITHDRAWS, "高校退出", uscc=uni.uscc)],
             justification="改由企业研究院承担")
    assert uni.uscc not in c.members
    assert c.no_university_justification == "改由企业研究院承担"


def test_supplementary_agreement_replacing_the_last_university_is_accepted():
    c = listed()
    uni = member(c, UnitKind.UNIVERSITY)
    accepted(c, supplement, c, [
        Change(ChangeKind.MEMBER_WITHDRAWS, "高校退出", uscc=uni.uscc),
        Change(ChangeKind.MEMBER_JOINS, "研究院加入", unit=unit(UnitKind.RESEARCH_INSTITUTE))])


def test_recorded_justification_still_covers_later_supplementary_agreements():
    c = no_university_members()
    c.sign_agreement(signatories=[c.lead_uscc, *c.members], mechanisms=list(Mechanism),
                     construction_plan="方案", no_university_justification="无对口高校",
                     actor=NANJING, effective_date=D(2024, 2, 1), today=TODAY)
    listed(reviewed(recommended(submitted(c))))
    accepted(c, supplement, c, [Change(ChangeKind.MEMBER_JOINS, "加入", unit=unit())])



def test_blank_justification_does_not_hide_the_recorded_one():
    c = no_university_members()
    c.sign_agreement(signatories=[c.lead_uscc, *c.members], mechanisms=list(Mechanism),
                     construction_plan="方案", no_university_justification="无对口高校",
                     actor=NANJING, effective_date=D(2024, 2, 1), today=TODAY)
    listed(reviewed(recommended(submitted(c))))
    accepted(c, supplement, c, [Change(ChangeKind.STRATEGIC_PLAN, "调整")], justification="  ")
    assert c.no_university_justification == "无对口高校"

# --- members --------------------------------------------------------------------------------------
def test_admitting_the_same_unit_twice_is_a_duplicate():
    c = forming()
    u = unit(UnitKind.UNIVERSITY)
    accepted(c, c.admit_member, u, actor=NANJING, effective_date=D(2024, 2, 1), today=TODAY)
    same_code = Unit(u.uscc, "改了名字的大学", UnitKind.UNIVERSITY)
    err = refused(c, errors.DuplicateMember, c.admit_member, same_code, actor=NANJING,
                  effective_date=D(2024, 2, 1), today=TODAY)
    assert err.details["uscc"] == u.uscc
    assert c.members[u.uscc].name == u.name


def test_supplementary_agreement_admitting_a_current_member_is_a_duplicate():
    c = listed()
    existing = member(c, UnitKind.ENTERPRISE)
    refused(c, errors.DuplicateMember, supplement, c,
            [Change(ChangeKind.MEMBER_JOINS, "加入", unit=existing)])


def test_supplementary_agreement_admitting_one_unit_twice_is_a_duplicate():
    c = listed()
    u = unit()
    refused(c, errors.DuplicateMember, supplement, c,
            [Change(ChangeKind.MEMBER_JOINS, "加入", unit=u),
             Change(ChangeKind.MEMBER_JOINS, "再次加入", unit=u)])


def test_dropping_a_unit_that_is_not_a_member_is_refused():
    c = with_members()
    err = refused(c, errors.NotAMember, c.drop_member, unit().uscc, actor=NANJING,
                  effective_date=D(2024, 2, 1), today=TODAY)
    assert "uscc" in err.details


def test_dropping_a_former_member_again_is_refused():
    c = with_members()
    ent = member(c, UnitKind.ENTERPRISE)
    accepted(c, c.drop_member, ent.uscc, actor=NANJING, effective_date=D(2024, 2, 1),
             today=TODAY)
    assert c.former_members == {ent.uscc: ent}
    refused(c, errors.NotAMember, c.drop_member, ent.uscc, actor=NANJING,
            effective_date=D(2024, 2, 1), today=TODAY)


def test_supplementary_agreement_withdrawing_a_non_member_is_refused():
    c = listed()
    refused(c, errors.NotAMember, supplement, c,
            [Change(ChangeKind.MEMBER_WITHDRAWS, "退出", uscc=unit().uscc)])


def test_supplementary_agreement_withdrawing_one_member_twice_is_refused():
    c = listed()
    ent = member(c, UnitKind.ENTERPRISE).uscc
    refused(c, errors.NotAMember, supplement, c,
            [Change(ChangeKind.MEMBER_WITHDRAWS, "退出", uscc=ent),
             Change(ChangeKind.MEMBER_WITHDRAWS, "再次退出", uscc=ent)])


def test_former_member_may_be_admitted_again_while_forming():
    c = with_members()
    ent = member(c, UnitKind.ENTERPRISE)
    c.drop_member(ent.uscc, actor=NANJING, effective_date=D(2024, 2, 1), today=TODAY)
    accepted(c, c.admit_member, ent, actor=NANJING, effective_date=D(2024, 2, 2), today=TODAY)
    assert ent.uscc in c.members
    assert ent.uscc not in c.former_members


# --- the co-construction agreement (§5.3) ---------------------------------------------------------
def _sign(c: Consortium, **kw: Any) -> None:
    args: dict[str, Any] = dict(signatories=[c.lead_uscc, *c.members], mechanisms=list(Mechanism),
                                construction_plan="建设方案", actor=NANJING,
                                effective_date=D(2024, 2, 1), today=TODAY, document=doc())
    args.update(kw)
    c.sign_agreement(**args)


def test_agreement_signed_by_lead_and_every_member_is_recorded():
    c = with_members()
    accepted(c, _sign, c, signatories=[c.lead_uscc, *c.members, c.lead_uscc])
    assert c.agreement is not None
    assert set(c.agreement.signatories) == {c.lead_uscc, *c.members}
    assert len(c.agreement.signatories) == 3
    assert set(c.agreement.mechanisms) == set(Mechanism)
    assert c.agreement.signed_on == D(2024, 2, 1)


def test_agreement_before_any_member_is_refused():
    c = forming()
    refused(c, errors.AgreementNotSignedByAll, _sign, c, signatories=[c.lead_uscc])


def test_agreement_not_signed_by_a_member_is_refused():
    c = with_members()
    missing = member(c, UnitKind.ENTERPRISE).uscc
    err = refused(c, errors.AgreementNotSignedByAll, _sign, c,
                  signatories=[c.lead_uscc, *(m for m in c.members if m != missing)])
    assert err.details["missing"] == [missing]


def test_agreement_not_signed_by_the_lead_is_refused():
    c = with_members()
    err = refused(c, errors.AgreementNotSignedByAll, _sign, c, signatories=list(c.members))
    assert err.details["missing"] == [c.lead_uscc]


def test_agreement_signed_by_an_outsider_is_refused():
    c = with_members()
    outsider = unit().uscc
    err = refused(c, errors.AgreementNotSignedByAll, _sign, c,
                  signatories=[c.lead_uscc, *c.members, outsider])
    assert err.details["extra"] == [outsider]


@pytest.mark.parametrize("left_out", list(Mechanism))
def test_agreement_missing_a_mechanism_is_incomplete(left_out):
    c = with_members()
    err = refused(c, errors.AgreementIncomplete, _sign, c,
                  mechanisms=[m for m in Mechanism if m is not left_out])
    assert err.details["missing"] == [left_out.value]


def test_agreement_without_construction_plan_is_incomplete():
    c = with_members()
    refused(c, errors.AgreementIncomplete, _sign, c, construction_plan="  ")


def test_submission_without_agreement_is_refused():
    c = with_members()
    refused(c, errors.AgreementNotSignedByAll, c.submit_application, actor=NANJING,
            effective_date=D(2024, 3, 1), today=TODAY)


def test_admitting_a_member_after_signing_makes_the_agreement_lapse():
    c = signed()
    c.admit_member(unit(UnitKind.ENTERPRISE), actor=NANJING, effective_date=D(2024, 2, 10),
                   today=TODAY)
    assert c.agreement is None
    refused(c, errors.AgreementNotSignedByAll, c.submit_application, actor=NANJING,
            effective_date=D(2024, 3, 1), today=TODAY)


def test_dropping_a_member_after_signing_makes_the_agreement_lapse():
    c = signed()
    c.drop_member(member(c, UnitKind.ENTERPRISE).uscc, actor=NANJING,
                  effective_date=D(2024, 2, 10), today=TODAY)
    assert c.agreement is None
    refused(c, errors.AgreementNotSignedByAll, c.submit_application, actor=NANJING,
            effective_date=D(2024, 3, 1), today=TODAY)


def test_agreement_signed_again_by_the_new_member_allows_submission():
    c = signed()
    newcomer = unit(UnitKind.ENTERPRISE)
    c.admit_member(newcomer, actor=NANJING, effective_date=D(2024, 2, 10), today=TODAY)
    refused(c, errors.AgreementNotSignedByAll, _sign, c,
            signatories=[s for s in [c.lead_uscc, *c.members] if s != newcomer.uscc],
            effective_date=D(2024, 2, 20))
    _sign(c, effective_date=D(2024, 2, 20))
    accepted(c, c.submit_application, actor=NANJING, effective_date=D(2024, 3, 1), today=TODAY)


# --- formation details ----------------------------------------------------------------------------
@pytest.mark.parametrize(("necessity", "feasibility"), [("", "可行"), ("必要", " ")])
def test_recommendation_needs_necessity_and_feasibility(necessity, feasibility):
    c = submitted()
    refused(c, errors.InvalidValue, c.recommend, necessity=necessity, feasibility=feasibility,
            actor=NANJING, effective_date=D(2024, 4, 1), today=TODAY)


def test_recommendation_records_the_opinion():
    c = recommended()
    assert c.recommendation == {"necessity": "必要", "feasibility": "可行", "on": D(2024, 4, 1)}


def test_return_needs_a_reason():
    c = submitted()
    refused(c, errors.InvalidValue, c.return_application, reason=" ", actor=NANJING,
            effective_date=D(2024, 4, 1), today=TODAY)


@pytest.mark.parametrize("score", [Decimal("-0.1"), Decimal("100.01"), Decimal("1000")])
def test_expert_review_score_outside_0_100_is_refused(score):
    c = recommended()
    refused(c, errors.InvalidValue, c.record_expert_review, opinion="同意", score=score,
            recommended=True, actor=PROVINCE, effective_date=D(2024, 5, 1), today=TODAY)


@pytest.mark.parametrize("score", [None, Decimal("0"), Decimal("100"), Decimal("75.5")])
def test_expert_review_score_within_0_100_is_accepted(score):
    c = recommended()
    accepted(c, c.record_expert_review, opinion="同意", score=score, recommended=True,
             actor=PROVINCE, effective_date=D(2024, 5, 1), today=TODAY)
    assert c.expert_review is not None
    assert c.expert_review["score"] == score


def test_expert_review_needs_an_opinion():
    c = recommended()
    refused(c, errors.InvalidValue, c.record_expert_review, opinion="", recommended=True,
            actor=PROVINCE, effective_date=D(2024, 5, 1), today=TODAY)


def test_rejection_needs_a_reason():
    c = reviewed()
    refused(c, errors.InvalidValue, c.reject, reason="", actor=PROVINCE,
            effective_date=D(2024, 6, 1), today=TODAY)


# --- supplementary agreements (§7.3) --------------------------------------------------------------
def test_supplementary_agreement_needs_the_joining_units_signature():
    c = listed()
    joining = unit(UnitKind.ENTERPRISE)
    err = refused(c, errors.SupplementaryAgreementNotSigned, supplement, c,
                  [Change(ChangeKind.MEMBER_JOINS, "加入", unit=joining)],
                  [c.lead_uscc, *c.members])
    assert err.details["missing"] == [joining.uscc]


def test_supplementary_agreement_needs_the_withdrawing_units_signature():
    c = listed()
    leaving = member(c, UnitKind.ENTERPRISE).uscc
    err = refused(c, errors.SupplementaryAgreementNotSigned, supplement, c,
                  [Change(ChangeKind.MEMBER_WITHDRAWS, "退出", uscc=leaving)], [c.lead_uscc])
    assert err.details["missing"] == [leaving]


def test_supplementary_agreement_needs_the_leads_signature():
    c = listed()
    joining = unit(UnitKind.ENTERPRISE)
    err = refused(c, errors.SupplementaryAgreementNotSigned, supplement, c,
                  [Change(ChangeKind.MEMBER_JOINS, "加入", unit=joining)], [joining.uscc])
    assert err.details["missing"] == [c.lead_uscc]


def test_supplementary_agreement_on_the_plan_needs_every_member():
    c = listed()
    missing = member(c, UnitKind.UNIVERSITY).uscc
    err = refused(c, errors.SupplementaryAgreementNotSigned, supplement, c,
                  [Change(ChangeKind.STRATEGIC_PLAN, "调整")],
                  [s for s in [c.lead_uscc, *c.members] if s != missing])
    assert err.details["missing"] == [missing]


def test_supplementary_agreement_on_a_membership_needs_only_lead_and_units_concerned():
    c = listed()
    joining = unit(UnitKind.ENTERPRISE)
    accepted(c, supplement, c, [Change(ChangeKind.MEMBER_JOINS, "加入", unit=joining)],
             [c.lead_uscc, joining.uscc])


def test_supplementary_agreement_cannot_withdraw_every_member():
    c = listed()
    withdrawals = [Change(ChangeKind.MEMBER_WITHDRAWS, "退出", uscc=u) for u in c.members]
    refused(c, errors.MembersRequired, supplement, c, withdrawals, justification="全部退出")
    assert len(c.members) == 2
    # Withdrawing all but one, or all while another joins, is a change like any other.
    joining = unit(UnitKind.RESEARCH_INSTITUTE)
    accepted(c, supplement, c, [*withdrawals, Change(ChangeKind.MEMBER_JOINS, "加入",
                                                     unit=joining)])
    assert list(c.members) == [joining.uscc]


def test_supplementary_agreement_signed_by_a_unit_outside_the_consortium_is_refused():
    c = listed()
    outsider = unit(UnitKind.ENTERPRISE).uscc
    err = refused(c, errors.SupplementaryAgreementNotSigned, supplement, c,
                  [Change(ChangeKind.STRATEGIC_PLAN, "调整战略规划")],
                  [c.lead_uscc, *c.members, outsider])
    assert err.details["extra"] == [outsider]


def test_supplementary_agreement_needs_its_document():
    c = listed()
    version = c.version
    with pytest.raises(errors.InvalidDocument):
        c.sign_supplementary_agreement(
            changes=[Change(ChangeKind.STRATEGIC_PLAN, "调整")],
            signatories=[c.lead_uscc, *c.members], actor=PROVINCE, effective_date=ON,
            today=TODAY, document=None)
    assert c.version == version


def test_supplementary_agreement_needs_a_change():
    c = listed()
    refused(c, errors.InvalidValue, supplement, c, [])


def test_supplementary_agreement_plan_change_needs_a_description():
    c = listed()
    refused(c, errors.InvalidValue, supplement, c, [Change(ChangeKind.OPERATING_MECHANISM, " ")])


def test_supplementary_agreement_joining_needs_the_unit():
    c = listed()
    refused(c, errors.InvalidValue, supplement, c, [Change(ChangeKind.MEMBER_JOINS, "加入")])


def test_supplementary_agreements_are_numbered():
    c = listed()
    assert supplement(c, [Change(ChangeKind.STRATEGIC_PLAN, "一")]) == "SA-1"
    assert supplement(c, [Change(ChangeKind.STRATEGIC_PLAN, "二")]) == "SA-2"
    assert [a.agreement_id for a in c.supplementary_agreements] == ["SA-1", "SA-2"]


# --- annual reports (§7.1) -----------------------------------------------------------------------
def test_annual_report_for_the_listing_year_is_accepted():
    c = listed()
    late = accepted(c, report, c, 2024, D(2025, 3, 1))
    assert late is False
    assert c.reports[2024].filed_on == D(2025, 3, 1)


def test_second_report_for_the_same_year_is_refused():
    c = listed()
    report(c, 2024, D(2025, 3, 1))
    err = refused(c, errors.AnnualReportAlreadyFiled, report, c, 2024, D(2025, 4, 1))
    assert err.details["year"] == 2024


def test_report_for_a_year_before_listing_is_refused():
    c = listed()
    refused(c, errors.AnnualReportYearNotAllowed, report, c, 2023, D(2025, 3, 1))


def test_report_for_a_year_not_yet_ended_is_refused():
    c = listed()
    refused(c, errors.AnnualReportYearNotAllowed, report, c, 2025, D(2025, 12, 31))
    refused(c, errors.AnnualReportYearNotAllowed, report, c, 2026, D(2025, 12, 31))
    accepted(c, report, c, 2025, D(2026, 1, 1))


@pytest.mark.parametrize("section", list(ReportSection))
def test_report_missing_a_section_is_incomplete(section):
    c = listed()
    secs = sections()
    del secs[section.value]
    err = refused(c, errors.AnnualReportIncomplete, report, c, 2024, D(2025, 3, 1), secs=secs)
    assert err.details["missing"] == [section.value]


def test_report_with_a_blank_section_is_incomplete():
    c = listed()
    secs = sections()
    secs[ReportSection.NEXT_YEAR_PLAN.value] = "  "
    refused(c, errors.AnnualReportIncomplete, report, c, 2024, D(2025, 3, 1), secs=secs)


def test_report_has_six_sections():
    assert len(ReportSection) == 6


def test_report_due_by_31_may_of_next_year():
    assert annual_report_deadline(2024) == D(2025, 5, 31)


def test_report_filed_on_31_may_is_on_time():
    c = listed()
    assert report(c, 2024, D(2025, 5, 31)) is False
    assert c.reports[2024].late is False


def test_report_filed_after_31_may_is_flagged_late_not_refused():
    c = listed()
    assert accepted(c, report, c, 2024, D(2025, 6, 1)) is True
    assert c.reports[2024].late is True


def test_report_must_explain_every_supplementary_agreement_of_its_year():
    c = listed()
    sa = supplement(c, [Change(ChangeKind.STRATEGIC_PLAN, "调整")], on=D(2025, 3, 1))
    err = refused(c, errors.SupplementaryAgreementNotExplained, report, c, 2025, D(2026, 3, 1))
    assert err.details["missing"] == [sa]
    refused(c, errors.SupplementaryAgreementNotExplained, report, c, 2025, D(2026, 3, 1),
            explanations={sa: "  "})
    accepted(c, report, c, 2025, D(2026, 3, 1), explanations={sa: "因市场变化调整战略"})


def test_report_need_not_explain_supplementary_agreements_of_another_year():
    c = listed()
    supplement(c, [Change(ChangeKind.STRATEGIC_PLAN, "调整")], on=D(2025, 3, 1))
    accepted(c, report, c, 2024, D(2025, 4, 1))


def test_report_must_explain_each_of_several_agreements():
    c = listed()
    sa1 = supplement(c, [Change(ChangeKind.STRATEGIC_PLAN, "一")], on=D(2025, 3, 1))
    sa2 = supplement(c, [Change(ChangeKind.OPERATING_MECHANISM, "二")], on=D(2025, 9, 1))
    err = refused(c, errors.SupplementaryAgreementNotExplained, report, c, 2025, D(2026, 3, 1),
                  explanations={sa1: "说明"})
    assert err.details["missing"] == [sa2]


# --- evaluation (§7.2) ----------------------------------------------------------------------------
@pytest.mark.parametrize("grade", list(Grade))
def test_evaluation_is_recorded_with_its_grade(grade):
    c = listed()
    accepted(c, evaluate, c, grade)
    assert c.latest_grade is grade
    assert c.evaluations[-1].scores == {"总分": Decimal("60")}


@pytest.mark.parametrize("score", [60.0, Decimal("-1"), Decimal("100.5")])
def test_evaluation_score_must_be_a_decimal_within_0_100(score):
    c = listed()
    refused(c, errors.InvalidValue, c.record_evaluation, agency="中心", period="2024",
            scores={"总分": score}, grade=Grade.GOOD, actor=AGENCY, effective_date=ON,
            today=TODAY)


@pytest.mark.parametrize(("agency", "period"), [("", "2024"), ("中心", " ")])
def test_evaluation_needs_agency_and_period(agency, period):
    c = listed()
    refused(c, errors.InvalidValue, c.record_evaluation, agency=agency, period=period,
            scores={}, grade=Grade.GOOD, actor=AGENCY, effective_date=ON, today=TODAY)



@pytest.mark.parametrize("score", [Decimal("NaN"), Decimal("sNaN")])
def test_evaluation_score_that_is_not_a_number_is_refused_as_invalid_value(score):
    c = listed()
    refused(c, errors.InvalidValue, c.record_evaluation, agency="中心", period="2024",
            scores={"总分": score}, grade=Grade.GOOD, actor=AGENCY, effective_date=ON,
            today=TODAY)


@pytest.mark.parametrize("score", [Decimal("NaN"), Decimal("sNaN")])
def test_expert_review_score_that_is_not_a_number_is_refused_as_invalid_value(score):
    c = recommended()
    refused(c, errors.InvalidValue, c.record_expert_review, opinion="同意", score=score,
            recommended=True, actor=PROVINCE, effective_date=D(2024, 5, 1), today=TODAY)

# --- rectification (§7.2) -------------------------------------------------------------------------
def _order(c: Consortium, on: date = D(2025, 4, 1), deadline: date = D(2025, 10, 1)) -> None:
    c.order_rectification(requirements="限期整改", deadline=deadline, actor=PROVINCE,
                          effective_date=on, today=TODAY)


def test_rectification_without_any_evaluation_is_refused():
    c = listed()
    refused(c, errors.RectificationNotAllowed, _order, c)


@pytest.mark.parametrize("grade", [Grade.EXCELLENT, Grade.GOOD, Grade.QUALIFIED])
def test_rectification_after_a_not_poor_evaluation_is_refused(grade):
    c = listed()
    evaluate(c, grade)
    refused(c, errors.RectificationNotAllowed, _order, c)


def test_rectification_after_a_poor_evaluation_followed_by_a_good_one_is_refused():
    c = poor()
    evaluate(c, Grade.GOOD, on=D(2025, 3, 5))
    refused(c, errors.RectificationNotAllowed, _order, c)


def test_rectification_after_a_poor_evaluation_is_ordered():
    c = poor()
    accepted(c, _order, c)
    assert c.rectification_open
    assert c.rectification == {"requirements": "限期整改", "deadline": D(2025, 10, 1),
                               "ordered_on": D(2025, 4, 1)}


def test_only_one_rectification_may_be_open():
    c = poor()
    _order(c)
    refused(c, errors.RectificationNotAllowed, _order, c, on=D(2025, 5, 1))


def test_rectification_deadline_must_follow_the_order():
    c = poor()
    refused(c, errors.InvalidValue, _order, c, on=D(2025, 4, 1), deadline=D(2025, 4, 1))


def test_completing_without_an_open_rectification_is_refused():
    c = poor()
    refused(c, errors.RectificationNotAllowed, c.complete_rectification, outcome="完成",
            actor=PROVINCE, effective_date=ON, today=TODAY)


def test_completing_an_open_rectification_closes_it():
    c = rectifying()
    accepted(c, c.complete_rectification, outcome="完成", actor=PROVINCE, effective_date=ON,
             today=TODAY)
    assert not c.rectification_open
    refused(c, errors.RectificationNotAllowed, c.complete_rectification, outcome="再次完成",
            actor=PROVINCE, effective_date=ON, today=TODAY)


def test_delisting_for_a_poor_evaluation_while_its_rectification_is_open():
    c = rectifying()
    accepted(c, _delist, c, DelistingReason.POOR_EVALUATION, document=doc())
    assert c.status is Status.DELISTED and not c.rectification_open


def test_completing_needs_an_outcome():
    c = rectifying()
    refused(c, errors.InvalidValue, c.complete_rectification, outcome="", actor=PROVINCE,
            effective_date=ON, today=TODAY)


# --- delisting (§7.2, §7.3) -----------------------------------------------------------------------
def _delist(c: Consortium, reason: DelistingReason, explanation: str = "",
            document: Document | None = None, on: date = ON) -> None:
    c.delist(reason=reason, explanation=explanation, actor=PROVINCE, effective_date=on,
             today=TODAY, document=document)


def test_delisting_for_poor_evaluation_without_one_is_not_justified():
    c = listed()
    evaluate(c, Grade.QUALIFIED)
    refused(c, errors.DelistingNotJustified, _delist, c, DelistingReason.POOR_EVALUATION,
            document=doc())


def test_delisting_for_poor_evaluation_after_one():
    c = poor()
    accepted(c, _delist, c, DelistingReason.POOR_EVALUATION, document=doc("摘牌决定"))
    assert c.status is Status.DELISTED
    assert c.delisted_on == ON
    assert c.delisting_reason is DelistingReason.POOR_EVALUATION


def test_delisting_for_dishonesty_without_a_serious_record_is_not_justified():
    c = listed()
    record(c, violation(c.lead_uscc, severity=Severity.GENERAL,
                        context=ViolationContext.APPLICATION))
    refused(c, errors.DelistingNotJustified, _delist, c, DelistingReason.SERIOUS_DISHONESTY,
            document=doc())


def test_delisting_for_dishonesty_with_a_serious_record_in_publicity():
    c = listed()
    record(c, violation(c.lead_uscc, severity=Severity.SERIOUS, context=ViolationContext.OTHER))
    assert c.status is Status.LISTED
    accepted(c, _delist, c, DelistingReason.SERIOUS_DISHONESTY, document=doc(),
             on=D(2026, 1, 10))
    assert c.status is Status.DELISTED


def _submit(c: Consortium, on: date) -> None:
    c.submit_application(actor=NANJING, effective_date=on, today=TODAY)


def test_a_serious_dishonesty_record_bars_the_application_while_in_publicity():
    """§7.3: what ends a pending application (and would delist a listed consortium) bars one
    that is still forming, until the record is revoked, repaired or out of publicity."""
    c = signed()
    rid = record(c, violation(c.lead_uscc, severity=Severity.SERIOUS,
                              context=ViolationContext.APPLICATION), on=D(2024, 2, 10))
    err = refused(c, errors.SeriousCreditRecordInPublicity, _submit, c, D(2024, 3, 1))
    assert err.details["record_ids"] == [rid]
    c.revoke_credit(rid, reason="认定错误", actor=PROVINCE, effective_date=D(2024, 3, 2),
                    today=TODAY, document=doc())
    accepted(c, _submit, c, D(2024, 3, 3))


def test_after_its_publicity_end_a_record_no_longer_bars_the_application():
    c = signed()
    record(c, violation(c.lead_uscc, severity=Severity.SERIOUS,
                        context=ViolationContext.APPLICATION), on=D(2024, 2, 10))
    accepted(c, _submit, c, D(2026, 1, 11))


@pytest.mark.parametrize(("severity", "context"), [
    (Severity.MINOR, ViolationContext.APPLICATION), (Severity.SERIOUS, ViolationContext.OTHER)])
def test_a_minor_record_or_one_in_another_context_does_not_bar_the_application(severity,
                                                                                context):
    c = signed()
    record(c, violation(c.lead_uscc, severity=severity, context=context), on=D(2024, 2, 10))
    accepted(c, _submit, c, D(2024, 3, 1))


def test_delisting_for_dishonesty_after_the_publicity_end_is_not_justified():
    """A record whose publicity period is over no longer justifies delisting, even before its
    end of publicity is recorded."""
    c = listed()
    record(c, violation(c.lead_uscc, severity=Severity.SERIOUS, context=ViolationContext.OTHER))
    assert c.credit_records["CR-1"].state == "in_publicity"
    refused(c, errors.DelistingNotJustified, _delist, c, DelistingReason.SERIOUS_DISHONESTY,
            document=doc(), on=D(2026, 1, 11))


def test_delisting_for_dishonesty_on_a_revoked_record_is_not_justified():
    c = listed()
    rid = record(c, violation(c.lead_uscc, severity=Severity.SERIOUS,
                              context=ViolationContext.OTHER))
    c.revoke_credit(rid, reason="认定错误", actor=PROVINCE, effective_date=D(2025, 2, 1),
                    today=TODAY, document=doc())
    refused(c, errors.DelistingNotJustified, _delist, c, DelistingReason.SERIOUS_DISHONESTY,
            document=doc())


def test_delisting_for_another_reason_needs_an_explanation():
    c = listed()
    refused(c, errors.InvalidValue, _delist, c, DelistingReason.OTHER, explanation=" ",
            document=doc())
    accepted(c, _delist, c, DelistingReason.OTHER, explanation="牵头单位申请退出",
             document=doc())


def test_delisting_needs_its_decision_document():
    c = poor()
    refused(c, errors.InvalidDocument, _delist, c, DelistingReason.POOR_EVALUATION)


def test_delisting_closes_an_open_rectification():
    c = rectifying()
    _delist(c, DelistingReason.POOR_EVALUATION, document=doc())
    assert not c.rectification_open


@pytest.mark.parametrize("command", NON_CREDIT_COMMANDS)
def test_nothing_but_credit_records_after_delisting(command):
    c = delisted()
    _, call = COMMANDS[command]
    err = refused(c, errors.ConsortiumDelisted, call, c, _permitted(command)[0], ON)
    assert err.details["command"] == command


def test_credit_records_are_still_accepted_after_delisting():
    c = delisted()
    rid = accepted(c, record, c, violation(c.lead_uscc, start=D(2026, 1, 1),
                                           repair=D(2026, 2, 1), end=D(2026, 6, 1)),
                   D(2026, 1, 5))
    assert rid == "CR-1"
    accepted(c, c.repair_credit, rid, measures="整改", actor=PROVINCE,
             effective_date=D(2026, 2, 1), today=TODAY, document=doc())
    rid2 = record(c, violation(c.lead_uscc, start=D(2026, 2, 1), repair=D(2026, 3, 1),
                               end=D(2026, 4, 1)), D(2026, 2, 1))
    accepted(c, c.end_credit_publicity, rid2, actor=PROVINCE, effective_date=D(2026, 4, 1),
             today=TODAY)
    rid3 = record(c, violation(c.lead_uscc), D(2026, 4, 2))
    accepted(c, c.revoke_credit, rid3, reason="错误", actor=PROVINCE,
             effective_date=D(2026, 4, 3), today=TODAY, document=doc())
    assert c.status is Status.DELISTED
    names = event_names(c)
    after = names[names.index("Delisted") + 1:]
    assert after and set(after) <= CREDIT_EVENTS


def test_serious_violation_after_delisting_does_not_delist_again():
    c = delisted()
    record(c, violation(c.lead_uscc, severity=Severity.SERIOUS,
                        context=ViolationContext.PROJECT), D(2026, 1, 5))
    assert event_names(c)[-1] == "CreditViolationRecorded"
    assert c.delisted_on == D(2025, 12, 1)
    assert c.delisting_reason is DelistingReason.OTHER


# --- credit records (§7.3) ------------------------------------------------------------------------
@pytest.mark.parametrize("context", [ViolationContext.APPLICATION, ViolationContext.PROJECT,
                                     ViolationContext.ANNUAL_REPORT])
def test_serious_violation_in_application_project_or_report_delists_in_the_same_command(context):
    c = listed()
    c.collect_events()
    version = c.version
    rid = record(c, violation(c.lead_uscc, severity=Severity.SERIOUS, context=context),
                 D(2025, 2, 1), document=doc("失信认定书"))
    assert c.version == version + 2
    events = collect(c)
    assert [type(e).__name__ for e in events] == ["CreditViolationRecorded", "Delisted"]
    assert all(e.effective_date == D(2025, 2, 1) for e in events)
    assert all(e.actor == PROVINCE for e in events)
    assert all(e.document == doc("失信认定书") for e in events)
    assert c.status is Status.DELISTED
    assert c.delisting_reason is DelistingReason.SERIOUS_DISHONESTY
    assert c.delisted_on == D(2025, 2, 1)
    assert c.credit_records[rid].state == "in_publicity"


@pytest.mark.parametrize("severity", [Severity.MINOR, Severity.GENERAL])
@pytest.mark.parametrize("context", list(ViolationContext))
def test_minor_or_general_violation_does_not_delist(severity, context):
    c = listed()
    c.collect_events()
    record(c, violation(c.lead_uscc, severity=severity, context=context))
    assert event_names(c) == ["CreditViolationRecorded"]
    assert c.status is Status.LISTED


def test_serious_violation_in_another_context_does_not_delist():
    c = listed()
    c.collect_events()
    record(c, violation(c.lead_uscc, severity=Severity.SERIOUS, context=ViolationContext.OTHER))
    assert event_names(c) == ["CreditViolationRecorded"]
    assert c.status is Status.LISTED


@pytest.mark.parametrize("setup", [submitted, recommended, reviewed])
def test_serious_violation_ends_a_pending_application(setup):
    c = setup()
    c.collect_events()
    record(c, violation(c.lead_uscc, severity=Severity.SERIOUS,
                        context=ViolationContext.APPLICATION))
    assert event_names(c) == ["CreditViolationRecorded", "Rejected"]
    assert c.status is Status.REJECTED


def test_credit_subject_may_be_the_lead_a_member_or_a_former_member():
    c = listed()
    uni = member(c, UnitKind.UNIVERSITY)
    leaving = member(c, UnitKind.ENTERPRISE)
    supplement(c, [Change(ChangeKind.MEMBER_WITHDRAWS, "退出", uscc=leaving.uscc)],
               on=D(2025, 1, 5))
    r1 = record(c, violation(c.lead_uscc))
    r2 = record(c, violation(uni.uscc))
    r3 = record(c, violation(leaving.uscc))
    assert [r1, r2, r3] == ["CR-1", "CR-2", "CR-3"]
    assert c.credit_records[r1].subject_name == c.lead.name
    assert c.credit_records[r2].subject_name == uni.name
    assert c.credit_records[r3].subject_name == leaving.name


def test_credit_subject_outside_the_consortium_is_refused():
    c = listed()
    stranger = unit().uscc
    err = refused(c, errors.CreditSubjectNotInConsortium, record, c, violation(stranger))
    assert err.details["uscc"] == stranger


def test_credit_record_needs_its_decision_document():
    c = listed()
    version = c.version
    with pytest.raises(errors.InvalidDocument):
        c.record_credit_violation(violation(c.lead_uscc), actor=PROVINCE,
                                  effective_date=D(2025, 1, 10), today=TODAY, document=None)
    assert c.version == version


@pytest.mark.parametrize("blank", ["facts", "legal_basis", "authority"])
def test_credit_record_needs_facts_basis_and_authority(blank):
    c = listed()
    kw: dict[str, Any] = {blank: " "}
    refused(c, errors.InvalidValue, record, c, violation(c.lead_uscc, **kw))


@pytest.mark.parametrize(("start", "repair", "end"), [
    (D(2025, 1, 10), D(2025, 1, 9), D(2026, 1, 10)),
    (D(2025, 1, 10), D(2026, 1, 11), D(2026, 1, 10)),
    (D(2026, 1, 10), D(2025, 7, 1), D(2025, 1, 10)),
])
def test_credit_record_dates_must_be_ordered(start, repair, end):
    c = listed()
    refused(c, errors.InvalidValue, record, c,
            violation(c.lead_uscc, start=start, repair=repair, end=end))


def test_credit_repair_before_the_earliest_repair_date_is_refused():
    c = with_record()
    err = refused(c, errors.CreditRepairTooEarly, c.repair_credit, "CR-1", measures="整改",
                  actor=PROVINCE, effective_date=D(2025, 7, 9), today=TODAY, document=doc())
    assert err.details["record_id"] == "CR-1"
    assert c.credit_records["CR-1"].state == "in_publicity"


def test_credit_repair_on_the_earliest_repair_date_is_accepted():
    c = with_record()
    accepted(c, c.repair_credit, "CR-1", measures="整改", actor=PROVINCE,
             effective_date=D(2025, 7, 10), today=TODAY, document=doc())
    assert c.credit_records["CR-1"].state == "repaired"
    assert c.credit_records["CR-1"].closed_on == D(2025, 7, 10)


def test_credit_repair_needs_measures():
    c = with_record()
    refused(c, errors.InvalidValue, c.repair_credit, "CR-1", measures="", actor=PROVINCE,
            effective_date=ON, today=TODAY, document=doc())


def test_credit_revocation_needs_a_reason():
    c = with_record()
    refused(c, errors.InvalidValue, c.revoke_credit, "CR-1", reason=" ", actor=PROVINCE,
            effective_date=ON, today=TODAY, document=doc())


def test_credit_publicity_cannot_end_before_its_end_date():
    c = with_record()
    refused(c, errors.InvalidValue, c.end_credit_publicity, "CR-1", actor=PROVINCE,
            effective_date=D(2026, 1, 9), today=TODAY)
    accepted(c, c.end_credit_publicity, "CR-1", actor=PROVINCE, effective_date=D(2026, 1, 10),
             today=TODAY)
    assert c.credit_records["CR-1"].state == "publicity_ended"


CLOSERS: dict[str, Callable[[Consortium, date], None]] = {
    "repaired": lambda c, on: c.repair_credit("CR-1", measures="整改", actor=PROVINCE,
                                              effective_date=on, today=TODAY, document=doc()),
    "revoked": lambda c, on: c.revoke_credit("CR-1", reason="错误", actor=PROVINCE,
                                             effective_date=on, today=TODAY, document=doc()),
    "publicity_ended": lambda c, on: c.end_credit_publicity("CR-1", actor=PROVINCE,
                                                            effective_date=on, today=TODAY),
}


@pytest.mark.parametrize("first", list(CLOSERS))
@pytest.mark.parametrize("second", list(CLOSERS))
def test_closed_credit_record_cannot_be_closed_again(first, second):
    c = with_record()
    CLOSERS[first](c, ON)
    assert c.credit_records["CR-1"].state == first
    err = refused(c, errors.CreditRecordClosed, CLOSERS[second], c, ON)
    assert err.details["record_id"] == "CR-1"


@pytest.mark.parametrize("closer", list(CLOSERS))
def test_unknown_credit_record_is_not_found(closer):
    c = listed()
    refused(c, errors.CreditRecordNotFound, CLOSERS[closer], c, ON)


# --- refusals leave no pending event --------------------------------------------------------------
def test_refused_command_leaves_no_pending_event():
    c = listed()
    c.collect_events()
    with pytest.raises(errors.LeadUnitCannotChange):
        supplement(c, [Change(ChangeKind.LEAD_REPLACED, "更换")])
    with pytest.raises(errors.ChangeRequiresSupplementaryAgreement):
        c.admit_member(unit(), actor=NANJING, effective_date=ON, today=TODAY)
    with pytest.raises(errors.SupplementaryAgreementNotSigned):
        supplement(c, [Change(ChangeKind.STRATEGIC_PLAN, "调整")], [c.lead_uscc])
    assert c.collect_events() == []


# --- events: who, when, on what document; replay --------------------------------------------------
def full_history() -> tuple[Consortium, Consortium]:
    """A consortium that goes through every kind of event, and a rejected one."""
    c = with_members()
    extra = unit(UnitKind.ENTERPRISE)
    c.admit_member(extra, actor=NANJING, effective_date=D(2024, 1, 25), today=TODAY,
                   document=doc("入盟申请"))
    c.drop_member(extra.uscc, reason="自愿退出", actor=NANJING, effective_date=D(2024, 1, 26),
                  today=TODAY)
    signed(c)
    submitted(c)
    c.return_application(reason="补充材料", actor=NANJING, effective_date=D(2024, 3, 10),
                         today=TODAY)
    c.submit_application(actor=NANJING, effective_date=D(2024, 3, 20), today=TODAY,
                         document=doc("申报书"))
    listed(reviewed(recommended(c)))
    leaving = member(c, UnitKind.ENTERPRISE)
    institute = unit(UnitKind.RESEARCH_INSTITUTE)
    sa = supplement(c, [Change(ChangeKind.MEMBER_JOINS, "加入", unit=institute),
                        Change(ChangeKind.MEMBER_WITHDRAWS, "退出", uscc=leaving.uscc)],
                    on=D(2025, 3, 1))
    report(c, 2024, D(2025, 4, 1))
    evaluate(c, Grade.POOR, on=D(2025, 6, 1))
    c.order_rectification(requirements="整改", deadline=D(2025, 12, 31), actor=PROVINCE,
                          effective_date=D(2025, 6, 10), today=TODAY, document=doc("整改通知"))
    c.complete_rectification(outcome="完成", actor=PROVINCE, effective_date=D(2025, 12, 20),
                             today=TODAY)
    r1 = record(c, violation(leaving.uscc, start=D(2026, 1, 5), repair=D(2026, 1, 6),
                             end=D(2026, 3, 1)), D(2026, 1, 5))
    c.repair_credit(r1, measures="整改", actor=PROVINCE, effective_date=D(2026, 1, 6),
                    today=TODAY, document=doc("修复申请"))
    r2 = record(c, violation(c.lead_uscc, severity=Severity.GENERAL), D(2026, 1, 10))
    c.revoke_credit(r2, reason="认定错误", actor=PROVINCE, effective_date=D(2026, 1, 11),
                    today=TODAY, document=doc("撤销决定"))
    r3 = record(c, violation(c.lead_uscc, start=D(2026, 1, 12), repair=D(2026, 2, 1),
                             end=D(2026, 3, 1)), D(2026, 1, 12))
    c.end_credit_publicity(r3, actor=PROVINCE, effective_date=D(2026, 3, 1), today=TODAY)
    report(c, 2025, D(2026, 3, 5), explanations={sa: "吸收研究院，企业退出"})
    record(c, violation(c.lead_uscc, severity=Severity.SERIOUS, context=ViolationContext.PROJECT),
           D(2026, 4, 1))
    assert c.status is Status.DELISTED
    return c, rejected()


EXPECTED_EVENTS = {
    "LeadUnitSelected", "MemberAdmitted", "MemberDropped", "CoConstructionAgreementSigned",
    "ApplicationSubmitted", "ApplicationReturned", "CityRecommended", "ExpertReviewRecorded",
    "Listed", "Rejected", "SupplementaryAgreementSigned", "AnnualReportFiled",
    "EvaluationRecorded", "RectificationOrdered", "RectificationCompleted", "Delisted",
    "CreditViolationRecorded", "CreditRepaired", "CreditRevoked", "CreditPublicityEnded",
}


def _all_events() -> list[Any]:
    c, r = full_history()
    return [*collect(c), *collect(r)]


def test_full_history_covers_every_event_class():
    declared = {n for n, v in vars(Consortium).items()
                if isinstance(v, type) and issubclass(v, Consortium.Event)} - {"Event", "Created"}
    assert declared == EXPECTED_EVENTS
    assert {type(e).__name__ for e in _all_events()} == EXPECTED_EVENTS


def test_every_event_carries_actor_and_effective_date():
    for e in _all_events():
        name = type(e).__name__
        assert isinstance(e.actor, Actor), name
        assert isinstance(e.effective_date, date), name
        assert e.effective_date <= TODAY


@pytest.mark.parametrize("name", sorted(EXPECTED_EVENTS))
def test_every_event_carries_a_document_attribute(name):
    events = [e for e in _all_events() if type(e).__name__ == name]
    assert events
    for e in events:
        assert hasattr(e, "document"), f"{name} has no document attribute"
        assert e.document is None or isinstance(e.document, Document)


def test_event_documents_are_the_ones_given():
    c, _ = full_history()
    events = collect(c)
    by_name = {type(e).__name__: e for e in events}
    assert by_name["CoConstructionAgreementSigned"].document == doc("共建协议")
    assert by_name["Listed"].document == doc("认定通知")
    assert by_name["RectificationOrdered"].document == doc("整改通知")
    assert by_name["CreditRepaired"].document == doc("修复申请")
    assert by_name["Delisted"].document == doc("失信认定书")


def test_event_effective_dates_never_decrease():
    c, _ = full_history()
    dates = [e.effective_date for e in collect(c)]
    assert dates == sorted(dates)


def test_event_actors_are_the_recording_actors():
    c, _ = full_history()
    for e in collect(c):
        assert e.actor in (NANJING, PROVINCE, AGENCY)


def _replay(events: list[Any]) -> Consortium:
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    assert isinstance(aggregate, Consortium)
    return aggregate


def _state(c: Consortium) -> dict[str, Any]:
    return {k: v for k, v in vars(c).items() if k != "_pending_events"}


@pytest.mark.parametrize("build", [forming, with_members, signed, listed, delisted, rejected,
                                   lambda: full_history()[0]])
def test_replaying_the_collected_events_rebuilds_equal_state(build):
    c = build()
    events = collect(c)
    copy = _replay(events)
    assert _state(copy) == _state(c)
    assert copy.lead == c.lead
    assert copy.status is c.status
    assert copy.version == c.version == len(events)


def test_replay_of_a_delisting_by_serious_violation():
    c = listed()
    record(c, violation(c.lead_uscc, severity=Severity.SERIOUS,
                        context=ViolationContext.ANNUAL_REPORT), D(2025, 2, 1))
    copy = _replay(collect(c))
    assert copy.status is Status.DELISTED
    assert copy.credit_records == c.credit_records
    assert _state(copy) == _state(c)



def test_expert_review_score_as_float_is_refused():
    c = recommended()
    refused(c, errors.InvalidValue, c.record_expert_review, opinion="同意", score=85.5,
            recommended=True, actor=PROVINCE, effective_date=D(2024, 5, 1), today=TODAY)


def test_province_cannot_list_a_consortium_the_experts_did_not_recommend():
    c = recommended()
    c.record_expert_review(opinion="基础薄弱", recommended=False, actor=PROVINCE,
                           effective_date=D(2024, 5, 1), today=TODAY)
    refused(c, errors.ApprovalWithoutFavourableReview, c.approve, actor=PROVINCE,
            effective_date=D(2024, 6, 1), today=TODAY, document=doc("认定通知"))
    accepted(c, c.reject, reason="专家未予推荐", actor=PROVINCE, effective_date=D(2024, 6, 1),
             today=TODAY)


def test_an_auditor_is_refused_for_the_role_before_anything_about_the_lead():
    c = listed()
    refused(c, errors.RoleNotPermitted, c.sign_supplementary_agreement,
            changes=[Change(ChangeKind.MEMBER_WITHDRAWS, uscc=c.lead.uscc)],
            signatories=[c.lead.uscc], actor=AUDITOR, effective_date=D(2024, 7, 1),
            today=TODAY, document=doc("补充协议"))
