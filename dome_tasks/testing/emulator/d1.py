"""A D1 database backed by sqlite3: statements are really executed."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["D1Database", "D1Error", "split_statements"]


class D1Error(Exception):
    """A SQL error, reported by the API as code 7500."""


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (semicolons inside strings are kept)."""
    out: list[str] = []
    buf = ""
    for piece in sql.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \t\r\n;"):
                out.append(buf.strip())
            buf = ""
    if buf.strip(" \t\r\n;"):
        out.append(buf.rstrip(";").strip())
    return out


@dataclass
class D1Database:
    """One database; `query` runs a batch of statements atomically."""

    uuid: str
    name: str
    created_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
    _conn: sqlite3.Connection = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row

    def query(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Run every statement of `sql`; one D1 result object per statement."""
        statements = split_statements(sql)
        return self.batch([(stmt, params if (params and index == 0) else [])
                           for index, stmt in enumerate(statements)])

    def batch(self, statements: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        """Run each (statement, parameters) in order, in one transaction (the API's ``batch``):
        one D1 result object per statement; a failing one rolls them all back."""
        results: list[dict[str, Any]] = []
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                for stmt, args in statements:
                    results.append(self._run(stmt, args))
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise D1Error(f"{exc}: SQLITE_ERROR") from exc
            self._conn.execute("COMMIT")
        return results

    def _run(self, stmt: str, params: list[Any]) -> dict[str, Any]:
        start = time.perf_counter()
        cur = self._conn.execute(stmt, params)
        rows = [dict(row) for row in cur.fetchall()]
        return {
            "results": rows,
            "columns": [column[0] for column in cur.description or ()],  # for /raw; not sent
            "success": True,
            "meta": {
                "changed_db": cur.rowcount > 0,
                "changes": max(cur.rowcount, 0),
                "duration": (time.perf_counter() - start) * 1000,
                "last_row_id": cur.lastrowid or 0,
                "rows_read": len(rows),
                "rows_written": max(cur.rowcount, 0),
                "served_by": "emulator",
                "size_after": 0,
            },
        }

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Read helper for tests: the rows of one statement."""
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, params or []).fetchall()]

    def tables(self) -> list[str]:
        names = self.rows("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        return [r["name"] for r in names]

    def to_api(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "created_at": self.created_at,
            "version": "production",
            "num_tables": len(self.tables()),
            "file_size": 0,
            "running_in_region": "WNAM",
        }

    def close(self) -> None:
        with self._lock:
            self._conn.close()
