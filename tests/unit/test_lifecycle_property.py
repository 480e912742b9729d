"""Random command sequences against one consortium (hypothesis stateful testing).

Whatever is attempted — including admitting, dropping, withdrawing or replacing the lead unit —
the lead unit (its USCC) never changes and is never a member; refused commands trigger no event;
and replaying every accepted event from scratch rebuilds the same consortium.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from domain.consortium import Change, Consortium, CreditViolation
from domain.errors import DomainError
from domain.records import Actor
from domain.rules import (
    ChangeKind,
    DelistingReason,
    Grade,
    Mechanism,
    Severity,
    Status,
    ViolationContext,
)
from domain.units import Unit, UnitKind
from tests.factories import (
    AGENCY,
    AUDITOR,
    NANJING,
    PROVINCE,
    SUZHOU,
    TODAY,
    D,
    doc,
    lead_qualification,
    sections,
    unit,
)

START = D(2021, 1, 4)
CITY_COMMANDS = {"admit", "drop", "sign", "submit", "recommend", "return"}
CREDIT_EVENTS = {"CreditViolationRecorded", "CreditRepaired", "CreditRevoked",
                 "CreditPublicityEnded"}

#: Units the lead may pick from; index len(POOL) means "a unit with the lead's USCC",
#: len(POOL) + 1 "a unit that was never in the consortium".
POOL: list[Unit] = [
    unit(UnitKind.UNIVERSITY), unit(UnitKind.UNIVERSITY), unit(UnitKind.RESEARCH_INSTITUTE),
    unit(UnitKind.ENTERPRISE), unit(UnitKind.ENTERPRISE), unit(UnitKind.ENTERPRISE),
    unit(UnitKind.OTHER, division="310100"),
]
LEAD_INDEX, STRANGER_INDEX = len(POOL), len(POOL) + 1

unit_indexes = st.integers(min_value=0, max_value=STRANGER_INDEX)
#: -2: a future date; -1: the day before the previous event; n ≥ 0: n days after it (capped).
day_steps = st.sampled_from([0, 1, 7, 30, 61, 120, 200, 366, -1, -2])
#: 0–2 the permitted actor, 3 a wrong role, 4 the wrong city (or another wrong role).
actor_choices = st.integers(min_value=0, max_value=4)
texts = st.sampled_from(["说明", "", "  "])


class ConsortiumLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.lead = unit(UnitKind.ENTERPRISE, name="牵头企业")
        self.stranger = unit(UnitKind.UNIVERSITY, name="局外单位")
        self.lead_clone = Unit(self.lead.uscc, "牵头企业（更名）", UnitKind.UNIVERSITY)
        self.c = Consortium.select_lead(
            name="随机创新联合体", city="nanjing", lead=self.lead,
            qualification=lead_qualification(), fields=["integrated_circuits", "quantum"],
            actor=NANJING, effective_date=START, today=TODAY)
        self.events: list[Any] = list(self.c.collect_events())
        self.accepted: list[str] = []
        self.refused: list[str] = []

    # ------------------------------------------------------------------------------ helpers
    def unit_at(self, i: int) -> Unit:
        if i == LEAD_INDEX:
            return self.lead_clone
        if i == STRANGER_INDEX:
            return self.stranger
        return POOL[i]

    def on(self, step: int) -> date:
        last = self.c.last_effective_date
        if step == -2:
            return TODAY + timedelta(days=1)
        if step == -1:
            return last - timedelta(days=1)
        return min(last + timedelta(days=step), TODAY)

    def actor(self, command: str, choice: int) -> Actor:
        city = command in CITY_COMMANDS
        if choice <= 2:
            if command == "evaluate" and choice == 2:
                return AGENCY
            return NANJING if city else PROVINCE
        if choice == 3:
            return AUDITOR if city else NANJING
        return SUZHOU if city else AGENCY if command != "evaluate" else SUZHOU

    def attempt(self, name: str, fn: Any, *args: Any, **kw: Any) -> Any:
        version = self.c.version
        try:
            result = fn(*args, **kw)
        except DomainError:
            assert self.c.version == version, f"refused {name} changed the version"
            assert self.c.collect_events() == [], f"refused {name} left a pending event"
            self.refused.append(name)
            return None
        new = self.c.collect_events()
        assert len(new) == self.c.version - version >= 1
        self.events.extend(new)
        self.accepted.append(name)
        return result

    # ------------------------------------------------------------------------------ formation
    @rule(i=unit_indexes, a=actor_choices, d=day_steps)
    def admit(self, i: int, a: int, d: int) -> None:
        self.attempt("admit", self.c.admit_member, self.unit_at(i),
                     actor=self.actor("admit", a), effective_date=self.on(d), today=TODAY)

    @rule(i=unit_indexes, a=actor_choices, d=day_steps)
    def drop(self, i: int, a: int, d: int) -> None:
        self.attempt("drop", self.c.drop_member, self.unit_at(i).uscc, reason="退出",
                     actor=self.actor("drop", a), effective_date=self.on(d), today=TODAY)

    @rule(mode=st.sampled_from(["all", "all", "missing_member", "missing_lead", "extra"]),
          all_mechanisms=st.booleans(), plan=texts, justification=st.sampled_from([None, "理由"]),
          a=actor_choices, d=day_steps)
    def sign(self, mode: str, all_mechanisms: bool, plan: str, justification: str | None,
             a: int, d: int) -> None:
        everyone = [self.lead.uscc, *self.c.members]
        signatories = {"all": everyone, "missing_member": everyone[:-1],
                       "missing_lead": everyone[1:],
                       "extra": [*everyone, self.stranger.uscc]}[mode]
        mechanisms = list(Mechanism) if all_mechanisms else list(Mechanism)[:-1]
        self.attempt("sign", self.c.sign_agreement, signatories=signatories,
                     mechanisms=mechanisms, construction_plan=plan,
                     no_university_justification=justification, actor=self.actor("sign", a),
                     effective_date=self.on(d), today=TODAY, document=doc("共建协议"))

    @rule(a=actor_choices, d=day_steps)
    def submit(self, a: int, d: int) -> None:
        self.attempt("submit", self.c.submit_application, actor=self.actor("submit", a),
                     effective_date=self.on(d), today=TODAY)

    @rule(necessity=texts, a=actor_choices, d=day_steps)
    def recommend(self, necessity: str, a: int, d: int) -> None:
        self.attempt("recommend", self.c.recommend, necessity=necessity, feasibility="可行",
                     actor=self.actor("recommend", a), effective_date=self.on(d), today=TODAY)

    @rule(reason=texts, a=actor_choices, d=day_steps)
    def return_application(self, reason: str, a: int, d: int) -> None:
        self.attempt("return", self.c.return_application, reason=reason,
                     actor=self.actor("return", a), effective_date=self.on(d), today=TODAY)

    @rule(recommended=st.booleans(),
          score=st.sampled_from([None, Decimal("80"), Decimal("101"), Decimal("-1")]),
          a=actor_choices, d=day_steps)
    def review(self, recommended: bool, score: Decimal | None, a: int, d: int) -> None:
        self.attempt("review", self.c.record_expert_review, opinion="专家意见", score=score,
                     recommended=recommended, actor=self.actor("review", a),
                     effective_date=self.on(d), today=TODAY)

    @rule(a=actor_choices, d=day_steps)
    def approve(self, a: int, d: int) -> None:
        self.attempt("approve", self.c.approve, actor=self.actor("approve", a),
                     effective_date=self.on(d), today=TODAY, document=doc("认定通知"))

    @rule(reason=texts, a=actor_choices, d=day_steps)
    def reject(self, reason: str, a: int, d: int) -> None:
        self.attempt("reject", self.c.reject, reason=reason, actor=self.actor("reject", a),
                     effective_date=self.on(d), today=TODAY)

    # ------------------------------------------------------------------------------ operation
    @rule(kinds=st.lists(st.sampled_from(list(ChangeKind)), min_size=0, max_size=3),
          i=unit_indexes, mode=st.sampled_from(["concerned", "concerned", "lead_only", "none"]),
          has_doc=st.booleans(), justification=st.sampled_from([None, "理由"]),
          a=actor_choices, d=day_steps)
    def supplementary(self, kinds: list[ChangeKind], i: int, mode: str, has_doc: bool,
                      justification: str | None, a: int, d: int) -> None:
        target = self.unit_at(i)
        changes = []
        for kind in kinds:
            if kind is ChangeKind.MEMBER_JOINS:
                changes.append(Change(kind, "加入", unit=target))
            elif kind is ChangeKind.MEMBER_WITHDRAWS:
                changes.append(Change(kind, "退出", uscc=target.uscc))
            elif kind is ChangeKind.LEAD_REPLACED:
                changes.append(Change(kind, "更换牵头单位", unit=target, uscc=target.uscc))
            else:
                changes.append(Change(kind, "调整"))
        signatories = {"concerned": [self.lead.uscc, *self.c.members, target.uscc],
                       "lead_only": [self.lead.uscc], "none": []}[mode]
        self.attempt("supplementary", self.c.sign_supplementary_agreement, changes=changes,
                     signatories=signatories, no_university_justification=justification,
                     actor=self.actor("supplementary", a), effective_date=self.on(d),
                     today=TODAY, document=doc("补充协议") if has_doc else None)

    @rule(year=st.integers(min_value=2020, max_value=2027), complete=st.booleans(),
          explain=st.booleans(), a=actor_choices, d=day_steps)
    def report(self, year: int, complete: bool, explain: bool, a: int, d: int) -> None:
        secs = sections()
        if not complete:
            secs.pop("next_year_plan")
        explanations = ({s.agreement_id: "说明" for s in self.c.supplementary_agreements}
                        if explain else {})
        self.attempt("report", self.c.file_annual_report, year=year, sections=secs,
                     explanations=explanations, actor=self.actor("report", a),
                     effective_date=self.on(d), today=TODAY)

    @rule(grade=st.sampled_from(list(Grade)),
          score=st.sampled_from([Decimal("55"), Decimal("95"), Decimal("120")]),
          a=actor_choices, d=day_steps)
    def evaluate(self, grade: Grade, score: Decimal, a: int, d: int) -> None:
        self.attempt("evaluate", self.c.record_evaluation, agency="评估中心", period="年度",
                     scores={"总分": score}, grade=grade, actor=self.actor("evaluate", a),
                     effective_date=self.on(d), today=TODAY)

    @rule(deadline_days=st.integers(min_value=-5, max_value=180), a=actor_choices, d=day_steps)
    def order_rectification(self, deadline_days: int, a: int, d: int) -> None:
        on = self.on(d)
        self.attempt("order_rectification", self.c.order_rectification, requirements="整改",
                     deadline=on + timedelta(days=deadline_days),
                     actor=self.actor("order_rectification", a), effective_date=on,
                     today=TODAY)

    @rule(a=actor_choices, d=day_steps)
    def complete_rectification(self, a: int, d: int) -> None:
        self.attempt("complete_rectification", self.c.complete_rectification, outcome="完成",
                     actor=self.actor("complete_rectification", a),
                     effective_date=self.on(d), today=TODAY)

    @rule(reason=st.sampled_from(list(DelistingReason)), explanation=texts,
          has_doc=st.booleans(), a=actor_choices, d=day_steps)
    def delist(self, reason: DelistingReason, explanation: str, has_doc: bool, a: int,
               d: int) -> None:
        self.attempt("delist", self.c.delist, reason=reason, explanation=explanation,
                     actor=self.actor("delist", a), effective_date=self.on(d), today=TODAY,
                     document=doc("摘牌决定") if has_doc else None)

    # ------------------------------------------------------------------------------ credit
    @rule(i=unit_indexes, severity=st.sampled_from(list(Severity)),
          context=st.sampled_from(list(ViolationContext)), has_doc=st.booleans(),
          repair_days=st.integers(min_value=0, max_value=200), a=actor_choices, d=day_steps)
    def violation(self, i: int, severity: Severity, context: ViolationContext, has_doc: bool,
                  repair_days: int, a: int, d: int) -> None:
        on = self.on(d)
        v = CreditViolation(
            subject_uscc=self.unit_at(i).uscc, severity=severity, context=context,
            facts="弄虚作假", legal_basis="信用条例", deciding_authority="省科技厅",
            publicity_start=on, publicity_end=on + timedelta(days=200),
            earliest_repair_date=on + timedelta(days=repair_days))
        self.attempt("violation", self.c.record_credit_violation, v,
                     actor=self.actor("violation", a), effective_date=on, today=TODAY,
                     document=doc("失信认定") if has_doc else None)

    @rule(n=st.integers(min_value=1, max_value=4),
          how=st.sampled_from(["repair", "revoke", "end"]), a=actor_choices, d=day_steps)
    def close_credit_record(self, n: int, how: str, a: int, d: int) -> None:
        rid, actor, on = f"CR-{n}", self.actor(how, a), self.on(d)
        if how == "repair":
            self.attempt(how, self.c.repair_credit, rid, measures="整改", actor=actor,
                         effective_date=on, today=TODAY, document=doc())
        elif how == "revoke":
            self.attempt(how, self.c.revoke_credit, rid, reason="错误", actor=actor,
                         effective_date=on, today=TODAY, document=doc())
        else:
            self.attempt(how, self.c.end_credit_publicity, rid, actor=actor, effective_date=on,
                         today=TODAY)

    # ------------------------------------------------------------------------------ progress
    @initialize(stage=st.sampled_from(["forming", "members", "signed", "submitted", "reviewed",
                                       "listed", "listed", "listed"]))
    def start_at(self, stage: str) -> None:
        """Start some runs further along the lifecycle, reached by valid commands."""
        order = ["forming", "members", "signed", "submitted", "reviewed", "listed"]
        for _ in range(3 * order.index(stage)):
            if order.index(self.stage()) >= order.index(stage):
                break
            self.progress(15, 0)

    def stage(self) -> str:
        c = self.c
        if c.status is Status.FORMING:
            if not any(u.is_university_or_institute for u in c.members.values()):
                return "forming"
            return "members" if c.agreement is None else "signed"
        if c.status in (Status.SUBMITTED, Status.RECOMMENDED):
            return "submitted"
        return "reviewed" if c.status is Status.REVIEWED else "listed"

    @rule(d=st.sampled_from([0, 5, 30, 90, 200]), pick=st.integers(min_value=0, max_value=7))
    def progress(self, d: int, pick: int) -> None:
        """A valid next step, so that runs reach listing and supervision."""
        c, on = self.c, self.on(d)
        kw: dict[str, Any] = {"effective_date": on, "today": TODAY}
        fresh = [u for u in POOL if u.uscc not in c.members]
        if c.status is Status.FORMING:
            if not any(u.is_university_or_institute for u in c.members.values()):
                newcomer = next((u for u in fresh if u.is_university_or_institute), None)
                self.attempt("admit", c.admit_member, newcomer or unit(UnitKind.UNIVERSITY),
                             actor=NANJING, **kw)
            elif c.agreement is None:
                self.attempt("sign", c.sign_agreement, signatories=[self.lead.uscc, *c.members],
                             mechanisms=list(Mechanism), construction_plan="方案",
                             actor=NANJING, document=doc("共建协议"), **kw)
            else:
                self.attempt("submit", c.submit_application, actor=NANJING, **kw)
        elif c.status is Status.SUBMITTED:
            self.attempt("recommend", c.recommend, necessity="必要", feasibility="可行",
                         actor=NANJING, **kw)
        elif c.status is Status.RECOMMENDED:
            self.attempt("review", c.record_expert_review, opinion="同意", recommended=True,
                         actor=PROVINCE, **kw)
        elif c.status is Status.REVIEWED:
            self.attempt("approve", c.approve, actor=PROVINCE, document=doc("认定通知"), **kw)
        elif c.status is Status.LISTED:
            assert c.listed_on is not None
            year = next((y for y in range(c.listed_on.year, on.year) if y not in c.reports),
                        None)
            explained = {s.agreement_id: "说明" for s in c.supplementary_agreements}
            if pick <= 1 and year is not None:
                self.attempt("report", c.file_annual_report, year=year, sections=sections(),
                             explanations=explained, actor=PROVINCE, **kw)
            elif pick <= 2:
                self.attempt("evaluate", c.record_evaluation, agency="评估中心", period="年度",
                             scores={}, grade=Grade.POOR, actor=AGENCY, **kw)
            elif pick == 3 and fresh:
                self.attempt("supplementary", c.sign_supplementary_agreement,
                             changes=[Change(ChangeKind.MEMBER_JOINS, "加入", unit=fresh[0])],
                             signatories=[self.lead.uscc, fresh[0].uscc], actor=PROVINCE,
                             document=doc("补充协议"), **kw)
            elif pick == 4 and c.members:
                leaving = sorted(c.members)[0]
                self.attempt("supplementary", c.sign_supplementary_agreement,
                             changes=[Change(ChangeKind.MEMBER_WITHDRAWS, "退出", uscc=leaving)],
                             signatories=[self.lead.uscc, leaving], actor=PROVINCE,
                             no_university_justification="理由", document=doc("补充协议"), **kw)
            elif pick == 5:
                self.attempt("order_rectification", c.order_rectification, requirements="整改",
                             deadline=on + timedelta(days=90), actor=PROVINCE, **kw)
            elif pick == 6:
                self.attempt("complete_rectification", c.complete_rectification,
                             outcome="完成", actor=PROVINCE, **kw)
            else:
                v = CreditViolation(
                    subject_uscc=self.lead.uscc, severity=Severity.SERIOUS,
                    context=ViolationContext.ANNUAL_REPORT, facts="虚报", legal_basis="条例",
                    deciding_authority="省科技厅", publicity_start=on,
                    publicity_end=on + timedelta(days=365), earliest_repair_date=on)
                self.attempt("violation", c.record_credit_violation, v, actor=PROVINCE,
                             document=doc("失信认定"), **kw)
        elif c.credit_records:
            rid = sorted(c.credit_records)[-1]
            self.attempt("repair", c.repair_credit, rid, measures="整改", actor=PROVINCE,
                         document=doc(), **kw)

    # ------------------------------------------------------------------------------ invariants
    @invariant()
    def lead_unit_never_changes(self) -> None:
        assert self.c.lead == self.lead
        assert self.c.lead_uscc == self.lead.uscc

    @invariant()
    def lead_unit_is_never_a_member(self) -> None:
        assert self.lead.uscc not in self.c.members
        assert self.lead.uscc not in self.c.former_members
        assert all(u.uscc == k for k, u in self.c.members.items())

    @invariant()
    def no_pending_events(self) -> None:
        assert self.c.collect_events() == []
        assert self.c.version == len(self.events)

    @invariant()
    def replay_rebuilds_the_same_consortium(self) -> None:
        copy: Any = None
        for e in self.events:
            copy = e.mutate(copy)
        assert isinstance(copy, Consortium)
        assert copy.lead == self.lead
        assert copy.lead_uscc == self.lead.uscc
        assert copy.status is self.c.status
        assert copy.members == self.c.members
        assert copy.version == self.c.version
        state = {k: v for k, v in vars(copy).items() if k != "_pending_events"}
        assert state == {k: v for k, v in vars(self.c).items() if k != "_pending_events"}

    @invariant()
    def events_are_dated_stamped_and_ordered(self) -> None:
        dates = [e.effective_date for e in self.events]
        assert dates == sorted(dates)
        assert all(START <= d <= TODAY for d in dates)
        assert all(isinstance(e.actor, Actor) for e in self.events)

    @invariant()
    def nothing_but_credit_after_delisting(self) -> None:
        names = [type(e).__name__ for e in self.events]
        if "Delisted" in names:
            assert self.c.status is Status.DELISTED
            after = names[names.index("Delisted") + 1:]
            assert set(after) <= CREDIT_EVENTS, after

    @invariant()
    def listed_consortium_had_a_signed_agreement(self) -> None:
        if self.c.status in (Status.SUBMITTED, Status.RECOMMENDED, Status.REVIEWED,
                             Status.LISTED):
            assert self.c.agreement is not None
            assert set(self.c.agreement.signatories) >= {self.lead.uscc}


LIFECYCLE_SETTINGS = settings(
    max_examples=150, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_random_command_sequences_never_change_the_lead_and_replay_faithfully():
    run_state_machine_as_test(ConsortiumLifecycle, settings=LIFECYCLE_SETTINGS)
