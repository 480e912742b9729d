"""Whole lifecycles recorded through HTTP alone, on SQLite and PostgreSQL."""

from __future__ import annotations

from audit.store import parse_database_url
from audit.verify import verify_chain
from domain.records import Role
from domain.rules import Status
from tests.api import payloads as p
from tests.api.conftest import Api


def test_a_consortium_goes_from_formation_to_delisting_through_http_alone(api: Api) -> None:
    j = p.Journey(api)
    j.start("nanjing")
    university = j.admit("university", "东南大学")
    j.admit("research_institute", "南京集成电路产业研究院")
    j.do("agreement", p.agreement([j.lead, *j.members]), "nanjing")
    j.do("application", p.submit(), "nanjing")
    assert j.do("recommendation", p.recommend(), "nanjing")["status"] == "recommended"

    j.do("expert-review", p.review(), "province")
    assert j.do("listing", p.listing(), "province")["status"] == "listed"
    sa = j.do("supplementary-agreements", p.supplementary(j.lead), "province")
    assert sa["result"] == "SA-1"
    report = j.do("annual-reports", p.annual_report(
        2025, "2026-05-20", {"SA-1": "引入成果转移转化机构，已签补充协议"}), "province")
    assert report["result"] == {"late": False}

    j.do("evaluations", p.evaluation("good"), "agency")
    credit = j.do("credit-violations", p.violation(j.lead), "province")
    assert credit["result"] == "CR-1"
    assert credit["status"] == "delisted"
    assert len(credit["positions"]) == 2  # the record and the delisting, in one command
    assert credit["position"] == max(credit["positions"]) == api.head()

    consortium = api.registry.get(j.id)
    assert consortium.status is Status.DELISTED
    assert consortium.version == j.version == 13
    assert university in consortium.members
    assert consortium.last_actor.user_id == "wang.li"
    assert consortium.last_actor.role is Role.PROVINCE
    assert consortium.last_actor.organisation == "江苏省科学技术厅"
    assert verify_chain(parse_database_url(api.url)).ok


def test_formation_can_drop_a_member_be_returned_and_be_rejected(api: Api) -> None:
    j = p.Journey(api)
    j.start()
    leaving = j.admit("enterprise")
    j.admit("university")
    j.do(f"members/{leaving}/drop", p.drop(), "nanjing")
    j.members.remove(leaving)
    j.do("agreement", p.agreement([j.lead, *j.members]), "nanjing")
    j.do("application", p.submit("2025-03-01"), "nanjing")
    assert j.do("return", p.return_("2025-03-10"), "nanjing")["status"] == "forming"
    j.do("application", p.submit("2025-03-20"), "nanjing")
    j.do("recommendation", p.recommend(), "nanjing")
    j.do("expert-review", p.review(recommended=False), "province")
    assert j.do("rejection", p.rejection(), "province")["status"] == "rejected"
    assert api.registry.get(j.id).status is Status.REJECTED


def test_a_poor_evaluation_leads_to_rectification_and_delisting(api: Api) -> None:
    j = p.Journey(api).to_listed()
    j.do("evaluations", p.evaluation("poor", "2026-06-15"), "agency")
    j.do("rectification", p.rectification("2026-07-01"), "province")
    j.do("rectification/completion", p.completion("2026-10-15"), "province")
    out = j.do("delisting", p.delisting("poor_evaluation", "2026-11-01"), "province")
    assert out["status"] == "delisted"


def test_credit_records_are_repaired_revoked_and_end_their_publicity(api: Api) -> None:
    j = p.Journey(api).to_listed()
    member = j.members[0]
    minor = {"severity": "minor", "context": "other"}
    assert j.do("credit-violations", p.violation(
        j.lead, on="2025-09-01", publicity_start="2025-09-01", earliest_repair="2026-03-01",
        publicity_end="2026-09-30", **minor), "province")["result"] == "CR-1"
    assert j.do("credit-violations", p.violation(
        member, on="2025-10-01", publicity_start="2025-10-01", earliest_repair="2026-03-01",
        publicity_end="2026-09-30", **minor), "province")["result"] == "CR-2"
    assert j.do("credit-violations", p.violation(
        member, on="2025-10-02", publicity_start="2025-10-02", earliest_repair="2026-03-01",
        publicity_end="2026-09-30", **minor), "province")["status"] == "listed"
    j.do("credit-violations/CR-1/repair", p.repair("2026-03-15"), "province")
    j.do("credit-violations/CR-2/revocation", p.revocation("2026-04-01"), "province")
    j.do("credit-violations/CR-3/publicity-end", p.publicity_end("2026-10-01"), "province")
    records = api.registry.get(j.id).credit_records
    assert [records[r].state for r in ("CR-1", "CR-2", "CR-3")] == [
        "repaired", "revoked", "publicity_ended"]
