"""The semantic audit on SQLite and PostgreSQL: the demo history obeys the guideline; a record
forged by someone who also recomputes the chain passes ``verify_chain`` but is named here, by
position and rule.

Forging plays a database owner who knows the ledger format (docs/ledger.md): copy a real stored
event of the right topic, edit its JSON (keeping the transcoder's ``{"_type_", "_data_"}``
wrappers), give it the consortium's next version, and append it with a link computed from the
current head. Appending needs no trigger change (the triggers refuse UPDATE and DELETE only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import pytest

from api.demo import record_demo
from audit import ledger
from audit.chain import Record, canonical_id, link_hash
from audit.semantic import VERSION_NOT_CONSECUTIVE, SemanticReport, semantic_audit
from audit.store import open_registry
from audit.verify import verify_chain
from domain import errors
from domain.consortium import Change
from domain.registry import Registry
from domain.rules import ChangeKind, Mechanism
from domain.units import UnitKind
from tests.factories import NANJING, PROVINCE, TODAY, D, doc, lead_qualification, sections, unit
from tests.integration.tamper import Tamperer

TOPIC = "domain.consortium:Consortium."
LEAD_CHANGED = errors.LeadUnitCannotChange.code
CHANGE_AFTER_LISTING = errors.ChangeRequiresSupplementaryAgreement.code
DELISTED = errors.ConsortiumDelisted.code
NOT_EXPLAINED = errors.SupplementaryAgreementNotExplained.code
BACKWARDS = errors.EffectiveDateBeforePreviousEvent.code
IN_FUTURE = errors.EffectiveDateInFuture.code


def registry(url: str) -> Registry:
    return open_registry(url, clock=lambda: TODAY)


def record_extra(reg: Registry) -> str:
    """A consortium listed in 2025 with a supplementary agreement signed in 2025 and no 2025
    report yet; a member was dropped while forming (a real MemberDropped to copy)."""
    lead = unit(name="南京测试牵头企业")
    uni, firm, gone = unit(UnitKind.UNIVERSITY), unit(), unit()
    cid = str(reg.select_lead(name="南京测试创新联合体", city="nanjing", lead=lead,
                              qualification=lead_qualification(), fields=["new_materials"],
                              actor=NANJING, effective_date=D(2025, 1, 6))["consortium_id"])
    for m in (uni, firm, gone):
        reg.admit_member(cid, m, actor=NANJING, effective_date=D(2025, 1, 10))
    reg.drop_member(cid, gone.uscc, reason="自愿退出", actor=NANJING, effective_date=D(2025, 1, 12))
    reg.sign_agreement(cid, signatories=[lead.uscc, uni.uscc, firm.uscc], mechanisms=list(Mechanism),
                       construction_plan="建设方案", actor=NANJING, effective_date=D(2025, 1, 20),
                       document=doc("共建协议"))
    reg.submit_application(cid, actor=NANJING, effective_date=D(2025, 2, 1))
    reg.recommend(cid, necessity="必要", feasibility="可行", actor=NANJING,
                  effective_date=D(2025, 2, 10))
    reg.record_expert_review(cid, opinion="同意", recommended=True, actor=PROVINCE,
                             effective_date=D(2025, 2, 20))
    reg.approve(cid, actor=PROVINCE, effective_date=D(2025, 3, 1), document=doc("认定通知"))
    reg.sign_supplementary_agreement(
        cid, changes=[Change(ChangeKind.STRATEGIC_PLAN, "调整攻关方向")],
        signatories=[lead.uscc, uni.uscc, firm.uscc], actor=PROVINCE,
        effective_date=D(2025, 8, 1), document=doc("补充协议（一）"))
    return cid


@dataclass
class Ledger:
    url: str
    ids: dict[str, str]  # consortium name → canonical id

    def __post_init__(self) -> None:
        self.tamper = Tamperer(self.url)
        self.db = self.tamper.db

    def id(self, fragment: str) -> str:
        return next(cid for name, cid in self.ids.items() if fragment in name)

    def records(self) -> list[Record]:
        return [r.record for r in ledger.rows(self.db) if r.record is not None]

    def latest(self, cid: str, event: str | None = None) -> Record:
        return [r for r in self.records() if canonical_id(r.originator_id) == cid
                and (event is None or r.topic == TOPIC + event)][-1]

    def template(self, event: str, cid: str | None = None) -> dict[str, Any]:
        """The stored JSON (wrappers kept) of the last real event of that type."""
        found = [r for r in self.records() if r.topic == TOPIC + event
                 and (cid is None or canonical_id(r.originator_id) == cid)]
        return dict(json.loads(found[-1].state))

    def append(self, cid: str, event: str, state: dict[str, Any], *,
               version: int | None = None) -> int:
        """Append a forged record with a correctly recomputed link; return its position."""
        head = max(r.position for r in ledger.rows(self.db))
        previous_hash = bytes(self.tamper.link_row(head)[2])
        position = head + 1
        version = version or self.latest(cid).originator_version + 1
        topic = TOPIC + event
        body = json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        h = link_hash(position, cid, version, topic, body, previous_hash)
        t, ev, lk = self.tamper, self.tamper.ev, self.tamper.lk
        if self.db.backend == "sqlite":
            t.execute(f"INSERT INTO {ev} (rowid, originator_id, originator_version, topic, state) "
                      "VALUES (?, ?, ?, ?, ?)", (position, UUID(cid).hex, version, topic, body))
        else:
            t.execute(f"INSERT INTO {ev} (notification_id, originator_id, originator_version, "
                      "topic, state) VALUES (?, ?, ?, ?, ?)", (position, cid, version, topic, body))
        t.execute(f"INSERT INTO {lk} (position, prev_hash, hash) VALUES (?, ?, ?)",
                  (position, previous_hash, h))
        return position


def iso(day: date) -> dict[str, str]:
    return {"_type_": "date_iso", "_data_": day.isoformat()}


def lead_of(lg: Ledger, cid: str) -> dict[str, Any]:
    """The lead unit as stored in the consortium's LeadUnitSelected (wrapped)."""
    return dict(lg.template("LeadUnitSelected", cid)["lead"])


def audit(lg: Ledger) -> SemanticReport:
    chain = verify_chain(lg.db)
    assert chain.ok, chain.to_json()  # the forgery keeps the chain intact …
    return semantic_audit(lg.db)  # … and only the semantic audit can see it


def rules_at(report: SemanticReport, position: int) -> set[str]:
    """The rules broken at ``position``; asserts that no other position was flagged."""
    assert {f.position for f in report.findings} == {position}, report.to_json()
    return {f.rule for f in report.findings}


@pytest.fixture
def lg(database_url: str) -> Ledger:
    reg = registry(database_url)
    try:
        record_demo(reg)
        record_extra(reg)
    finally:
        reg.close()
    led = Ledger(database_url, {})
    for r in led.records():
        if r.topic == TOPIC + "LeadUnitSelected":
            led.ids[ledger.plain(json.loads(r.state))["name"]] = canonical_id(r.originator_id)
    return led


def test_demo_history_has_no_findings(database_url: str) -> None:
    reg = registry(database_url)
    try:
        record_demo(reg)
    finally:
        reg.close()
    led = Ledger(database_url, {})
    progress: list[int] = []
    report = semantic_audit(led.db, progress=progress.append)
    assert report.ok and report.findings == [], report.to_json()
    assert report.consortia == 4 and report.records == report.audited >= 40
    assert progress[-1] == report.records
    out = json.loads(report.to_json())
    assert out["ok"] is True and out["first"] is None and out["by_rule"] == {}


def test_demo_and_extra_history_have_no_findings(lg: Ledger) -> None:
    report = audit(lg)
    assert report.ok, report.to_json()
    assert report.consortia == 5


# --- (a) the lead unit changed or left ------------------------------------------------------------
def test_lead_dropped_after_listing_is_named(lg: Ledger) -> None:
    ic = lg.id("集成电路")
    forged = lg.template("MemberDropped")
    forged["uscc"] = lead_of(lg, ic)["_data_"]["uscc"]
    forged["effective_date"] = iso(D(2026, 6, 1))
    position = lg.append(ic, "MemberDropped", forged)

    report = audit(lg)
    assert rules_at(report, position) == {LEAD_CHANGED, CHANGE_AFTER_LISTING}
    lead = next(f for f in report.findings if f.rule == LEAD_CHANGED)
    assert lead.consortium_id == ic and lead.event == "MemberDropped"
    assert lead.error == "LeadUnitCannotChange" and "牵头单位" in lead.message
    assert lead.version == lg.latest(ic).originator_version


def test_second_lead_selection_with_another_lead_is_named(lg: Ledger) -> None:
    bio = lg.id("生物医药")
    forged = lg.template("LeadUnitSelected", bio)
    forged["lead"]["_data_"]["uscc"] = unit().uscc
    forged["lead"]["_data_"]["name"] = "冒名牵头单位"
    forged["effective_date"] = iso(D(2026, 4, 1))
    position = lg.append(bio, "LeadUnitSelected", forged)

    report = audit(lg)
    assert rules_at(report, position) == {LEAD_CHANGED}
    assert report.first is not None and "in place of" in report.first.message


def test_supplementary_agreement_withdrawing_the_lead_is_named(lg: Ledger) -> None:
    ic = lg.id("集成电路")
    forged = lg.template("SupplementaryAgreementSigned", ic)
    lead_uscc = lead_of(lg, ic)["_data_"]["uscc"]
    forged["agreement_id"] = "SA-2"
    forged["changes"] = [{"_type_": "Change", "_data_": {
        "kind": "member_withdraws", "description": "牵头单位退出", "unit": None, "uscc": lead_uscc}}]
    forged["effective_date"] = iso(D(2026, 6, 1))
    position = lg.append(ic, "SupplementaryAgreementSigned", forged)

    assert rules_at(audit(lg), position) == {LEAD_CHANGED}


# --- (b) membership changed after listing without a supplementary agreement -----------------------
def test_member_admitted_after_listing_is_named(lg: Ledger) -> None:
    bio = lg.id("生物医药")
    forged = lg.template("MemberAdmitted", bio)
    forged["unit"]["_data_"]["uscc"] = unit().uscc
    forged["unit"]["_data_"]["name"] = "未经补充协议加入的单位"
    forged["effective_date"] = iso(D(2026, 4, 1))
    position = lg.append(bio, "MemberAdmitted", forged)

    report = audit(lg)
    assert rules_at(report, position) == {CHANGE_AFTER_LISTING}
    assert report.findings[0].error == "ChangeRequiresSupplementaryAgreement"


# --- (c) anything but credit records after delisting ----------------------------------------------
def test_evaluation_after_delisting_is_named(lg: Ledger) -> None:
    iot = lg.id("物联网")
    forged = lg.template("EvaluationRecorded")
    forged["effective_date"] = iso(D(2026, 10, 1))
    position = lg.append(iot, "EvaluationRecorded", forged)

    report = audit(lg)
    assert rules_at(report, position) == {DELISTED}
    assert report.findings[0].consortium_id == iot


def test_credit_record_after_delisting_is_allowed(lg: Ledger) -> None:
    iot = lg.id("物联网")
    forged = lg.template("CreditRepaired", iot)  # a credit record is all a delisted one may take
    forged["effective_date"] = iso(D(2026, 10, 1))
    lg.append(iot, "CreditRepaired", forged)
    assert audit(lg).ok


# --- (d) an annual report that does not explain the year's supplementary agreements ---------------
def test_report_without_explanation_of_the_years_agreement_is_named(lg: Ledger) -> None:
    extra = lg.id("南京测试")
    forged = lg.template("AnnualReportFiled")
    forged["year"] = 2025
    forged["explanations"] = {}
    forged["effective_date"] = iso(D(2026, 4, 10))
    position = lg.append(extra, "AnnualReportFiled", forged)

    report = audit(lg)
    assert rules_at(report, position) == {NOT_EXPLAINED}
    assert "SA-1" in report.findings[0].message


def test_report_that_explains_the_years_agreement_passes(lg: Ledger) -> None:
    extra = lg.id("南京测试")
    forged = lg.template("AnnualReportFiled")
    forged.update(year=2025, explanations={"SA-1": "调整攻关方向，已签补充协议"},
                  effective_date=iso(D(2026, 4, 10)), sections=sections())
    lg.append(extra, "AnnualReportFiled", forged)
    assert audit(lg).ok


# --- (e) effective dates running backwards, or after the day of recording --------------------------
def test_effective_date_before_the_previous_event_is_named(lg: Ledger) -> None:
    bio = lg.id("生物医药")  # its last event took effect on 2026-03-25
    forged = lg.template("EvaluationRecorded")
    forged["effective_date"] = iso(D(2025, 12, 1))
    position = lg.append(bio, "EvaluationRecorded", forged)

    report = audit(lg)
    assert rules_at(report, position) == {BACKWARDS}
    assert "2026-03-25" in report.findings[0].message


def test_effective_date_after_the_recording_day_is_named(lg: Ledger) -> None:
    bio = lg.id("生物医药")
    forged = lg.template("EvaluationRecorded")
    forged["timestamp"] = {"_type_": "datetime_iso", "_data_": "2026-04-01T02:00:00+00:00"}
    forged["effective_date"] = iso(D(2026, 4, 2))
    position = lg.append(bio, "EvaluationRecorded", forged)

    assert rules_at(audit(lg), position) == {IN_FUTURE}


# --- versions ---------------------------------------------------------------------------------
def test_version_gap_is_named(lg: Ledger) -> None:
    bio = lg.id("生物医药")
    forged = lg.template("EvaluationRecorded")
    forged["effective_date"] = iso(D(2026, 4, 1))
    position = lg.append(bio, "EvaluationRecorded", forged,
                         version=lg.latest(bio).originator_version + 2)

    report = audit(lg)
    assert rules_at(report, position) == {VERSION_NOT_CONSECUTIVE}
    assert report.findings[0].error is None


def test_report_json_names_every_finding(lg: Ledger) -> None:
    bio, iot = lg.id("生物医药"), lg.id("物联网")
    admitted = lg.template("MemberAdmitted", bio)
    admitted["unit"]["_data_"]["uscc"] = unit().uscc
    admitted["effective_date"] = iso(D(2026, 4, 1))
    first = lg.append(bio, "MemberAdmitted", admitted)
    evaluation = lg.template("EvaluationRecorded")
    evaluation["effective_date"] = iso(D(2026, 1, 1))  # also before iot's 2026-09-15
    second = lg.append(iot, "EvaluationRecorded", evaluation)

    out = json.loads(audit(lg).to_json())
    assert out["ok"] is False and out["first"]["position"] == first
    assert [(f["position"], f["rule"]) for f in out["findings"]] == [
        (first, CHANGE_AFTER_LISTING), (second, DELISTED), (second, BACKWARDS)]
    assert out["by_rule"] == {BACKWARDS: 1, CHANGE_AFTER_LISTING: 1, DELISTED: 1}
    assert all({"position", "consortium_id", "version", "event", "rule", "error", "message"}
               <= set(f) for f in out["findings"])


def test_consortia_verify_semantic_exits_1_on_a_forged_lead_change(lg: Ledger) -> None:
    import contextlib
    import io

    from api.cli import main as cli

    ic = lg.id("集成电路")
    forged = lg.template("MemberDropped")
    forged["uscc"] = lead_of(lg, ic)["_data_"]["uscc"]
    forged["effective_date"] = iso(D(2026, 6, 1))
    position = lg.append(ic, "MemberDropped", forged)
    for flags, expected in (([], 0), (["--semantic"], 1)):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli(["verify", "--database", lg.url, "--json", *flags])
        assert code == expected
    report = json.loads(out.getvalue())
    assert report["chain"]["ok"] is True and report["ok"] is False
    assert report["semantic"]["first"]["position"] == position
