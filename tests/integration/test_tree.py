"""The ledger's Merkle tree on SQLite and PostgreSQL: integrated after the chain, equal to the
RFC 9162 tree over the chain's record hashes, with proofs that verify."""

from __future__ import annotations

from datetime import date

import pytest

from api.demo import record_demo
from audit import merkle, tree
from audit.ledger import rows
from audit.store import open_registry, parse_database_url
from tests.factories import NANJING, TODAY, lead_qualification, unit
from tests.integration.tamper import Tamperer


def test_the_tree_is_the_rfc_9162_tree_of_the_record_hashes(database_url: str) -> None:
    reg = open_registry(database_url, clock=lambda: TODAY)
    record_demo(reg)
    db = parse_database_url(database_url)
    size = tree.integrate(db)
    hashes = [r.link.hash for r in rows(db) if r.link is not None]
    assert size == len(hashes) == reg.recorder.max_notification_id()
    assert tree.integrate(db) == size  # nothing new: nothing appended
    for m in range(1, size + 1):
        assert tree.tree_head(db, m) == (m, merkle.reference_root(hashes[:m]))
    assert tree.tree_head(db)[0] == size
    root = tree.tree_head(db)[1]
    for position in range(1, size + 1):
        p = tree.inclusion_proof(db, position)
        assert p.record_hash == hashes[position - 1]
        assert merkle.verify_inclusion(p.leaf_hash, p.leaf_index, p.tree_size, p.proof, root)
    for m in range(1, size):
        old = tree.tree_head(db, m)[1]
        assert merkle.verify_consistency(m, size, old, root, tree.consistency_proof(db, m, size))


def test_new_records_extend_the_tree_consistently(database_url: str) -> None:
    reg = open_registry(database_url, clock=lambda: TODAY)
    db = parse_database_url(database_url)
    cid = reg.select_lead(name="树测试联合体", city="nanjing", lead=unit(),
                          qualification=lead_qualification(), fields=["quantum"], actor=NANJING,
                          effective_date=date(2024, 1, 1))["consortium_id"]
    first = tree.integrate(db)
    old_root = tree.tree_head(db)[1]
    for _ in range(20):
        reg.admit_member(cid, unit(), actor=NANJING, effective_date=date(2024, 1, 2))
    assert tree.integrate(db, batch=7) == first + 20  # several batches, one transaction each
    size, root = tree.tree_head(db)
    assert merkle.verify_consistency(first, size, old_root, root,
                                     tree.consistency_proof(db, first, size))
    p = tree.inclusion_proof(db, reg.recorder.max_notification_id())
    assert p.leaf_index == size - 1
    assert merkle.verify_inclusion(p.leaf_hash, p.leaf_index, size, p.proof, root)


def test_tree_tables_are_append_only(database_url: str) -> None:
    reg = open_registry(database_url, clock=lambda: TODAY)
    record_demo(reg)
    db = parse_database_url(database_url)
    tree.integrate(db)
    t = Tamperer(database_url)
    for table in (f"{db.events_table}_merkle_nodes", f"{db.events_table}_merkle_leaves"):
        with pytest.raises(Exception, match="append-only"):
            t.execute(f"DELETE FROM {table}")
