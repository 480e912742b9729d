"""Semantic audit (语义审计): re-check the guideline's rules on the raw ledger.

The chain verifier (``audit.verify``) proves that the stored bytes are the bytes that were written;
it cannot tell whether what was written obeys the guideline. A record forged by someone who can
also recompute the chain (a database owner without a signed checkpoint) passes the chain check.
This module replays the raw records — never the projections, never the aggregate's commands —
and reports, by ledger position, every history in which:

* the lead unit changed or left (牵头单位不可发生变动, §7.3): a second ``LeadUnitSelected``, an event
  carrying a different lead, the lead admitted or dropped as a member, or a supplementary agreement
  that withdraws, re-admits or replaces the lead;
* membership or the co-construction agreement changed after listing without a supplementary
  agreement (认定后变动须签署补充协议, §7.3);
* anything but a credit record followed delisting (摘牌后仅可记录信用信息);
* an annual report did not explain every supplementary agreement signed in its year (§7.3);
* an effective date ran backwards within a consortium, or lay after the date on which the record
  was written (its own timestamp, in China Standard Time, the registry's "today");
* a consortium's versions are not 1, 2, 3, … in ledger order (a record slipped in or left out).

Each record is decoded by hand (``json`` + ``audit.ledger.plain``; the topic
``domain.consortium:Consortium.<EventName>`` names the event), and the named checks of
``domain/rules.py`` are called on the decoded values: a ``DomainError`` they raise becomes a
finding with that error's ``code`` and class name. Memory holds one small state per consortium
(lead USCC, members, status, dates, supplementary agreements by year), never the ledger.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from audit import ledger
from audit.chain import Record, canonical_id
from audit.store import Database
from domain import errors, rules
from domain.registry import CHINA_STANDARD_TIME
from domain.rules import ChangeKind, Status

#: The Consortium aggregate's events are stored under this topic prefix.
TOPIC_PREFIX = "domain.consortium:Consortium."

#: What may still be recorded after delisting (§7.3: the dishonesty record outlives the listing).
CREDIT_EVENTS = frozenset(
    {"CreditViolationRecorded", "CreditRepaired", "CreditRevoked", "CreditPublicityEnded"}
)

#: The command that writes each event (the name the rule checks and their messages use).
COMMANDS: dict[str, str] = {
    "LeadUnitSelected": "select_lead",
    "MemberAdmitted": "admit_member",
    "MemberDropped": "drop_member",
    "CoConstructionAgreementSigned": "sign_agreement",
    "ApplicationSubmitted": "submit_application",
    "CityRecommended": "recommend",
    "ApplicationReturned": "return_application",
    "ExpertReviewRecorded": "record_expert_review",
    "Listed": "approve",
    "Rejected": "reject",
    "SupplementaryAgreementSigned": "sign_supplementary_agreement",
    "AnnualReportFiled": "file_annual_report",
    "EvaluationRecorded": "record_evaluation",
    "RectificationOrdered": "order_rectification",
    "RectificationCompleted": "complete_rectification",
    "Delisted": "delist",
    "CreditViolationRecorded": "record_credit_violation",
    "CreditRepaired": "repair_credit",
    "CreditRevoked": "revoke_credit",
    "CreditPublicityEnded": "end_credit_publicity",
}

#: Formation events that, once listed, only a supplementary agreement may replace (§7.3).
CHANGE_EVENTS = frozenset({"MemberAdmitted", "MemberDropped", "CoConstructionAgreementSigned"})

#: The status each event leaves the consortium in (the event bodies' assignments).
STATUS_AFTER: dict[str, Status] = {
    "LeadUnitSelected": Status.FORMING,
    "ApplicationSubmitted": Status.SUBMITTED,
    "CityRecommended": Status.RECOMMENDED,
    "ApplicationReturned": Status.FORMING,
    "ExpertReviewRecorded": Status.REVIEWED,
    "Listed": Status.LISTED,
    "Rejected": Status.REJECTED,
    "Delisted": Status.DELISTED,
}

# Findings that no DomainError names: they concern the ledger's shape, not one command.
VERSION_NOT_CONSECUTIVE = "version-not-consecutive"
NO_LEAD_SELECTION = "history-without-lead-selection"
UNKNOWN_EVENT = "unknown-event"
UNDECODABLE_RECORD = "undecodable-record"


@dataclass(frozen=True)
class Finding:
    """One broken rule at one position of the ledger."""

    position: int
    consortium_id: str
    version: int
    event: str
    rule: str  # the DomainError's code where one exists, else one of the codes above
    error: str | None  # the DomainError's class name, when a rule of domain/rules.py raised it
    message: str  # 中文 / English


@dataclass
class SemanticReport:
    database: str
    records: int = 0  # records read (every topic)
    audited: int = 0  # consortium records checked
    consortia: int = 0
    findings: list[Finding] = field(default_factory=list)
    truncated_findings: bool = False

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def by_rule(self) -> dict[str, int]:
        return dict(sorted(Counter(f.rule for f in self.findings).items()))

    def to_json(self) -> str:
        d = asdict(self)
        d["ok"] = self.ok
        d["first"] = asdict(self.first) if self.first else None
        d["by_rule"] = self.by_rule()
        return json.dumps(d, ensure_ascii=False, indent=2)


@dataclass(slots=True)
class ConsortiumState:
    """What the auditor remembers about one consortium between its records."""

    version: int = 0
    lead_uscc: str | None = None
    status: Status | None = None
    members: set[str] = field(default_factory=set)
    listed_on: date | None = None
    delisted: bool = False  # sticky: nothing but credit records after the first Delisted
    last_effective_date: date | None = None
    supplementary_agreements: int = 0
    agreements_by_year: dict[int, list[str]] = field(default_factory=dict)


class _Undecodable(Exception):
    pass


class SemanticAuditor:
    """Feed it records in position order; it returns each record's findings. Pure: no database."""

    def __init__(self) -> None:
        self.consortia: dict[str, ConsortiumState] = {}

    def check(self, record: Record) -> list[Finding]:
        cid = canonical_id(record.originator_id)
        name = _event_name(record.topic)
        state = self.consortia.get(cid)
        if name is None and state is None:
            return []  # another aggregate's record (not a consortium): not this audit's business
        found: list[Finding] = []
        seen: set[str] = set()

        def report(rule: str, error: str | None, message: str) -> None:
            if rule not in seen:  # one finding per rule per record
                seen.add(rule)
                found.append(Finding(record.position, cid, record.originator_version,
                                     name or record.topic, rule, error, message))

        def check(rule_check: Callable[..., None], *args: Any) -> None:
            try:
                rule_check(*args)
            except errors.DomainError as e:
                report(e.code, type(e).__name__, e.message)

        # --- versions: 1, 2, 3, … per consortium in ledger order ---------------------------
        expected = state.version + 1 if state is not None else 1
        if record.originator_version != expected:
            report(VERSION_NOT_CONSECUTIVE, None,
                   f"版本号应为{expected}，实为{record.originator_version} / version "
                   f"{record.originator_version} where {expected} was expected")
        existed = state is not None
        if state is None:
            state = self.consortia[cid] = ConsortiumState()
        state.version = max(state.version, record.originator_version)
        if name is None or name not in COMMANDS:
            report(UNKNOWN_EVENT, None, f"未知的事项类型{record.topic} / unknown event type "
                   f"{record.topic}")
            return found

        try:
            data = _decode(record.state)
            on = _date(data.get("effective_date"), "effective_date")
            recorded_on = _recorded_on(data.get("timestamp"))
        except _Undecodable as e:
            report(UNDECODABLE_RECORD, None, str(e))
            return found

        # --- the lead unit can never change or leave (§7.3) -----------------------------------
        lead = state.lead_uscc
        if name == "LeadUnitSelected":
            selected = _uscc(data.get("lead"))
            if existed or record.originator_version != 1:
                check(_check_lead_not_reselected, lead, selected, record.originator_version)
            if lead is None:
                state.lead_uscc = lead = selected
        elif not existed:
            report(NO_LEAD_SELECTION, None,
                   f"创新联合体的首个事项不是遴选牵头单位，而是{name} / the consortium's first "
                   f"event is {name}, not LeadUnitSelected")
        if lead is not None:
            if name != "LeadUnitSelected" and "lead" in data:
                check(_check_same_lead, lead, _uscc(data.get("lead")))
            if name == "MemberAdmitted":
                check(rules.check_not_lead, lead, _uscc(data.get("unit")),
                      "以成员身份加入 / join as a member")
            elif name == "MemberDropped":
                check(rules.check_not_lead, lead, str(data.get("uscc") or ""), "退出 / leave")
            elif name == "SupplementaryAgreementSigned":
                for change in _changes(data):
                    kind = change.get("kind")
                    if kind == ChangeKind.LEAD_REPLACED.value:
                        check(rules.check_not_lead, lead, lead, "更换 / be replaced")
                    elif kind == ChangeKind.MEMBER_WITHDRAWS.value:
                        check(rules.check_not_lead, lead, str(change.get("uscc") or ""),
                              "退出 / withdraw")
                    elif kind == ChangeKind.MEMBER_JOINS.value and change.get("unit"):
                        check(rules.check_not_lead, lead, _uscc(change.get("unit")),
                              "以成员身份重新加入 / rejoin as a member")

        # --- delisted: credit records only; listed: changes only by supplementary agreement -----
        command = COMMANDS[name]
        if state.delisted and name not in CREDIT_EVENTS:
            check(rules.check_status, command, Status.DELISTED, ())
        elif name in CHANGE_EVENTS and state.listed_on is not None:
            # Once listed, always "after listing": a forged return to an earlier status must not
            # reopen formation (legitimately, Listed is followed only by supervision or Delisted).
            check(rules.check_change_after_listing, command)

        # --- the year's report explains the year's supplementary agreements (§7.3) ------------
        if name == "AnnualReportFiled":
            try:
                year = int(data["year"])
            except (KeyError, TypeError, ValueError):
                report(UNDECODABLE_RECORD, None, f"年度无效：{data.get('year')!r} / invalid year")
            else:
                check(rules.check_explanations, state.agreements_by_year.get(year, []),
                      _explanations(data.get("explanations")))

        # --- effective dates: never after the recording day, never before the previous event ---
        check(rules.check_effective_date, on, recorded_on, None)
        if state.last_effective_date is not None:
            check(rules.check_effective_date, on, date.max, state.last_effective_date)

        _apply(state, name, data, on)
        return found


def semantic_audit(db: Database, *, progress: Callable[[int], None] | None = None,
                   max_findings: int = 1000, batch: int = ledger.BATCH) -> SemanticReport:
    """Stream the whole ledger in position order and report every semantic violation (up to
    ``max_findings``; ``truncated_findings`` tells when more were seen)."""
    report = SemanticReport(database=db.display())
    auditor = SemanticAuditor()
    for row in ledger.rows(db, batch):
        record = row.record
        if record is None:
            continue  # a link without its record: the chain verifier names it
        report.records += 1
        findings = auditor.check(record)
        if record.topic.startswith(TOPIC_PREFIX) or findings:
            report.audited += 1
        for finding in findings:
            if len(report.findings) < max_findings:
                report.findings.append(finding)
            else:
                report.truncated_findings = True
        if progress is not None:
            progress(report.records)
    report.consortia = len(auditor.consortia)
    return report


# ------------------------------------------------------------------------------- rule helpers
def _check_same_lead(lead_uscc: str, uscc: str) -> None:
    """An event that names a lead names the consortium's own lead (§7.3)."""
    if uscc != lead_uscc:
        raise errors.LeadUnitCannotChange(
            f"牵头单位不可发生变动：记录中的牵头单位{uscc}不是{lead_uscc} / the lead unit can never "
            f"change: the record names {uscc}, not {lead_uscc}", uscc=uscc, lead_uscc=lead_uscc)


def _check_lead_not_reselected(lead_uscc: str | None, uscc: str, version: int) -> None:
    """The lead unit is selected once, at version 1 (§5.1, §7.3)."""
    if lead_uscc is not None and uscc != lead_uscc:
        raise errors.LeadUnitCannotChange(
            f"牵头单位不可发生变动：第{version}版另行遴选{uscc}取代{lead_uscc} / the lead unit can "
            f"never change: version {version} selects {uscc} in place of {lead_uscc}",
            uscc=uscc, lead_uscc=lead_uscc)
    raise errors.LeadUnitCannotChange(
        f"牵头单位只能在第1版遴选一次，第{version}版再次遴选{uscc} / the lead unit is selected once, "
        f"at version 1: version {version} selects {uscc} again", uscc=uscc)


# ------------------------------------------------------------------------------- decoding
def _event_name(topic: str) -> str | None:
    if topic.startswith(TOPIC_PREFIX):
        return topic[len(TOPIC_PREFIX):]
    return None


def _decode(state: bytes) -> dict[str, Any]:
    try:
        data = ledger.plain(json.loads(state))
    except (UnicodeDecodeError, ValueError) as e:
        raise _Undecodable(f"记录不是有效的JSON / the record is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise _Undecodable("记录不是JSON对象 / the record is not a JSON object")
    return data


def _date(value: object, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _Undecodable(f"“{name}”不是有效日期：{value!r} / {name} is not a date: "
                           f"{value!r}") from None


def _recorded_on(value: object) -> date:
    """The day the record was written, in China Standard Time (the registry's "today")."""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        raise _Undecodable(f"时间戳无效：{value!r} / invalid timestamp: {value!r}") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(CHINA_STANDARD_TIME).date()


def _uscc(unit: object) -> str:
    if isinstance(unit, dict):
        return str(unit.get("uscc") or "")
    return ""


def _changes(data: dict[str, Any]) -> list[dict[str, Any]]:
    changes = data.get("changes")
    if not isinstance(changes, list):
        return []
    return [c for c in changes if isinstance(c, dict)]


def _explanations(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else "" for k, v in value.items()}


def _apply(state: ConsortiumState, name: str, data: dict[str, Any], on: date) -> None:
    """What the event changes in the auditor's state (as the event bodies assign)."""
    if name in STATUS_AFTER and not (name == "LeadUnitSelected" and state.status is not None):
        state.status = STATUS_AFTER[name]  # a repeated lead selection restarts nothing
    if name == "Listed":
        state.listed_on = on
    elif name == "Delisted":
        state.delisted = True
    elif name == "MemberAdmitted":
        uscc = _uscc(data.get("unit"))
        if uscc and uscc != state.lead_uscc:
            state.members.add(uscc)
    elif name == "MemberDropped":
        state.members.discard(str(data.get("uscc") or ""))
    elif name == "SupplementaryAgreementSigned":
        for change in _changes(data):
            if change.get("kind") == ChangeKind.MEMBER_JOINS.value:
                uscc = _uscc(change.get("unit"))
                if uscc and uscc != state.lead_uscc:
                    state.members.add(uscc)
            elif change.get("kind") == ChangeKind.MEMBER_WITHDRAWS.value:
                state.members.discard(str(change.get("uscc") or ""))
        state.supplementary_agreements += 1
        agreement_id = str(data.get("agreement_id") or f"SA-{state.supplementary_agreements}")
        state.agreements_by_year.setdefault(on.year, []).append(agreement_id)
    state.last_effective_date = on
