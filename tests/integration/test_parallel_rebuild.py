"""A rebuild folded on several processes writes exactly the views a one-process rebuild writes,
batch by batch, on SQLite and PostgreSQL — also when a worker fails half-way."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from api.cli import main as cli
from api.demo import record_demo
from audit.store import open_registry
from domain.units import UnitKind
from projections import rebuild_parallel as rp
from projections.projection import open_view, rebuild
from tests.factories import NANJING, TODAY, lead_qualification, unit
from tests.reliability.ledger_checks import view_rows

CONSORTIA = 48


def interleaved_ledger(url: str, tmp_path: Path) -> int:
    """The demo's lifecycles, a signing key (a record of another aggregate), then ``CONSORTIA``
    consortia formed side by side, a member admitted to each in turn. Returns the head."""
    reg = open_registry(url, clock=lambda: TODAY)
    try:
        record_demo(reg)
        ids = [str(reg.select_lead(name=f"并行重建联合体{n}", city="nanjing", lead=unit(),
                                   qualification=lead_qualification(), fields=["new_materials"],
                                   actor=NANJING, effective_date=date(2024, 1, 1))["consortium_id"])
               for n in range(CONSORTIA)]
        key = tmp_path / "signing.pem"
        assert cli(["keys", "signing", "create", "--out", str(key), "--database", url]) == 0
        for round_ in range(3):
            for n, cid in enumerate(ids):
                reg.admit_member(cid, unit(UnitKind.UNIVERSITY, f"成员{round_}-{n}"), actor=NANJING,
                                 effective_date=date(2024, 1, 2 + round_))
        head = reg.recorder.max_notification_id()
        assert head is not None
        return head
    finally:
        reg.close()


def one_process_views(url: str) -> dict[str, list[tuple[Any, ...]]]:
    rebuild(url, workers=1)
    return view_rows(url)


@pytest.mark.parametrize("workers", [2, 3])
def test_a_parallel_rebuild_writes_the_views_of_a_one_process_rebuild(
        database_url: str, tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    head = interleaved_ledger(database_url, tmp_path)
    expected = one_process_views(database_url)
    assert len(expected["registry_view"]) == CONSORTIA + 4
    written: list[int] = []
    view_class = type(open_view(database_url))
    apply_rows = view_class.apply_rows

    def counting(self: Any, rows: Any, tracking: Any) -> None:
        written.append(tracking.notification_id)
        apply_rows(self, rows, tracking)

    monkeypatch.setattr(view_class, "apply_rows", counting)
    # Small batches: many boundaries, each written with its tracking record.
    assert rp.rebuild_in_parallel(database_url, workers=workers, batch=25, min_records=0) == head
    assert view_rows(database_url) == expected
    assert written == sorted(written) and len(written) >= head // 25
    assert open_view(database_url).position(open_registry(database_url).name) == head


def test_aggregates_evicted_between_batches_are_loaded_again(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    interleaved_ledger(database_url, tmp_path)
    expected = one_process_views(database_url)
    # In this process (the parent's partition) at most 3 aggregates stay between batches.
    monkeypatch.setattr("projections.projection.CACHE_SIZE", 3)
    rp.rebuild_in_parallel(database_url, workers=2, batch=25, min_records=0)
    assert view_rows(database_url) == expected


def failing_worker(url: str | None, partition: int, processes: int, head: int, batch: int,
                   out: Any) -> None:
    """A worker that sends its first two batches and then fails."""
    registry = open_registry(url)
    try:
        folded = rp.fold_partition(registry, rp.parse_database_url(url), partition, processes,
                                   head, batch)
        out.put(next(folded))
        out.put(next(folded))
        out.put("RuntimeError('disk on fire')")
    finally:
        registry.close()


def test_when_a_worker_fails_one_process_finishes_from_the_last_batch_written(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    head = interleaved_ledger(database_url, tmp_path)
    expected = one_process_views(database_url)
    monkeypatch.setattr(rp, "_worker", failing_worker)
    with caplog.at_level(logging.WARNING, logger="consortia.projections"):
        assert rp.rebuild_in_parallel(database_url, workers=2, batch=25, min_records=0) == head
    assert view_rows(database_url) == expected
    warning = next(r.getMessage() for r in caplog.records if "parallel rebuild" in r.getMessage())
    assert "stopped at position 50" in warning and "disk on fire" in warning


def test_a_small_ledger_is_rebuilt_in_this_process_alone(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    head = interleaved_ledger(database_url, tmp_path)
    expected = one_process_views(database_url)

    def no_workers(*args: Any) -> None:
        raise AssertionError("no worker should start below min_records")

    monkeypatch.setattr(rp.multiprocessing, "get_context", no_workers)
    assert rp.rebuild_in_parallel(database_url, workers=4, min_records=head + 1) == head
    assert view_rows(database_url) == expected


def test_the_partitions_cover_every_consortium_once() -> None:
    for processes in range(1, 17):
        shares = [rp.digits_of(k, processes) for k in range(processes)]
        assert sorted(d for share in shares for d in share) == list("0123456789abcdef")
        assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_consortia_project_rebuild_takes_a_number_of_workers(database_url: str,
                                                             tmp_path: Path) -> None:
    head = interleaved_ledger(database_url, tmp_path)
    expected = one_process_views(database_url)
    assert cli(["project", "--database", database_url, "--rebuild", "--once",
                "--workers", "2"]) == 0
    assert view_rows(database_url) == expected
    assert open_view(database_url).position(open_registry(database_url).name) == head
    with pytest.raises(SystemExit):
        cli(["project", "--database", database_url, "--rebuild", "--workers", "0"])
