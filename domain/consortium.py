"""The Consortium aggregate (创新联合体): its lifecycle events, in the past tense, and the commands
that check the guideline's rules before triggering them.

Every public command checks (``rules``) and then calls one private ``@event`` method that only
assigns: the event body re-runs on every replay, so no rule may live there — a rule tightened
later must never make old history unreadable. Every event carries who recorded it (``actor``),
its effective date, and, where one exists, the source document (title + SHA-256).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import errors, rules
from domain.cities import check_city
from domain.fields import TechnologyKind, check_fields
from domain.records import Actor, Document
from domain.rules import (
    DELISTING_CONTEXTS,
    ChangeKind,
    DelistingReason,
    Grade,
    Mechanism,
    Severity,
    Status,
    ViolationContext,
)
from domain.units import LeadQualification, Unit

_FORMATION = (Status.FORMING,)
#: Formation commands that, once listed, only a supplementary agreement may replace (§7.3).
_CHANGES = frozenset({"admit_member", "drop_member", "sign_agreement"})
_OPERATING = (Status.LISTED,)


@dataclass(frozen=True, slots=True)
class Change:
    """One change made by a supplementary agreement (补充协议)."""

    kind: ChangeKind
    description: str = ""
    unit: Unit | None = None  # the joining unit (member_joins)
    uscc: str | None = None  # the withdrawing unit (member_withdraws) or the unit concerned


@dataclass(frozen=True, slots=True)
class CreditViolation:
    """A dishonesty record (失信信息记录) as decided by an authority (§7.3)."""

    subject_uscc: str
    severity: Severity
    context: ViolationContext
    facts: str
    legal_basis: str
    deciding_authority: str
    publicity_start: date
    publicity_end: date
    earliest_repair_date: date
    remedy: str = ""  # 修复期限与途径


@dataclass
class CreditRecordState:
    record_id: str
    violation: CreditViolation
    subject_name: str
    recorded_on: date
    state: str = "in_publicity"  # in_publicity | repaired | revoked | publicity_ended
    closed_on: date | None = None


@dataclass
class AgreementState:
    signatories: tuple[str, ...]
    mechanisms: tuple[Mechanism, ...]
    signed_on: date
    document: Document | None
    no_university_justification: str | None


@dataclass
class SupplementaryAgreementState:
    agreement_id: str
    signed_on: date
    changes: tuple[Change, ...]


@dataclass
class ReportState:
    year: int
    filed_on: date
    late: bool


@dataclass
class EvaluationState:
    agency: str
    period: str
    grade: Grade
    scores: dict[str, Decimal] = field(default_factory=dict)
    evaluated_on: date | None = None


def _today_required(today: date | None) -> date:
    if today is None:
        raise errors.InvalidValue("需要当前日期 / the command needs today's date", field="today")
    return today


class Consortium(Aggregate):
    """A consortium led by one unit, with members, from formation to listing and supervision."""

    # ----------------------------------------------------------------------------- formation (§5)
    @classmethod
    def select_lead(
        cls,
        *,
        name: str,
        city: str,
        lead: Unit,
        qualification: LeadQualification,
        fields: tuple[str, ...] | list[str],
        technologies: tuple[TechnologyKind, ...] | list[TechnologyKind] = (),
        actor: Actor,
        effective_date: date,
        today: date,
        document: Document | None = None,
        consortium_id: UUID | None = None,
    ) -> Consortium:
        """§5.1: a city bureau selects a qualified lead unit; the consortium starts forming
        (under ``consortium_id`` when the caller names it, else a new random id)."""
        if not name.strip():
            raise errors.InvalidValue("创新联合体须有名称 / a consortium needs a name", field="name")
        check_city(city)
        rules.check_actor_may("select_lead", actor, city)
        rules.check_effective_date(effective_date, today, None)
        qualification.check(lead)
        checked_fields = check_fields(list(fields))
        # eventsourcing's way to create an aggregate under a given id (None: a new random one).
        return cls._create(
            cls.LeadUnitSelected, id=consortium_id,  # type: ignore[attr-defined]
            name=name.strip(), city=city, lead=lead, qualification=qualification,
            fields=checked_fields, technologies=tuple(TechnologyKind(t) for t in technologies),
            actor=actor, effective_date=effective_date, document=document,
        )

    @event("LeadUnitSelected")
    def __init__(
        self,
        *,
        name: str,
        city: str,
        lead: Unit,
        qualification: LeadQualification,
        fields: tuple[str, ...],
        technologies: tuple[TechnologyKind, ...],
        actor: Actor,
        effective_date: date,
        document: Document | None,
    ) -> None:
        self.name = name
        self.city = city
        self.lead = lead
        self.qualification = qualification
        self.fields = tuple(fields)
        self.technologies = tuple(TechnologyKind(t) for t in technologies)
        self.status = Status.FORMING
        self.members: dict[str, Unit] = {}
        self.former_members: dict[str, Unit] = {}
        self.agreement: AgreementState | None = None
        self.no_university_justification: str | None = None
        self.application_submitted_on: date | None = None
        self.recommendation: dict[str, Any] | None = None
        self.expert_review: dict[str, Any] | None = None
        self.listed_on: date | None = None
        self.rejected_on: date | None = None
        self.supplementary_agreements: list[SupplementaryAgreementState] = []
        self.reports: dict[int, ReportState] = {}
        self.evaluations: list[EvaluationState] = []
        self.rectification_open: bool = False
        self.rectification: dict[str, Any] | None = None
        self.delisted_on: date | None = None
        self.delisting_reason: DelistingReason | None = None
        self.credit_records: dict[str, CreditRecordState] = {}
        self.last_effective_date = effective_date
        self.last_actor = actor

    def _stamp(self, actor: Actor, effective_date: date) -> None:
        self.last_effective_date = effective_date
        self.last_actor = actor

    def _check(self, command: str, actor: Actor, effective_date: date, today: date,
               allowed: tuple[Status, ...]) -> None:
        rules.check_actor_may(command, actor, self.city)
        if command in _CHANGES and self.status is Status.LISTED:
            rules.check_change_after_listing(command)
        rules.check_status(command, self.status, allowed)
        rules.check_effective_date(effective_date, _today_required(today), self.last_effective_date)

    @property
    def lead_uscc(self) -> str:
        return self.lead.uscc

    def admit_member(self, unit: Unit, *, actor: Actor, effective_date: date, today: date,
                     document: Document | None = None) -> None:
        """§5.2: the lead admits a member unit while forming (any signed agreement lapses)."""
        self._check("admit_member", actor, effective_date, today, _FORMATION)
        rules.check_new_member(self.lead_uscc, self.members, unit)
        self._admit_member(unit=unit, actor=actor, effective_date=effective_date,
                           document=document)

    @event("MemberAdmitted")
    def _admit_member(self, unit: Unit, actor: Actor, effective_date: date,
                      document: Document | None) -> None:
        self.members[unit.uscc] = unit
        self.former_members.pop(unit.uscc, None)
        self.agreement = None
        self._stamp(actor, effective_date)

    def drop_member(self, uscc: str, *, reason: str = "", actor: Actor, effective_date: date,
                    today: date, document: Document | None = None) -> None:
        """§5.2: a member leaves while forming; the lead unit can never leave."""
        rules.check_actor_may("drop_member", actor, self.city)
        rules.check_not_lead(self.lead_uscc, uscc, "退出 / leave")
        self._check("drop_member", actor, effective_date, today, _FORMATION)
        if uscc not in self.members:
            raise errors.NotAMember(f"{uscc}不是成员单位 / {uscc} is not a member", uscc=uscc)
        self._drop_member(uscc=uscc, reason=reason, actor=actor, effective_date=effective_date,
                          document=document)

    @event("MemberDropped")
    def _drop_member(self, uscc: str, reason: str, actor: Actor, effective_date: date,
                     document: Document | None) -> None:
        self.former_members[uscc] = self.members.pop(uscc)
        self.agreement = None
        self._stamp(actor, effective_date)

    def sign_agreement(
        self, *, signatories: list[str] | tuple[str, ...], mechanisms: list[Mechanism] |
        tuple[Mechanism, ...], construction_plan: str, no_university_justification: str | None =
        None, actor: Actor, effective_date: date, today: date, document: Document | None = None,
    ) -> None:
        """§5.3: lead and every member sign the co-construction agreement (共建协议)."""
        self._check("sign_agreement", actor, effective_date, today, _FORMATION)
        if not self.members:
            raise errors.AgreementNotSignedByAll(
                "尚无成员单位 / a consortium needs members before its agreement", field="members")
        rules.check_signed_by([self.lead_uscc, *self.members], signatories,
                              errors.AgreementNotSignedByAll)
        extra = sorted(set(signatories) - {self.lead_uscc, *self.members})
        if extra:
            raise errors.AgreementNotSignedByAll(
                f"签署方不是成员单位：{', '.join(extra)} / signatories not in the consortium: "
                f"{', '.join(extra)}", extra=extra, field="signatories")
        rules.check_mechanisms(mechanisms)
        if not construction_plan.strip():
            raise errors.AgreementIncomplete("须有建设方案 / a construction plan is required",
                                             field="construction_plan")
        # §4.2: the participating units (参与单位), not the lead, include a university or institute.
        rules.check_university_or_institute(self.members.values(), no_university_justification)
        self._sign_agreement(
            signatories=tuple(dict.fromkeys(signatories)),
            mechanisms=tuple(Mechanism(m) for m in mechanisms),
            construction_plan=construction_plan,
            no_university_justification=no_university_justification, actor=actor,
            effective_date=effective_date, document=document)

    @event("CoConstructionAgreementSigned")
    def _sign_agreement(self, signatories: tuple[str, ...], mechanisms: tuple[Mechanism, ...],
                        construction_plan: str, no_university_justification: str | None,
                        actor: Actor, effective_date: date, document: Document | None) -> None:
        self.agreement = AgreementState(tuple(signatories),
                                        tuple(Mechanism(m) for m in mechanisms), effective_date,
                                        document, no_university_justification)
        self.no_university_justification = no_university_justification
        self.construction_plan = construction_plan
        self._stamp(actor, effective_date)

    def submit_application(self, *, actor: Actor, effective_date: date, today: date,
                           document: Document | None = None) -> None:
        """§5.4: the lead submits the application to its city bureau."""
        self._check("submit_application", actor, effective_date, today, _FORMATION)
        if self.agreement is None:
            raise errors.AgreementNotSignedByAll(
                "须先由全体成员签署共建协议 / the co-construction agreement must be signed by the "
                "lead and every current member first", field="agreement")
        barring = self.serious_records_in_publicity(effective_date, DELISTING_CONTEXTS)
        if barring:
            # §7.3: what would delist a listed consortium, or end a pending application, bars a
            # new one until the record is repaired, revoked or out of publicity.
            raise errors.SeriousCreditRecordInPublicity(
                f"严重失信记录{', '.join(barring)}公示期内不得申报 / no application while the serious "
                f"dishonesty record {', '.join(barring)} is in publicity", record_ids=barring)
        self._submit(actor=actor, effective_date=effective_date, document=document)

    @event("ApplicationSubmitted")
    def _submit(self, actor: Actor, effective_date: date, document: Document | None) -> None:
        self.status = Status.SUBMITTED
        self.application_submitted_on = effective_date
        self._stamp(actor, effective_date)

    def recommend(self, *, necessity: str, feasibility: str, actor: Actor, effective_date: date,
                  today: date, document: Document | None = None) -> None:
        """§5.4: the city bureau verifies and recommends, on necessity and feasibility."""
        self._check("recommend", actor, effective_date, today, (Status.SUBMITTED,))
        for name, text in (("necessity", necessity), ("feasibility", feasibility)):
            if not text.strip():
                raise errors.InvalidValue(
                    f"推荐意见须说明{'必要性' if name == 'necessity' else '可行性'} / the "
                    f"recommendation needs an opinion on {name}", field=name)
        self._recommend(necessity=necessity, feasibility=feasibility, actor=actor,
                        effective_date=effective_date, document=document)

    @event("CityRecommended")
    def _recommend(self, necessity: str, feasibility: str, actor: Actor, effective_date: date,
                   document: Document | None) -> None:
        self.status = Status.RECOMMENDED
        self.recommendation = {"necessity": necessity, "feasibility": feasibility,
                               "on": effective_date}
        self._stamp(actor, effective_date)

    def return_application(self, *, reason: str, actor: Actor, effective_date: date, today: date,
                           document: Document | None = None) -> None:
        """§5.4: the city bureau returns the application to the lead for revision."""
        self._check("return_application", actor, effective_date, today, (Status.SUBMITTED,))
        _require_text(reason, "reason")
        self._return(reason=reason, actor=actor, effective_date=effective_date,
                     document=document)

    @event("ApplicationReturned")
    def _return(self, reason: str, actor: Actor, effective_date: date,
                document: Document | None) -> None:
        self.status = Status.FORMING
        self._stamp(actor, effective_date)

    def record_expert_review(self, *, opinion: str, score: Decimal | None = None,
                             recommended: bool, actor: Actor, effective_date: date, today: date,
                             document: Document | None = None) -> None:
        """§5.4: the province's experts evaluate the construction plan."""
        self._check("record_expert_review", actor, effective_date, today, (Status.RECOMMENDED,))
        _require_text(opinion, "opinion")
        if score is not None and not _is_score(score):
            raise errors.InvalidValue("评分应为0–100的定点数 / score must be a decimal within 0–100",
                                      field="score")
        self._review(opinion=opinion, score=score, recommended=recommended, actor=actor,
                     effective_date=effective_date, document=document)

    @event("ExpertReviewRecorded")
    def _review(self, opinion: str, score: Decimal | None, recommended: bool, actor: Actor,
                effective_date: date, document: Document | None) -> None:
        self.status = Status.REVIEWED
        self.expert_review = {"opinion": opinion, "score": score, "recommended": recommended}
        self._stamp(actor, effective_date)

    def approve(self, *, actor: Actor, effective_date: date, today: date,
                document: Document | None = None) -> None:
        """§5.4: the province approves: the consortium is listed as a provincial consortium."""
        self._check("approve", actor, effective_date, today, (Status.REVIEWED,))
        if not (self.expert_review or {}).get("recommended"):
            raise errors.ApprovalWithoutFavourableReview(
                "专家评估论证未予推荐，不能认定 / the expert review did not recommend this "
                "consortium: it cannot be listed")
        self._list(actor=actor, effective_date=effective_date, document=document)

    @event("Listed")
    def _list(self, actor: Actor, effective_date: date, document: Document | None) -> None:
        self.status = Status.LISTED
        self.listed_on = effective_date
        self._stamp(actor, effective_date)

    def reject(self, *, reason: str, actor: Actor, effective_date: date, today: date,
               document: Document | None = None) -> None:
        """§5.4: the province does not support the application."""
        self._check("reject", actor, effective_date, today, (Status.RECOMMENDED, Status.REVIEWED))
        _require_text(reason, "reason")
        self._reject(reason=reason, actor=actor, effective_date=effective_date, document=document)

    @event("Rejected")
    def _reject(self, reason: str, actor: Actor, effective_date: date,
                document: Document | None) -> None:
        self.status = Status.REJECTED
        self.rejected_on = effective_date
        self._stamp(actor, effective_date)

    # ------------------------------------------------------------------------------ operation (§7)
    def sign_supplementary_agreement(
        self, *, changes: list[Change] | tuple[Change, ...], signatories: list[str] |
        tuple[str, ...], no_university_justification: str | None = None, actor: Actor,
        effective_date: date, today: date, document: Document | None,
    ) -> str:
        """§7.3: the only way to change members, plan, structure or mechanisms after listing.
        Returns the agreement's id (SA-n), which the year's annual report must explain."""
        rules.check_actor_may("sign_supplementary_agreement", actor, self.city)
        no_university_justification = (no_university_justification or "").strip() or None
        for change in changes:
            if change.kind is ChangeKind.LEAD_REPLACED:
                rules.check_not_lead(self.lead_uscc, self.lead_uscc, "更换 / be replaced")
            if change.kind is ChangeKind.MEMBER_WITHDRAWS:
                rules.check_not_lead(self.lead_uscc, change.uscc or "", "退出 / withdraw")
            if change.kind is ChangeKind.MEMBER_JOINS and change.unit is not None:
                rules.check_not_lead(self.lead_uscc, change.unit.uscc, "以成员身份重新加入 / "
                                     "rejoin as a member")
        self._check("sign_supplementary_agreement", actor, effective_date, today, _OPERATING)
        if not changes:
            raise errors.InvalidValue("补充协议须载明变动事项 / a supplementary agreement "
                                      "states at least one change", field="changes")
        if document is None:
            raise errors.InvalidDocument("补充协议须附签署文本 / a supplementary agreement needs "
                                         "its signed document", field="document")
        members = dict(self.members)
        concerned = {self.lead_uscc}
        for change in changes:
            if change.kind is ChangeKind.MEMBER_JOINS:
                if change.unit is None:
                    raise errors.InvalidValue("须载明加入的单位 / name the joining unit",
                                              field="changes.unit")
                rules.check_new_member(self.lead_uscc, members, change.unit)
                members[change.unit.uscc] = change.unit
                concerned.add(change.unit.uscc)
            elif change.kind is ChangeKind.MEMBER_WITHDRAWS:
                if change.uscc not in members:
                    raise errors.NotAMember(f"{change.uscc}不是成员单位 / {change.uscc} is not a "
                                            "member", uscc=change.uscc)
                del members[change.uscc]
                concerned.add(change.uscc)
            else:
                _require_text(change.description, "changes.description")
                concerned.update(self.members)
        rules.check_signed_by(concerned, signatories, errors.SupplementaryAgreementNotSigned)
        extra = sorted(set(signatories) - {self.lead_uscc, *self.members, *members})
        if extra:
            raise errors.SupplementaryAgreementNotSigned(
                f"签署方不是本联合体的单位：{', '.join(extra)} / signatories not in the consortium: "
                f"{', '.join(extra)}", extra=extra, field="signatories")
        if not members:
            raise errors.MembersRequired(
                "变动后须至少保留一家成员单位 / a consortium keeps at least one member unit",
                field="changes")
        rules.check_university_or_institute(
            members.values(), no_university_justification or self.no_university_justification)
        agreement_id = f"SA-{len(self.supplementary_agreements) + 1}"
        self._sign_supplementary(
            agreement_id=agreement_id, changes=tuple(changes),
            signatories=tuple(dict.fromkeys(signatories)),
            no_university_justification=no_university_justification, actor=actor,
            effective_date=effective_date, document=document)
        return agreement_id

    @event("SupplementaryAgreementSigned")
    def _sign_supplementary(self, agreement_id: str, changes: tuple[Change, ...],
                            signatories: tuple[str, ...], no_university_justification: str | None,
                            actor: Actor, effective_date: date, document: Document | None) -> None:
        for change in changes:
            if change.kind is ChangeKind.MEMBER_JOINS and change.unit is not None:
                self.members[change.unit.uscc] = change.unit
                self.former_members.pop(change.unit.uscc, None)
            elif change.kind is ChangeKind.MEMBER_WITHDRAWS and change.uscc in self.members:
                self.former_members[change.uscc] = self.members.pop(change.uscc)
        if no_university_justification:
            self.no_university_justification = no_university_justification
        self.supplementary_agreements.append(
            SupplementaryAgreementState(agreement_id, effective_date, tuple(changes)))
        self._stamp(actor, effective_date)

    def file_annual_report(self, *, year: int, sections: dict[str, str],
                           explanations: dict[str, str] | None = None, actor: Actor,
                           effective_date: date, today: date,
                           document: Document | None = None) -> bool:
        """§7.1: the year's self-assessment report, due by 31 May of the next year.
        The effective date is the filing date; returns whether the report is late."""
        self._check("file_annual_report", actor, effective_date, today, _OPERATING)
        assert self.listed_on is not None
        rules.check_annual_report(year, effective_date, self.listed_on, self.reports)
        rules.check_report_sections(sections)
        explanations = dict(explanations or {})
        rules.check_explanations(
            [a.agreement_id for a in self.supplementary_agreements if a.signed_on.year == year],
            explanations)
        late = rules.is_late(year, effective_date)
        self._file_report(year=year, sections=dict(sections), explanations=explanations,
                          late=late, actor=actor, effective_date=effective_date,
                          document=document)
        return late

    @event("AnnualReportFiled")
    def _file_report(self, year: int, sections: dict[str, str], explanations: dict[str, str],
                     late: bool, actor: Actor, effective_date: date,
                     document: Document | None) -> None:
        self.reports[year] = ReportState(year, effective_date, late)
        self._stamp(actor, effective_date)

    def record_evaluation(self, *, agency: str, period: str, scores: dict[str, Decimal],
                          grade: Grade, actor: Actor, effective_date: date, today: date,
                          document: Document | None = None) -> None:
        """§7.2: a third-party agency's performance evaluation with its indicator scores."""
        self._check("record_evaluation", actor, effective_date, today, _OPERATING)
        _require_text(agency, "agency")
        _require_text(period, "period")
        for indicator, score in scores.items():
            if not _is_score(score):
                raise errors.InvalidValue(f"指标“{indicator}”得分应为0–100的定点数 / indicator "
                                          f"{indicator}: score must be a decimal within 0–100",
                                          field="scores")
        self._evaluate(agency=agency, period=period, scores=dict(scores), grade=Grade(grade),
                       actor=actor, effective_date=effective_date, document=document)

    @event("EvaluationRecorded")
    def _evaluate(self, agency: str, period: str, scores: dict[str, Decimal], grade: Grade,
                  actor: Actor, effective_date: date, document: Document | None) -> None:
        self.evaluations.append(EvaluationState(agency, period, Grade(grade), dict(scores),
                                                effective_date))
        self._stamp(actor, effective_date)

    @property
    def latest_grade(self) -> Grade | None:
        return self.evaluations[-1].grade if self.evaluations else None

    def serious_records_in_publicity(self, on: date,
                                     contexts: frozenset[ViolationContext] | None = None
                                     ) -> list[str]:
        """The serious dishonesty records still in publicity on ``on`` (neither closed nor past
        their publicity end), in ``contexts`` when given."""
        return [r.record_id for r in self.credit_records.values()
                if r.violation.severity is Severity.SERIOUS and r.state == "in_publicity"
                and on <= r.violation.publicity_end
                and (contexts is None or r.violation.context in contexts)]

    def order_rectification(self, *, requirements: str, deadline: date, actor: Actor,
                            effective_date: date, today: date,
                            document: Document | None = None) -> None:
        """§7.2: after a poor evaluation the province orders rectification (整改)."""
        self._check("order_rectification", actor, effective_date, today, _OPERATING)
        if self.latest_grade is not Grade.POOR:
            raise errors.RectificationNotAllowed(
                "仅评价结果较差时督促整改 / rectification follows a poor evaluation only")
        if self.rectification_open:
            raise errors.RectificationNotAllowed("已有未完成的整改 / a rectification is open")
        _require_text(requirements, "requirements")
        if deadline <= effective_date:
            raise errors.InvalidValue("整改期限应晚于下达日期 / the deadline must follow the order",
                                      field="deadline")
        self._order_rectification(requirements=requirements, deadline=deadline, actor=actor,
                                  effective_date=effective_date, document=document)

    @event("RectificationOrdered")
    def _order_rectification(self, requirements: str, deadline: date, actor: Actor,
                             effective_date: date, document: Document | None) -> None:
        self.rectification_open = True
        self.rectification = {"requirements": requirements, "deadline": deadline,
                              "ordered_on": effective_date}
        self._stamp(actor, effective_date)

    def complete_rectification(self, *, outcome: str, actor: Actor, effective_date: date,
                               today: date, document: Document | None = None) -> None:
        """§7.2: the province records that the rectification was completed."""
        self._check("complete_rectification", actor, effective_date, today, _OPERATING)
        if not self.rectification_open:
            raise errors.RectificationNotAllowed("没有未完成的整改 / no rectification is open")
        _require_text(outcome, "outcome")
        self._complete_rectification(outcome=outcome, actor=actor, effective_date=effective_date,
                                     document=document)

    @event("RectificationCompleted")
    def _complete_rectification(self, outcome: str, actor: Actor, effective_date: date,
                                document: Document | None) -> None:
        self.rectification_open = False
        self._stamp(actor, effective_date)

    def delist(self, *, reason: DelistingReason, explanation: str = "", actor: Actor,
               effective_date: date, today: date, document: Document | None) -> None:
        """§7.2/§7.3: the province delists (摘牌) for a poor evaluation, serious dishonesty, or
        another stated reason, on a decision document."""
        self._check("delist", actor, effective_date, today, _OPERATING)
        reason = DelistingReason(reason)
        if document is None:
            raise errors.InvalidDocument("摘牌须附决定文件 / delisting needs its decision document",
                                         field="document")
        if reason is DelistingReason.POOR_EVALUATION and self.latest_grade is not Grade.POOR:
            raise errors.DelistingNotJustified(
                "最近一次评价结果不是较差 / the latest evaluation is not poor", reason=reason.value)
        if (reason is DelistingReason.SERIOUS_DISHONESTY
                and not self.serious_records_in_publicity(effective_date)):
            raise errors.DelistingNotJustified(
                "没有公示期内的严重失信记录 / no serious dishonesty record is in publicity",
                reason=reason.value)
        if reason is DelistingReason.OTHER:
            _require_text(explanation, "explanation")
        self._delist(reason=reason, explanation=explanation, actor=actor,
                     effective_date=effective_date, document=document)

    @event("Delisted")
    def _delist(self, reason: DelistingReason, explanation: str, actor: Actor,
                effective_date: date, document: Document | None) -> None:
        self.status = Status.DELISTED
        self.delisted_on = effective_date
        self.delisting_reason = DelistingReason(reason)
        self.rectification_open = False
        self._stamp(actor, effective_date)

    # --------------------------------------------------------------------------------- credit (§7.3)
    def record_credit_violation(self, violation: CreditViolation, *, actor: Actor,
                                effective_date: date, today: date,
                                document: Document | None) -> str:
        """§7.3: record a dishonesty record against the lead or a member. A serious one in the
        application, project work or annual report delists a listed consortium in the same command
        (and ends a pending application). Returns the record's id (CR-n)."""
        rules.check_actor_may("record_credit_violation", actor, self.city)
        rules.check_effective_date(effective_date, today, self.last_effective_date)
        units = {self.lead_uscc: self.lead, **self.former_members, **self.members}
        subject = units.get(violation.subject_uscc)
        if subject is None:
            raise errors.CreditSubjectNotInConsortium(
                f"{violation.subject_uscc}不是牵头单位或成员单位 / {violation.subject_uscc} is neither "
                "the lead nor a member", uscc=violation.subject_uscc, field="subject_uscc")
        if document is None:
            raise errors.InvalidDocument("失信记录须附认定文件 / a dishonesty record needs its "
                                         "decision document", field="document")
        for name in ("facts", "legal_basis", "deciding_authority"):
            _require_text(getattr(violation, name), name)
        if not (violation.publicity_start <= violation.earliest_repair_date
                <= violation.publicity_end):
            raise errors.InvalidValue(
                "应满足 公示开始 ≤ 最早修复日期 ≤ 公示结束 / publicity start ≤ earliest repair date ≤ "
                "publicity end", field="publicity_end")
        record_id = f"CR-{len(self.credit_records) + 1}"
        self._record_violation(record_id=record_id, violation=violation,
                               subject_name=subject.name, actor=actor,
                               effective_date=effective_date, document=document)
        if violation.severity is Severity.SERIOUS and violation.context in DELISTING_CONTEXTS:
            if self.status is Status.LISTED:
                self._delist(reason=DelistingReason.SERIOUS_DISHONESTY,
                             explanation=f"{record_id}: {violation.facts}", actor=actor,
                             effective_date=effective_date, document=document)
            elif self.status in (Status.SUBMITTED, Status.RECOMMENDED, Status.REVIEWED):
                self._reject(reason=f"{record_id}: {violation.facts}", actor=actor,
                             effective_date=effective_date, document=document)
        return record_id

    @event("CreditViolationRecorded")
    def _record_violation(self, record_id: str, violation: CreditViolation, subject_name: str,
                          actor: Actor, effective_date: date, document: Document | None) -> None:
        self.credit_records[record_id] = CreditRecordState(record_id, violation, subject_name,
                                                           effective_date)
        self._stamp(actor, effective_date)

    def _open_record(self, command: str, record_id: str, actor: Actor, effective_date: date,
                     today: date) -> CreditRecordState:
        rules.check_actor_may(command, actor, self.city)
        rules.check_effective_date(effective_date, today, self.last_effective_date)
        record = self.credit_records.get(record_id)
        if record is None:
            raise errors.CreditRecordNotFound(f"失信记录{record_id}不存在 / no credit record "
                                              f"{record_id}", record_id=record_id)
        if record.state != "in_publicity":
            raise errors.CreditRecordClosed(f"失信记录{record_id}已{record.state} / record "
                                            f"{record_id} is {record.state}", record_id=record_id)
        return record

    def repair_credit(self, record_id: str, *, measures: str, actor: Actor, effective_date: date,
                      today: date, document: Document | None) -> None:
        """信用修复: not before the record's earliest repair date."""
        record = self._open_record("repair_credit", record_id, actor, effective_date, today)
        if effective_date < record.violation.earliest_repair_date:
            raise errors.CreditRepairTooEarly(
                f"最早可于{record.violation.earliest_repair_date}修复 / repair is possible from "
                f"{record.violation.earliest_repair_date}", record_id=record_id)
        _require_text(measures, "measures")
        self._repair(record_id=record_id, measures=measures, actor=actor,
                     effective_date=effective_date, document=document)

    @event("CreditRepaired")
    def _repair(self, record_id: str, measures: str, actor: Actor, effective_date: date,
                document: Document | None) -> None:
        self._close_record(record_id, "repaired", actor, effective_date)

    def revoke_credit(self, record_id: str, *, reason: str, actor: Actor, effective_date: date,
                      today: date, document: Document | None) -> None:
        """The deciding authority revokes a record made in error."""
        self._open_record("revoke_credit", record_id, actor, effective_date, today)
        _require_text(reason, "reason")
        self._revoke(record_id=record_id, reason=reason, actor=actor,
                     effective_date=effective_date, document=document)

    @event("CreditRevoked")
    def _revoke(self, record_id: str, reason: str, actor: Actor, effective_date: date,
                document: Document | None) -> None:
        self._close_record(record_id, "revoked", actor, effective_date)

    def end_credit_publicity(self, record_id: str, *, actor: Actor, effective_date: date,
                             today: date, document: Document | None = None) -> None:
        """The record's publicity period is over; its content is withdrawn from publication."""
        record = self._open_record("end_credit_publicity", record_id, actor, effective_date, today)
        if effective_date < record.violation.publicity_end:
            raise errors.InvalidValue(f"公示期至{record.violation.publicity_end}结束 / publicity "
                                      f"lasts until {record.violation.publicity_end}",
                                      field="effective_date")
        self._end_publicity(record_id=record_id, actor=actor, effective_date=effective_date,
                            document=document)

    @event("CreditPublicityEnded")
    def _end_publicity(self, record_id: str, actor: Actor, effective_date: date,
                       document: Document | None) -> None:
        self._close_record(record_id, "publicity_ended", actor, effective_date)

    def _close_record(self, record_id: str, state: str, actor: Actor,
                      effective_date: date) -> None:
        record = self.credit_records[record_id]
        record.state = state
        record.closed_on = effective_date
        self._stamp(actor, effective_date)


def _is_score(score: object) -> bool:
    """A finite decimal (or integer) within 0–100; never a float."""
    if isinstance(score, bool) or not isinstance(score, Decimal | int):
        return False
    value = Decimal(score)
    return value.is_finite() and Decimal(0) <= value <= Decimal(100)


def _require_text(value: str, field_name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise errors.InvalidValue(f"“{field_name}”不能为空 / {field_name} is required",
                                  field=field_name)
