"""Where a ``Cache`` keeps its entries: memory (default), a SQLite file, or Redis.

A store knows nothing of single flight, loaders or statistics; it keeps values with a fresh
period and a stale period, indexed by namespace and tags, on its own clock (memory: monotonic;
SQLite and Redis: wall time, because several processes share them).

Values in SQLite and Redis are serialised: JSON by default, msgpack if installed and asked for,
pickle only when asked for by name, because a shared cache must not be a way to run code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sqlite3
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from ..core import clock as _clock
from ..core.checks import check_choice

__all__ = [
    "FRESH",
    "STALE",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "Serializer",
    "make_serializer",
]

FRESH = 1
STALE = 2


class Serializer(Protocol):
    name: str

    def dumps(self, value: Any) -> bytes: ...
    def loads(self, data: bytes) -> Any: ...


class _Json:
    name = "json"

    def dumps(self, value: Any) -> bytes:
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"cannot serialise a {type(value).__qualname__} as JSON: {exc}"
                "\nHINT: return JSON-friendly data, or Cache(serializer='msgpack' or 'pickle')"
            ) from None

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class _Msgpack:
    name = "msgpack"

    def __init__(self) -> None:
        try:
            import msgpack  # type: ignore[import-untyped]  # no stubs published
        except ImportError:
            raise ImportError(
                "serializer='msgpack' needs the msgpack package\nHINT: pip install msgpack"
            ) from None
        self._msgpack: Any = msgpack

    def dumps(self, value: Any) -> bytes:
        try:
            return bytes(self._msgpack.packb(value, use_bin_type=True))
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(
                f"cannot serialise a {type(value).__qualname__} as msgpack: {exc}"
            ) from None

    def loads(self, data: bytes) -> Any:
        return self._msgpack.unpackb(data, raw=False)


class _Pickle:
    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        import pickle

        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (TypeError, AttributeError, pickle.PicklingError) as exc:
            raise TypeError(f"cannot pickle a {type(value).__qualname__}: {exc}") from None

    def loads(self, data: bytes) -> Any:
        import pickle

        return pickle.loads(data)  # only when the user asked for pickle by name


def make_serializer(name: str) -> Serializer:
    if name == "json":
        return _Json()
    if name == "msgpack":
        return _Msgpack()
    if name == "pickle":
        return _Pickle()
    check_choice("serializer", name, ("json", "msgpack", "pickle"))
    raise AssertionError("unreachable")  # pragma: no cover


# -- memory ------------------------------------------------------------------------------------


class _Item:
    __slots__ = ("expires_at", "namespace", "size", "stale_until", "tags", "value")

    def __init__(
        self,
        value: Any,
        expires_at: float,
        stale_until: float,
        size: int,
        namespace: str,
        tags: tuple[str, ...],
    ) -> None:
        self.value = value
        self.expires_at = expires_at
        self.stale_until = stale_until
        self.size = size
        self.namespace = namespace
        self.tags = tags


def default_size(value: Any) -> int:
    """Bytes a value is counted as: its length for bytes and str, else ``sys.getsizeof``."""
    if isinstance(value, bytes | bytearray | memoryview | str):
        return len(value)
    return sys.getsizeof(value)


class MemoryStore:
    """An LRU dict with per-entry expiry, O(1) get, set and eviction, and a chunked sweep.

    Thread-safe: writes take a lock; a hit takes none (dict reads and ``move_to_end`` are
    atomic under the GIL; an entry evicted in between is simply a miss).
    """

    external = False

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int | None,
        size_of: Callable[[Any], int],
        on_evict: Callable[[int], None],
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size_of = size_of
        self._on_evict = on_evict
        self.data: OrderedDict[Hashable, _Item] = OrderedDict()
        self.bytes = 0
        self._namespaces: dict[str, set[Hashable]] = {}
        self._tags: dict[str, set[Hashable]] = {}
        self._lock = threading.Lock()
        self._sweep_keys: list[Hashable] = []

    def lookup(self, key: Hashable) -> tuple[int, Any] | None:
        item = self.data.get(key)
        if item is None:
            return None
        now = _clock.clock()
        if now < item.expires_at:
            try:  # noqa: SIM105  # hot path: a context manager costs ~1 us
                self.data.move_to_end(key)
            except KeyError:
                pass
            return FRESH, item.value
        if now < item.stale_until:
            return STALE, item.value
        self.delete(key)
        return None

    def store(
        self,
        key: Hashable,
        value: Any,
        ttl_s: float | None,
        stale_s: float,
        namespace: str,
        tags: tuple[str, ...],
    ) -> None:
        now = _clock.clock()
        expires = math.inf if ttl_s is None else now + ttl_s
        size = self.size_of(value) if self.max_bytes is not None else 0
        if self.max_bytes is not None and size > self.max_bytes:
            return  # larger than the whole cache: never worth evicting everything for
        item = _Item(value, expires, expires + stale_s, size, namespace, tags)
        evicted = 0
        with self._lock:
            old = self.data.pop(key, None)
            if old is not None:
                self._unindex(key, old)
            self.data[key] = item
            self.bytes += size
            self._namespaces.setdefault(namespace, set()).add(key)
            for tag in tags:
                self._tags.setdefault(tag, set()).add(key)
            while len(self.data) > self.max_entries or (
                self.max_bytes is not None and self.bytes > self.max_bytes
            ):
                old_key, old_item = self.data.popitem(last=False)
                self._unindex(old_key, old_item)
                evicted += 1
        if evicted:
            self._on_evict(evicted)

    def _unindex(self, key: Hashable, item: _Item) -> None:
        self.bytes -= item.size
        keys = self._namespaces.get(item.namespace)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._namespaces[item.namespace]
        for tag in item.tags:
            tagged = self._tags.get(tag)
            if tagged is not None:
                tagged.discard(key)
                if not tagged:
                    del self._tags[tag]

    def delete(self, key: Hashable) -> bool:
        with self._lock:
            item = self.data.pop(key, None)
            if item is None:
                return False
            self._unindex(key, item)
            return True

    def _delete_many(self, keys: Iterable[Hashable]) -> int:
        return sum(self.delete(k) for k in list(keys))

    def invalidate_namespace(self, namespace: str) -> int:
        return self._delete_many(self._namespaces.get(namespace, ()))

    def invalidate_tag(self, tag: str) -> int:
        return self._delete_many(self._tags.get(tag, ()))

    def clear(self) -> None:
        with self._lock:
            self.data.clear()
            self._namespaces.clear()
            self._tags.clear()
            self.bytes = 0

    def sweep(self, chunk: int = 5000) -> tuple[int, bool]:
        """Drop up to ``chunk`` entries' worth of expired items; (removed, finished)."""
        if not self._sweep_keys:
            self._sweep_keys = list(self.data.keys())
        batch, self._sweep_keys = self._sweep_keys[-chunk:], self._sweep_keys[:-chunk]
        now = _clock.clock()
        removed = 0
        for key in batch:
            item = self.data.get(key)
            if item is not None and item.stale_until <= now:
                removed += self.delete(key)
        return removed, not self._sweep_keys

    def __len__(self) -> int:
        return len(self.data)

    def close(self) -> None:
        self.clear()


# -- SQLite ------------------------------------------------------------------------------------

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


class SQLiteStore:
    """Entries in a SQLite file: persistent across restarts, shared by processes (WAL).

    Every statement runs on one dedicated thread for async callers (never on the event loop),
    or under a lock in the caller's thread for sync callers. A file that is not a database or
    is corrupt is moved aside (``<name>.corrupt-<time>``) and created anew.
    """

    external = True

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

    # connection management, with corrupt-file recovery

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

    def run(self, op: Callable[[sqlite3.Connection], Any]) -> Any:
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

    async def arun(self, op: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="slipstream-sqlite")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.run, op)

    def _reset(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    # the operations, as functions of a connection

    @staticmethod
    def op_lookup(key: str) -> Callable[[sqlite3.Connection], tuple[int, bytes] | None]:
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

    def op_store(
        self,
        key: str,
        data: bytes,
        ttl_s: float | None,
        stale_s: float,
        namespace: str,
        tags: tuple[str, ...],
    ) -> Callable[[sqlite3.Connection], None]:
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

    @staticmethod
    def op_delete(key: str) -> Callable[[sqlite3.Connection], bool]:
        def op(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM tags WHERE key = ?", (key,))
            return conn.execute("DELETE FROM entries WHERE key = ?", (key,)).rowcount > 0

        return op

    @staticmethod
    def op_invalidate_namespace(namespace: str) -> Callable[[sqlite3.Connection], int]:
        def op(conn: sqlite3.Connection) -> int:
            return int(
                conn.execute("DELETE FROM entries WHERE namespace = ?", (namespace,)).rowcount
            )

        return op

    @staticmethod
    def op_invalidate_tag(tag: str) -> Callable[[sqlite3.Connection], int]:
        def op(conn: sqlite3.Connection) -> int:
            n = conn.execute(
                "DELETE FROM entries WHERE key IN (SELECT key FROM tags WHERE tag = ?)", (tag,)
            ).rowcount
            conn.execute("DELETE FROM tags WHERE tag = ?", (tag,))
            return int(n)

        return op

    @staticmethod
    def op_clear(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM entries")
        conn.execute("DELETE FROM tags")

    @staticmethod
    def op_sweep(conn: sqlite3.Connection) -> int:
        return int(
            conn.execute(
                "DELETE FROM entries WHERE rowid IN (SELECT rowid FROM entries "
                "WHERE stale_until <= ? LIMIT 5000)",
                (time.time(),),
            ).rowcount
        )

    def close(self) -> None:
        with self._lock:
            self._reset()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


# -- Redis -------------------------------------------------------------------------------------


class RedisStore:
    """Entries in Redis (``redis.asyncio``): shared by every process and machine.

    Each entry is one key ``<prefix>e:<key>`` holding ``<expires_at>|<value>`` with a Redis TTL
    of fresh + stale time; namespaces and tags are Redis sets of keys.
    """

    external = True

    def __init__(self, client: Any, *, prefix: str = "slipstream:cache:") -> None:
        if not hasattr(client, "set") or not hasattr(client, "pipeline"):
            raise TypeError(
                f"'redis' must be a redis.asyncio client, got {type(client).__name__}"
                "\nHINT: ss.Cache(redis=redis.asyncio.Redis(host='127.0.0.1'))"
            )
        self.client = client
        self.prefix = prefix

    def _k(self, key: str) -> str:
        return f"{self.prefix}e:{key}"

    async def lookup(self, key: str) -> tuple[int, bytes] | None:
        raw = await self.client.get(self._k(key))
        if raw is None:
            return None
        stamp, _, data = bytes(raw).partition(b"|")
        return (FRESH if time.time() < float(stamp) else STALE), data

    async def store(
        self,
        key: str,
        data: bytes,
        ttl_s: float | None,
        stale_s: float,
        namespace: str,
        tags: tuple[str, ...],
    ) -> None:
        expires = 1e300 if ttl_s is None else time.time() + ttl_s
        lifetime = None if ttl_s is None else max(1, math.ceil((ttl_s + stale_s) * 1000))
        full = self._k(key)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(full, repr(expires).encode() + b"|" + data, px=lifetime)
            for index in (f"ns:{namespace}", *(f"tag:{t}" for t in tags)):
                pipe.sadd(f"{self.prefix}{index}", full)
                if lifetime is not None:  # the index lives as long as its longest entry
                    pipe.pexpire(f"{self.prefix}{index}", lifetime, gt=True)
                    pipe.pexpire(f"{self.prefix}{index}", lifetime, nx=True)
            await pipe.execute()

    async def delete(self, key: str) -> bool:
        return bool(await self.client.delete(self._k(key)))

    async def _delete_set(self, set_key: str) -> int:
        members = await self.client.smembers(set_key)
        removed = 0
        if members:
            removed = int(await self.client.delete(*members))
        await self.client.delete(set_key)
        return removed

    async def invalidate_namespace(self, namespace: str) -> int:
        return await self._delete_set(f"{self.prefix}ns:{namespace}")

    async def invalidate_tag(self, tag: str) -> int:
        return await self._delete_set(f"{self.prefix}tag:{tag}")

    async def clear(self) -> None:
        batch: list[Any] = []
        async for key in self.client.scan_iter(match=f"{self.prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await self.client.delete(*batch)
                batch = []
        if batch:
            await self.client.delete(*batch)
