"""Stored value objects come back exactly as written — and are never re-judged by today's rules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from eventsourcing.persistence import JSONTranscoder

from domain.consortium import Change
from domain.registry import Registry
from domain.rules import ChangeKind
from domain.units import (
    LeadCategory,
    LeadQualification,
    Specialisation,
    SpecialisedRole,
    Unit,
    UnitKind,
)
from tests.factories import unit


def transcoder() -> JSONTranscoder:
    t = JSONTranscoder()
    Registry(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).register_transcodings(t)
    return t


def test_value_objects_round_trip_with_enums_tuples_decimals_and_dates() -> None:
    t = transcoder()
    member = unit(UnitKind.OTHER, specialisation=Specialisation(
        SpecialisedRole.TECHNOLOGY_TRANSFER, technology_managers=3))
    value = {
        "change": Change(ChangeKind.MEMBER_JOINS, "加入", unit=member),
        "qualification": LeadQualification(LeadCategory.UNICORN, rd_intensity=Decimal("0.031")),
        "on": date(2025, 5, 31),
    }
    back = t.decode(t.encode(value))
    assert back == value
    assert back["change"].kind is ChangeKind.MEMBER_JOINS
    assert back["change"].unit.kind is UnitKind.OTHER
    assert back["change"].unit.specialisation.role is SpecialisedRole.TECHNOLOGY_TRANSFER
    assert back["qualification"].rd_intensity == Decimal("0.031")


def test_history_written_under_older_rules_still_decodes() -> None:
    # A unit recorded when its code passed the rules of the day must load even if today's
    # validation would refuse it: replay assigns, it never re-validates.
    t = transcoder()
    good = t.encode(Unit("914403001922038216", "华为", UnitKind.ENTERPRISE))
    old = good.replace(b"914403001922038216", b"91440300192203821Z")
    back = t.decode(old)
    assert isinstance(back, Unit) and back.uscc == "91440300192203821Z"
