"""The hash-chained, append-only ledger on SQLite and PostgreSQL: what is written verifies, what
is changed behind the registry's back is named by position and kind."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from api.cli import main as cli
from api.demo import record_demo
from audit import ledger
from audit.chain import GENESIS, Record
from audit.checkpoints import Checkpoint
from audit.store import open_registry, parse_database_url
from audit.verify import verify_chain
from domain import errors
from domain.registry import Registry
from tests.factories import NANJING, TODAY, lead_qualification, unit
from tests.integration.tamper import Tamperer


def registry(url: str) -> Registry:
    return open_registry(url, clock=lambda: TODAY)


def verify(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    """Run ``consortia verify --json`` in-process: exit code and report."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(["verify", "--database", url, "--json"])
    return code, json.loads(out.getvalue())


@pytest.fixture
def demo_url(database_url: str) -> str:
    reg = registry(database_url)
    record_demo(reg)
    reg.close()
    return database_url


def new_consortium(reg: Registry, name: str = "测试创新联合体") -> str:
    return str(reg.select_lead(name=name, city="nanjing", lead=unit(),
                               qualification=lead_qualification(), fields=["new_materials"],
                               actor=NANJING, effective_date=date(2024, 1, 1))["consortium_id"])


def test_demo_history_is_recorded_and_verifies(demo_url: str) -> None:
    code, report = verify(demo_url)
    assert code == 0 and report["ok"], report
    assert report["records"] >= 40
    reg = registry(demo_url)
    statuses = sorted(
        reg.get(n.originator_id).status.value
        for n in reg.recorder.select_notifications(start=1, limit=1000)
        if n.originator_version == 1
    )
    assert statuses == ["delisted", "listed", "listed", "recommended"]
    # Recording the demo again leaves the ledger as it is.
    before = reg.recorder.max_notification_id()
    assert "not recorded again" in record_demo(reg)[0]
    assert reg.recorder.max_notification_id() == before


def test_each_event_gets_one_link_chained_from_genesis(database_url: str) -> None:
    reg = registry(database_url)
    cid = new_consortium(reg)
    result = reg.admit_member(cid, unit(), actor=NANJING, effective_date=date(2024, 1, 2))
    assert result["position"] == 2 and result["version"] == 2
    t = Tamperer(database_url)
    first, second = t.link_row(1), t.link_row(2)
    assert bytes(first[1]) == GENESIS
    assert bytes(second[1]) == bytes(first[2])
    oid, version, topic, state = t.event_row(2)
    assert Record(2, str(oid), version, topic, bytes(state)).hash_after(bytes(first[2])) == bytes(
        second[2])


def test_one_write_of_several_events_chains_each_of_them(database_url: str) -> None:
    """A single event is linked by one statement, several by one array statement: both verify."""
    from eventsourcing.persistence import StoredEvent

    reg = registry(database_url)
    new_consortium(reg)
    oid = uuid.uuid4()
    events = [StoredEvent(oid, v, "bench:Note", f'{{"n":{v}}}'.encode()) for v in (1, 2, 3)]
    assert list(reg.recorder.insert_events(events) or []) == [2, 3, 4]
    single = [StoredEvent(uuid.uuid4(), 1, "bench:Note", b'{"n":0}')]
    assert list(reg.recorder.insert_events(single) or []) == [5]
    t = Tamperer(database_url)
    links = [t.link_row(p) for p in range(1, 6)]
    assert [bytes(lk[1]) for lk in links[1:]] == [bytes(lk[2]) for lk in links[:-1]]
    reg.close()
    code, report = verify(database_url)
    assert code == 0 and report["ok"] and report["records"] == 5, report


def test_stale_version_and_unknown_consortium_are_refused_and_store_nothing(
        database_url: str) -> None:
    reg = registry(database_url)
    cid = new_consortium(reg)
    with pytest.raises(errors.StaleVersion):
        reg.admit_member(cid, unit(), actor=NANJING, effective_date=date(2024, 1, 2),
                         expected_version=7)
    with pytest.raises(errors.ConsortiumNotFound):
        reg.admit_member(str(uuid.uuid4()), unit(), actor=NANJING,
                         effective_date=date(2024, 1, 2))
    with pytest.raises(errors.LeadUnitCannotChange):
        reg.drop_member(cid, reg.get(cid).lead.uscc, actor=NANJING,
                        effective_date=date(2024, 1, 2))
    assert reg.recorder.max_notification_id() == 1


@pytest.mark.parametrize("statement", ["UPDATE {t} SET topic = 'x'", "DELETE FROM {t}"])
@pytest.mark.parametrize("table", ["events", "links"])
def test_database_refuses_update_and_delete(demo_url: str, statement: str, table: str) -> None:
    t = Tamperer(demo_url)
    name = t.ev if table == "events" else t.lk
    if table == "links":
        statement = statement.replace("topic = 'x'", "hash = prev_hash")
    with pytest.raises(Exception, match="append-only"):
        t.execute(statement.format(t=name))
    assert verify(demo_url)[0] == 0


def test_postgres_refuses_truncate(postgres_url: str) -> None:
    reg = registry(postgres_url)
    new_consortium(reg)
    t = Tamperer(postgres_url)
    for table in (t.ev, t.lk):
        with pytest.raises(Exception, match="append-only"):
            t.execute(f"TRUNCATE {table}")


def test_verify_names_a_modified_record(demo_url: str) -> None:
    Tamperer(demo_url).edit_state(2, "东南大学".encode(), "西南大学".encode())
    code, report = verify(demo_url)
    assert code == 1
    assert report["first"]["position"] == 2
    assert report["first"]["kind"] == "modified"
    assert len(report["damage"]) == 1  # the rest of the chain still verifies


@pytest.mark.parametrize("spelling", [str.upper, lambda h: str(uuid.UUID(h)),
                                      lambda h: "{" + str(uuid.UUID(h)) + "}",
                                      lambda h: uuid.UUID(h).urn])
def test_verify_names_a_record_whose_id_is_spelled_otherwise(sqlite_url: str,
                                                              spelling: Any) -> None:
    """SQLite keeps the id as text, and eventsourcing reads an aggregate's records by that exact
    text: another spelling of the same UUID takes the record from its aggregate, so it is named
    as modified, not read as the same id."""
    reg = registry(sqlite_url)
    record_demo(reg)
    reg.close()
    t = Tamperer(sqlite_url)
    oid = t.event_row(5)[0]
    assert len(oid) == 32
    t.execute(f"UPDATE {t.ev} SET originator_id = ? WHERE rowid = 5", (spelling(oid),),
              triggers_off=True)
    code, report = verify(sqlite_url)
    assert code == 1
    assert report["first"] == {**report["first"], "position": 5, "kind": "modified"}
    assert len(report["damage"]) == 1


def test_verify_names_a_deleted_record(demo_url: str) -> None:
    Tamperer(demo_url).delete_event(7)
    code, report = verify(demo_url)
    assert code == 1 and report["first"]["position"] == 7
    assert report["first"]["kind"] == "missing"


def test_verify_names_a_deleted_record_and_link(demo_url: str) -> None:
    Tamperer(demo_url).delete_event(7, with_link=True)
    code, report = verify(demo_url)
    assert code == 1 and report["first"]["position"] == 8
    assert report["first"]["kind"] == "missing"


def test_verify_names_swapped_records(demo_url: str) -> None:
    Tamperer(demo_url).swap_events(10, 11)
    code, report = verify(demo_url)
    assert code == 1
    assert report["first"]["position"] == 10 and report["first"]["kind"] == "reordered"
    assert [(d["position"], d["kind"]) for d in report["damage"]] == [
        (10, "reordered"), (11, "reordered")]


def test_verify_names_a_forged_record_without_link(demo_url: str) -> None:
    t = Tamperer(demo_url)
    oid, _, topic, state = t.event_row(1)
    head = verify(demo_url)[1]["head_position"]
    t.insert_event(head + 1, oid, 999, topic, bytes(state))
    code, report = verify(demo_url)
    assert code == 1
    assert (report["first"]["position"], report["first"]["kind"]) == (head + 1, "inserted")


def test_verify_names_a_forged_record_with_forged_link_in_a_gap(postgres_url: str) -> None:
    # A failed insert burns a PostgreSQL sequence number: positions have gaps, and the chain
    # follows the order, not id + 1. A forger who fills the gap with a correctly hashed link
    # is still caught: the next record does not follow the forged link.
    reg_a, reg_b = registry(postgres_url), registry(postgres_url)
    cid = new_consortium(reg_a)
    stale = reg_b.get(cid)
    reg_a.admit_member(cid, unit(), actor=NANJING, effective_date=date(2024, 1, 2))
    stale.admit_member(unit(), actor=NANJING, effective_date=date(2024, 1, 2), today=TODAY)
    with pytest.raises(Exception):  # noqa: B017 - the version conflict, whatever its class
        reg_b.save(stale)
    reg_a.admit_member(cid, unit(), actor=NANJING, effective_date=date(2024, 1, 3))
    t = Tamperer(postgres_url)
    positions = [n.id for n in reg_a.recorder.select_notifications(start=1, limit=10)]
    assert positions == [1, 2, 4]
    assert verify(postgres_url)[0] == 0  # the gap itself is no damage

    oid, _, topic, state = t.event_row(2)
    prev = bytes(t.link_row(2)[2])
    forged = Record(3, str(oid), 99, topic, bytes(state))
    t.insert_event(3, str(oid), 99, topic, bytes(state), link=(prev, forged.hash_after(prev)))
    code, report = verify(postgres_url)
    assert code == 1
    assert (report["first"]["position"], report["first"]["kind"]) == (3, "inserted")


def test_eight_writers_never_fork_the_chain(database_url: str) -> None:
    reg = registry(database_url)
    threads, per_thread, failures = 8, 200, []

    def writer(n: int) -> None:
        try:
            cid = new_consortium(reg, f"并发测试联合体{n}")
            for _ in range(per_thread - 1):
                reg.admit_member(cid, unit(), actor=NANJING, effective_date=date(2024, 1, 2))
        except Exception as e:  # reported below
            failures.append(e)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    report = verify_chain(parse_database_url(database_url))
    assert report.ok, report.damage
    assert report.records == threads * per_thread
    notifications = reg.recorder.select_notifications(start=1, limit=threads * per_thread + 1)
    assert len(notifications) == threads * per_thread
    versions: dict[object, list[int]] = {}
    for n in notifications:
        versions.setdefault(n.originator_id, []).append(n.originator_version)
    assert sorted(len(v) for v in versions.values()) == [per_thread] * threads
    assert all(v == list(range(1, per_thread + 1)) for v in versions.values())


def test_consortia_verify_command_exits_1_on_a_hand_edited_sqlite_file(sqlite_url: str) -> None:
    reg = registry(sqlite_url)
    record_demo(reg)
    reg.close()
    ok = subprocess.run([sys.executable, "-m", "api.cli", "verify", "--database", sqlite_url],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "ledger intact" in ok.stdout
    Tamperer(sqlite_url).edit_state(5, b'"effective_date"', b'"effective_date" ')
    bad = subprocess.run([sys.executable, "-m", "api.cli", "verify", "--database", sqlite_url],
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert "position 5" in bad.stdout and "modified" in bad.stdout


TAMPERING = {
    "modified": lambda t: t.edit_state(30, b"signatories", b"signatorieS"),
    "deleted": lambda t: t.delete_event(23),
    "deleted-with-link": lambda t: t.delete_event(17, with_link=True),
    "swapped": lambda t: t.swap_events(26, 27),
    "last-deleted": lambda t: t.delete_event(44),
}


@pytest.mark.parametrize("damage", sorted(TAMPERING))
def test_verification_names_the_same_damage_whatever_the_read_batch(demo_url: str,
                                                                    damage: str) -> None:
    # The fast walk reads in big batches and hands over to the careful walk one batch before
    # the damage: where the batches fall must change nothing in the report.
    db = parse_database_url(demo_url)
    intact = verify_chain(db)
    TAMPERING[damage](Tamperer(demo_url))
    whole = verify_chain(db)
    assert not whole.ok and intact.ok
    for batch in (1, 4, 7, 10):
        small = verify_chain(db, batch=batch)
        assert (small.damage, small.records, small.tree_root, small.head_position) == (
            whole.damage, whole.records, whole.tree_root, whole.head_position)


def test_an_intact_ledger_reports_the_same_head_and_root_whatever_the_read_batch(
        demo_url: str) -> None:
    db = parse_database_url(demo_url)
    whole = verify_chain(db)
    for batch in (1, 3, 44, 45):
        small = verify_chain(db, batch=batch)
        assert small.ok and (small.records, small.tree_root, small.head_hash) == (
            whole.records, whole.tree_root, whole.head_hash)


def test_walks_that_forget_the_framed_ids_report_the_same(demo_url: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # The walks keep a bounded number of framed ids, forgetting them all past the bound: with a
    # bound of one they frame nearly every id afresh, and must find exactly the same.
    from audit import verify, verify_parallel

    db = parse_database_url(demo_url)
    intact = verify_chain(db, workers=1)
    chunk = verify_parallel.walk_chunk(db, 0, intact.records, 3, 0, [], batch=5)
    monkeypatch.setattr(verify, "FRAMED_IDS_KEPT", 1)
    monkeypatch.setattr(verify_parallel, "FRAMED_IDS_KEPT", 1)
    forgetful = verify_chain(db, workers=1, batch=5)
    assert forgetful.ok and (forgetful.records, forgetful.tree_root, forgetful.head_hash) == (
        intact.records, intact.tree_root, intact.head_hash)
    again = verify_parallel.walk_chunk(db, 0, intact.records, 3, 0, [], batch=5)
    assert again.intact and (again.blocks, again.tail, again.last_hash) == (
        chunk.blocks, chunk.tail, chunk.last_hash)
    TAMPERING["modified"](Tamperer(demo_url))
    assert [d.position for d in verify_chain(db, workers=1, batch=5).damage] == [30]
    assert not verify_parallel.walk_chunk(db, 0, intact.records, 3, 0, [], batch=5).intact


def _checkpoint(db: Any, size: int, *, wrong: bool = False) -> Checkpoint:
    from audit.verify import Frontier

    tree = Frontier()
    for row in ledger.rows(db):
        if tree.size == size:
            break
        assert row.link is not None
        tree.append(row.link.hash)
    root = tree.root() if not wrong else bytes(32)
    return Checkpoint("consortia.test/ledger", size, root, datetime.now(UTC))


@pytest.fixture
def in_small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parallel path on a small ledger: blocks of 8 records, no minimum size."""
    from audit import verify_parallel

    monkeypatch.setattr(verify_parallel, "BLOCK_LEVEL", 3)
    monkeypatch.setattr(verify_parallel, "MIN_RECORDS", 0)


@pytest.mark.usefixtures("in_small_blocks")
def test_a_parallel_verification_reports_what_one_process_reports(demo_url: str) -> None:
    db = parse_database_url(demo_url)
    signed = [_checkpoint(db, n) for n in (1, 7, 8, 16, 23, 44)]
    alone = verify_chain(db, workers=1, checkpoints=signed)
    assert alone.ok and alone.records == 44
    from audit.verify import Frontier
    from audit.verify_parallel import verify_in_parallel

    for workers in (2, 3):  # the parallel path itself finds it intact (no fallback hides it)
        intact = verify_in_parallel(db, workers=workers, checkpoints=signed, level=3,
                                    min_records=0)
        assert intact is not None and intact.records == 44
        for c in signed:
            tree = Frontier(size=c.size)
            tree.hashes = intact.roots_at[c.size]
            assert tree.root() == c.root
    for workers in (2, 3):
        together = verify_chain(db, workers=workers, checkpoints=signed)
        assert together.ok
        assert (together.records, together.head_position, together.head_hash,
                together.tree_size, together.tree_root) == (
            alone.records, alone.head_position, alone.head_hash, alone.tree_size,
            alone.tree_root)


@pytest.mark.usefixtures("in_small_blocks")
@pytest.mark.parametrize("damage", ["modified", "swapped", "last-deleted", "rewritten",
                                    "truncated"])
def test_a_parallel_verification_names_damage_as_one_process_does(demo_url: str,
                                                                  damage: str) -> None:
    db = parse_database_url(demo_url)
    signed = [_checkpoint(db, 20)]
    if damage == "rewritten":
        signed = [_checkpoint(db, 20, wrong=True)]
    elif damage == "truncated":
        signed.append(Checkpoint("consortia.test/ledger", 50, bytes(32), datetime.now(UTC)))
    else:
        TAMPERING[damage](Tamperer(demo_url))
    alone = verify_chain(db, workers=1, checkpoints=signed)
    together = verify_chain(db, workers=3, checkpoints=signed)
    assert not alone.ok
    assert (together.damage, together.records, together.tree_root) == (
        alone.damage, alone.records, alone.tree_root)
