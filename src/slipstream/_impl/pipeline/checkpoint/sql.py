"""The statements both SQL stores run, and ``SqlStore``, the ``CheckpointStore`` methods
written once over them.

The statements use ``?`` placeholders and the ``ON CONFLICT ... DO UPDATE`` upsert that SQLite
and PostgreSQL both speak; a backend supplies three primitives (``_write``, ``_read`` and
``_sender``) and translates placeholders if its driver needs to. What differs between the two
(opening, checking and migrating a database) stays in each backend.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from typing import Any, cast

from .records import FailedItem, ItemRow, Owner, RunState, RunStatus, StoredRun

__all__ = ["OWNER_COLUMNS", "SqlStore"]

# the columns format 2 added to slipstream_runs: which process runs the run, and its heartbeat
OWNER_COLUMNS = (("host", "TEXT"), ("pid", "INTEGER"), ("process", "TEXT"), ("heartbeat", "REAL"))

_TABLES = """
CREATE TABLE IF NOT EXISTS slipstream_runs (
    run_id TEXT PRIMARY KEY, state TEXT, created {real}, updated {real}, info TEXT,
    host TEXT, pid INTEGER, process TEXT, heartbeat {real});
CREATE TABLE IF NOT EXISTS slipstream_items (
    run_id TEXT, key TEXT, status TEXT, stage TEXT, error TEXT, detail TEXT, updated {real},
    PRIMARY KEY (run_id, key));
"""

_START_RUN = (
    "INSERT INTO slipstream_runs "
    "(run_id, state, created, updated, info, host, pid, process, heartbeat) "
    "VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
    "state = 'running', updated = excluded.updated, info = excluded.info, "
    "host = excluded.host, pid = excluded.pid, process = excluded.process, "
    "heartbeat = excluded.heartbeat"
)
# only the owner's own running record is renewed: a beat arriving after the run ended, or
# after another process took the run over, changes nothing
_HEARTBEAT = (
    "UPDATE slipstream_runs SET heartbeat = ? WHERE run_id = ? AND state = 'running' "
    "AND pid = ? AND host = ?"
)
_SET_STATE = "UPDATE slipstream_runs SET state = ?, updated = ? WHERE run_id = ?"
_MARK = (
    "INSERT INTO slipstream_items (run_id, key, status, stage, error, detail, updated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, key) DO UPDATE SET status = excluded.status, "
    "stage = excluded.stage, error = excluded.error, detail = excluded.detail, "
    "updated = excluded.updated"
)
_KEYS = "SELECT key FROM slipstream_items WHERE run_id = ? AND status = ?"
_FAILURES = (
    "SELECT key, stage, error, detail FROM slipstream_items "
    "WHERE run_id = ? AND status = 'failed' ORDER BY key"
)
_RUN = (
    "SELECT state, created, updated, info, host, pid, process, heartbeat "
    "FROM slipstream_runs WHERE run_id = ?"
)
_COUNTS = "SELECT status, COUNT(*) FROM slipstream_items WHERE run_id = ? GROUP BY status"
_RUNS = "SELECT run_id FROM slipstream_runs ORDER BY created"


class SqlStore(ABC):
    """A ``CheckpointStore`` over a SQL database; subclasses connect and supply the three
    primitives. ``REAL`` is the dialect's name for a double."""

    REAL = "REAL"

    @classmethod
    def tables(cls) -> str:
        """The statements creating the runs and items tables, where they are missing."""
        return _TABLES.format(real=cls.REAL)

    @classmethod
    def owner_columns_missing(cls, have: Collection[str]) -> list[tuple[str, str]]:
        """``(name, type)`` of the owner columns a runs table with columns ``have`` lacks."""
        return [
            (name, cls.REAL if kind == "REAL" else kind)
            for name, kind in OWNER_COLUMNS
            if name not in have
        ]

    # -- the primitives --------------------------------------------------------------------

    @abstractmethod
    async def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` once per row, in one transaction."""

    @abstractmethod
    async def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows ``sql`` selects."""

    @abstractmethod
    def _sender(self) -> Callable[[str, Sequence[Any]], bool]:
        """Called on the event loop: a function running one statement from any thread,
        blocking, and returning False (nothing run) once the store or its loop is closed."""

    # -- CheckpointStore -------------------------------------------------------------------

    async def start_run(self, run_id: str, info: dict[str, Any], owner: Owner, now: float) -> None:
        text = json.dumps(info, default=str)
        row = (run_id, now, now, text, owner.host, owner.pid, owner.process, now)
        await self._write(_START_RUN, [row])

    async def set_state(self, run_id: str, state: RunState, now: float) -> None:
        await self._write(_SET_STATE, [(state, now, run_id)])

    async def mark(self, rows: Sequence[ItemRow]) -> None:
        await self._write(_MARK, rows)

    async def keys(self, run_id: str, status: str) -> set[str]:
        return {r[0] for r in await self._read(_KEYS, (run_id, status))}

    async def failures(self, run_id: str) -> list[FailedItem]:
        rows = await self._read(_FAILURES, (run_id,))
        return [FailedItem(key=k, stage=s, error=e, detail=d) for k, s, e, d in rows]

    async def run(self, run_id: str) -> StoredRun | None:
        runs = await self._read(_RUN, (run_id,))
        if not runs:
            return None
        state, created, updated, info, host, pid, process, heartbeat = runs[0]
        counts = dict(await self._read(_COUNTS, (run_id,)))
        status = RunStatus(
            run_id=run_id,
            state=cast(RunState, state),  # as the store keeps it: one of RunState
            done=int(counts.get("done", 0)),
            failed=int(counts.get("failed", 0)),
            skipped=int(counts.get("skipped", 0)),
            created=float(created),
            updated=float(updated),
            info=json.loads(info or "{}"),
            host=host,
            pid=None if pid is None else int(pid),
            heartbeat=None if heartbeat is None else float(heartbeat),
        )
        return StoredRun(status, process)

    async def runs(self) -> list[str]:
        return [r[0] for r in await self._read(_RUNS, ())]

    def heartbeat(self, run_id: str, owner: Owner) -> Callable[[float], bool]:
        send = self._sender()

        def beat(now: float) -> bool:
            return send(_HEARTBEAT, (now, run_id, owner.pid, owner.host))

        return beat
