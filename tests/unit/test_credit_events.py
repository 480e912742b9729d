"""Ledger records → CloudEvents: types, ids, sequence, the dishonesty record's fields, and
withdrawal of a record's content once it is repaired, revoked or its publicity has ended."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from projections.credit_events import (
    EVENT_TYPES,
    CursorError,
    LedgerEntry,
    decode_cursor,
    encode_cursor,
    fold,
    to_cloud_event,
)

CID = "754812f7-9d1f-4c66-bcdd-f64fc8d734cd"
LEAD, MEMBER = "91320200MA1G8H994E", "12320000466007300Y"
FACTS = "2024年度报告虚报成果转化收入"
DOC = {"title": "失信行为认定决定书", "sha256": "a" * 64}
ACTOR = {"user_id": "wang.li", "role": "province", "organisation": "江苏省科学技术厅", "city": None}


def entry(position: int, version: int, event: str, **data: Any) -> LedgerEntry:
    data.setdefault("timestamp", f"2026-11-25T08:00:{position:02d}+00:00")
    data.setdefault("actor", ACTOR)
    return LedgerEntry(position=position, consortium_id=CID, version=version, event=event,
                       data=data, record_hash=f"{position:064x}")


def formed() -> LedgerEntry:
    return entry(3, 1, "LeadUnitSelected", name="无锡物联网创新联合体", city="wuxi",
                 lead={"uscc": LEAD, "name": "无锡感知物联科技集团有限公司", "kind": "enterprise"},
                 effective_date="2024-01-01", document=None)


def recorded(position: int = 36, version: int = 10, *, record_id: str = "CR-1",
             subject: str = LEAD, severity: str = "serious") -> LedgerEntry:
    return entry(position, version, "CreditViolationRecorded", record_id=record_id,
                 subject_name="无锡感知物联科技集团有限公司", effective_date="2025-09-01",
                 document=DOC, violation={
                     "subject_uscc": subject, "severity": severity, "context": "annual_report",
                     "facts": FACTS, "legal_basis": "《指引》七（三）",
                     "deciding_authority": "江苏省科学技术厅", "publicity_start": "2025-09-01",
                     "publicity_end": "2028-08-31", "earliest_repair_date": "2026-09-01",
                     "remedy": "整改到位满一年后可申请信用修复"})


def delisted(position: int = 37, version: int = 11, reason: str = "serious_dishonesty"
             ) -> LedgerEntry:
    return entry(position, version, "Delisted", reason=reason, explanation=f"CR-1: {FACTS}",
                 effective_date="2025-09-01", document=DOC)


def repaired(position: int = 38, version: int = 12) -> LedgerEntry:
    return entry(position, version, "CreditRepaired", record_id="CR-1", measures="已退回资金",
                 effective_date="2026-09-15", document=DOC)


def served(entries: list[LedgerEntry], which: LedgerEntry) -> dict[str, Any] | None:
    return to_cloud_event(which, fold(entries)[CID])


def test_a_recorded_violation_is_a_cloudevent_with_every_field_of_the_dishonesty_record() -> None:
    history = [formed(), recorded()]
    event = served(history, history[1])
    assert event is not None
    assert {k: event[k] for k in ("specversion", "id", "type", "subject", "sequence",
                                  "datacontenttype", "time")} == {
        "specversion": "1.0", "id": f"{CID}:10",
        "type": "cn.jiangsu.consortium.credit.violation-recorded.v1", "subject": LEAD,
        "sequence": "00000000000000000036", "datacontenttype": "application/json",
        "time": "2026-11-25T08:00:36+00:00"}
    assert event["source"].startswith("https://")
    data = event["data"]
    assert data["withdrawn"] is False
    assert data["unit"] == {"uscc": LEAD, "name": "无锡感知物联科技集团有限公司"}
    assert (data["listed_on"], data["reason"], data["severity"], data["severity_zh"]) == (
        "2025-09-01", FACTS, "serious", "严重")
    assert (data["legal_basis"], data["deciding_authority"]) == ("《指引》七（三）", "江苏省科学技术厅")
    assert (data["publicity_start"], data["earliest_repair_date"], data["publicity_end"]) == (
        "2025-09-01", "2026-09-01", "2028-08-31")
    assert data["remedy"] == "整改到位满一年后可申请信用修复"
    assert data["consortium"] == {"id": CID, "name": "无锡物联网创新联合体", "lead_uscc": LEAD}
    assert data["ledger"] == {"position": 36, "record_hash": f"{36:064x}",
                              "inclusion_proof": "/api/v1/audit/proofs/inclusion?position=36"}


def test_once_repaired_the_record_is_served_withdrawn_and_says_nothing_of_its_content() -> None:
    history = [formed(), recorded(), delisted(), repaired()]
    event = served(history, history[1])
    assert event is not None and event["id"] == f"{CID}:10"  # the same id as before
    data = event["data"]
    assert data["withdrawn"] is True
    assert data["withdrawal"] == {"reason": "repaired", "reason_zh": "信用修复", "on": "2026-09-15",
                                  "event_id": f"{CID}:12", "sequence": "00000000000000000038"}
    text = json.dumps(event, ensure_ascii=False)
    for content in (FACTS, "《指引》七（三）", "整改到位满一年后可申请信用修复", "serious",
                    "无锡感知物联科技集团有限公司"):
        assert content not in text
    assert data["ledger"]["position"] == 36  # still provable: the ledger keeps everything


@pytest.mark.parametrize(("closing", "name", "extra"), [
    ("CreditRepaired", "violation-repaired", {"measures": "已退回资金"}),
    ("CreditRevoked", "violation-revoked", {"reason": "认定主体有误"}),
    ("CreditPublicityEnded", "publicity-ended", {}),
])
def test_each_closing_event_has_its_own_type_and_names_the_record_it_closes(
        closing: str, name: str, extra: dict[str, str]) -> None:
    close = entry(40, 12, closing, record_id="CR-1", effective_date="2026-09-15", document=DOC,
                  **extra)
    history = [formed(), recorded(), close]
    event = served(history, close)
    assert event is not None
    assert event["type"] == f"cn.jiangsu.consortium.credit.{name}.v1"
    assert event["subject"] == LEAD
    assert event["data"]["recorded_event_id"] == f"{CID}:10"
    assert event["data"]["effective_date"] == "2026-09-15"
    for k, v in extra.items():
        assert event["data"][k] == v
    assert served(history, history[1])["data"]["withdrawn"] is True  # type: ignore[index]


def test_a_delisting_for_dishonesty_names_its_records_but_never_quotes_the_explanation() -> None:
    history = [formed(), recorded(), delisted()]
    event = served(history, history[2])
    assert event is not None
    assert event["type"] == "cn.jiangsu.consortium.credit.consortium-delisted.v1"
    assert event["subject"] == LEAD
    assert event["data"]["credit_records"] == ["CR-1"]
    assert FACTS not in json.dumps(event, ensure_ascii=False)


def test_a_delisting_for_another_reason_and_other_events_are_not_in_the_feed() -> None:
    history = [formed(), delisted(reason="poor_evaluation")]
    assert served(history, history[1]) is None
    assert served(history, history[0]) is None


def test_a_record_on_a_member_has_the_member_as_subject() -> None:
    history = [formed(), recorded(subject=MEMBER, severity="minor")]
    event = served(history, history[1])
    assert event is not None and event["subject"] == MEMBER
    assert event["data"]["severity_zh"] == "轻微"


def test_every_type_is_versioned_under_the_registry_namespace() -> None:
    assert len(EVENT_TYPES) == 5
    assert all(t.startswith("cn.jiangsu.consortium.credit.") and t.endswith(".v1")
               for t in EVENT_TYPES)


def test_a_record_is_in_publicity_from_its_position_until_the_position_that_closes_it() -> None:
    record = fold([formed(), recorded(), repaired()])[CID].records["CR-1"]
    assert not record.in_publicity_at(35)
    assert record.in_publicity_at(36) and record.in_publicity_at(37)
    assert not record.in_publicity_at(38)


def test_a_cursor_round_trips_and_is_opaque() -> None:
    for position in (0, 1, 42, 2**63 - 1):
        cursor = encode_cursor(position)
        assert not cursor.isdigit()
        assert decode_cursor(cursor) == position
    assert decode_cursor(None) == 0


@pytest.mark.parametrize("cursor", [
    "!!!", "Zm9v", base64.urlsafe_b64encode(b"c1:5").decode(),
    base64.urlsafe_b64encode(b"credit-feed/1:-5").decode(),
    base64.urlsafe_b64encode(b"credit-feed/1:").decode(), "é", "A" * 65,
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
])
def test_a_cursor_the_registry_did_not_hand_out_is_refused(cursor: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(cursor)
