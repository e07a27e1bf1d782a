"""The Store protocol, one contract for every store a Cache opens: memory, SQLite and Redis
answer the same lookups, invalidations and clears."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from slipstream._impl.cache.guard import GuardedStore
from slipstream._impl.cache.serializers import SerializedStore, make_serializer
from slipstream._impl.cache.store import FRESH, Store, Terms
from slipstream._impl.cache.stores import RedisStore, SQLiteStore, open_store

from .helpers import Run


def opened(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Store[Any], Any]:
    """The store ``Cache(...)`` would hold for ``kind``, with its layers, and the Redis client
    to close (None for the others). Redis keys get a prefix of their own, so ``clear`` removes
    only this test's."""
    if kind == "memory":
        return open_store(
            sqlite_path=None,
            redis=None,
            serializer=make_serializer("json"),
            max_entries=100,
            max_bytes=None,
            size_of=None,
            retry_s=5.0,
            on_evict=lambda n: None,
            on_error=lambda: None,
        ), None
    client = None
    backend: Store[bytes]
    if kind == "sqlite":
        backend = SQLiteStore(tmp_path / "c.sqlite", max_entries=100)
    else:
        url = request.getfixturevalue("redis_url")
        client = pytest.importorskip("redis.asyncio").Redis.from_url(url)
        backend = RedisStore(client, prefix=f"test:{uuid.uuid4().hex}:")
    guarded = GuardedStore(backend, retry_s=5.0, on_error=lambda: None)
    return SerializedStore(guarded, make_serializer("json")), client


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
class TestEveryStore:
    def test_lookups_invalidations_and_clear_agree(
        self, kind: str, tmp_path: Path, request: pytest.FixtureRequest, arun: Run
    ) -> None:
        """A stored value (None included) is found fresh; a tag, a namespace and a key remove
        exactly their entries and say how many; clear removes the rest."""
        store, client = opened(kind, tmp_path, request)
        ns, other = f"a{uuid.uuid4().hex[:8]}", f"b{uuid.uuid4().hex[:8]}"
        tag = f"t{uuid.uuid4().hex[:8]}"

        async def main() -> list[Any]:
            await store.store(f"{ns}:1", {"v": 1}, Terms(60.0, 0.0, ns, (tag,)))
            await store.store(f"{ns}:2", None, Terms(60.0, 0.0, ns, ()))
            await store.store(f"{other}:3", [3], Terms(None, 0.0, other, (tag,)))
            await store.store(f"{other}:4", "four", Terms(60.0, 0.0, other, ()))
            seen = [await store.lookup(f"{ns}:{i}") for i in (1, 2)]
            removed = [
                await store.invalidate("tag", tag),
                await store.invalidate("namespace", ns),
                await store.invalidate("key", f"{other}:4"),
                await store.invalidate("key", f"{other}:4"),
            ]
            left = [await store.lookup(k) for k in (f"{ns}:1", f"{ns}:2", f"{other}:3")]
            await store.store(f"{other}:5", 5, Terms(60.0, 0.0, other, ()))
            await store.clear()
            found = await store.lookup(f"{other}:5")
            store.close()
            if client is not None:
                await client.aclose()
            return [seen, removed, left, found]

        assert [
            [(FRESH, {"v": 1}), (FRESH, None)],
            [2, 1, 1, 0],
            [None, None, None],
            None,
        ] == arun(main())

    def test_what_a_store_says_of_itself(
        self, kind: str, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        """Only the memory store keeps live keys and counts its entries; only Redis refuses
        sync callers."""
        store, _ = opened(kind, tmp_path, request)  # a client not used never connects
        memory = kind == "memory"
        assert (kind, not memory, kind != "redis") == (
            store.kind,
            store.shared,
            store.supports_sync,
        )
        assert memory == (store.entries is not None and store.nbytes is not None)
        store.close()
