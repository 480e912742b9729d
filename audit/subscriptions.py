"""Subscriptions to the ledger's notification log that can never stall.

A subscriber pulls new records when it is woken (an in-process write, or PostgreSQL's NOTIFY) and,
in any case, at least every ``interval`` seconds: a lost notification delays it by one interval at
most. SQLite has no NOTIFY: it relies on in-process wake-ups and the poll.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from eventsourcing.persistence import ApplicationRecorder, ListenNotifySubscription

#: The longest a subscriber goes without looking for new records (seconds).
POLL_INTERVAL = 0.5


class PollingPull:
    """Subscription mixin: pull when woken and at least every ``interval`` seconds."""

    _has_been_notified: Any
    _has_been_stopped: bool
    _thread_error: BaseException | None
    # eventsourcing's ListenNotifySubscription (pinned to 9.5): the notifications pulled so far.
    _notifications: Sequence[Any]
    _notifications_index: int
    _notifications_queue: Any

    def __init__(self, recorder: Any, gt: int | None = None, topics: Sequence[str] = (),
                 interval: float = POLL_INTERVAL) -> None:
        self._interval = interval  # before super(): the pull thread starts there
        super().__init__(recorder=recorder, gt=gt, topics=topics)  # type: ignore[call-arg]

    def wake(self) -> None:
        self._has_been_notified.set()

    def has_ready(self) -> bool:
        """Whether the next notification is already pulled (``next()`` would not wait): a
        subscriber may then apply it in the same transaction as the one it holds."""
        return (self._notifications_index < len(self._notifications)
                or not self._notifications_queue.empty())

    if TYPE_CHECKING:  # provided by ListenNotifySubscription, which follows in the MRO
        def _pull(self) -> None: ...
        def stop(self) -> None: ...

    def _loop_on_pull(self) -> None:
        try:
            self._pull()  # what is already recorded
            while not self._has_been_stopped:
                self._has_been_notified.wait(timeout=self._interval)
                self._pull()
        except BaseException as e:
            if self._thread_error is None:
                self._thread_error = e
            self.stop()


class PollingSubscription(PollingPull, ListenNotifySubscription[ApplicationRecorder]):
    """For SQLite: in-process wake-ups plus the poll."""


S = TypeVar("S", bound=PollingPull)


#: Subscribers of this process by database, so that a write through any recorder on a database
#: wakes every subscriber to that database at once.
_SUBSCRIBERS: dict[str, weakref.WeakSet[PollingPull]] = {}
_SUBSCRIBERS_LOCK = threading.Lock()


class WakesSubscribers:
    """Recorder mixin: wake this process's subscribers as soon as a write has committed."""

    def wake_key(self) -> str:
        """Identifies the database (and table) this recorder writes to."""
        raise NotImplementedError

    def _register(self, subscription: S) -> S:
        with _SUBSCRIBERS_LOCK:
            _SUBSCRIBERS.setdefault(self.wake_key(), weakref.WeakSet()).add(subscription)
        return subscription

    def _wake_subscribers(self) -> None:
        with _SUBSCRIBERS_LOCK:
            subscribers = list(_SUBSCRIBERS.get(self.wake_key(), ()))
        for subscription in subscribers:
            subscription.wake()

    def insert_events(self, stored_events: Any, **kwargs: Any) -> Any:
        positions = super().insert_events(stored_events, **kwargs)  # type: ignore[misc]
        self._wake_subscribers()
        return positions
