"""In-process tables for the writer tests: transactional flushes whose failures a test sets."""

from __future__ import annotations

import asyncio
from typing import Any


class Table:
    """An in-process table with transactional flushes: a batch holding a bad row writes
    nothing; `down` flushes fail with a connection error. (The writers' logic is tested with
    it; test_sinks.py writes to real SQLite and PostgreSQL.)"""

    def __init__(self, bad: set[int] = frozenset(), down: int = 0, delay_s: float = 0.0) -> None:  # type: ignore[assignment]
        self.rows: dict[int, dict[str, Any]] = {}
        self.flushes: list[int] = []
        self.bad = bad
        self.down = down
        self.delay_s = delay_s

    async def flush(self, rows: list[dict[str, Any]]) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.flush_sync(rows)

    def flush_sync(self, rows: list[dict[str, Any]]) -> None:
        """The same flush for SyncBatchWriter (no delay: it would be real time)."""
        if self.down:
            self.down -= 1
            raise ConnectionResetError("server closed the connection")
        bad = [r["id"] for r in rows if r["id"] in self.bad]
        if bad:
            raise ValueError(f"invalid row {bad[0]}")
        for r in rows:
            self.rows[r["id"]] = r  # an upsert
        self.flushes.append(len(rows))


class IdTable(Table):
    """A Table whose flush takes the writer's batch ids, and records each call's id and rows."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.calls: list[tuple[str | None, list[int], str]] = []

    async def flush(  # type: ignore[override]
        self, rows: list[dict[str, Any]], batch_id: str | None = None
    ) -> None:
        try:
            await super().flush(rows)
        except Exception as exc:
            self.calls.append((batch_id, [r["id"] for r in rows], type(exc).__name__))
            raise
        self.calls.append((batch_id, [r["id"] for r in rows], "ok"))
