"""``ss.Checkpoint``: what each item of a pipeline run became, durably (seed 004).

Seed 004's pipeline had to pause and resume, and its checkpoint call pointed at a method that
did not exist. A checkpoint here is a table of ``(run_id, key) -> status`` where status is
``done`` (the sink committed the item's result), ``failed`` (with the stage, the error and the
raw detail) or ``skipped`` (with the reason). The pipeline writes ``done`` only after the sink's
transaction committed, so a crash at any moment leaves at worst items that are committed but
not yet marked; a resumed run processes them again and the sink's upsert by item key keeps one
row each.

Stores: a SQLite file (default; WAL, one connection on one worker thread, so the loop never
waits on a file lock) or a PostgreSQL table (``postgresql://`` URL, asyncpg). A file that is
not a checkpoint, or is damaged, is refused with ``CheckpointError``; it is never reset.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._exceptions import CheckpointError

__all__ = ["Checkpoint", "RunStatus"]

_FORMAT = "1"
_STATUSES = ("done", "failed", "skipped")


@dataclass(frozen=True, slots=True)
class RunStatus:
    """Counts of one run's items by status, and the run's state."""

    run_id: str
    state: str  # "running", "paused", "finished", "interrupted" (a run that never said)
    done: int
    failed: int
    skipped: int
    created: float
    updated: float
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FailedItem:
    key: str
    stage: str
    error: str
    detail: str


class _SqliteStore:
    """All statements on one thread with one connection: sqlite3 objects are thread-bound."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="slipstream-checkpoint")
        self._conn: sqlite3.Connection | None = None

    async def call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- the sync side, on the store's thread ----------------------------------------------

    def open(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # SIGKILL-safe; only power loss is not
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if tables and "slipstream_meta" not in tables:
                raise CheckpointError(
                    f"{self.path} is a SQLite file but not a slipstream checkpoint (it has "
                    f"tables {sorted(tables)}); pass another path"
                )
            if "slipstream_meta" in tables:
                (check,) = conn.execute("PRAGMA quick_check").fetchone()
                if check != "ok":
                    raise CheckpointError(f"{self.path} is damaged ({check}); it was not reset")
                row = conn.execute(
                    "SELECT value FROM slipstream_meta WHERE key = 'format'"
                ).fetchone()
                if row is None or row[0] != _FORMAT:
                    raise CheckpointError(
                        f"{self.path} has checkpoint format {row and row[0]!r}, this version "
                        f"reads {_FORMAT!r}; it was not changed"
                    )
            with conn:
                conn.executescript(_SCHEMA_SQLITE)
                conn.execute(
                    "INSERT OR IGNORE INTO slipstream_meta VALUES ('format', ?)", (_FORMAT,)
                )
        except sqlite3.DatabaseError as exc:
            raise CheckpointError(
                f"{self.path} cannot be read as a checkpoint ({exc}); it was not reset: move it "
                "away to start over, or pass another path"
            ) from exc
        self._conn = conn

    def execute(self, sql: str, rows: Sequence[Sequence[Any]] | None = None) -> list[Any]:
        assert self._conn is not None
        with self._conn:
            if rows is not None:
                self._conn.executemany(sql, rows)
                return []
            return self._conn.execute(sql).fetchall()

    def query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        assert self._conn is not None
        return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_SCHEMA_SQLITE = """
CREATE TABLE IF NOT EXISTS slipstream_meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS slipstream_runs (
    run_id TEXT PRIMARY KEY, state TEXT, created REAL, updated REAL, info TEXT);
CREATE TABLE IF NOT EXISTS slipstream_items (
    run_id TEXT, key TEXT, status TEXT, stage TEXT, error TEXT, detail TEXT, updated REAL,
    PRIMARY KEY (run_id, key));
"""

_SCHEMA_PG = """
CREATE TABLE IF NOT EXISTS slipstream_runs (
    run_id TEXT PRIMARY KEY, state TEXT, created DOUBLE PRECISION, updated DOUBLE PRECISION,
    info TEXT);
CREATE TABLE IF NOT EXISTS slipstream_items (
    run_id TEXT, key TEXT, status TEXT, stage TEXT, error TEXT, detail TEXT,
    updated DOUBLE PRECISION, PRIMARY KEY (run_id, key));
"""


class Checkpoint:
    """The per-item state of pipeline runs, in a SQLite file or a PostgreSQL database.

    Args:
        target: a file path (SQLite, created if missing) or a ``postgresql://`` URL (needs
            ``slipstream[postgres]``; the tables ``slipstream_runs`` and ``slipstream_items``
            are created if missing).

    Use ``async with ss.Checkpoint(path) as cp:``; a ``Pipeline`` opens it for you.

    Raises (on open):
        CheckpointError: the file is not a checkpoint, is damaged or has another format; or the
            database cannot be reached. Nothing is reset.
    """

    def __init__(self, target: str | os.PathLike[str] = "slipstream-checkpoint.sqlite") -> None:
        if not isinstance(target, str | os.PathLike):
            raise TypeError(
                f"'target' must be a file path or a postgresql:// URL, got {type(target).__name__}"
            )
        self.target = str(target)
        self._pg = self.target.startswith(("postgresql://", "postgres://"))
        self._sqlite = None if self._pg else _SqliteStore(Path(self.target))
        self._pool: Any = None
        self._open = False
        self.writes = 0  # transactions written: the checkpoint's database round trips

    def __repr__(self) -> str:
        return f"Checkpoint({self.target!r})"

    async def __aenter__(self) -> Checkpoint:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Open (and check) the store; a no-op when it is open already."""
        if self._open:
            return
        if self._sqlite is not None:
            await self._sqlite.call(self._sqlite.open)
            self._open = True
            return
        try:
            import asyncpg  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - the extra is installed in dev
            raise CheckpointError(
                "a PostgreSQL checkpoint needs asyncpg: pip install 'slipstream[postgres]'"
            ) from exc
        try:
            self._pool = await asyncpg.create_pool(self.target, min_size=1, max_size=2)
        except (OSError, asyncpg.PostgresError) as exc:
            raise CheckpointError(f"cannot reach the checkpoint database: {exc}") from exc
        async with self._pool.acquire() as conn:
            await conn.execute(_SCHEMA_PG)
        self._open = True

    async def aclose(self) -> None:
        self._open = False
        if self._sqlite is not None:
            await self._sqlite.call(self._sqlite.close)
        elif self._pool is not None:
            await self._pool.close()
            self._pool = None

    # -- one statement, either store -------------------------------------------------------

    async def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        self.writes += 1
        if self._sqlite is not None:
            await self._sqlite.call(self._sqlite.execute, sql, rows)
            return
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(_pg_sql(sql), rows)

    async def _read(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self._sqlite is not None:
            return list(await self._sqlite.call(self._sqlite.query, sql, params))
        async with self._pool.acquire() as conn:
            return [tuple(r) for r in await conn.fetch(_pg_sql(sql), *params)]

    # -- runs --------------------------------------------------------------------------------

    async def start_run(self, run_id: str, info: dict[str, Any] | None = None) -> None:
        """Record that ``run_id`` is running (created on first use, kept on resume)."""
        now = time.time()
        await self._write(
            "INSERT INTO slipstream_runs VALUES (?, 'running', ?, ?, ?) ON CONFLICT (run_id) "
            "DO UPDATE SET state = 'running', updated = excluded.updated, info = excluded.info",
            [(run_id, now, now, json.dumps(info or {}, default=str))],
        )

    async def set_state(self, run_id: str, state: str) -> None:
        await self._write(
            "UPDATE slipstream_runs SET state = ?, updated = ? WHERE run_id = ?",
            [(state, time.time(), run_id)],
        )

    # -- items -------------------------------------------------------------------------------

    async def mark(
        self,
        run_id: str,
        status: str,
        entries: Iterable[tuple[str, str, str, str]],
    ) -> None:
        """Record ``(key, stage, error, detail)`` entries as ``status``, in one transaction."""
        if status not in _STATUSES:
            raise ValueError(f"'status' must be one of {_STATUSES}, got {status!r}")
        now = time.time()
        rows = [
            (run_id, key, status, stage, error, detail, now)
            for key, stage, error, detail in entries
        ]
        await self._write(
            "INSERT INTO slipstream_items VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, key) DO UPDATE SET status = excluded.status, "
            "stage = excluded.stage, error = excluded.error, detail = excluded.detail, "
            "updated = excluded.updated",
            rows,
        )

    async def mark_done(self, run_id: str, keys: Iterable[str]) -> None:
        await self.mark(run_id, "done", ((k, "", "", "") for k in keys))

    async def keys(self, run_id: str, status: str) -> set[str]:
        """The keys of ``run_id`` with ``status``."""
        rows = await self._read(
            "SELECT key FROM slipstream_items WHERE run_id = ? AND status = ?", run_id, status
        )
        return {r[0] for r in rows}

    async def failures(self, run_id: str) -> list[FailedItem]:
        """The failed items of ``run_id``, with their stage, error and raw detail."""
        rows = await self._read(
            "SELECT key, stage, error, detail FROM slipstream_items "
            "WHERE run_id = ? AND status = 'failed' ORDER BY key",
            run_id,
        )
        return [FailedItem(*r) for r in rows]

    async def status(self, run_id: str) -> RunStatus | None:
        """The run's counts and state; None for a run this checkpoint has never seen."""
        runs = await self._read(
            "SELECT state, created, updated, info FROM slipstream_runs WHERE run_id = ?", run_id
        )
        if not runs:
            return None
        state, created, updated, info = runs[0]
        counts = dict(
            await self._read(
                "SELECT status, COUNT(*) FROM slipstream_items WHERE run_id = ? GROUP BY status",
                run_id,
            )
        )
        return RunStatus(
            run_id=run_id,
            state=state,
            done=int(counts.get("done", 0)),
            failed=int(counts.get("failed", 0)),
            skipped=int(counts.get("skipped", 0)),
            created=float(created),
            updated=float(updated),
            info=json.loads(info or "{}"),
        )

    async def runs(self) -> list[str]:
        """Every run id, oldest first."""
        return [
            r[0] for r in await self._read("SELECT run_id FROM slipstream_runs ORDER BY created")
        ]


def _pg_sql(sql: str) -> str:
    """Turn ``?`` placeholders into asyncpg's ``$n`` (the statements here have no literals
    containing ``?``)."""
    parts = sql.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))
