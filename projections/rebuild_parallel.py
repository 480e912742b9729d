"""A rebuild of the views from position 0, on one process per core for a large ledger.

Folding is sequential per consortium but independent between consortia, so the consortia are
split by the last hex digit of their id into one partition per process. Every process reads the
same batches of raw rows (the same positions, up to the head taken at the start: a prefix that no
longer changes), decodes and folds only its own partition's records, and hands the process that
started the rebuild the table rows of the documents the batch changed. That process folds
partition 0 itself and writes each batch — every partition's rows and the batch's tracking record
— in one transaction, on a writer thread one batch behind the folding; so the views move from
one batch boundary to the next, and a crash leaves them at a boundary. A small ledger is folded
the same way by one process alone.

Should a worker fail, the others are stopped and the one-process ``catch_up`` goes on from the
last batch written; it also applies whatever was recorded after the head while rebuilding.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent, Tracking

from audit import ledger
from audit.store import Database, open_registry, parse_database_url
from domain.consortium import Consortium
from domain.registry import Registry
from projections.projection import REBUILD_BATCH, AggregateFolder, catch_up, open_view
from projections.views import RegistryViewSQL, Rows, rows_of

log = logging.getLogger("consortia.projections")

#: Below this many records one process is quicker than starting others.
MIN_RECORDS = 20_000
#: Batches a worker may run ahead of the parent (bounds the documents held in memory).
AHEAD = 4
#: The longest the parent waits for a worker's next batch before it gives up on it (seconds).
WORKER_TIMEOUT = 300.0


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


@dataclass(frozen=True)
class Batch:
    """What one process folded from one batch: where the batch ends, and the documents."""

    last_position: int
    rows: Rows


def digits_of(partition: int, processes: int) -> frozenset[str]:
    """The last hex digits of the consortium ids that a process folds, an even share each: the
    parent (partition 0) also writes every batch, but its workers first start up, and the
    documents reach it as rows ready to insert."""
    bounds = [round(16 * k / processes) for k in range(processes + 1)]
    return frozenset("0123456789abcdef"[bounds[partition]:bounds[partition + 1]])


def fold_partition(registry: Registry, db: Database, partition: int, processes: int, head: int,
                   batch: int) -> Iterator[Batch]:
    """Fold the records of one partition up to ``head``, batch by batch (the same batches in
    every process). Rows are read as plain tuples; only the partition's own are decoded."""
    folder = AggregateFolder()
    folder.set_loader(registry)
    to_event = registry.mapper.to_domain_event
    mine = digits_of(partition, processes)
    # One UUID object per consortium: the folder's dicts then find it by identity.
    ids: dict[str, UUID] = {}
    for records, _ in ledger.raw_batches(db, batch, upto=head, links=False):
        dirty: dict[UUID, None] = {}
        for position, oid, version, topic, state in records:
            text = str(oid)
            if text[-1].lower() not in mine:
                continue
            uid = ids.get(text)
            if uid is None:
                uid = ids[text] = UUID(text)
            event = to_event(StoredEvent(originator_id=uid, originator_version=version,
                                         topic=topic, state=bytes(state)))
            if not isinstance(event, Consortium.Event):
                continue
            folder.fold(event, position, None)  # from 0: the folder sees every first event
            dirty[event.originator_id] = None
        yield Batch(records[-1][0], rows_of([folder.document(cid) for cid in dirty]))
        folder.trim()


def _worker(url: str | None, partition: int, partitions: int, head: int, batch: int,
            out: Any) -> None:
    registry = open_registry(url)
    try:
        for folded in fold_partition(registry, parse_database_url(url), partition, partitions,
                                     head, batch):
            out.put(folded)
        out.put(None)
    except BaseException as e:  # the parent falls back to one process and says why
        out.put(repr(e))
        raise
    finally:
        registry.close()


class WorkerFailed(RuntimeError):
    pass


def rebuild_in_parallel(url: str | None, *, workers: int | None = None,
                        batch: int = REBUILD_BATCH, min_records: int = MIN_RECORDS) -> int:
    """Drop every view row and rebuild from position 0 on ``workers`` processes (this one
    included). Returns the position reached; the views equal a one-process rebuild's."""
    workers = default_workers() if workers is None else workers
    registry = open_registry(url)
    try:
        head = registry.recorder.max_notification_id() or 0
        # The workers start first: their start-up overlaps emptying the views. A small ledger
        # is folded here alone (processes=1: no worker), the same way.
        team = _Team(url, workers if head >= min_records else 1, head, batch)
        try:
            view = open_view(url)
            view.reset(registry.name)
            try:
                team.rebuild(registry, view)
            except WorkerFailed as e:  # the views stand at a batch boundary: go on alone
                log.warning("parallel rebuild stopped at position %d (%s); going on in one "
                            "process", view.position(registry.name), e)
        finally:
            team.stop()
        # What was recorded after the head while rebuilding (and, after a failure, the rest).
        return catch_up(registry, view, batch=batch)
    finally:
        registry.close()


class _Team:
    """The processes of one rebuild: this one (partition 0) and ``workers - 1`` started here,
    each folding its partition into a queue."""

    def __init__(self, url: str | None, workers: int, head: int, batch: int) -> None:
        self.url, self.workers, self.head, self.batch = url, workers, head, batch
        self.queues: list[Any] = []
        self.processes: list[Any] = []
        if workers > 1:
            context = multiprocessing.get_context("spawn")  # never fork with open connections
            self.queues = [context.Queue(maxsize=AHEAD) for _ in range(workers - 1)]
            self.processes = [context.Process(target=_worker, args=(url, k + 1, workers, head,
                                                                    batch, q), daemon=True)
                              for k, q in enumerate(self.queues)]
        for p in self.processes:
            p.start()

    def rebuild(self, registry: Registry, view: RegistryViewSQL) -> None:
        """Fold partition 0 here, join every worker's batch to it, and write batch by batch.
        Writing runs on a thread of its own, one batch behind the folding."""
        writes: queue.Queue[tuple[Rows, int] | None] = queue.Queue(maxsize=1)
        failed: list[BaseException] = []

        def write() -> None:
            while (item := writes.get()) is not None:
                if not failed:
                    try:
                        view.apply_rows(item[0], Tracking(registry.name, item[1]))
                    except BaseException as e:  # raised again by the folding thread
                        failed.append(e)

        writer = threading.Thread(target=write, name="rebuild-writer", daemon=True)
        writer.start()
        try:
            for own in fold_partition(registry, parse_database_url(self.url), 0, self.workers,
                                      self.head, self.batch):
                rows = own.rows
                for q, p in zip(self.queues, self.processes, strict=True):
                    theirs = _next(q, p)
                    if theirs is None or theirs.last_position != own.last_position:
                        raise WorkerFailed(f"worker {p.name} is out of step")
                    rows = Rows(rows.consortia + theirs.rows.consortia,
                                rows.units + theirs.rows.units, rows.fields + theirs.rows.fields,
                                rows.reports + theirs.rows.reports)
                if failed:
                    break
                writes.put((rows, own.last_position))
            else:
                for q, p in zip(self.queues, self.processes, strict=True):
                    if _next(q, p) is not None:
                        raise WorkerFailed(f"worker {p.name} has more than the parent")
        finally:
            writes.put(None)
            writer.join()
        if failed:
            raise failed[0]

    def stop(self) -> None:
        for p in self.processes:
            if p.is_alive():
                p.terminate()
            p.join(timeout=10)
        for q in self.queues:
            q.close()
            q.cancel_join_thread()


def _next(q: Any, process: Any) -> Batch | None:
    deadline = time.monotonic() + WORKER_TIMEOUT
    while True:
        try:
            item = q.get(timeout=1.0)
        except queue.Empty:
            if not process.is_alive():
                raise WorkerFailed(f"worker {process.name} ended (exit code "
                                   f"{process.exitcode})") from None
            if time.monotonic() > deadline:
                raise WorkerFailed(f"worker {process.name} sent nothing for "
                                   f"{WORKER_TIMEOUT:g} s") from None
            continue
        if isinstance(item, str):
            raise WorkerFailed(f"worker {process.name} failed: {item}")
        assert item is None or isinstance(item, Batch)
        return item
