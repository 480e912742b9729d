"""Direct database access for tests that play a hostile database owner: switch the append-only
triggers off, change the ledger behind the registry's back, switch them on again."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from audit.store import Database, parse_database_url


class Tamperer:
    def __init__(self, url: str) -> None:
        self.db: Database = parse_database_url(url)
        self.ev, self.lk = self.db.events_table, self.db.links_table
        self.pos = "rowid" if self.db.backend == "sqlite" else "notification_id"

    @contextmanager
    def _conn(self, *, triggers_off: bool) -> Iterator[Any]:
        if self.db.backend == "sqlite":
            conn = sqlite3.connect(self.db.path)
            try:
                if triggers_off:
                    for (name,) in conn.execute(
                            "SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
                        conn.execute(f"DROP TRIGGER {name}")
                yield conn
                conn.commit()
            finally:
                conn.close()
            return
        import psycopg

        with psycopg.connect(self.db.conninfo()) as conn:
            if triggers_off:
                conn.execute(f"ALTER TABLE {self.ev} DISABLE TRIGGER USER")
                conn.execute(f"ALTER TABLE {self.lk} DISABLE TRIGGER USER")
            yield conn
            if triggers_off:
                conn.execute(f"ALTER TABLE {self.ev} ENABLE TRIGGER USER")
                conn.execute(f"ALTER TABLE {self.lk} ENABLE TRIGGER USER")

    def _q(self, sql: str) -> str:
        return sql if self.db.backend == "sqlite" else sql.replace("?", "%s")

    def execute(self, sql: str, params: tuple[Any, ...] = (), *,
                triggers_off: bool = False) -> None:
        with self._conn(triggers_off=triggers_off) as conn:
            conn.execute(self._q(sql), params)

    def event_row(self, position: int) -> tuple[Any, ...]:
        with self._conn(triggers_off=False) as conn:
            cols = "originator_id, originator_version, topic, state"
            row = conn.execute(self._q(f"SELECT {cols} FROM {self.ev} WHERE {self.pos} = ?"),
                               (position,)).fetchone()
            return tuple(row)

    def link_row(self, position: int) -> tuple[Any, ...]:
        with self._conn(triggers_off=False) as conn:
            return tuple(conn.execute(self._q(
                f"SELECT position, prev_hash, hash FROM {self.lk} WHERE position = ?"),
                (position,)).fetchone())

    # --- the four kinds of tampering ---------------------------------------------------------
    def edit_state(self, position: int, old: bytes, new: bytes) -> None:
        state = bytes(self.event_row(position)[3])
        assert old in state, (old, state[:200])
        self.execute(f"UPDATE {self.ev} SET state = ? WHERE {self.pos} = ?",
                     (state.replace(old, new), position), triggers_off=True)

    def delete_event(self, position: int, *, with_link: bool = False) -> None:
        with self._conn(triggers_off=True) as conn:
            conn.execute(self._q(f"DELETE FROM {self.ev} WHERE {self.pos} = ?"), (position,))
            if with_link:
                conn.execute(self._q(f"DELETE FROM {self.lk} WHERE position = ?"), (position,))

    def swap_events(self, p: int, q: int) -> None:
        with self._conn(triggers_off=True) as conn:
            if self.db.backend == "sqlite":
                rows = {pos: conn.execute(f"SELECT * FROM {self.ev} WHERE rowid = ?",
                                          (pos,)).fetchone() for pos in (p, q)}
                conn.execute(f"DELETE FROM {self.ev} WHERE rowid IN (?, ?)", (p, q))
                for new_pos, old_pos in ((p, q), (q, p)):
                    conn.execute(f"INSERT INTO {self.ev} (rowid, originator_id, "
                                 "originator_version, topic, state) VALUES (?,?,?,?,?)",
                                 (new_pos, *rows[old_pos]))
            else:
                conn.execute(f"UPDATE {self.ev} SET notification_id = -1 "
                             f"WHERE notification_id = %s", (p,))
                conn.execute(f"UPDATE {self.ev} SET notification_id = %s "
                             f"WHERE notification_id = %s", (p, q))
                conn.execute(f"UPDATE {self.ev} SET notification_id = %s "
                             f"WHERE notification_id = -1", (q,))

    def insert_event(self, position: int, originator_id: str, version: int, topic: str,
                     state: bytes, link: tuple[bytes, bytes] | None = None) -> None:
        with self._conn(triggers_off=True) as conn:
            if self.db.backend == "sqlite":
                conn.execute(f"INSERT INTO {self.ev} (rowid, originator_id, originator_version, "
                             "topic, state) VALUES (?,?,?,?,?)",
                             (position, originator_id, version, topic, state))
            else:
                conn.execute(f"INSERT INTO {self.ev} (notification_id, originator_id, "
                             "originator_version, topic, state) VALUES (%s,%s,%s,%s,%s)",
                             (position, originator_id, version, topic, state))
            if link is not None:
                conn.execute(self._q(f"INSERT INTO {self.lk} VALUES (?,?,?)"),
                             (position, *link))
