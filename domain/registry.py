"""The Registry application: one method per lifecycle command (load → command → save).

Each method takes domain value objects and returns primitives: the consortium id, its new version
and the ledger positions written (for read-your-writes). Infrastructure is chosen by the
environment given at construction (``audit.store`` builds it from a database URL), never here.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
import types
import typing
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import JSONTranscoder, Transcoding
from eventsourcing.utils import EnvType

from domain import errors
from domain.consortium import Change, Consortium, CreditViolation
from domain.fields import TechnologyKind
from domain.records import Actor, Document
from domain.rules import DelistingReason, Grade, Mechanism
from domain.units import LeadQualification, Specialisation, Unit

#: The guideline is a Jiangsu document: "today" is today in China Standard Time (UTC+8).
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")


def today_in_china() -> date:
    return datetime.now(CHINA_STANDARD_TIME).date()


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class DataclassAsDict(Transcoding):
    """Stores a frozen value object as a dict of its fields.

    Decoding restores enums and tuples (JSON keeps them as strings and lists) and does **not**
    re-run the value object's validation: history is never re-judged by today's rules, so a rule
    tightened later cannot make old records unreadable."""

    def __init__(self, cls: type) -> None:
        self.type = cls
        self.name = cls.__name__
        hints = typing.get_type_hints(cls)
        self._fields = [f.name for f in dataclasses.fields(cls)]
        # Per field: its name, how to set it on the frozen instance (the slot's own descriptor,
        # else object.__setattr__) and how to convert its JSON value. It runs on every replay.
        self._plan = [(name, _setter(cls, name), _converter(hints[name]))
                      for name in self._fields]

    def encode(self, obj: Any) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in self._fields}

    def decode(self, data: dict[str, Any]) -> Any:
        obj: Any = object.__new__(self.type)
        get = data.get
        for name, set_field, convert in self._plan:
            value = get(name)
            set_field(obj, value if convert is None or value is None else convert(value))
        return obj


def _setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    slot = cls.__dict__.get(name)
    if isinstance(slot, types.MemberDescriptorType):
        return slot.__set__
    return lambda obj, value: object.__setattr__(obj, name, value)


def _converter(hint: Any) -> Callable[[Any], Any] | None:
    """How to turn a JSON value back into the annotated type; None when it is already right."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        candidates = [a for a in typing.get_args(hint) if a is not type(None)]
        return _converter(candidates[0]) if len(candidates) == 1 else None
    if origin is tuple:
        args = typing.get_args(hint)
        inner = _converter(args[0]) if args else None
        if inner is None:
            return tuple
        return lambda values: tuple(inner(v) for v in values)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        # A dict lookup: calling the enum class costs several times more, on every replay.
        members = {m.value: m for m in hint}
        return lambda value: members[value] if value in members else hint(value)
    return None


VALUE_OBJECTS = (Unit, Specialisation, LeadQualification, Actor, Document, Change, CreditViolation)


class Registry(Application[UUID]):
    """The registry of record: every lifecycle change of every consortium."""

    name = "Consortia"
    # An LRU cache of aggregates, fast-forwarded from the database on every get: writers in other
    # processes are seen, and a replay of the whole history is not paid on every command.
    env: ClassVar[dict[str, str]] = {"IS_SNAPSHOTTING_ENABLED": "n", "AGGREGATE_CACHE_MAXSIZE": "1000"}

    def __init__(self, env: EnvType | None = None,
                 clock: Callable[[], date] = today_in_china) -> None:
        self.clock = clock
        # eventsourcing fast-forwards a cached aggregate in place under its own lock, but copies
        # it for the caller outside that lock: two threads getting the same consortium could copy
        # it while it changes. A get holds the lock of its consortium's stripe throughout.
        self._get_locks = [threading.Lock() for _ in range(64)]
        super().__init__(env)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        for cls in VALUE_OBJECTS:
            transcoder.register(DataclassAsDict(cls))

    # ------------------------------------------------------------------------------- plumbing
    def get(self, consortium_id: UUID | str) -> Consortium:
        """The current state of one consortium, or ``ConsortiumNotFound``."""
        try:
            cid = consortium_id if isinstance(consortium_id, UUID) else UUID(str(consortium_id))
            with self._get_locks[cid.int % len(self._get_locks)]:
                aggregate: Consortium = self.repository.get(cid)
        except (AggregateNotFoundError, ValueError):
            raise errors.ConsortiumNotFound(
                f"创新联合体{consortium_id}不存在 / no consortium {consortium_id}",
                consortium_id=str(consortium_id)) from None
        assert isinstance(aggregate, Consortium)
        return aggregate

    def _change(self, consortium_id: UUID | str, expected_version: int | None,
                command: Callable[[Consortium], Any]) -> dict[str, Any]:
        consortium = self.get(consortium_id)
        if expected_version is not None and consortium.version != expected_version:
            raise errors.StaleVersion(
                f"版本已变为{consortium.version}（提交时为{expected_version}） / the consortium is at "
                f"version {consortium.version}, not {expected_version}",
                current_version=consortium.version, expected_version=expected_version)
        result = command(consortium)
        return self._saved(consortium, result)

    def _saved(self, consortium: Consortium, result: Any = None) -> dict[str, Any]:
        # Read before saving: once saved, this object is the cached one, which another thread's
        # get may fast-forward past this write.
        out: dict[str, Any] = {"consortium_id": str(consortium.id),
                               "version": consortium.version,
                               "status": consortium.status.value}
        recordings = self.save(consortium)
        positions = [r.notification.id for r in recordings]
        out["positions"] = positions
        out["position"] = max(positions) if positions else None
        if result is not None:
            out["result"] = result
        return out

    # ----------------------------------------------------------------------------- formation
    def select_lead(self, *, name: str, city: str, lead: Unit, qualification: LeadQualification,
                    fields: list[str], technologies: list[TechnologyKind] | None = None,
                    actor: Actor, effective_date: date,
                    document: Document | None = None,
                    consortium_id: UUID | None = None) -> dict[str, Any]:
        """§5.1 A city bureau selects the lead unit: a new consortium starts forming."""
        consortium = Consortium.select_lead(
            name=name, city=city, lead=lead, qualification=qualification, fields=fields,
            technologies=technologies or [], actor=actor, effective_date=effective_date,
            today=self.clock(), document=document, consortium_id=consortium_id)
        return self._saved(consortium)

    def admit_member(self, consortium_id: UUID | str, unit: Unit, *, actor: Actor,
                     effective_date: date, document: Document | None = None,
                     expected_version: int | None = None) -> dict[str, Any]:
        """§5.2 Admit a member unit while forming."""
        return self._change(consortium_id, expected_version, lambda c: c.admit_member(
            unit, actor=actor, effective_date=effective_date, today=self.clock(),
            document=document))

    def drop_member(self, consortium_id: UUID | str, uscc: str, *, reason: str = "",
                    actor: Actor, effective_date: date, document: Document | None = None,
                    expected_version: int | None = None) -> dict[str, Any]:
        """§5.2 Drop a member while forming."""
        return self._change(consortium_id, expected_version, lambda c: c.drop_member(
            uscc, reason=reason, actor=actor, effective_date=effective_date, today=self.clock(),
            document=document))

    def sign_agreement(self, consortium_id: UUID | str, *, signatories: list[str],
                       mechanisms: list[Mechanism], construction_plan: str,
                       no_university_justification: str | None = None, actor: Actor,
                       effective_date: date, document: Document | None = None,
                       expected_version: int | None = None) -> dict[str, Any]:
        """§5.3 Record the co-construction agreement signed by the lead and every member."""
        return self._change(consortium_id, expected_version, lambda c: c.sign_agreement(
            signatories=signatories, mechanisms=mechanisms, construction_plan=construction_plan,
            no_university_justification=no_university_justification, actor=actor,
            effective_date=effective_date, today=self.clock(), document=document))

    def submit_application(self, consortium_id: UUID | str, *, actor: Actor,
                           effective_date: date, document: Document | None = None,
                           expected_version: int | None = None) -> dict[str, Any]:
        """§5.4 Record the lead's application to its city bureau."""
        return self._change(consortium_id, expected_version, lambda c: c.submit_application(
            actor=actor, effective_date=effective_date, today=self.clock(), document=document))

    def recommend(self, consortium_id: UUID | str, *, necessity: str, feasibility: str,
                  actor: Actor, effective_date: date, document: Document | None = None,
                  expected_version: int | None = None) -> dict[str, Any]:
        """§5.4 The city bureau recommends the application to the province."""
        return self._change(consortium_id, expected_version, lambda c: c.recommend(
            necessity=necessity, feasibility=feasibility, actor=actor,
            effective_date=effective_date, today=self.clock(), document=document))

    def return_application(self, consortium_id: UUID | str, *, reason: str, actor: Actor,
                           effective_date: date, document: Document | None = None,
                           expected_version: int | None = None) -> dict[str, Any]:
        """§5.4 The city bureau returns the application for revision."""
        return self._change(consortium_id, expected_version, lambda c: c.return_application(
            reason=reason, actor=actor, effective_date=effective_date, today=self.clock(),
            document=document))

    def record_expert_review(self, consortium_id: UUID | str, *, opinion: str,
                             recommended: bool, score: Decimal | None = None, actor: Actor,
                             effective_date: date, document: Document | None = None,
                             expected_version: int | None = None) -> dict[str, Any]:
        """§5.4 Record the provincial expert review of the construction plan."""
        return self._change(consortium_id, expected_version, lambda c: c.record_expert_review(
            opinion=opinion, score=score, recommended=recommended, actor=actor,
            effective_date=effective_date, today=self.clock(), document=document))

    def approve(self, consortium_id: UUID | str, *, actor: Actor, effective_date: date,
                document: Document | None = None,
                expected_version: int | None = None) -> dict[str, Any]:
        """§5.4 List the consortium as a provincial consortium."""
        return self._change(consortium_id, expected_version, lambda c: c.approve(
            actor=actor, effective_date=effective_date, today=self.clock(), document=document))

    def reject(self, consortium_id: UUID | str, *, reason: str, actor: Actor,
               effective_date: date, document: Document | None = None,
               expected_version: int | None = None) -> dict[str, Any]:
        """§5.4 Reject the application."""
        return self._change(consortium_id, expected_version, lambda c: c.reject(
            reason=reason, actor=actor, effective_date=effective_date, today=self.clock(),
            document=document))

    # ----------------------------------------------------------------------------- operation
    def sign_supplementary_agreement(
        self, consortium_id: UUID | str, *, changes: list[Change], signatories: list[str],
        no_university_justification: str | None = None, actor: Actor, effective_date: date,
        document: Document | None, expected_version: int | None = None,
    ) -> dict[str, Any]:
        """§7.3 Record a supplementary agreement; the result is its id (SA-n)."""
        return self._change(consortium_id, expected_version, lambda c: c.sign_supplementary_agreement(
            changes=changes, signatories=signatories,
            no_university_justification=no_university_justification, actor=actor,
            effective_date=effective_date, today=self.clock(), document=document))

    def file_annual_report(self, consortium_id: UUID | str, *, year: int,
                           sections: dict[str, str], explanations: dict[str, str] | None = None,
                           actor: Actor, effective_date: date, document: Document | None = None,
                           expected_version: int | None = None) -> dict[str, Any]:
        """§7.1 Record the year's annual report; the result says whether it is late."""
        return self._change(consortium_id, expected_version, lambda c: {"late": c.file_annual_report(
            year=year, sections=sections, explanations=explanations, actor=actor,
            effective_date=effective_date, today=self.clock(), document=document)})

    def record_evaluation(self, consortium_id: UUID | str, *, agency: str, period: str,
                          scores: dict[str, Decimal], grade: Grade, actor: Actor,
                          effective_date: date, document: Document | None = None,
                          expected_version: int | None = None) -> dict[str, Any]:
        """§7.2 Record a third-party performance evaluation."""
        return self._change(consortium_id, expected_version, lambda c: c.record_evaluation(
            agency=agency, period=period, scores=scores, grade=grade, actor=actor,
            effective_date=effective_date, today=self.clock(), document=document))

    def order_rectification(self, consortium_id: UUID | str, *, requirements: str,
                            deadline: date, actor: Actor, effective_date: date,
                            document: Document | None = None,
                            expected_version: int | None = None) -> dict[str, Any]:
        """§7.2 Order rectification after a poor evaluation."""
        return self._change(consortium_id, expected_version, lambda c: c.order_rectification(
            requirements=requirements, deadline=deadline, actor=actor,
            effective_date=effective_date, today=self.clock(), document=document))

    def complete_rectification(self, consortium_id: UUID | str, *, outcome: str, actor: Actor,
                               effective_date: date, document: Document | None = None,
                               expected_version: int | None = None) -> dict[str, Any]:
        """§7.2 Record that the rectification was completed."""
        return self._change(consortium_id, expected_version, lambda c: c.complete_rectification(
            outcome=outcome, actor=actor, effective_date=effective_date, today=self.clock(),
            document=document))

    def delist(self, consortium_id: UUID | str, *, reason: DelistingReason,
               explanation: str = "", actor: Actor, effective_date: date,
               document: Document | None, expected_version: int | None = None) -> dict[str, Any]:
        """§7.2/§7.3 Delist the consortium on a decision document."""
        return self._change(consortium_id, expected_version, lambda c: c.delist(
            reason=reason, explanation=explanation, actor=actor, effective_date=effective_date,
            today=self.clock(), document=document))

    def record_credit_violation(self, consortium_id: UUID | str, violation: CreditViolation, *,
                                actor: Actor, effective_date: date, document: Document | None,
                                expected_version: int | None = None) -> dict[str, Any]:
        """§7.3 Record a dishonesty record; the result is its id (CR-n)."""
        return self._change(consortium_id, expected_version, lambda c: c.record_credit_violation(
            violation, actor=actor, effective_date=effective_date, today=self.clock(),
            document=document))

    def repair_credit(self, consortium_id: UUID | str, record_id: str, *, measures: str,
                      actor: Actor, effective_date: date, document: Document | None,
                      expected_version: int | None = None) -> dict[str, Any]:
        """信用修复 Record the repair of a dishonesty record."""
        return self._change(consortium_id, expected_version, lambda c: c.repair_credit(
            record_id, measures=measures, actor=actor, effective_date=effective_date,
            today=self.clock(), document=document))

    def revoke_credit(self, consortium_id: UUID | str, record_id: str, *, reason: str,
                      actor: Actor, effective_date: date, document: Document | None,
                      expected_version: int | None = None) -> dict[str, Any]:
        """Revoke a dishonesty record made in error."""
        return self._change(consortium_id, expected_version, lambda c: c.revoke_credit(
            record_id, reason=reason, actor=actor, effective_date=effective_date,
            today=self.clock(), document=document))

    def end_credit_publicity(self, consortium_id: UUID | str, record_id: str, *, actor: Actor,
                             effective_date: date, document: Document | None = None,
                             expected_version: int | None = None) -> dict[str, Any]:
        """Record the end of a dishonesty record's publicity period."""
        return self._change(consortium_id, expected_version, lambda c: c.end_credit_publicity(
            record_id, actor=actor, effective_date=effective_date, today=self.clock(),
            document=document))
