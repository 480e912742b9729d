"""The registry's read models, kept in SQL tables beside the ledger, each update written in the
same transaction as its tracking record (so every event is applied exactly once, also after a
crash). One class per backend; the SQL is shared.

Tables: ``registry_view`` (one row per consortium: filterable columns + the full document),
``registry_units`` (lead and current members, for the USCC filter), ``registry_fields``,
``registry_reports`` (annual reports filed), and the tracking table ``registry_view_tracking``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import Tracking

from domain.rules import Status, annual_report_deadline
from projections.tables import PostgresTables, SQLiteTables

VIEW_NAME = "registry_view"
TRACKING_TABLE = f"{VIEW_NAME}_tracking"
#: §2: 30 provincial consortia by 2026.
TARGET_COUNT, TARGET_YEAR = 30, 2026

_DDL = [
    "CREATE TABLE IF NOT EXISTS registry_view ("
    " consortium_id TEXT PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL,"
    " status TEXT NOT NULL, lead_uscc TEXT NOT NULL, listed_on TEXT, delisted_on TEXT,"
    " latest_grade TEXT, version BIGINT NOT NULL, position BIGINT NOT NULL,"
    " created_position BIGINT NOT NULL UNIQUE, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS registry_units ("
    " consortium_id TEXT NOT NULL, uscc TEXT NOT NULL, role TEXT NOT NULL,"
    " PRIMARY KEY (consortium_id, uscc))",
    "CREATE INDEX IF NOT EXISTS registry_units_uscc ON registry_units (uscc)",
    # The list's filters, in the list's order.
    "CREATE INDEX IF NOT EXISTS registry_view_city ON registry_view (city, created_position)",
    "CREATE INDEX IF NOT EXISTS registry_view_status ON registry_view (status, created_position)",
    "CREATE TABLE IF NOT EXISTS registry_fields ("
    " consortium_id TEXT NOT NULL, field TEXT NOT NULL, PRIMARY KEY (consortium_id, field))",
    "CREATE TABLE IF NOT EXISTS registry_reports ("
    " consortium_id TEXT NOT NULL, year BIGINT NOT NULL, filed_on TEXT NOT NULL,"
    " late BIGINT NOT NULL, PRIMARY KEY (consortium_id, year))",
]
_CHILD_TABLES = ("registry_units", "registry_fields", "registry_reports")


class CursorError(ValueError):
    """A pagination cursor that this registry did not hand out."""


def encode_cursor(created_position: int) -> str:
    return base64.urlsafe_b64encode(f"c1:{created_position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, value = raw.split(":", 1)
        if tag != "c1":
            raise ValueError(tag)
        return int(value)
    except (ValueError, UnicodeDecodeError) as e:
        raise CursorError(f"invalid cursor {cursor!r}") from e


@dataclass(frozen=True)
class Rows:
    """The table rows of a batch of documents (plain tuples, cheap to send between processes)."""

    consortia: list[tuple[Any, ...]]
    units: list[tuple[str, str, str]]
    fields: list[tuple[str, str]]
    reports: list[tuple[str, int, str, int]]


def rows_of(docs: Sequence[dict[str, Any]]) -> Rows:
    """The rows of every view table for these documents."""
    return Rows(
        [(doc["id"], doc["name"], doc["city"], doc["status"], doc["lead"]["uscc"],
          doc["listed_on"], doc["delisted_on"], doc["latest_grade"], doc["version"],
          doc["position"], doc["created_position"],
          json.dumps(doc, ensure_ascii=False, sort_keys=True)) for doc in docs],
        [unit for doc in docs for unit in (
            (doc["id"], doc["lead"]["uscc"], "lead"),
            *((doc["id"], m["uscc"], "member") for m in doc["members"]))],
        [(doc["id"], f["code"]) for doc in docs for f in doc["fields"]],
        [(doc["id"], r["year"], r["filed_on"], int(r["late"]))
         for doc in docs for r in doc["reports"]])


class RegistryViewSQL:
    """Backend-neutral part of the view: the SQL and the read functions."""

    placeholder = "?"
    #: The stored document as UTF-8 bytes, straight from the database (no decode to text).
    doc_bytes = "CAST(doc AS BLOB)"

    def _tx(self, *, commit: bool) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _track(self, cursor: Any, tracking: Tracking) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by the tracking recorder that follows in the MRO
        def max_tracking_id(self, application_name: str) -> int | None: ...

    def _q(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    # ------------------------------------------------------------------------------- writing
    def apply(self, documents: Sequence[dict[str, Any]], tracking: Tracking) -> None:
        """Write the new state of the given consortia and the tracking record, atomically."""
        self.apply_rows(rows_of(documents), tracking)

    def apply_rows(self, rows: Rows, tracking: Tracking) -> None:
        """``apply`` with the rows already made from the documents (``rows_of``)."""
        with self._tx(commit=True) as c:
            if rows.consortia:
                self._write(c, rows)
            self._track(c, tracking)

    def _write(self, c: Any, rows: Rows) -> None:
        # One statement per table for the whole batch: a rebuild writes thousands at once.
        c.executemany(self._q(
            "INSERT INTO registry_view (consortium_id, name, city, status, lead_uscc, listed_on,"
            " delisted_on, latest_grade, version, position, created_position, doc)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (consortium_id) DO UPDATE SET"
            " name = excluded.name, status = excluded.status, listed_on = excluded.listed_on,"
            " delisted_on = excluded.delisted_on, latest_grade = excluded.latest_grade,"
            " version = excluded.version, position = excluded.position, doc = excluded.doc"),
            rows.consortia)
        ids = [(row[0],) for row in rows.consortia]
        for table in _CHILD_TABLES:
            c.executemany(self._q(f"DELETE FROM {table} WHERE consortium_id = ?"), ids)
        c.executemany(self._q("INSERT INTO registry_units VALUES (?,?,?)"), rows.units)
        c.executemany(self._q("INSERT INTO registry_fields VALUES (?,?)"), rows.fields)
        if rows.reports:
            c.executemany(self._q("INSERT INTO registry_reports VALUES (?,?,?,?)"), rows.reports)

    def reset(self, application_name: str) -> None:
        """Empty every view table and forget the tracking position (for a rebuild from 0)."""
        with self._tx(commit=True) as c:
            for table in (*_CHILD_TABLES, "registry_view"):
                c.execute(f"DELETE FROM {table}")
            c.execute(self._q(f"DELETE FROM {TRACKING_TABLE} WHERE application_name = ?"),
                      (application_name,))

    # ------------------------------------------------------------------------------- reading
    def position(self, application_name: str) -> int:
        return self.max_tracking_id(application_name) or 0

    def wait_for(self, application_name: str, position: int | None, timeout: float) -> bool:
        """Block until the view has applied ``position`` (read-your-writes); False on timeout."""
        if position is None:
            return True
        deadline, interval = monotonic() + timeout, 0.002
        while self.position(application_name) < position:
            remaining = deadline - monotonic()
            if remaining <= 0:
                return False
            sleep(min(interval, remaining))
            interval = min(interval * 2, 0.05)
        return True

    def consortium(self, consortium_id: str) -> dict[str, Any] | None:
        found = self.consortium_text(consortium_id)
        return None if found is None else json.loads(found[2])

    def consortium_text(self, consortium_id: str) -> tuple[str, int, bytes] | None:
        """The consortium's status, version and stored JSON document (UTF-8, served as is)."""
        with self._tx(commit=False) as c:
            c.execute(self._q(f"SELECT status, version, {self.doc_bytes} AS doc FROM registry_view "
                              "WHERE consortium_id = ?"), (consortium_id,))
            row = c.fetchone()
        return None if row is None else (str(row["status"]), int(row["version"]),
                                         bytes(row["doc"]))

    def created_position(self, consortium_id: str) -> int | None:
        with self._tx(commit=False) as c:
            c.execute(self._q("SELECT created_position FROM registry_view "
                              "WHERE consortium_id = ?"), (consortium_id,))
            row = c.fetchone()
        return None if row is None else int(row["created_position"])

    def list_consortia(self, *, status: str | None = None, field: str | None = None,
                       city: str | None = None, uscc: str | None = None, text: str | None = None,
                       listed_only: bool = False, cursor: str | None = None,
                       limit: int = 50) -> tuple[list[dict[str, Any]], str | None]:
        """One page of consortia in the order they were formed, and the cursor of the next."""
        page, more = self.list_consortia_json(
            status=status, field=field, city=city, uscc=uscc, text=text,
            listed_only=listed_only, cursor=cursor, limit=limit)
        return [json.loads(doc) for doc in page], more

    def list_consortia_json(self, *, status: str | None = None, field: str | None = None,
                            city: str | None = None, uscc: str | None = None,
                            text: str | None = None, listed_only: bool = False,
                            cursor: str | None = None,
                            limit: int = 50) -> tuple[list[bytes], str | None]:
        """``list_consortia`` with each document as stored JSON (UTF-8 bytes, served as is)."""
        where: list[str] = ["v.created_position > ?"]
        params: list[Any] = [decode_cursor(cursor)]
        if listed_only:
            where.append("v.status = ?")
            params.append(Status.LISTED.value)
        if status:
            where.append("v.status = ?")
            params.append(status)
        if city:
            where.append("v.city = ?")
            params.append(city)
        if field:
            where.append("EXISTS (SELECT 1 FROM registry_fields f WHERE "
                         "f.consortium_id = v.consortium_id AND f.field = ?)")
            params.append(field)
        if uscc:
            where.append("EXISTS (SELECT 1 FROM registry_units u WHERE "
                         "u.consortium_id = v.consortium_id AND u.uscc = ?)")
            params.append(uscc)
        if text:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("v.name LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        params.append(limit + 1)
        sql = (f"SELECT {self.doc_bytes} AS doc, v.created_position FROM registry_view v "
               f"WHERE {' AND '.join(where)} ORDER BY v.created_position LIMIT ?")
        with self._tx(commit=False) as c:
            c.execute(self._q(sql), params)
            rows = c.fetchall()
        page = [bytes(r["doc"]) for r in rows[:limit]]
        more = len(rows) > limit
        return page, encode_cursor(int(rows[limit - 1]["created_position"])) if more else None

    def annual_reports(self, today: date, *, year: int | None = None,
                       consortium_id: str | None = None) -> list[dict[str, Any]]:
        """Per consortium and year: filed (on time), late, due, or overdue after 31 May. A year is
        expected from the listing year on, once it has ended, while the consortium was listed at
        its deadline."""
        with self._tx(commit=False) as c:
            c.execute("SELECT consortium_id, name, city, listed_on, delisted_on "
                      "FROM registry_view WHERE listed_on IS NOT NULL ORDER BY created_position")
            consortia = c.fetchall()
            c.execute("SELECT consortium_id, year, filed_on, late FROM registry_reports")
            filed = {(r["consortium_id"], int(r["year"])): r for r in c.fetchall()}
        out: list[dict[str, Any]] = []
        for row in consortia:
            cid = row["consortium_id"]
            if consortium_id and cid != consortium_id:
                continue
            listed = date.fromisoformat(row["listed_on"])
            delisted = date.fromisoformat(row["delisted_on"]) if row["delisted_on"] else None
            for y in range(listed.year, today.year):
                if year is not None and y != year:
                    continue
                deadline = annual_report_deadline(y)
                report = filed.get((cid, y))
                if report is None and delisted is not None and delisted <= deadline:
                    continue
                if report is not None:
                    state = "late" if report["late"] else "filed"
                else:
                    state = "overdue" if today > deadline else "due"
                out.append({"consortium_id": cid, "name": row["name"], "city": row["city"],
                            "year": y, "deadline": deadline.isoformat(), "state": state,
                            "filed_on": report["filed_on"] if report is not None else None})
        return out

    def statistics(self) -> dict[str, Any]:
        """Listed count against the target of 30 by 2026; by status, city, field and grade."""
        with self._tx(commit=False) as c:
            c.execute("SELECT status, count(*) AS n FROM registry_view GROUP BY status")
            by_status = {r["status"]: int(r["n"]) for r in c.fetchall()}
            c.execute("SELECT city, count(*) AS n FROM registry_view WHERE status = 'listed' "
                      "GROUP BY city")
            by_city = {r["city"]: int(r["n"]) for r in c.fetchall()}
            c.execute("SELECT f.field, count(*) AS n FROM registry_fields f JOIN registry_view v "
                      "ON v.consortium_id = f.consortium_id WHERE v.status = 'listed' "
                      "GROUP BY f.field")
            by_field = {r["field"]: int(r["n"]) for r in c.fetchall()}
            c.execute("SELECT latest_grade, count(*) AS n FROM registry_view "
                      "WHERE status = 'listed' AND latest_grade IS NOT NULL GROUP BY latest_grade")
            by_grade = {r["latest_grade"]: int(r["n"]) for r in c.fetchall()}
        listed = by_status.get(Status.LISTED.value, 0)
        return {"target": TARGET_COUNT, "target_year": TARGET_YEAR, "listed": listed,
                "progress": round(listed / TARGET_COUNT, 4), "by_status": by_status,
                "by_city": by_city, "by_field": by_field, "by_grade": by_grade}


class SQLiteRegistryView(SQLiteTables, RegistryViewSQL):
    """The registry view on SQLite, beside the ledger in the same file."""

    tracking_table = TRACKING_TABLE
    ddl = _DDL


class PostgresRegistryView(PostgresTables, RegistryViewSQL):
    """The registry view on PostgreSQL, beside the ledger in the same database."""

    tracking_table = TRACKING_TABLE
    ddl = _DDL
    placeholder = "%s"
    doc_bytes = "convert_to(doc, 'UTF8')"
