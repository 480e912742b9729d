"""The semantic auditor without a database: records are the stored form of real domain events
(the registry's own mapper), fed to ``SemanticAuditor`` in position order, some of them forged by
editing their JSON. Whatever the domain's commands accept, the auditor accepts (property test);
whatever breaks a rule, it names by position and rule code."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from audit.chain import Record, canonical_id
from audit.semantic import (
    NO_LEAD_SELECTION,
    UNDECODABLE_RECORD,
    UNKNOWN_EVENT,
    VERSION_NOT_CONSECUTIVE,
    Finding,
    SemanticAuditor,
)
from domain import errors
from domain.consortium import Change, Consortium, CreditViolation
from domain.registry import Registry
from domain.rules import ChangeKind, Grade, Severity, ViolationContext
from domain.units import UnitKind
from tests.factories import PROVINCE, TODAY, D, doc, listed, sections, unit, with_members
from tests.unit.test_lifecycle_property import ConsortiumLifecycle

TOPIC = "domain.consortium:Consortium."
MAPPER = Registry(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
#: Noon of TODAY in China: a recording time that does not depend on the machine's clock.
RECORDED = "2026-11-25T04:00:00+00:00"

LEAD_CHANGED = errors.LeadUnitCannotChange.code
CHANGE_AFTER_LISTING = errors.ChangeRequiresSupplementaryAgreement.code
DELISTED = errors.ConsortiumDelisted.code
NOT_EXPLAINED = errors.SupplementaryAgreementNotExplained.code
BACKWARDS = errors.EffectiveDateBeforePreviousEvent.code
IN_FUTURE = errors.EffectiveDateInFuture.code


class Ledger:
    """Stored records in position order, as the database would hold them."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def write(self, *consortia: Consortium) -> None:
        for c in consortia:
            for event in c.collect_events():
                s = MAPPER.to_stored_event(event)
                data = json.loads(s.state)
                data["timestamp"] = {"_type_": "datetime_iso", "_data_": RECORDED}
                self.append(str(s.originator_id), s.originator_version, s.topic, data)

    def append(self, oid: str, version: int, topic: str, data: dict[str, Any] | bytes) -> int:
        position = len(self.records) + 1
        state = data if isinstance(data, bytes) else json.dumps(
            data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.records.append(Record(position, oid, version, topic, state))
        return position

    def template(self, event: str) -> dict[str, Any]:
        return dict(json.loads(next(r.state for r in reversed(self.records)
                                    if r.topic == TOPIC + event)))

    def forge(self, c: Consortium, event: str, data: dict[str, Any], *,
              on: date | None = None, version: int | None = None) -> int:
        if on is not None:
            data["effective_date"] = {"_type_": "date_iso", "_data_": on.isoformat()}
        last = max(r.originator_version for r in self.records
                   if canonical_id(r.originator_id) == str(c.id))
        return self.append(str(c.id), version or last + 1, TOPIC + event, data)

    def audit(self) -> list[Finding]:
        auditor = SemanticAuditor()
        return [f for r in self.records for f in auditor.check(r)]


def rules_at(findings: list[Finding], position: int) -> set[str]:
    assert {f.position for f in findings} == {position}, findings
    return {f.rule for f in findings}


def supervised() -> Consortium:
    """Listed 2024-06-30, a supplementary agreement in 2025 (SA-1), the 2025 report explaining it,
    an evaluation; every event type of supervision except delisting and credit."""
    c = listed()
    newcomer = unit(UnitKind.RESEARCH_INSTITUTE)
    c.sign_supplementary_agreement(
        changes=[Change(ChangeKind.MEMBER_JOINS, "加入", unit=newcomer)],
        signatories=[c.lead_uscc, newcomer.uscc], actor=PROVINCE, effective_date=D(2025, 7, 1),
        today=TODAY, document=doc("补充协议"))
    c.file_annual_report(year=2025, sections=sections(), explanations={"SA-1": "新成员加入"},
                         actor=PROVINCE, effective_date=D(2026, 3, 1), today=TODAY)
    c.record_evaluation(agency="评估中心", period="2025", scores={}, grade=Grade.GOOD,
                        actor=PROVINCE, effective_date=D(2026, 4, 1), today=TODAY)
    return c


def delisted_by_credit(c: Consortium, on: date = D(2026, 5, 1)) -> Consortium:
    """A serious violation in the annual report: the domain writes CreditViolationRecorded and
    Delisted in the same command."""
    c.record_credit_violation(
        CreditViolation(subject_uscc=c.lead_uscc, severity=Severity.SERIOUS,
                        context=ViolationContext.ANNUAL_REPORT, facts="虚报", legal_basis="条例",
                        deciding_authority="省科技厅", publicity_start=on,
                        publicity_end=on + timedelta(days=365), earliest_repair_date=on),
        actor=PROVINCE, effective_date=on, today=TODAY, document=doc("失信认定"))
    return c


# --- what the domain accepts, the auditor accepts -------------------------------------------------
def test_a_supervised_and_a_delisted_history_have_no_findings() -> None:
    led = Ledger()
    a, b = supervised(), delisted_by_credit(supervised())
    b.repair_credit("CR-1", measures="整改", actor=PROVINCE, effective_date=D(2026, 6, 1),
                    today=TODAY, document=doc())
    led.write(a, b)
    names = [r.topic.removeprefix(TOPIC) for r in led.records]
    assert names[-3:] == ["CreditViolationRecorded", "Delisted", "CreditRepaired"]
    assert led.audit() == []


class AuditedLifecycle(ConsortiumLifecycle):
    """The lifecycle state machine, whose accepted events must pass the semantic audit."""

    def teardown(self) -> None:
        led = Ledger()
        for event in self.events:
            s = MAPPER.to_stored_event(event)
            data = json.loads(s.state)
            data["timestamp"] = {"_type_": "datetime_iso", "_data_": RECORDED}
            led.append(str(s.originator_id), s.originator_version, s.topic, data)
        assert led.audit() == [], self.accepted


def test_every_history_the_commands_accept_passes_the_semantic_audit() -> None:
    run_state_machine_as_test(AuditedLifecycle, settings=settings(
        max_examples=60, stateful_step_count=40, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))


# --- the lead unit -----------------------------------------------------------------------------
def test_lead_admitted_as_a_member_while_forming() -> None:
    led, c = Ledger(), with_members()
    led.write(c)
    forged = led.template("MemberAdmitted")
    forged["unit"]["_data_"]["uscc"] = c.lead_uscc
    position = led.forge(c, "MemberAdmitted", forged)
    findings = led.audit()
    assert rules_at(findings, position) == {LEAD_CHANGED}
    assert findings[0].error == "LeadUnitCannotChange" and findings[0].version == c.version + 1


def test_supplementary_agreement_re_admitting_or_replacing_the_lead() -> None:
    for kind in ("member_joins", "lead_replaced"):
        led, c = Ledger(), supervised()
        led.write(c)
        forged = led.template("SupplementaryAgreementSigned")
        change = forged["changes"][0]["_data_"]
        change["kind"] = kind
        change["unit"]["_data_"]["uscc"] = c.lead_uscc
        forged["agreement_id"] = "SA-2"
        position = led.forge(c, "SupplementaryAgreementSigned", forged, on=D(2026, 5, 1))
        assert rules_at(led.audit(), position) == {LEAD_CHANGED}, kind


def test_lead_selected_again_even_the_same_one() -> None:
    led, c = Ledger(), supervised()
    led.write(c)
    position = led.forge(c, "LeadUnitSelected", led.template("LeadUnitSelected"), on=D(2026, 5, 1))
    findings = led.audit()
    assert rules_at(findings, position) == {LEAD_CHANGED}
    assert "selected once" in findings[0].message


def test_any_event_carrying_another_lead() -> None:
    led, c = Ledger(), supervised()
    led.write(c)
    forged = led.template("EvaluationRecorded")
    forged["lead"] = led.template("LeadUnitSelected")["lead"]
    forged["lead"]["_data_"]["uscc"] = unit().uscc
    position = led.forge(c, "EvaluationRecorded", forged, on=D(2026, 5, 1))
    assert rules_at(led.audit(), position) == {LEAD_CHANGED}


def test_history_that_does_not_start_with_the_lead_selection() -> None:
    led, c = Ledger(), supervised()
    led.write(c)
    led.records = led.records[1:]  # as if the consortium's first record had never been written
    findings = led.audit()
    assert {(f.position, f.rule) for f in findings} == {
        (2, VERSION_NOT_CONSECUTIVE), (2, NO_LEAD_SELECTION)}


# --- membership after listing, delisting -----------------------------------------------------------
def test_agreement_re_signed_after_listing() -> None:
    led, c = Ledger(), supervised()
    led.write(c)
    position = led.forge(c, "CoConstructionAgreementSigned",
                         led.template("CoConstructionAgreementSigned"), on=D(2026, 5, 1))
    assert rules_at(led.audit(), position) == {CHANGE_AFTER_LISTING}


def test_a_forged_return_to_formation_does_not_reopen_membership() -> None:
    led, c = Ledger(), supervised()
    led.write(c)
    returned = led.forge(c, "ApplicationReturned", led.template("Listed"), on=D(2026, 5, 1))
    forged = led.template("MemberAdmitted")
    forged["unit"]["_data_"]["uscc"] = unit().uscc
    admitted = led.forge(c, "MemberAdmitted", forged, on=D(2026, 5, 2))
    assert [(f.position, f.rule) for f in led.audit()] == [(admitted, CHANGE_AFTER_LISTING)]
    assert returned < admitted


def test_member_admitted_after_delisting_is_a_delisting_finding() -> None:
    led, c = Ledger(), delisted_by_credit(supervised())
    led.write(c)
    forged = led.template("MemberAdmitted")
    forged["unit"]["_data_"]["uscc"] = unit().uscc
    position = led.forge(c, "MemberAdmitted", forged, on=D(2026, 6, 1))
    assert rules_at(led.audit(), position) == {DELISTED}


def test_second_delisting_and_listing_after_delisting() -> None:
    led, c = Ledger(), delisted_by_credit(supervised())
    led.write(c)
    first = led.forge(c, "Delisted", led.template("Delisted"), on=D(2026, 6, 1))
    second = led.forge(c, "Listed", led.template("Listed"), on=D(2026, 6, 2))
    third = led.forge(c, "CreditViolationRecorded", led.template("CreditViolationRecorded"),
                      on=D(2026, 6, 3))
    findings = led.audit()
    assert [(f.position, f.rule) for f in findings] == [(first, DELISTED), (second, DELISTED)]
    assert third > second


# --- annual reports ----------------------------------------------------------------------------------
def test_report_explains_another_agreement_but_not_the_years() -> None:
    led, c = Ledger(), supervised()
    led.write(c)
    first = led.template("AnnualReportFiled")
    first.update(year=2024, explanations={})  # no agreement in 2024: nothing to explain
    ok = led.forge(c, "AnnualReportFiled", first, on=D(2026, 5, 1))
    second = led.template("AnnualReportFiled")
    second.update(year=2025, explanations={"SA-9": "说明", "SA-1": "  "})
    bad = led.forge(c, "AnnualReportFiled", second, on=D(2026, 5, 2))
    findings = led.audit()
    assert rules_at(findings, bad) == {NOT_EXPLAINED} and ok < bad
    assert findings[0].error == "SupplementaryAgreementNotExplained" and "SA-1" in findings[0].message


# --- effective dates ---------------------------------------------------------------------------------
def test_effective_date_against_the_recording_day_in_china() -> None:
    led, c = Ledger(), supervised()  # last effective date 2026-04-01
    led.write(c)
    evening_utc = led.template("EvaluationRecorded")  # 01:00 on 20 April in China: not future
    evening_utc["timestamp"]["_data_"] = "2026-04-19T17:00:00+00:00"
    led.forge(c, "EvaluationRecorded", evening_utc, on=D(2026, 4, 20))
    afternoon_utc = led.template("EvaluationRecorded")  # 23:00 on 20 April in China
    afternoon_utc["timestamp"]["_data_"] = "2026-04-20T15:00:00+00:00"
    position = led.forge(c, "EvaluationRecorded", afternoon_utc, on=D(2026, 4, 21))
    assert rules_at(led.audit(), position) == {IN_FUTURE}


def test_backwards_and_future_both_named_and_later_events_compare_with_the_previous_one() -> None:
    led, c = Ledger(), supervised()
    led.write(c)
    forged = led.template("EvaluationRecorded")
    forged["timestamp"]["_data_"] = "2026-01-01T04:00:00+00:00"
    position = led.forge(c, "EvaluationRecorded", forged, on=D(2026, 2, 1))  # < 2026-04-01
    later = led.template("EvaluationRecorded")
    later["timestamp"]["_data_"] = RECORDED
    led.forge(c, "EvaluationRecorded", later, on=D(2026, 3, 1))  # ≥ 2026-02-01: not backwards
    assert {(f.position, f.rule) for f in led.audit()} == {(position, BACKWARDS),
                                                          (position, IN_FUTURE)}


# --- versions and malformed records -------------------------------------------------------------
def test_versions_must_follow_one_another() -> None:
    led, c = Ledger(), supervised()
    led.write(c)
    gap = led.forge(c, "EvaluationRecorded", led.template("EvaluationRecorded"),
                    on=D(2026, 5, 1), version=c.version + 2)
    again = led.forge(c, "EvaluationRecorded", led.template("EvaluationRecorded"),
                      on=D(2026, 5, 2), version=c.version + 1)
    after = led.forge(c, "EvaluationRecorded", led.template("EvaluationRecorded"),
                      on=D(2026, 5, 3))
    findings = led.audit()
    assert [(f.position, f.rule) for f in findings] == [
        (gap, VERSION_NOT_CONSECUTIVE), (again, VERSION_NOT_CONSECUTIVE)]
    assert after == again + 1


def test_undecodable_and_unknown_records() -> None:
    led, c = Ledger(), supervised()
    led.write(c)
    no_date = led.template("EvaluationRecorded")
    del no_date["effective_date"]
    broken = led.append(str(c.id), c.version + 1, TOPIC + "EvaluationRecorded", b"{not json")
    unknown = led.append(str(c.id), c.version + 2, TOPIC + "LeadUnitRenamed", b"{}")
    other = led.append("signing-key-1", 1, "audit.keys:SigningKey.Added", b"{}")
    missing = led.forge(c, "EvaluationRecorded", no_date)
    findings = led.audit()
    assert [(f.position, f.rule) for f in findings] == [
        (broken, UNDECODABLE_RECORD), (unknown, UNKNOWN_EVENT), (missing, UNDECODABLE_RECORD)]
    assert other not in {f.position for f in findings}


def test_state_is_one_small_entry_per_consortium() -> None:
    led, c = Ledger(), supervised()
    led.write(c, supervised())
    for _ in range(200):
        led.forge(c, "EvaluationRecorded", led.template("EvaluationRecorded"),
                  on=D(2026, 5, 1))
    auditor = SemanticAuditor()
    for r in led.records:
        assert auditor.check(r) == []
    assert len(auditor.consortia) == 2
    state = auditor.consortia[str(c.id)]
    assert state.version == c.version + 200 and len(state.members) == 3
    assert state.agreements_by_year == {2025: ["SA-1"]}
