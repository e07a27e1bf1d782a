"""``SQLiteStore``: entries in a SQLite file, persistent and shared by processes (WAL)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from ..store import FRESH, STALE, Target, Terms

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    value BLOB NOT NULL,
    expires_at REAL NOT NULL,
    stale_until REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_namespace ON entries(namespace);
CREATE INDEX IF NOT EXISTS entries_stale ON entries(stale_until);
CREATE TABLE IF NOT EXISTS tags (
    tag TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (tag, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_key ON tags(key);
"""

Op = Callable[[sqlite3.Connection], Any]


class SQLiteStore:
    """Entries (bytes) in a SQLite file: persistent across restarts, shared by processes.

    Every statement runs on one dedicated thread for async callers (never on the event loop),
    or under a lock in the caller's thread for sync callers. A file that is not a database or
    is corrupt is moved aside (``<name>.corrupt-<time>``) and created anew. Expiry is on wall
    time, which every process shares.
    """

    kind = "sqlite"
    shared = True
    supports_sync = True
    entries = None  # counting them would cost a scan of the file on every call
    nbytes = None

    def __init__(
        self, path: str | os.PathLike[str], *, max_entries: int, busy_timeout_s: float = 1.0
    ) -> None:
        self.path = Path(path)
        self.max_entries = max_entries
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._writes = 0
        self.moved_aside: list[Path] = []

    # -- the store's operations -------------------------------------------------------------

    async def lookup(self, key: Hashable) -> tuple[int, bytes] | None:
        return cast("tuple[int, bytes] | None", await self.arun(_lookup(cast(str, key))))

    def lookup_sync(self, key: Hashable) -> tuple[int, bytes] | None:
        return cast("tuple[int, bytes] | None", self.run(_lookup(cast(str, key))))

    async def store(self, key: Hashable, value: bytes, terms: Terms) -> None:
        await self.arun(self._store(cast(str, key), value, terms))

    def store_sync(self, key: Hashable, value: bytes, terms: Terms) -> None:
        self.run(self._store(cast(str, key), value, terms))

    async def invalidate(self, target: Target, value: Hashable) -> int:
        return int(await self.arun(_INVALIDATE[target](cast(str, value))))

    def invalidate_sync(self, target: Target, value: Hashable) -> int:
        return int(self.run(_INVALIDATE[target](cast(str, value))))

    async def clear(self) -> None:
        await self.arun(_clear)

    def sweep(self) -> int:
        return int(self.run(_sweep))

    def close(self) -> None:
        with self._lock:
            self._reset()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- running statements, with corrupt-file recovery -------------------------------------

    def run(self, op: Op) -> Any:
        """Run ``op(connection)`` under the lock; recover once from a corrupt file."""
        with self._lock:
            try:
                return op(self._connect())
            except sqlite3.DatabaseError as exc:
                if not _is_corruption(exc):
                    raise
                self._reset()
                self._move_aside()
                return op(self._connect())

    async def arun(self, op: Op) -> Any:
        """``run`` on the store's own thread."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="slipstream-sqlite")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.run, op)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            conn = self._open()
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise
            self._move_aside()
            conn = self._open()
        self._conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout_s, check_same_thread=False, isolation_level=None
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def _move_aside(self) -> None:
        target = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time() * 1000)}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(self.path) + suffix)
            if part.exists():
                part.replace(Path(str(target) + suffix))
        self.moved_aside.append(target)

    def _reset(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    # -- writing, and keeping the file within max_entries -----------------------------------

    def _store(self, key: str, data: bytes, terms: Terms) -> Op:
        ttl_s, stale_s, namespace, tags = terms

        def op(conn: sqlite3.Connection) -> None:
            now = time.time()
            expires = 1e300 if ttl_s is None else now + ttl_s
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO entries(key, namespace, value, expires_at, stale_until) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                    "namespace = excluded.namespace, value = excluded.value, "
                    "expires_at = excluded.expires_at, stale_until = excluded.stale_until",
                    (key, namespace, data, expires, expires + stale_s),
                )
                conn.execute("DELETE FROM tags WHERE key = ?", (key,))
                conn.executemany(
                    "INSERT OR IGNORE INTO tags(tag, key) VALUES (?, ?)", [(t, key) for t in tags]
                )
                self._writes += 1
                if self._writes % 64 == 0:
                    self._trim(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        return op

    def _trim(self, conn: sqlite3.Connection) -> None:
        """Keep the file within max_entries: drop expired rows, then the oldest inserted."""
        conn.execute("DELETE FROM entries WHERE stale_until <= ?", (time.time(),))
        (count,) = conn.execute("SELECT count(*) FROM entries").fetchone()
        if count > self.max_entries:
            conn.execute(
                "DELETE FROM entries WHERE rowid IN "
                "(SELECT rowid FROM entries ORDER BY rowid LIMIT ?)",
                (count - self.max_entries,),
            )
        conn.execute("DELETE FROM tags WHERE key NOT IN (SELECT key FROM entries)")


# -- the other operations, as functions of a connection -----------------------------------------


def _lookup(key: str) -> Op:
    def op(conn: sqlite3.Connection) -> tuple[int, bytes] | None:
        row = conn.execute(
            "SELECT value, expires_at, stale_until FROM entries WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        now = time.time()
        if now < row[1]:
            return FRESH, row[0]
        if now < row[2]:
            return STALE, row[0]
        conn.execute("DELETE FROM entries WHERE key = ? AND stale_until <= ?", (key, now))
        return None

    return op


def _delete(key: str) -> Op:
    def op(conn: sqlite3.Connection) -> bool:
        conn.execute("DELETE FROM tags WHERE key = ?", (key,))
        return conn.execute("DELETE FROM entries WHERE key = ?", (key,)).rowcount > 0

    return op


def _invalidate_namespace(namespace: str) -> Op:
    def op(conn: sqlite3.Connection) -> int:
        return int(conn.execute("DELETE FROM entries WHERE namespace = ?", (namespace,)).rowcount)

    return op


def _invalidate_tag(tag: str) -> Op:
    def op(conn: sqlite3.Connection) -> int:
        n = conn.execute(
            "DELETE FROM entries WHERE key IN (SELECT key FROM tags WHERE tag = ?)", (tag,)
        ).rowcount
        conn.execute("DELETE FROM tags WHERE tag = ?", (tag,))
        return int(n)

    return op


_INVALIDATE: dict[str, Callable[[str], Op]] = {
    "key": _delete,
    "namespace": _invalidate_namespace,
    "tag": _invalidate_tag,
}


def _clear(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM entries")
    conn.execute("DELETE FROM tags")


def _sweep(conn: sqlite3.Connection) -> int:
    return int(
        conn.execute(
            "DELETE FROM entries WHERE rowid IN (SELECT rowid FROM entries "
            "WHERE stale_until <= ? LIMIT 5000)",
            (time.time(),),
        ).rowcount
    )


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text
