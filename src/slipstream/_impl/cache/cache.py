"""``ss.Cache``: results kept with TTL and size bounds, computed once per key.

What a demanding user gets that the peers miss:

- single flight: N concurrent misses of one key run one computation; a waiter that is cancelled
  leaves the computation running for the others (async-lru's behaviour, unlike cashews, where one
  caller's timeout cancels everyone); only when the last waiter leaves is it cancelled;
- ``None`` is a value and is cached (aiocache and cashews treat it as a miss); errors are not,
  unless ``negative_ttl_s`` says for how long;
- expired entries go lazily and by a periodic sweep, so memory is bounded even when no one
  writes (cachetools frees them only on the next write);
- stale-while-revalidate and stale-on-error under the same single flight;
- keys from a canonical encoding of the arguments (dataclasses and pydantic models included);
  an argument with no stable encoding raises ``TypeError`` naming it, instead of silently
  missing every time;
- memory, SQLite file or Redis; a failing backend degrades to misses with one warning per
  outage, never to a failed call.

Example::

    @ss.cached(ttl_s=600, exclude=["session"])
    async def classify(session, asset_id: int, schema: Schema) -> Label: ...
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar, cast, final

from ..core.checks import check_callable, check_int, check_seconds
from ..core.keys import canonical, fingerprint
from ..core.resource import AsyncResource
from .policy import MISSING as MISSING
from .policy import CachePolicy
from .serializers import make_serializer
from .stats import CacheStatistics as CacheStatistics
from .stats import Counters
from .store import FRESH, Target, Terms
from .stores import MemoryStore, open_store

__all__ = ["MISSING", "Cache", "CacheStatistics"]

T = TypeVar("T")
_FAST_TYPES = frozenset({str, int, bytes, type(None)})


def _check_ttl(name: str, value: float | None, *, allow_none: bool = True) -> None:
    """A TTL: seconds > 0, ``inf`` allowed (never expires), None where ``allow_none``."""
    check_seconds(name, value, allow_none=allow_none, allow_inf=True)


@final
class Cache(AsyncResource, CachePolicy):
    """A cache with TTL, size bounds, namespaces, tags and single flight.

    Args:
        ttl_s: how long an entry is fresh (None: until evicted). Must be > 0.
        max_entries: most entries kept (least recently used go first).
        max_bytes: optional bound on the summed ``size_of`` of values (memory store).
        size_of: how many bytes a value counts as (default: len for str/bytes, else
            ``sys.getsizeof``).
        namespace: default namespace of entries (``invalidate(namespace=...)``).
        version: part of every key; bump it to orphan entries made by older code.
        sqlite_path: keep entries in this SQLite file (persistent, shared by processes).
        redis: keep entries in Redis through this ``redis.asyncio`` client (async use only).
        serializer: "json" (default), "msgpack" or "pickle" (SQLite and Redis only; pickle only
            when named, since unpickling runs code).
        negative_ttl_s: cache a loader's exception for this long (default: errors not cached).
        stale_ttl_s: keep entries this long past their TTL for the two options below.
        stale_while_revalidate: serve a stale entry at once and refresh it in the background.
        stale_on_error: serve a stale entry when its refresh fails.
        sweep_interval_s: how often expired entries are swept out.
        backend_retry_s: after 3 failures in a row, SQLite / Redis is skipped (calls are
            misses) for this long before one call probes it again.
    """

    def __init__(
        self,
        *,
        ttl_s: float | None = 300.0,
        max_entries: int = 10_000,
        max_bytes: int | None = None,
        size_of: Callable[[Any], int] | None = None,
        namespace: str = "default",
        version: str | int = 1,
        sqlite_path: str | os.PathLike[str] | None = None,
        redis: Any = None,
        serializer: str = "json",
        negative_ttl_s: float | None = None,
        stale_ttl_s: float = 0.0,
        stale_while_revalidate: bool = False,
        stale_on_error: bool = False,
        sweep_interval_s: float = 60.0,
        backend_retry_s: float = 5.0,
    ) -> None:
        _check_ttl("ttl_s", ttl_s)
        _check_ttl("backend_retry_s", backend_retry_s, allow_none=False)
        _check_ttl("negative_ttl_s", negative_ttl_s)
        _check_ttl("sweep_interval_s", sweep_interval_s, allow_none=False)
        max_entries = check_int("max_entries", max_entries, minimum=1)
        max_bytes = check_int("max_bytes", max_bytes, minimum=1, allow_none=True)
        stale_ttl_s = check_seconds("stale_ttl_s", stale_ttl_s, allow_zero=True)
        check_callable("size_of", size_of, allow_none=True)
        if (stale_while_revalidate or stale_on_error) and not stale_ttl_s:
            raise ValueError(
                "stale_while_revalidate and stale_on_error need 'stale_ttl_s' > 0: how long a "
                "stale entry may be served\nHINT: ss.Cache(ttl_s=60, stale_ttl_s=600, ...)"
            )
        if not isinstance(namespace, str) or not namespace:
            raise ValueError(f"'namespace' must be a non-empty string, got {namespace!r}")
        if sqlite_path is not None and redis is not None:
            raise ValueError("give at most one of 'sqlite_path' and 'redis'")
        self.ttl_s = ttl_s
        self.namespace = namespace
        self.version = str(version)
        counters = Counters()
        chosen = make_serializer(serializer)  # checked for a memory cache too
        store = open_store(
            sqlite_path=sqlite_path,
            redis=redis,
            serializer=chosen,
            max_entries=max_entries,
            max_bytes=max_bytes,
            size_of=size_of,
            retry_s=backend_retry_s,
            on_evict=counters.count_evictions,
            on_error=counters.count_error,
        )
        super().__init__(
            store=store,
            counters=counters,
            serializer=chosen,
            negative_ttl_s=negative_ttl_s,
            stale_ttl_s=float(stale_ttl_s),
            stale_while_revalidate=stale_while_revalidate,
            stale_on_error=stale_on_error,
            sweep_interval_s=float(sweep_interval_s),
        )
        self._default_terms = self._terms(ttl_s, namespace, ())
        # Keys of a shared store are text, the same in every process; in memory a tuple.
        self._shared = store.shared
        # The hit path of @cached reads the memory store's dict itself: one dict lookup and one
        # clock read, no call (a call through the Store protocol costs more than the whole hit).
        self._hot = store.data if isinstance(store, MemoryStore) else None

    # -- keys -------------------------------------------------------------------------------

    def full_key(self, key: Any, namespace: str | None = None) -> Hashable:
        """The key under which ``key`` is stored (a tuple in memory, a string elsewhere)."""
        ns = namespace or self.namespace
        if not self._shared:
            return (ns, self.version, key if type(key) in _FAST_TYPES else canonical(key, "key"))
        text = key if isinstance(key, str) else fingerprint(key, "key")
        return f"{ns}:{self.version}:{text}"

    # -- public API -------------------------------------------------------------------------

    async def get(self, key: Any, default: Any = None, *, namespace: str | None = None) -> Any:
        """The fresh value under ``key``, or ``default``. A cached ``None`` is returned as None."""
        return self._fresh_or(await self._lookup(self.full_key(key, namespace)), default)

    def get_sync(self, key: Any, default: Any = None, *, namespace: str | None = None) -> Any:
        """``get`` for sync code (memory and SQLite caches)."""
        return self._fresh_or(self._lookup_sync(self.full_key(key, namespace)), default)

    def _fresh_or(self, found: tuple[int, Any] | None, default: Any) -> Any:
        """A lookup's fresh value (a hit), else ``default`` (a miss)."""
        if found is None or found[0] != FRESH:
            self._counters.misses += 1
            return default
        self._counters.hits += 1
        return found[1]

    def _entry(
        self, key: Any, ttl_s: float | None, namespace: str | None, tags: Iterable[str]
    ) -> tuple[Hashable, Terms]:
        """Resolve a public call's arguments: the full key and the entry's terms."""
        if ttl_s is MISSING and namespace is None and not tags:
            return self.full_key(key), self._default_terms  # the common call: nothing to build
        ttl = self.ttl_s if ttl_s is MISSING else ttl_s
        _check_ttl("ttl_s", ttl)
        ns = namespace or self.namespace
        return self.full_key(key, ns), self._terms(ttl, ns, tuple(tags))

    async def set(
        self,
        key: Any,
        value: Any,
        *,
        ttl_s: float | None = MISSING,
        tags: Iterable[str] = (),
        namespace: str | None = None,
    ) -> None:
        """Store ``value`` (``None`` included) under ``key``.

        Raises:
            TypeError: the value cannot be serialised (SQLite / Redis); nothing is stored.
        """
        full, terms = self._entry(key, ttl_s, namespace, tags)
        await self._store_value(full, value, terms)

    def set_sync(
        self,
        key: Any,
        value: Any,
        *,
        ttl_s: float | None = MISSING,
        tags: Iterable[str] = (),
        namespace: str | None = None,
    ) -> None:
        """``set`` for sync code."""
        full, terms = self._entry(key, ttl_s, namespace, tags)
        self._store_value_sync(full, value, terms)

    async def get_or_load(
        self,
        key: Any,
        loader: Callable[[], Awaitable[T]],
        *,
        ttl_s: float | None = MISSING,
        tags: Iterable[str] = (),
        namespace: str | None = None,
    ) -> T:
        """The value under ``key``, computed by ``await loader()`` on a miss under single flight."""
        return cast(T, await self._get_or_load(*self._entry(key, ttl_s, namespace, tags), loader))

    def get_or_load_sync(
        self,
        key: Any,
        loader: Callable[[], T],
        *,
        ttl_s: float | None = MISSING,
        tags: Iterable[str] = (),
        namespace: str | None = None,
    ) -> T:
        """``get_or_load`` for sync code; single flight across threads."""
        return cast(T, self._get_or_load_sync(*self._entry(key, ttl_s, namespace, tags), loader))

    async def invalidate(
        self, key: Any = MISSING, *, namespace: str | None = None, tag: str | None = None
    ) -> int:
        """Remove one key, a whole namespace, or every entry with a tag; returns how many.
        (For one call of a ``@cached`` function, use ``fn.invalidate(*args, **kwargs)``.)"""
        return await self._store.invalidate(*self._target(key, namespace, tag))

    def invalidate_sync(
        self, key: Any = MISSING, *, namespace: str | None = None, tag: str | None = None
    ) -> int:
        """``invalidate`` for sync code (memory and SQLite caches)."""
        return self._store.invalidate_sync(*self._target(key, namespace, tag))

    async def _invalidate_entry(self, full: Hashable) -> int:
        """Remove the entry stored under ``full`` (a key ``@cached`` built already)."""
        self._errors.pop(full, None)
        return await self._store.invalidate("key", full)

    def _invalidate_entry_sync(self, full: Hashable) -> int:
        self._errors.pop(full, None)
        return self._store.invalidate_sync("key", full)

    def _target(self, key: Any, namespace: str | None, tag: str | None) -> tuple[Target, Any]:
        given = [key is not MISSING, namespace is not None, tag is not None]
        if sum(given) != 1:
            raise TypeError("invalidate() takes exactly one of: a key, namespace=..., tag=...")
        if key is not MISSING:
            full = self.full_key(key)
            self._errors.pop(full, None)
            return "key", full
        return ("namespace", namespace) if namespace is not None else ("tag", tag)

    async def clear(self) -> None:
        """Remove every entry."""
        self._errors.clear()
        await self._store.clear()

    def statistics(self) -> CacheStatistics:
        """Hits, misses, stale hits, single-flight joins, evictions, backend errors..."""
        c = self._counters
        return CacheStatistics(
            hits=c.hits,
            misses=c.misses,
            stale_hits=c.stale_hits,
            joins=c.joins,
            evictions=c.evictions,
            errors=c.errors,
            refreshes=c.refreshes,
            unserialisable=c.unserialisable,
            entries=self._store.entries,
            bytes=self._store.nbytes,
        )

    async def aclose(self) -> None:
        """Cancel background refreshes, stop the sweep timer, close the backend's connection.
        (A Redis client passed in belongs to the caller and is not closed.)"""
        await self._close()

    def __repr__(self) -> str:
        s = self.statistics()
        entries = "?" if s.entries is None else s.entries
        return (
            f"<Cache {self._store.kind} ns={self.namespace!r} entries={entries} hits={s.hits} "
            f"misses={s.misses} hit_ratio={s.hit_ratio:.2f}>"
        )
