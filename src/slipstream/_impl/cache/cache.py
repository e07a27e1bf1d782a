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

import asyncio
import enum
import functools
import logging
import os
import weakref
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from ..core import clock as _clock
from ..core.checks import check_callable, check_int, check_seconds
from ..core.errors import CircuitOpen
from ..core.keys import canonical, fingerprint
from ..flow.breaker import CircuitBreaker
from .stores import (
    FRESH,
    MemoryStore,
    RedisStore,
    SQLiteStore,
    default_size,
    make_serializer,
)

__all__ = ["MISSING", "Cache", "CacheStatistics"]

logger = logging.getLogger("slipstream.cache")
P = ParamSpec("P")
T = TypeVar("T")


class _Missing(enum.Enum):
    """The "argument not given" sentinel: it reads as ``MISSING`` in signatures and
    ``help()``, not as ``<object object at 0x...>``, and pickles as itself."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing.MISSING
_SQLITE_INVALIDATE = {
    "key": SQLiteStore.op_delete,
    "namespace": SQLiteStore.op_invalidate_namespace,
    "tag": SQLiteStore.op_invalidate_tag,
}
_FAST_TYPES = frozenset({str, int, bytes, type(None)})


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStatistics:
    """A snapshot of a ``Cache``'s counters.

    ``misses`` counts lookups that started a load; ``joins`` lookups that found one running and
    waited for it (single flight), so ``misses`` is also the number of loads. ``errors`` counts
    backend calls that failed or were skipped while the backend was down. ``entries`` and
    ``bytes`` are None ("unknown") for SQLite and Redis: counting them would cost a scan of the
    store on every call."""

    hits: int
    misses: int
    stale_hits: int
    joins: int
    evictions: int
    errors: int
    refreshes: int
    unserialisable: int
    entries: int | None
    bytes: int | None

    @property
    def hit_ratio(self) -> float:
        """Hits (fresh or stale) over all lookups (hits, misses and joins)."""
        lookups = self.hits + self.stale_hits + self.misses + self.joins
        return (self.hits + self.stale_hits) / lookups if lookups else 0.0


class _Counters:
    __slots__ = (
        "errors",
        "evictions",
        "hits",
        "joins",
        "misses",
        "refreshes",
        "stale_hits",
        "unserialisable",
    )

    def __init__(self) -> None:
        self.hits = self.misses = self.stale_hits = self.joins = 0
        self.evictions = self.errors = self.refreshes = self.unserialisable = 0


class _Flight:
    __slots__ = ("abandoned", "background", "task", "waiters")

    def __init__(self, task: asyncio.Task[Any], background: bool) -> None:
        self.task = task
        self.waiters = 0
        self.background = background
        self.abandoned = False  # every waiter left and the task was cancelled


def _check_ttl(name: str, value: float | None, *, allow_none: bool = True) -> None:
    """A TTL: seconds > 0, ``inf`` allowed (never expires), None where ``allow_none``."""
    check_seconds(name, value, allow_none=allow_none, allow_inf=True)


class Cache:
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
        self.negative_ttl_s = negative_ttl_s
        self.stale_ttl_s = float(stale_ttl_s)
        self.stale_while_revalidate = stale_while_revalidate
        self.stale_on_error = stale_on_error
        self.sweep_interval_s = float(sweep_interval_s)
        self._counters = _Counters()
        self.memory: MemoryStore | None = None
        self._sqlite: SQLiteStore | None = None
        self._redis: RedisStore | None = None
        self._serializer = make_serializer(serializer)
        if sqlite_path is not None:
            self._sqlite = SQLiteStore(sqlite_path, max_entries=max_entries)
        elif redis is not None:
            self._redis = RedisStore(redis)
        else:
            self.memory = MemoryStore(
                max_entries=max_entries,
                max_bytes=max_bytes,
                size_of=size_of or default_size,
                on_evict=self._count_evictions,
            )
        self._errors: dict[Hashable, tuple[Exception, float]] = {}
        self._flights: dict[Hashable, _Flight] = {}
        self._sync_flights: dict[Hashable, Any] = {}
        self._next_sweep = _clock.clock() + self.sweep_interval_s
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._outage: set[str] = set()
        # A dead backend is skipped for backend_retry_s after each failure (one probe then),
        # so an outage costs misses, not a connection timeout on every call.
        self._backend_breaker = CircuitBreaker(
            "cache-backend",
            failure_threshold=3,
            reset_timeout_s=backend_retry_s,
            log_transitions=False,  # the cache logs the outage itself, once
        )
        self._closed = False

    def _count_evictions(self, n: int) -> None:
        self._counters.evictions += n

    # -- keys -------------------------------------------------------------------------------

    def full_key(self, key: Any, namespace: str | None = None) -> Hashable:
        """The key under which ``key`` is stored (a tuple in memory, a string elsewhere)."""
        ns = namespace or self.namespace
        if self.memory is not None:
            return (ns, self.version, key if type(key) in _FAST_TYPES else canonical(key, "key"))
        text = key if isinstance(key, str) else fingerprint(key, "key")
        return f"{ns}:{self.version}:{text}"

    # -- the backend guard: a failing backend is a miss, with one warning per outage ---------

    def _backend_failed(self, exc: BaseException, what: str) -> None:
        self._counters.errors += 1
        if not self._outage:  # one warning per outage
            logger.warning(
                "cache backend failed on %s (%s: %s); serving misses until it recovers",
                what,
                type(exc).__name__,
                exc,
            )
        self._outage.add(what)

    def _backend_ok(self, what: str) -> None:
        # The outage ends when every kind of operation that failed has worked again (a SQLite
        # file locked by a writer still serves reads: that is not the end of the outage).
        if what in self._outage:
            self._outage.discard(what)
            if not self._outage:
                logger.info("cache backend recovered")

    def _admit(self) -> int | None:
        """The backend breaker's ticket, or None while it is open: skip the backend (a miss),
        do not wait on it."""
        try:
            return self._backend_breaker.admit()
        except CircuitOpen:
            self._counters.errors += 1
            return None

    def _after(self, ticket: int, what: str, exc: Exception | None) -> None:
        if exc is None:
            self._backend_breaker.record_success(ticket)
            self._backend_ok(what)
        else:
            self._backend_breaker.record_failure(ticket, exc)
            self._backend_failed(exc, what)

    async def _external(self, what: str, call: Callable[[], Awaitable[Any]], fallback: Any) -> Any:
        ticket = self._admit()
        if ticket is None:
            return fallback
        try:
            result = await call()
        except Exception as exc:
            self._after(ticket, what, exc)
            return fallback
        except BaseException:
            self._backend_breaker.release(ticket)
            raise
        self._after(ticket, what, None)
        return result

    def _external_sync(self, what: str, call: Callable[[], Any], fallback: Any) -> Any:
        ticket = self._admit()
        if ticket is None:
            return fallback
        try:
            result = call()
        except Exception as exc:
            self._after(ticket, what, exc)
            return fallback
        except BaseException:
            self._backend_breaker.release(ticket)
            raise
        self._after(ticket, what, None)
        return result

    # -- raw lookup and store ---------------------------------------------------------------

    def _decode(self, found: tuple[int, bytes] | None) -> tuple[int, Any] | None:
        if found is None:
            return None
        state, data = found
        return state, self._serializer.loads(data)

    async def _lookup(self, full: Hashable) -> tuple[int, Any] | None:
        self._tick()
        if self.memory is not None:
            return self.memory.lookup(full)
        if self._sqlite is not None:
            op = SQLiteStore.op_lookup(cast(str, full))
            found = await self._external("get", lambda: self._sqlite.arun(op), None)  # type: ignore[union-attr]
        else:
            assert self._redis is not None
            found = await self._external("get", lambda: self._redis.lookup(full), None)  # type: ignore[union-attr, arg-type]
        return self._decode(found)

    def _lookup_sync(self, full: Hashable) -> tuple[int, Any] | None:
        self._tick()
        if self.memory is not None:
            return self.memory.lookup(full)
        sqlite = self._sync_store()
        found = self._external_sync(
            "get", lambda: sqlite.run(SQLiteStore.op_lookup(cast(str, full))), None
        )
        return self._decode(found)

    def _sync_store(self) -> SQLiteStore:
        if self._sqlite is None:
            raise TypeError(
                "a Redis-backed cache is async only\nHINT: use 'await cache.get(...)' "
                "or a memory / SQLite cache in sync code"
            )
        return self._sqlite

    def _encode(self, value: Any) -> bytes:
        return self._serializer.dumps(value)

    async def _store(
        self, full: Hashable, value: Any, ttl_s: float | None, ns: str, tags: tuple[str, ...]
    ) -> None:
        self._tick()
        self._errors.pop(full, None)
        if self.memory is not None:
            self.memory.store(full, value, ttl_s, self.stale_ttl_s, ns, tags)
            return
        data = self._encode(value)  # TypeError for the caller to handle
        if self._sqlite is not None:
            op = self._sqlite.op_store(cast(str, full), data, ttl_s, self.stale_ttl_s, ns, tags)
            await self._external("set", lambda: self._sqlite.arun(op), None)  # type: ignore[union-attr]
        else:
            assert self._redis is not None
            redis = self._redis
            await self._external(
                "set",
                lambda: redis.store(cast(str, full), data, ttl_s, self.stale_ttl_s, ns, tags),
                None,
            )

    def _store_sync(
        self, full: Hashable, value: Any, ttl_s: float | None, ns: str, tags: tuple[str, ...]
    ) -> None:
        self._tick()
        self._errors.pop(full, None)
        if self.memory is not None:
            self.memory.store(full, value, ttl_s, self.stale_ttl_s, ns, tags)
            return
        sqlite = self._sync_store()
        op = sqlite.op_store(
            cast(str, full), self._encode(value), ttl_s, self.stale_ttl_s, ns, tags
        )
        self._external_sync("set", lambda: sqlite.run(op), None)

    # -- sweeping ---------------------------------------------------------------------------

    def _tick(self) -> None:
        if _clock.clock() >= self._next_sweep:
            self.sweep()

    def sweep(self) -> int:
        """Remove expired entries now (it also runs by itself every ``sweep_interval_s``)."""
        self._next_sweep = _clock.clock() + self.sweep_interval_s
        removed = 0
        if self.memory is not None:
            done = False
            while not done:
                n, done = self.memory.sweep()
                removed += n
        elif self._sqlite is not None:
            sqlite = self._sqlite
            removed = self._external_sync("sweep", lambda: sqlite.run(SQLiteStore.op_sweep), 0)
        now = _clock.clock()
        for key in [k for k, (_, until) in self._errors.items() if until <= now]:
            self._errors.pop(key, None)
        return removed

    def _arm_timer(self) -> None:
        """In async use, sweep on a timer too, so memory is bounded even with no traffic.

        The timer lives on one loop; when that loop is gone (an ``asyncio.run`` ended, another
        began) or stopped, the next async use arms it again on the running loop."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        if self._timer is not None and self._timer_loop is not None:
            owner = self._timer_loop()
            if owner is loop or (owner is not None and owner.is_running()):
                return
            if owner is not None and not owner.is_closed():
                self._timer.cancel()  # a stopped loop: its timer would fire only if it ran again
        self._timer = loop.call_later(self.sweep_interval_s, self._on_timer)
        self._timer_loop = weakref.ref(loop)

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed:
            return
        if self._redis is None:
            self.sweep()
        self._arm_timer()

    # -- single flight --------------------------------------------------------------------

    async def _load(
        self,
        full: Hashable,
        loader: Callable[[], Awaitable[Any]],
        ttl_s: float | None,
        ns: str,
        tags: tuple[str, ...],
        stale: Any,
        *,
        background: bool = False,
    ) -> Any:
        flight = self._flights.get(full)
        loop = asyncio.get_running_loop()
        if flight is not None and (flight.task.get_loop() is not loop or flight.abandoned):
            flight = None  # from an event loop that closed mid-flight, or being cancelled
        if flight is None:
            if not background:
                self._counters.misses += 1
            task = loop.create_task(self._compute(full, loader, ttl_s, ns, tags, stale))
            flight = _Flight(task, background)
            self._flights[full] = flight
            task.add_done_callback(functools.partial(self._flight_done, full, flight))
        elif not background:
            self._counters.joins += 1
        if background:
            return None
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done() and not flight.background:
                # The last waiter left: nobody needs the result. The flight leaves the table
                # now, not in the done-callback a loop step later, so a caller arriving in
                # between starts a fresh load instead of joining a cancelled one.
                flight.abandoned = True
                if self._flights.get(full) is flight:
                    del self._flights[full]
                flight.task.cancel()

    def _flight_done(self, full: Hashable, flight: _Flight, task: asyncio.Task[Any]) -> None:
        if self._flights.get(full) is flight:
            del self._flights[full]
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here, so no "never retrieved" warning
        if exc is not None and flight.background:
            logger.warning("background refresh of %r failed: %r", full, exc)

    async def _compute(
        self,
        full: Hashable,
        loader: Callable[[], Awaitable[Any]],
        ttl_s: float | None,
        ns: str,
        tags: tuple[str, ...],
        stale: Any,
    ) -> Any:
        try:
            value = await loader()
        except Exception as exc:
            return self._loader_failed(full, exc, stale)
        try:
            await self._store(full, value, ttl_s, ns, tags)
        except TypeError:
            self._unserialisable(full, value)
        return value

    def _loader_failed(self, full: Hashable, exc: Exception, stale: Any) -> Any:
        if self.negative_ttl_s is not None:
            self._errors[full] = (exc, _clock.clock() + self.negative_ttl_s)
        if stale is not MISSING and self.stale_on_error:
            self._counters.stale_hits += 1
            logger.warning("serving a stale value for %r: its refresh raised %r", full, exc)
            return stale
        raise exc

    def _unserialisable(self, full: Hashable, value: Any) -> None:
        self._counters.unserialisable += 1
        logger.warning(
            "not cached: a %s under %r cannot be serialised with %s; the call still returns it",
            type(value).__qualname__,
            full,
            self._serializer.name,
            exc_info=True,
        )

    def _negative(self, full: Hashable) -> Exception | None:
        if not self._errors:
            return None
        found = self._errors.get(full)
        if found is None:
            return None
        exc, until = found
        if _clock.clock() < until:
            return exc
        self._errors.pop(full, None)
        return None

    async def _get_or_load(
        self,
        full: Hashable,
        loader: Callable[[], Awaitable[Any]],
        ttl_s: float | None,
        ns: str,
        tags: tuple[str, ...],
    ) -> Any:
        self._arm_timer()
        found = await self._lookup(full)
        if found is not None:
            state, value = found
            if state == FRESH:
                self._counters.hits += 1
                return value
            if self.stale_while_revalidate:
                self._counters.stale_hits += 1
                self._counters.refreshes += 1
                await self._load(full, loader, ttl_s, ns, tags, value, background=True)
                return value
            stale = value
        else:
            stale = MISSING
        error = self._negative(full)
        if error is not None:
            self._counters.hits += 1
            raise error
        return await self._load(full, loader, ttl_s, ns, tags, stale)  # a miss or a join

    def _get_or_load_sync(
        self,
        full: Hashable,
        loader: Callable[[], Any],
        ttl_s: float | None,
        ns: str,
        tags: tuple[str, ...],
    ) -> Any:
        import threading

        found = self._lookup_sync(full)
        stale = MISSING
        if found is not None:
            state, value = found
            if state == FRESH:
                self._counters.hits += 1
                return value
            stale = value
        error = self._negative(full)
        if error is not None:
            self._counters.hits += 1
            raise error
        # single flight across threads: the first caller computes, the others wait for it
        owner = False
        flight = self._sync_flights.get(full)
        if flight is None:
            candidate = {"event": threading.Event(), "value": MISSING, "error": None}
            flight = self._sync_flights.setdefault(full, candidate)
            owner = flight is candidate
        if owner:
            self._counters.misses += 1
        else:
            self._counters.joins += 1
            flight["event"].wait()
            if flight["error"] is not None:
                raise flight["error"]
            return flight["value"]
        try:
            try:
                value = loader()
            except Exception as exc:
                value = self._loader_failed(full, exc, stale)
            else:
                try:
                    self._store_sync(full, value, ttl_s, ns, tags)
                except TypeError:
                    self._unserialisable(full, value)
            flight["value"] = value
            return value
        except Exception as exc:
            flight["error"] = exc
            raise
        finally:
            self._sync_flights.pop(full, None)
            flight["event"].set()

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
        self, key: Any, ttl_s: float | None, namespace: str | None, tags: Iterable[str], value: Any
    ) -> tuple[Hashable, Any, float | None, str, tuple[str, ...]]:
        """Resolve a public call's arguments: (full key, value, ttl, namespace, tags)."""
        ttl = self.ttl_s if ttl_s is MISSING else ttl_s
        _check_ttl("ttl_s", ttl)
        ns = namespace or self.namespace
        return self.full_key(key, ns), value, ttl, ns, tuple(tags)

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
        await self._store(*self._entry(key, ttl_s, namespace, tags, value))

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
        self._store_sync(*self._entry(key, ttl_s, namespace, tags, value))

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
        full, _, ttl, ns, tag_tuple = self._entry(key, ttl_s, namespace, tags, None)
        return cast(T, await self._get_or_load(full, loader, ttl, ns, tag_tuple))

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
        full, _, ttl, ns, tag_tuple = self._entry(key, ttl_s, namespace, tags, None)
        return cast(T, self._get_or_load_sync(full, loader, ttl, ns, tag_tuple))

    async def invalidate(
        self, key: Any = MISSING, *, namespace: str | None = None, tag: str | None = None
    ) -> int:
        """Remove one key, a whole namespace, or every entry with a tag; returns how many.
        (For one call of a ``@cached`` function, use ``fn.invalidate(*args, **kwargs)``.)"""
        kind, target = self._target(key, namespace, tag)
        return await self._invalidate(kind, target)

    def invalidate_sync(
        self, key: Any = MISSING, *, namespace: str | None = None, tag: str | None = None
    ) -> int:
        """``invalidate`` for sync code (memory and SQLite caches)."""
        kind, target = self._target(key, namespace, tag)
        return self._invalidate_sync(kind, target)

    async def _invalidate_entry(self, full: Hashable) -> int:
        """Remove the entry stored under ``full`` (a key ``@cached`` built already)."""
        self._errors.pop(full, None)
        return await self._invalidate("key", full)

    def _invalidate_entry_sync(self, full: Hashable) -> int:
        self._errors.pop(full, None)
        return self._invalidate_sync("key", full)

    async def _invalidate(self, kind: str, target: Any) -> int:
        if self.memory is not None:
            return self._invalidate_memory(kind, target)
        if self._sqlite is not None:
            sqlite, op = self._sqlite, _SQLITE_INVALIDATE[kind](target)
            return int(await self._external("invalidate", lambda: sqlite.arun(op), 0))
        assert self._redis is not None
        call = {
            "key": self._redis.delete,
            "namespace": self._redis.invalidate_namespace,
            "tag": self._redis.invalidate_tag,
        }[kind]
        return int(await self._external("invalidate", lambda: call(target), 0))

    def _invalidate_sync(self, kind: str, target: Any) -> int:
        if self.memory is not None:
            return self._invalidate_memory(kind, target)
        sqlite, op = self._sync_store(), _SQLITE_INVALIDATE[kind](target)
        return int(self._external_sync("invalidate", lambda: sqlite.run(op), 0))

    def _target(self, key: Any, namespace: str | None, tag: str | None) -> tuple[str, Any]:
        given = [key is not MISSING, namespace is not None, tag is not None]
        if sum(given) != 1:
            raise TypeError("invalidate() takes exactly one of: a key, namespace=..., tag=...")
        if key is not MISSING:
            full = self.full_key(key)
            self._errors.pop(full, None)
            return "key", full
        return ("namespace", namespace) if namespace is not None else ("tag", tag)

    def _invalidate_memory(self, kind: str, target: Any) -> int:
        assert self.memory is not None
        if kind == "key":
            return int(self.memory.delete(target))
        if kind == "namespace":
            return self.memory.invalidate_namespace(target)
        return self.memory.invalidate_tag(target)

    async def clear(self) -> None:
        """Remove every entry."""
        self._errors.clear()
        if self.memory is not None:
            self.memory.clear()
        elif self._sqlite is not None:
            sqlite = self._sqlite
            await self._external("clear", lambda: sqlite.arun(SQLiteStore.op_clear), None)
        else:
            assert self._redis is not None
            await self._external("clear", self._redis.clear, None)

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
            entries=len(self.memory) if self.memory is not None else None,
            bytes=self.memory.bytes if self.memory is not None else None,
        )

    async def aclose(self) -> None:
        """Cancel background refreshes, stop the sweep timer, close the backend's connection.
        (A Redis client passed in belongs to the caller and is not closed.)"""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        flights = [f.task for f in self._flights.values()]
        for task in flights:
            task.cancel()
        if flights:
            await asyncio.gather(*flights, return_exceptions=True)
        if self._sqlite is not None:
            self._sqlite.close()

    async def __aenter__(self) -> Cache:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        s = self.statistics()
        where = "memory" if self.memory is not None else ("sqlite" if self._sqlite else "redis")
        entries = "?" if s.entries is None else s.entries
        return (
            f"<Cache {where} ns={self.namespace!r} entries={entries} hits={s.hits} "
            f"misses={s.misses} hit_ratio={s.hit_ratio:.2f}>"
        )
