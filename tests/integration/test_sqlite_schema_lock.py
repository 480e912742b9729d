"""SQLite: tables are created under a write lock taken first, so that the runners a service starts
side by side wait for each other instead of one being refused with "database is locked"."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from audit.store import open_registry
from projections.credit_outbox import open_credit_store
from projections.projection import open_view

OPENERS: dict[str, Callable[[str], Any]] = {
    "ledger": lambda url: open_registry(url),
    "registry view": lambda url: open_view(url),
    "credit outbox": lambda url: open_credit_store(url),
}


@pytest.mark.parametrize("what", list(OPENERS))
def test_opening_tables_waits_for_a_writer_that_commits_meanwhile(what: str,
                                                                  tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    for opener in OPENERS.values():
        opener(url)  # every table exists: opening again only reads the schema and the lock row

    writer = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    writer.execute("CREATE TABLE elsewhere (n INTEGER)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO elsewhere VALUES (1)")
    opened: list[BaseException | None] = []

    def open_tables() -> None:
        try:
            OPENERS[what](url)
            opened.append(None)
        except BaseException as e:  # reported below
            opened.append(e)

    thread = threading.Thread(target=open_tables)
    thread.start()
    time.sleep(0.3)  # the opener is now waiting for the write lock
    writer.execute("COMMIT")  # a commit meanwhile: a deferred reader could no longer upgrade
    thread.join(timeout=30)
    writer.close()
    assert opened == [None]
