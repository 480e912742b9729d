"""The registry projection writes the events already waiting in one transaction, with the
tracking record of the last one — and each event at once when nothing else is waiting."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Tracking

from domain.consortium import Consortium
from projections.projection import FLUSH_EVERY, RegistryProjection
from tests.factories import NANJING, TODAY, D, lead_qualification, unit


class RecordingView:
    """What the projection asked the view to write, transaction by transaction."""

    def __init__(self) -> None:
        self.transactions: list[tuple[list[dict[str, Any]], int]] = []

    def apply(self, documents: list[dict[str, Any]], tracking: Tracking) -> None:
        self.transactions.append((documents, tracking.notification_id))

    def created_position(self, consortium_id: str) -> int | None:
        return None


def _events(consortia: int, members: int) -> list[Any]:
    events = []
    for n in range(consortia):
        c = Consortium.select_lead(name=f"联合体{n}", city="nanjing", lead=unit(),
                                   qualification=lead_qualification(), fields=["quantum"],
                                   actor=NANJING, effective_date=D(2024, 1, 1), today=TODAY)
        for _ in range(members):
            c.admit_member(unit(), actor=NANJING, effective_date=D(2024, 1, 2), today=TODAY)
        events += c.collect_events()
    return events


def _project(events: list[Any], waiting: Any) -> RecordingView:
    view = RecordingView()
    projection = RegistryProjection(view)
    projection.more_ready = waiting
    for position, event in enumerate(events, start=1):
        projection.process_event(event, Tracking("Consortia", position))
    return view


def test_events_already_waiting_are_written_together_with_the_last_tracking_record() -> None:
    events = _events(consortia=3, members=2)  # nine events
    remaining = iter(range(len(events) - 1, -1, -1))  # how many wait after each event
    view = _project(events, lambda: next(remaining) > 0)
    assert len(view.transactions) == 1
    documents, position = view.transactions[0]
    assert position == len(events)
    assert len(documents) == 3  # one document per consortium, its latest state
    assert {len(d["members"]) for d in documents} == {2}  # both members admitted


def test_with_nothing_waiting_each_event_is_written_at_once() -> None:
    events = _events(consortia=2, members=1)
    view = _project(events, lambda: False)
    assert [position for _, position in view.transactions] == [1, 2, 3, 4]
    assert all(len(documents) == 1 for documents, _ in view.transactions)


def test_a_long_backlog_is_written_in_bounded_transactions() -> None:
    events = _events(consortia=1, members=2 * FLUSH_EVERY + 9)  # 1,010 events, more coming
    view = _project(events, lambda: True)
    assert [position for _, position in view.transactions] == [FLUSH_EVERY, 2 * FLUSH_EVERY]
