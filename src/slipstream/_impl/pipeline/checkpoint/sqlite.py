"""``SqliteStore``: a checkpoint in a SQLite file.

WAL, and one connection used by one worker thread: sqlite3 objects are thread-bound, and the
event loop never waits on a file lock. A file that is not a checkpoint, or is damaged, is
refused with ``CheckpointError``, never reset; a file of format 1 is migrated in place in one
transaction (columns added, nothing rewritten); a format this version does not know is refused.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ...core.errors import CheckpointError
from .sql import SqlStore

__all__ = ["SqliteStore"]

T = TypeVar("T")

_FORMAT = "2"  # 2: slipstream_runs has host, pid, process, heartbeat (1 is migrated on open)
_MIGRATES = ("1",)
_META = "CREATE TABLE IF NOT EXISTS slipstream_meta (key TEXT PRIMARY KEY, value TEXT);"


class SqliteStore(SqlStore):
    """All statements on one thread with one connection: sqlite3 objects are thread-bound."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="slipstream-checkpoint")
        self._conn: sqlite3.Connection | None = None

    def is_open(self) -> bool:
        return self._conn is not None

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def open(self) -> None:
        await self._call(self._open)

    async def close(self) -> None:
        await self._call(self._close)

    async def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._call(self._execute, sql, rows)

    async def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return await self._call(self._query, sql, params)

    def _sender(self) -> Callable[[str, Sequence[Any]], bool]:
        pool = self._pool

        def send(sql: str, params: Sequence[Any]) -> bool:
            return pool.submit(self._beat, sql, params).result(timeout=60)

        return send

    # -- on the store's thread -------------------------------------------------------------

    def _open(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
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
                found = self._format(conn)
                if found not in _MIGRATES and found != _FORMAT:
                    raise CheckpointError(
                        f"{self.path} has checkpoint format {found!r}, this version reads "
                        f"{_FORMAT!r} (and migrates {', '.join(map(repr, _MIGRATES))}); it was "
                        "not changed"
                    )
            # only now, the file being ours: WAL changes the file's header
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # SIGKILL-safe; only power loss is not
            if "slipstream_meta" in tables and self._format(conn) in _MIGRATES:
                self._migrate(conn)
            with conn:
                conn.executescript(_META + self.tables())
                conn.execute(
                    "INSERT OR IGNORE INTO slipstream_meta VALUES ('format', ?)", (_FORMAT,)
                )
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise CheckpointError(
                    f"{self.path} cannot be read as a checkpoint ({exc}); it was not reset: move "
                    "it away to start over, or pass another path"
                ) from exc
            raise
        self._conn = conn

    @staticmethod
    def _format(conn: sqlite3.Connection) -> str | None:
        row = conn.execute("SELECT value FROM slipstream_meta WHERE key = 'format'").fetchone()
        return None if row is None else str(row[0])

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Format 1 -> 2 in one transaction: the owner columns are added to slipstream_runs
        (no row is rewritten). Another process may migrate at the same moment: the format is
        read again under the write lock."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._format(conn) in _MIGRATES:
                have = {r[1] for r in conn.execute("PRAGMA table_info(slipstream_runs)")}
                for name, kind in self.owner_columns_missing(have):
                    conn.execute(f"ALTER TABLE slipstream_runs ADD COLUMN {name} {kind}")
                conn.execute(
                    "UPDATE slipstream_meta SET value = ? WHERE key = 'format'", (_FORMAT,)
                )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

    def _execute(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        assert self._conn is not None
        with self._conn:
            self._conn.executemany(sql, rows)

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        assert self._conn is not None
        return self._conn.execute(sql, params).fetchall()

    def _beat(self, sql: str, params: Sequence[Any]) -> bool:
        """A heartbeat; False (nothing written) once the store is closed."""
        if self._conn is None:
            return False
        with self._conn:
            self._conn.execute(sql, params)
        return True

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
