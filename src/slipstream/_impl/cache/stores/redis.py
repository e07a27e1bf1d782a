"""``RedisStore``: entries in Redis (``redis.asyncio``), shared by every process and machine."""

from __future__ import annotations

import math
import time
from collections.abc import Hashable
from typing import Any, NoReturn, cast

from ..store import FRESH, STALE, Target, Terms

__all__ = ["RedisStore"]


def _async_only() -> NoReturn:
    raise TypeError(
        "a Redis-backed cache is async only\nHINT: use 'await cache.get(...)' "
        "or a memory / SQLite cache in sync code"
    )


class RedisStore:
    """Entries (bytes) in Redis through the caller's ``redis.asyncio`` client (not closed here).

    Each entry is one key ``<prefix>e:<key>`` holding ``<expires_at>|<value>`` with a Redis TTL
    of fresh + stale time, so Redis itself drops what is past its stale period (``sweep`` has
    nothing to do); namespaces and tags are Redis sets of keys. Async only: the sync operations
    raise ``TypeError``.
    """

    kind = "redis"
    shared = True
    supports_sync = False
    entries = None  # counting them would cost a scan of the server on every call
    nbytes = None

    def __init__(self, client: Any, *, prefix: str = "slipstream:cache:") -> None:
        if not hasattr(client, "set") or not hasattr(client, "pipeline"):
            raise TypeError(
                f"'redis' must be a redis.asyncio client, got {type(client).__name__}"
                "\nHINT: ss.Cache(redis=redis.asyncio.Redis(host='127.0.0.1'))"
            )
        self.client = client
        self.prefix = prefix

    def _k(self, key: Hashable) -> str:
        return f"{self.prefix}e:{cast(str, key)}"

    async def lookup(self, key: Hashable) -> tuple[int, bytes] | None:
        raw = await self.client.get(self._k(key))
        if raw is None:
            return None
        stamp, _, data = bytes(raw).partition(b"|")
        return (FRESH if time.time() < float(stamp) else STALE), data

    async def store(self, key: Hashable, value: bytes, terms: Terms) -> None:
        ttl_s, stale_s, namespace, tags = terms
        expires = 1e300 if ttl_s is None else time.time() + ttl_s
        lifetime = None if ttl_s is None else max(1, math.ceil((ttl_s + stale_s) * 1000))
        full = self._k(key)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(full, repr(expires).encode() + b"|" + value, px=lifetime)
            for index in (f"ns:{namespace}", *(f"tag:{t}" for t in tags)):
                pipe.sadd(f"{self.prefix}{index}", full)
                if lifetime is not None:  # the index lives as long as its longest entry
                    pipe.pexpire(f"{self.prefix}{index}", lifetime, gt=True)
                    pipe.pexpire(f"{self.prefix}{index}", lifetime, nx=True)
            await pipe.execute()

    async def invalidate(self, target: Target, value: Hashable) -> int:
        if target == "key":
            return int(bool(await self.client.delete(self._k(value))))
        index = "ns" if target == "namespace" else "tag"
        set_key = f"{self.prefix}{index}:{cast(str, value)}"
        members = await self.client.smembers(set_key)
        removed = 0
        if members:
            removed = int(await self.client.delete(*members))
        await self.client.delete(set_key)
        return removed

    async def clear(self) -> None:
        batch: list[Any] = []
        async for key in self.client.scan_iter(match=f"{self.prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await self.client.delete(*batch)
                batch = []
        if batch:
            await self.client.delete(*batch)

    def sweep(self) -> int:
        return 0  # Redis expires entries by itself

    def close(self) -> None:
        """Nothing to release: the client belongs to the caller."""

    # -- sync use is refused ----------------------------------------------------------------

    def lookup_sync(self, key: Hashable) -> tuple[int, bytes] | None:
        _async_only()

    def store_sync(self, key: Hashable, value: bytes, terms: Terms) -> None:
        _async_only()

    def invalidate_sync(self, target: Target, value: Hashable) -> int:
        _async_only()
