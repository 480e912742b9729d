"""The registry projection: follows the ledger's notification log and keeps the read models.

Each event is folded into the consortium's aggregate (the domain decides what an event means) and
the resulting document is written with the event's tracking record in one transaction. The
runner is eventsourcing's ``ProjectionRunner``; it runs inside the service (embedded mode) or as
its own process (``consortia project``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection, ProjectionRunner

from audit.store import registry_env
from domain.consortium import Consortium
from domain.registry import Registry
from projections.documents import consortium_document
from projections.tables import for_backend
from projections.views import VIEW_NAME, PostgresRegistryView, RegistryViewSQL, SQLiteRegistryView

log = logging.getLogger("consortia.projections")

#: Consortia whose aggregates stay in memory between events.
CACHE_SIZE = 10_000
#: The most events the runner applies in one transaction while more are waiting.
FLUSH_EVERY = 500
#: How many records a rebuild folds before it writes (one transaction per batch).
REBUILD_BATCH = 20_000


class RegistryProjection(Projection[Any]):
    """Registry list, consortium state, annual-report status and statistics.

    While more notifications are already waiting (``more_ready``, wired by the runner to its
    subscription), the documents of consecutive events are written together, with the tracking
    record of the last one, in one transaction (at most ``FLUSH_EVERY`` events): a projection
    behind a busy writer catches up in few commits instead of one per event. Nothing waits for
    a batch to fill: with nothing waiting, each event is written at once. Exactly once holds: an
    event is committed with the tracking record that covers it, or not at all."""

    name = VIEW_NAME

    def __init__(self, view: Any) -> None:
        super().__init__(view)
        self._folder = AggregateFolder()
        self._dirty: dict[UUID, None] = {}
        self._held = 0
        self.more_ready: Callable[[], bool] = lambda: False

    @property
    def folder(self) -> AggregateFolder:
        return self._folder

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if isinstance(domain_event, Consortium.Event):
            self._folder.fold(domain_event, tracking.notification_id, self.view)
            self._dirty[domain_event.originator_id] = None
        # (Another aggregate's record, a signing key's: only the position moves.)
        self._held += 1
        if self._held < FLUSH_EVERY and self.more_ready():
            return
        self.view.apply([self._folder.document(cid) for cid in self._dirty], tracking)
        self._folder.trim()
        self._dirty.clear()
        self._held = 0


class AggregateFolder:
    """Keeps the latest aggregate of each consortium and folds the next event into it.

    At most ``CACHE_SIZE`` aggregates stay in memory once ``trim`` is called (after the
    documents of a batch are taken); one evicted is loaded again from the ledger when its next
    event comes. The position of each consortium's first event is kept for every one seen."""

    def __init__(self) -> None:
        # consortium id → (aggregate, position of its first event, position of its last event)
        self._cache: OrderedDict[UUID, tuple[Consortium, int, int]] = OrderedDict()
        self._created: dict[UUID, int] = {}
        self._loader: Registry | None = None
        self._loader_ready = threading.Event()

    def set_loader(self, registry: Registry) -> None:
        """The application that can load an aggregate this folder has not seen yet."""
        self._loader = registry
        self._loader_ready.set()

    def fold(self, event: Any, position: int, view: RegistryViewSQL | None) -> None:
        cid, version = event.originator_id, event.originator_version
        cached = self._cache.pop(cid, None)
        if version == 1:
            aggregate, created = event.mutate(None), position
            self._created[cid] = created
        elif cached is not None and cached[0].version == version - 1:
            aggregate, created = event.mutate(cached[0]), cached[1]
        else:
            # Evicted, or not seen since this process started: load the state before this event.
            self._loader_ready.wait()
            assert self._loader is not None
            previous: Consortium = self._loader.repository.get(cid, version=version - 1)
            aggregate = event.mutate(previous)
            created = self._created.get(cid) or (
                view.created_position(str(cid)) if view is not None else None) or position
            self._created[cid] = created
        assert isinstance(aggregate, Consortium)
        self._cache[cid] = (aggregate, created, position)

    def trim(self) -> None:
        """Forget the least recently folded aggregates beyond ``CACHE_SIZE``."""
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def document(self, consortium_id: UUID) -> dict[str, Any]:
        """The read model of a consortium as of the last event folded into it."""
        aggregate, created, position = self._cache[consortium_id]
        return consortium_document(aggregate, position, created)


def _env(url: str | None, env: Mapping[str, str] | None) -> dict[str, str]:
    return dict(env) if env is not None else registry_env(url)


def view_class_for(env: Mapping[str, str]) -> type[RegistryViewSQL]:
    return for_backend(env, SQLiteRegistryView, PostgresRegistryView, "registry view")


class RegistryProjectionRunner(ProjectionRunner[Registry, Any]):
    """eventsourcing's runner, wired to the database (a URL, or a Registry's environment), with
    the folder's loader set."""

    def __init__(self, url: str | None = None, *, env: Mapping[str, str] | None = None) -> None:
        env = _env(url, env)
        super().__init__(application_class=Registry, projection_class=RegistryProjection,
                         view_class=view_class_for(env), env=env)
        projection = self.projection
        assert isinstance(projection, RegistryProjection)
        projection.folder.set_loader(self.app)
        pulled = getattr(self._subscription.subscription, "has_ready", None)
        if pulled is not None:  # our polling subscriptions (SQLite and PostgreSQL)
            projection.more_ready = pulled

    @property
    def registry_view(self) -> RegistryViewSQL:
        view = self.view
        assert isinstance(view, RegistryViewSQL)
        return view


def open_view(url: str | None = None, *, env: Mapping[str, str] | None = None) -> RegistryViewSQL:
    """The read models for reading (and for a rebuild), without a runner."""
    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.utils import Environment

    settings = _env(url, env)
    factory: Any = InfrastructureFactory.construct(Environment(VIEW_NAME, settings))
    view = factory.tracking_recorder(view_class_for(settings))
    assert isinstance(view, RegistryViewSQL)
    return view


def rebuild(url: str | None = None, *, batch: int = REBUILD_BATCH,
            workers: int | None = None) -> int:
    """Drop every view row and rebuild from position 0, a batch of records per transaction.
    Returns the position reached. Equivalent to the runner's one-by-one build. A large ledger
    is folded on one process per core (``workers``, default: the cores, at most 4; see
    ``projections.rebuild_parallel``)."""
    from projections.rebuild_parallel import rebuild_in_parallel

    return rebuild_in_parallel(url, workers=workers, batch=batch)


def catch_up(registry: Registry, view: RegistryViewSQL, *, batch: int = REBUILD_BATCH) -> int:
    """Apply every record after the view's position, batch by batch, each batch with its
    tracking record in one transaction."""
    folder = AggregateFolder()
    folder.set_loader(registry)
    position = view.position(registry.name)
    while True:
        notifications = registry.recorder.select_notifications(
            start=position, limit=batch, inclusive_of_start=False)
        if not notifications:
            return position
        dirty: dict[UUID, None] = {}
        for n in notifications:
            event = registry.mapper.to_domain_event(n)
            if not isinstance(event, Consortium.Event):
                continue
            folder.fold(event, n.id, view)
            dirty[event.originator_id] = None
        position = notifications[-1].id
        view.apply([folder.document(cid) for cid in dirty], Tracking(registry.name, position))
        folder.trim()


class SupervisedRunner:
    """A projection runner started again whenever it stops on an error (a database restart cuts
    its connections). The tracking records make the new runner resume right after the last event
    applied: nothing is applied twice or skipped. ``make`` builds a new runner (not yet
    entered); ``close`` is called after each runner has been exited (to close its view)."""

    def __init__(self, make: Callable[[], ProjectionRunner[Any, Any]], *, name: str,
                 retry_seconds: float = 1.0,
                 close: Callable[[ProjectionRunner[Any, Any]], None] | None = None) -> None:
        self._make = make
        self._name = name
        self._close_view = close
        self._retry_seconds = retry_seconds
        self._runner: ProjectionRunner[Any, Any] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name=f"{name}-supervisor",
                                        daemon=True)
        self.restarts = 0
        self.last_error: BaseException | None = None

    @property
    def running(self) -> bool:
        """A runner is following the ledger now."""
        runner = self._runner
        return runner is not None and not runner.is_interrupted.is_set()

    def __enter__(self) -> SupervisedRunner:
        self._start_runner()  # a database down now is retried, not fatal to the service
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        runner, self._runner = self._runner, None
        if runner is not None:
            self._close(runner)

    def _start_runner(self) -> None:
        try:
            runner = self._make()
            runner.__enter__()
        except Exception as e:  # the database is unreachable: the supervisor tries again
            self.last_error = e
            log.warning("%s runner could not start: %r; retrying", self._name, e)
            return
        self._runner = runner

    def _close(self, runner: ProjectionRunner[Any, Any]) -> None:
        try:
            runner.__exit__(None, None, None)  # re-raises the error that stopped it
        except Exception as e:
            self.last_error = e
            log.warning("%s runner stopped: %r; starting it again", self._name, e)
        if self._close_view is not None:
            try:
                self._close_view(runner)
            except Exception as e:  # closing a broken connection may fail too
                log.warning("%s runner's view did not close: %r", self._name, e)

    def _supervise(self) -> None:
        while not self._stopping.wait(self._retry_seconds):
            runner = self._runner
            if runner is not None and not runner.is_interrupted.is_set():
                continue
            if runner is not None:
                self._runner = None
                self._close(runner)
                self.restarts += 1
            if not self._stopping.is_set():
                self._start_runner()


def supervised_projection_runner(env: Mapping[str, str], *, retry_seconds: float = 1.0
                                 ) -> SupervisedRunner:
    """The registry projection runner, supervised (see ``SupervisedRunner``)."""
    settings = dict(env)
    return SupervisedRunner(lambda: RegistryProjectionRunner(env=settings), name="projection",
                            retry_seconds=retry_seconds, close=close_view)


def close_view(runner: ProjectionRunner[Any, Any]) -> None:
    """Close the connections of a runner's view (exiting a runner closes only its application)."""
    runner.view.datastore.close()
