"""Every label in both languages; every form names its inputs in the catalogue; the table of
which step is valid in which state agrees with the aggregate itself."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from api.web import forms
from api.web.i18n import MESSAGES, translate
from domain import errors
from domain.consortium import Change, Consortium, CreditViolation
from domain.records import Actor, Role
from domain.rules import (
    COMMAND_STATUSES,
    PERMITTED_ROLES,
    ChangeKind,
    DelistingReason,
    Grade,
    Mechanism,
    Severity,
    Status,
    ViolationContext,
    available_commands,
)
from domain.units import LeadCategory, LeadQualification, Unit, UnitKind, make_uscc

TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "web" / "templates"
CITY = Actor("chen.hao", Role.CITY_BUREAU, "南京市科学技术局", city="nanjing")
OTHER_CITY = Actor("li.na", Role.CITY_BUREAU, "苏州市科学技术局", city="suzhou")
PROVINCE = Actor("wang.li", Role.PROVINCE, "江苏省科学技术厅")
AGENCY = Actor("zhao.min", Role.EVALUATION_AGENCY, "江苏省科技评估中心")
AUDITOR = Actor("audit.1", Role.AUDITOR, "审计")


def test_every_label_has_chinese_and_english() -> None:
    for key, (zh, en) in MESSAGES.items():
        assert zh.strip() and en.strip(), key
        assert re.search(r"[\u4e00-\u9fff]", zh) or key.startswith("lang."), (key, zh)
        assert set(re.findall(r"{(\w+)}", zh)) == set(re.findall(r"{(\w+)}", en)), key


def test_every_key_the_templates_use_is_in_the_catalogue() -> None:
    used: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*'([a-z_.]+)'\s*[,)]""", template.read_text(encoding="utf-8")))
    assert used and not (used - set(MESSAGES)), sorted(used - set(MESSAGES))


def test_every_form_input_and_value_is_labelled() -> None:
    ctx = forms.Context(doc={"id": "x", "lead": {"uscc": "L", "name": "牵头"}, "members": [],
                             "former_members": [], "supplementary_agreements": [{"id": "SA-1"}]},
                        actor=PROVINCE, today=date(2026, 11, 25), lang="en")
    for name, command in forms.COMMANDS.items():
        assert f"command.{name}" in MESSAGES
        for spec in command.inputs(ctx):
            assert spec.label in MESSAGES, (name, spec.name)
            assert spec.group is None or spec.group.split("#")[0] in MESSAGES, spec.group
            for value, text in (spec.options(ctx) if spec.options else []):
                assert (text and text != value) or value == "L", (name, spec.name, value)
    for event in ("LeadUnitSelected", "SupplementaryAgreementSigned", "CreditPublicityEnded"):
        assert translate(f"event.{event}", "zh") != f"event.{event}"


def test_every_command_of_the_domain_has_a_form() -> None:
    assert set(forms.COMMANDS) == set(PERMITTED_ROLES)
    assert set(COMMAND_STATUSES) == set(PERMITTED_ROLES) - {"select_lead"}


# ------------------------------------------------------------------------------ the table
LEAD = Unit(make_uscc("320100", "MA1XYW00"), "江苏芯联微电子股份有限公司", UnitKind.ENTERPRISE)
SEU = Unit(make_uscc("320000", "46600730"), "东南大学", UnitKind.UNIVERSITY)
D = date(2025, 1, 10)
TODAY = date(2026, 11, 25)


def _consortium(status: Status) -> Consortium:
    c = Consortium.select_lead(
        name="江苏集成电路先进封装创新联合体", city="nanjing", lead=LEAD,
        qualification=LeadQualification(LeadCategory.INDUSTRY_LEADER, 12_600_000_000,
                                        Decimal("0.052")),
        fields=["integrated_circuits"], actor=CITY, effective_date=D, today=TODAY)
    if status is Status.FORMING:
        return c
    c.admit_member(SEU, actor=CITY, effective_date=D, today=TODAY)
    c.sign_agreement(signatories=[LEAD.uscc, SEU.uscc], mechanisms=list(Mechanism),
                     construction_plan="方案", actor=CITY, effective_date=D, today=TODAY)
    c.submit_application(actor=CITY, effective_date=D, today=TODAY)
    if status is Status.SUBMITTED:
        return c
    c.recommend(necessity="必要", feasibility="可行", actor=CITY, effective_date=D, today=TODAY)
    if status is Status.RECOMMENDED:
        return c
    if status is Status.REJECTED:
        c.reject(reason="不支持", actor=PROVINCE, effective_date=D, today=TODAY)
        return c
    c.record_expert_review(opinion="可行", recommended=True, actor=PROVINCE, effective_date=D,
                           today=TODAY)
    if status is Status.REVIEWED:
        return c
    c.approve(actor=PROVINCE, effective_date=D, today=TODAY)
    if status is Status.DELISTED:  # a serious violation in a report delists at once (§7.3)
        c.record_credit_violation(_violation(), actor=PROVINCE, effective_date=D, today=TODAY,
                                  document=_document())
    return c


def _document() -> Any:
    from domain.records import Document

    return Document("决定", "0" * 64)


def _violation() -> CreditViolation:
    return CreditViolation(LEAD.uscc, Severity.SERIOUS, ViolationContext.ANNUAL_REPORT, "虚报",
                           "七（三）", "省科技厅", D, date(2028, 1, 1), date(2027, 1, 1))


def _attempt(c: Consortium, command: str, actor: Actor) -> None:
    """Run the command with plausible arguments; only whether the state refuses it matters."""
    kw: dict[str, Any] = {"actor": actor, "effective_date": D, "today": TODAY}
    doc = _document()
    other = Unit(make_uscc("320100", "MA1U2C88"), "某公司", UnitKind.ENTERPRISE)
    calls = {
        "admit_member": lambda: c.admit_member(other, **kw),
        "drop_member": lambda: c.drop_member(SEU.uscc, **kw),
        "sign_agreement": lambda: c.sign_agreement(
            signatories=[LEAD.uscc, SEU.uscc], mechanisms=list(Mechanism),
            construction_plan="方案", **kw),
        "submit_application": lambda: c.submit_application(**kw),
        "recommend": lambda: c.recommend(necessity="必要", feasibility="可行", **kw),
        "return_application": lambda: c.return_application(reason="退回", **kw),
        "record_expert_review": lambda: c.record_expert_review(opinion="可行", recommended=True,
                                                               **kw),
        "approve": lambda: c.approve(**kw),
        "reject": lambda: c.reject(reason="不支持", **kw),
        "sign_supplementary_agreement": lambda: c.sign_supplementary_agreement(
            changes=[Change(ChangeKind.STRATEGIC_PLAN, "调整")],
            signatories=[LEAD.uscc, SEU.uscc], document=doc, **kw),
        "file_annual_report": lambda: c.file_annual_report(year=2025, sections={}, **kw),
        "record_evaluation": lambda: c.record_evaluation(agency="中心", period="2025",
                                                         scores={}, grade=Grade.POOR, **kw),
        "order_rectification": lambda: c.order_rectification(requirements="整改",
                                                             deadline=date(2027, 1, 1), **kw),
        "complete_rectification": lambda: c.complete_rectification(outcome="完成", **kw),
        "delist": lambda: c.delist(reason=DelistingReason.OTHER, explanation="其他",
                                   document=doc, **kw),
        "record_credit_violation": lambda: c.record_credit_violation(_violation(), document=doc,
                                                                     **kw),
        "repair_credit": lambda: c.repair_credit("CR-1", measures="修复", document=doc, **kw),
        "revoke_credit": lambda: c.revoke_credit("CR-1", reason="有误", document=doc, **kw),
        "end_credit_publicity": lambda: c.end_credit_publicity("CR-1", **kw),
    }
    calls[command]()


_STATE_REFUSALS = (errors.InvalidTransition, errors.ConsortiumDelisted,
                   errors.ChangeRequiresSupplementaryAgreement)


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("command", sorted(COMMAND_STATUSES))
def test_the_states_offered_are_the_states_the_aggregate_accepts(status: Status,
                                                                 command: str) -> None:
    actor = next(a for a in (CITY, PROVINCE, AGENCY) if a.role in PERMITTED_ROLES[command])
    c = _consortium(status)
    assert c.status is status
    try:
        _attempt(c, command, actor)
        refused_by_state = False
    except _STATE_REFUSALS:
        refused_by_state = True
    except errors.DomainError:  # another rule: the state itself was accepted
        refused_by_state = False
    assert (command in available_commands(status, actor, "nanjing")) is not refused_by_state


def test_roles_and_jurisdiction_decide_what_is_offered() -> None:
    assert available_commands(Status.FORMING, OTHER_CITY, "nanjing") == []
    assert available_commands(Status.LISTED, AUDITOR, "nanjing") == []
    assert available_commands(Status.LISTED, AGENCY, "nanjing") == ["record_evaluation"]
    assert "approve" in available_commands(Status.REVIEWED, PROVINCE, "nanjing")
