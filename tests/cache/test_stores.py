"""Cache backends against real components: a SQLite file (with several processes) and Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss
from slipstream._impl.cache.stores import SQLiteStore

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def sqlite_backend(cache: ss.Cache) -> SQLiteStore:
    """The SQLite store inside a cache's layers (serializer, guard)."""
    store: Any = cache._store
    while not isinstance(store, SQLiteStore):
        store = store.inner
    return store


class TestSQLite:
    def test_survives_a_restart(self, tmp_path: Path, arun: Run) -> None:
        """Entries written by one Cache are read by a new Cache on the same file."""
        path = tmp_path / "llm.sqlite"

        async def write() -> None:
            async with ss.Cache(sqlite_path=path, ttl_s=60) as cache:
                await cache.set("prompt-1", {"label": "invoice", "score": 0.9}, tags=["doc:1"])
                await cache.set("none", None)

        async def read() -> list[Any]:
            async with ss.Cache(sqlite_path=path, ttl_s=60) as cache:
                return [
                    await cache.get("prompt-1"),
                    await cache.get("none", "missing"),
                    await cache.invalidate(tag="doc:1"),
                    await cache.get("prompt-1", "gone"),
                ]

        arun(write())
        assert [{"label": "invoice", "score": 0.9}, None, 1, "gone"] == arun(read())

    def test_decorator_single_flight_and_persistence(self, tmp_path: Path, arun: Run) -> None:
        """@cached on a SQLite cache computes once for concurrent misses and on restart."""
        path = tmp_path / "c.sqlite"
        calls = []

        async def classify(doc: str) -> str:
            calls.append(doc)
            await asyncio.sleep(0.01)
            return doc.upper()

        async def main() -> list[str]:
            async with ss.Cache(sqlite_path=path, ttl_s=60) as cache:
                fn = ss.cached(cache)(classify)
                return await asyncio.gather(*(fn("a") for _ in range(20)))

        assert ["A"] * 20 == arun(main())
        assert ["A"] * 20 == arun(main())
        assert ["a"] == calls

    def test_wal_and_shared_by_processes(self, tmp_path: Path) -> None:
        """Four processes write and read one file at once without losing a write."""
        path = tmp_path / "shared.sqlite"
        script = """
import sys, slipstream as ss
cache = ss.Cache(sqlite_path=sys.argv[1], ttl_s=600)
me = sys.argv[2]
for i in range(50):
    cache.set_sync(f"{me}-{i}", i)
    assert cache.get_sync(f"{me}-{i}") == i
"""
        procs = [
            subprocess.Popen([sys.executable, "-c", script, str(path), f"p{n}"]) for n in range(4)
        ]
        assert [0, 0, 0, 0] == [p.wait(timeout=60) for p in procs]
        cache = ss.Cache(sqlite_path=path, ttl_s=600)
        assert all(cache.get_sync(f"p{n}-{i}") == i for n in range(4) for i in range(50))
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert "wal" == mode

    def test_corrupt_file_is_moved_aside(self, tmp_path: Path) -> None:
        """A file that is not a database is moved aside and the cache starts empty."""
        path = tmp_path / "broken.sqlite"
        path.write_bytes(b"this is not a database" * 100)
        cache = ss.Cache(sqlite_path=path, ttl_s=60)
        cache.set_sync("k", 1)
        assert 1 == cache.get_sync("k")
        aside = list(tmp_path.glob("broken.sqlite.corrupt-*"))
        assert 1 == len(aside)
        assert aside[0].read_bytes().startswith(b"this is not a database")

    def test_locked_file_degrades_to_misses_with_one_warning(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """While another connection holds the write lock, calls still succeed (as misses),
        with one warning for the whole outage, and the cache recovers after."""
        path = tmp_path / "locked.sqlite"
        cache = ss.Cache(sqlite_path=path, ttl_s=60)
        cache.set_sync("warm", 1)
        backend = sqlite_backend(cache)
        backend.busy_timeout_s = 0.05  # keep the test short
        backend._reset()
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        caplog.set_level(logging.WARNING, logger="slipstream.cache")
        calls = []

        def compute() -> int:
            calls.append(1)
            return 42

        values = [cache.get_or_load_sync(f"k{i}", compute) for i in range(3)]
        holder.execute("ROLLBACK")
        holder.close()
        assert [42, 42, 42] == values
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert 1 == len(warnings)
        assert cache.statistics().errors >= 3
        cache.set_sync("after", 7)
        assert 7 == cache.get_sync("after")

    def test_serialisers(self, tmp_path: Path) -> None:
        """JSON by default; msgpack keeps bytes; pickle keeps any object, only when named."""
        pytest.importorskip("msgpack")
        js = ss.Cache(sqlite_path=tmp_path / "j.sqlite")
        with pytest.raises(TypeError, match="JSON"):
            js.set_sync("k", {1, 2})
        assert "absent" == js.get_sync("k", "absent")  # nothing stored
        mp = ss.Cache(sqlite_path=tmp_path / "m.sqlite", serializer="msgpack")
        mp.set_sync("k", {"blob": b"\x00\x01"})
        assert {"blob": b"\x00\x01"} == mp.get_sync("k")
        pk = ss.Cache(sqlite_path=tmp_path / "p.sqlite", serializer="pickle")
        pk.set_sync("k", {1, 2})
        assert {1, 2} == pk.get_sync("k")

    def test_unserialisable_result_is_returned_not_cached(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A loader result JSON cannot hold is returned, not cached, and reported."""
        cache = ss.Cache(sqlite_path=tmp_path / "u.sqlite")
        calls = []

        @ss.cached(cache)
        def make(x: int) -> set[int]:
            calls.append(x)
            return {x}

        caplog.set_level(logging.WARNING, logger="slipstream.cache")
        assert [{1}, {1}] == [make(1), make(1)]
        assert [1, 1] == calls
        assert 2 == cache.statistics().unserialisable
        assert "cannot be serialised" in caplog.text

    def test_expiry_on_wall_clock(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """SQLite entries expire on wall time, shared by processes; sweep removes them."""
        now = [1_000_000.0]
        monkeypatch.setattr("slipstream._impl.cache.stores.sqlite.time.time", lambda: now[0])
        cache = ss.Cache(sqlite_path=tmp_path / "t.sqlite", ttl_s=10)
        cache.set_sync("k", 1)
        now[0] += 9
        assert 1 == cache.get_sync("k")
        now[0] += 2
        assert "expired" == cache.get_sync("k", "expired")
        cache.set_sync("j", 2)
        now[0] += 11
        assert 1 == cache.sweep()


def _redis_client(url: str) -> Any:
    redis = pytest.importorskip("redis.asyncio")
    return redis.Redis.from_url(url)


class TestRedis:
    def test_shared_between_clients_with_invalidation(self, redis_url: str, arun: Run) -> None:
        """Two caches on two connections share entries, namespaces and tags."""
        prefix = f"t{uuid.uuid4().hex[:8]}"

        async def main() -> list[Any]:
            a_client, b_client = _redis_client(redis_url), _redis_client(redis_url)
            a = ss.Cache(redis=a_client, ttl_s=60, namespace=prefix)
            b = ss.Cache(redis=b_client, ttl_s=60, namespace=prefix)
            try:
                await a.set("x", {"v": 1}, tags=["t1"])
                await a.set("y", None)
                got = [await b.get("x"), await b.get("y", "missing")]
                got.append(await b.invalidate(tag="t1"))
                got.append(await a.get("x", "gone"))
                got.append(await b.invalidate(namespace=prefix))
                got.append(await a.get("y", "gone"))
                return got
            finally:
                await a_client.aclose()
                await b_client.aclose()

        assert [{"v": 1}, None, 1, "gone", 1, "gone"] == arun(main())

    def test_decorator_single_flight_across_caches(self, redis_url: str, arun: Run) -> None:
        """Concurrent misses on one Redis-backed function compute once; later calls hit."""
        calls = []

        async def main() -> list[int]:
            client = _redis_client(redis_url)
            cache = ss.Cache(redis=client, ttl_s=60, namespace=f"t{uuid.uuid4().hex[:8]}")

            @ss.cached(cache)
            async def square(x: int) -> int:
                calls.append(x)
                await asyncio.sleep(0.01)
                return x * x

            try:
                first = await asyncio.gather(*(square(9) for _ in range(50)))
                return [*first, await square(9)]
            finally:
                await client.aclose()

        assert [81] * 51 == arun(main())
        assert [9] == calls

    def test_refused_connection_is_a_miss_with_one_warning(
        self, arun: Run, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With Redis unreachable, calls still return (computed), with one warning."""
        redis = pytest.importorskip("redis.asyncio")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        caplog.set_level(logging.WARNING, logger="slipstream.cache")

        async def main() -> list[int]:
            no_retry = pytest.importorskip("redis.retry").Retry(
                pytest.importorskip("redis.backoff").NoBackoff(), 0
            )
            client = redis.Redis(
                host="127.0.0.1", port=port, socket_connect_timeout=0.2, retry=no_retry
            )
            cache = ss.Cache(redis=client, ttl_s=60)

            @ss.cached(cache)
            async def double(x: int) -> int:
                return 2 * x

            try:
                values = [await double(i) for i in range(20)]
            finally:
                await client.aclose()
            # every get and set failed or, after 3 failures, skipped Redis without waiting
            assert 40 == cache.statistics().errors
            return values

        t0 = time.perf_counter()
        assert [2 * i for i in range(20)] == arun(main())
        assert time.perf_counter() - t0 < 5
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert 1 == len(warnings)
        assert "serving misses" in warnings[0].getMessage()

    def test_sync_use_is_refused_clearly(self, redis_url: str) -> None:
        """The sync API on a Redis cache raises TypeError with a hint."""
        cache = ss.Cache(redis=_redis_client(redis_url))
        with pytest.raises(TypeError, match="async only"):
            cache.get_sync("k")

    def test_values_are_json_not_pickle(self, redis_url: str, arun: Run) -> None:
        """What lands in Redis is readable JSON, never a pickle."""

        async def main() -> bytes:
            client = _redis_client(redis_url)
            ns = f"t{uuid.uuid4().hex[:8]}"
            cache = ss.Cache(redis=client, ttl_s=60, namespace=ns)
            try:
                await cache.set("k", {"a": [1, 2]})
                keys = [k async for k in client.scan_iter(match=f"slipstream:cache:e:{ns}*")]
                return bytes(await client.get(keys[0]))
            finally:
                await client.aclose()

        raw = arun(main())
        assert {"a": [1, 2]} == json.loads(raw.partition(b"|")[2])
