"""Credit-relevant ledger records as CloudEvents 1.0 (pure: no database, no HTTP).

Credit-management systems (信用管理系统) receive the dishonesty records (失信信息记录) of §7.3 and what
happens to them, exactly as the ledger recorded them: a record, its repair (信用修复), its revocation
(撤销, a record made in error), the end of its publicity (公示期满), and a delisting (摘牌) for
serious dishonesty. Each becomes one structured CloudEvent whose ``id`` is stable (the consortium
id and the record's version), whose ``sequence`` is the ledger position (zero-padded, so that it
sorts as text) and whose ``data`` names the position and the chain hash, so that a consumer can
ask for the record's inclusion proof.

Publicity and repair: once a record is repaired, revoked or its publicity has ended, its content
is withdrawn — serving its ``violation-recorded`` event again gives a withdrawal marker (which
record, when, why) and not what it said. The ledger keeps everything; only what is served changes.

The mapping works on the raw stored records (like the semantic audit), so that what a consumer
receives is what the chain hashed, whatever the aggregate's code becomes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from domain.rules import DelistingReason, Severity

SPECVERSION = "1.0"
#: The CloudEvents ``source`` of every event: the registry's ledger.
SOURCE = "https://consortia.jiangsu.example/ledger"
DATACONTENTTYPE = "application/json"
TYPE_PREFIX = "cn.jiangsu.consortium.credit."
#: ``sequence`` is the ledger position, zero-padded to this width (a 64-bit position fits).
SEQUENCE_WIDTH = 20
INCLUSION_PROOF_PATH = "/api/v1/audit/proofs/inclusion"

#: The stored event names (``Consortium.<name>``) the feed reads, and their CloudEvent type names.
EVENT_NAMES: dict[str, str] = {
    "CreditViolationRecorded": "violation-recorded",
    "CreditRepaired": "violation-repaired",
    "CreditRevoked": "violation-revoked",
    "CreditPublicityEnded": "publicity-ended",
    "Delisted": "consortium-delisted",  # only for serious dishonesty
}
#: Closing events and the state each leaves a record in.
CLOSING: dict[str, str] = {
    "CreditRepaired": "repaired",
    "CreditRevoked": "revoked",
    "CreditPublicityEnded": "publicity_ended",
}
CLOSING_ZH = {"repaired": "信用修复", "revoked": "撤销（认定有误）", "publicity_ended": "公示期满"}
#: Also read for context (the consortium's name and lead unit), never served.
CONTEXT_EVENTS = ("LeadUnitSelected",)
STORED_TOPIC_PREFIX = "domain.consortium:Consortium."


def event_type(name: str, version: int = 1) -> str:
    """``cn.jiangsu.consortium.credit.<name>.v<version>``."""
    return f"{TYPE_PREFIX}{name}.v{version}"


#: Every CloudEvent type the feed produces.
EVENT_TYPES: tuple[str, ...] = tuple(event_type(n) for n in EVENT_NAMES.values())


def stored_topics(names: Iterable[str]) -> list[str]:
    """The stored topics (``domain.consortium:Consortium.X``) of these event names."""
    return [STORED_TOPIC_PREFIX + n for n in names]


FEED_TOPICS = stored_topics(EVENT_NAMES)
CONTEXT_TOPICS = stored_topics((*CONTEXT_EVENTS, *EVENT_NAMES))


# ----------------------------------------------------------------------------------- cursors
class CursorError(ValueError):
    """A feed cursor that this registry did not hand out."""


_CURSOR_TAG = "credit-feed/1"


def encode_cursor(position: int) -> str:
    """An opaque, resumable cursor: base64url of a versioned payload naming a ledger position."""
    raw = f"{_CURSOR_TAG}:{position}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The ledger position a cursor names (0: before the first record)."""
    if cursor is None or cursor == "":
        return 0
    try:
        if len(cursor) > 64 or not cursor.isascii():
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, value = raw.split(":", 1)
        if tag != _CURSOR_TAG or not value.isdigit():
            raise ValueError(tag)
        return int(value)
    except (ValueError, UnicodeDecodeError) as e:
        raise CursorError(f"invalid cursor {cursor!r}") from e


def sequence(position: int) -> str:
    return f"{position:0{SEQUENCE_WIDTH}d}"


# ------------------------------------------------------------------------------- raw records
@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One stored record of a consortium, decoded: its position, event name, plain data and hash."""

    position: int
    consortium_id: str  # canonical UUID text
    version: int
    event: str  # the stored event's name, e.g. CreditViolationRecorded
    data: Mapping[str, Any]
    record_hash: str  # the chain's hash at this position, hex

    @property
    def event_id(self) -> str:
        """Stable across redeliveries and re-reads: the consortium and the record's version."""
        return event_id(self.consortium_id, self.version)


def event_id(consortium_id: str, version: int) -> str:
    return f"{consortium_id}:{version}"


def canonical_uuid(value: object) -> str:
    return str(value if isinstance(value, UUID) else UUID(str(value)))


def event_name(topic: str) -> str:
    return topic.rsplit(".", 1)[-1]


@dataclass
class CreditRecord:
    """A dishonesty record as folded from the ledger, with where it was recorded and closed."""

    record_id: str
    recorded_event_id: str
    subject_uscc: str
    subject_name: str
    violation: Mapping[str, Any]
    recorded_position: int
    recorded_on: str | None
    document: Mapping[str, Any] | None
    state: str = "in_publicity"
    closed_position: int | None = None
    closed_on: str | None = None
    closed_event_id: str | None = None

    def in_publicity_at(self, position: int) -> bool:
        return self.recorded_position <= position and (
            self.closed_position is None or self.closed_position > position)


@dataclass
class ConsortiumFacts:
    """What a credit event needs to know about its consortium: name, lead unit, credit records."""

    consortium_id: str
    name: str = ""
    lead_uscc: str = ""
    lead_name: str = ""
    records: dict[str, CreditRecord] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"id": self.consortium_id, "name": self.name, "lead_uscc": self.lead_uscc}


def fold(entries: Iterable[LedgerEntry]) -> dict[str, ConsortiumFacts]:
    """Per consortium: its name, lead unit and credit records, from its entries in position order
    (``LeadUnitSelected`` and the credit events are enough)."""
    out: dict[str, ConsortiumFacts] = {}
    for e in entries:
        facts = out.setdefault(e.consortium_id, ConsortiumFacts(e.consortium_id))
        if e.event == "LeadUnitSelected":
            lead = e.data.get("lead") or {}
            facts.name = str(e.data.get("name") or "")
            facts.lead_uscc = str(lead.get("uscc") or "")
            facts.lead_name = str(lead.get("name") or "")
        elif e.event == "CreditViolationRecorded":
            violation = e.data.get("violation") or {}
            rid = str(e.data.get("record_id"))
            facts.records[rid] = CreditRecord(
                record_id=rid, recorded_event_id=e.event_id,
                subject_uscc=str(violation.get("subject_uscc") or ""),
                subject_name=str(e.data.get("subject_name") or ""), violation=violation,
                recorded_position=e.position, recorded_on=_text(e.data.get("effective_date")),
                document=e.data.get("document"))
        elif e.event in CLOSING:
            record = facts.records.get(str(e.data.get("record_id")))
            if record is not None and record.closed_position is None:
                record.state = CLOSING[e.event]
                record.closed_position = e.position
                record.closed_on = _text(e.data.get("effective_date"))
                record.closed_event_id = e.event_id
    return out


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _ledger(entry: LedgerEntry) -> dict[str, Any]:
    return {"position": entry.position, "record_hash": entry.record_hash,
            "inclusion_proof": f"{INCLUSION_PROOF_PATH}?position={entry.position}"}


def _document(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    return {"title": value.get("title"), "sha256": value.get("sha256")}


def _severity_zh(value: Any) -> str | None:
    try:
        return Severity(str(value)).label_zh
    except ValueError:
        return None


def _envelope(entry: LedgerEntry, name: str, subject: str, data: dict[str, Any]
              ) -> dict[str, Any]:
    return {
        "specversion": SPECVERSION,
        "id": entry.event_id,
        "source": SOURCE,
        "type": event_type(name),
        "subject": subject,
        "time": _text(entry.data.get("timestamp")),
        "datacontenttype": DATACONTENTTYPE,
        "sequence": sequence(entry.position),
        "data": data,
    }


def withdrawal_of(record: CreditRecord) -> dict[str, Any]:
    """Which record was withdrawn, when and why — never what it said."""
    assert record.closed_position is not None
    return {"reason": record.state, "reason_zh": CLOSING_ZH.get(record.state, record.state),
            "on": record.closed_on, "event_id": record.closed_event_id,
            "sequence": sequence(record.closed_position)}


def to_cloud_event(entry: LedgerEntry, facts: ConsortiumFacts) -> dict[str, Any] | None:
    """The CloudEvent of one ledger entry, as served now (``facts`` folded up to now, so a record
    closed since is withdrawn); None for a record the feed does not serve."""
    consortium = facts.summary()
    if entry.event == "CreditViolationRecorded":
        record = facts.records.get(str(entry.data.get("record_id")))
        if record is None or record.recorded_position != entry.position:
            return None
        if record.closed_position is not None:
            return _envelope(entry, "violation-recorded", record.subject_uscc, {
                "record_id": record.record_id, "withdrawn": True,
                "withdrawal": withdrawal_of(record),
                "unit": {"uscc": record.subject_uscc}, "consortium": consortium,
                "ledger": _ledger(entry)})
        v = record.violation
        return _envelope(entry, "violation-recorded", record.subject_uscc, {
            "record_id": record.record_id,
            "withdrawn": False,
            "unit": {"uscc": record.subject_uscc, "name": record.subject_name},
            "listed_on": record.recorded_on,
            "reason": v.get("facts"),
            "context": v.get("context"),
            "legal_basis": v.get("legal_basis"),
            "deciding_authority": v.get("deciding_authority"),
            "severity": v.get("severity"),
            "severity_zh": _severity_zh(v.get("severity")),
            "publicity_start": _text(v.get("publicity_start")),
            "earliest_repair_date": _text(v.get("earliest_repair_date")),
            "publicity_end": _text(v.get("publicity_end")),
            "remedy": v.get("remedy") or "",
            "decision_document": _document(record.document),
            "consortium": consortium,
            "ledger": _ledger(entry),
        })
    if entry.event in CLOSING:
        record = facts.records.get(str(entry.data.get("record_id")))
        if record is None:
            return None
        data: dict[str, Any] = {
            "record_id": record.record_id,
            "unit": {"uscc": record.subject_uscc, "name": record.subject_name},
            "state": CLOSING[entry.event],
            "effective_date": _text(entry.data.get("effective_date")),
            "recorded_event_id": record.recorded_event_id,
            "decision_document": _document(entry.data.get("document")),
            "consortium": consortium,
            "ledger": _ledger(entry),
        }
        if entry.event == "CreditRepaired":
            data["measures"] = entry.data.get("measures") or ""
        elif entry.event == "CreditRevoked":
            data["reason"] = entry.data.get("reason") or ""
        return _envelope(entry, EVENT_NAMES[entry.event], record.subject_uscc, data)
    if entry.event == "Delisted":
        if entry.data.get("reason") != DelistingReason.SERIOUS_DISHONESTY.value:
            return None
        # The explanation is never served: it may quote a record that is withdrawn later.
        based_on = sorted(r.record_id for r in facts.records.values()
                          if r.in_publicity_at(entry.position - 1)
                          and r.violation.get("severity") == Severity.SERIOUS.value)
        return _envelope(entry, "consortium-delisted", facts.lead_uscc, {
            "consortium": consortium,
            "reason": DelistingReason.SERIOUS_DISHONESTY.value,
            "delisted_on": _text(entry.data.get("effective_date")),
            "credit_records": based_on,
            "decision_document": _document(entry.data.get("document")),
            "ledger": _ledger(entry),
        })
    return None

