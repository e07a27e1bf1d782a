"""``CachePolicy``: what a ``Cache`` does with a full key, whichever store holds the entries.

A lookup is a hit (fresh), a stale hit (served at once while one background refresh runs:
stale-while-revalidate), a cached error (``negative_ttl_s``: raised again without calling) or a
load: the loader runs under single flight, its value is stored, an error falls back to the
stale value when ``stale_on_error`` says so. A value the store cannot serialise is returned
uncached and counted. Expired entries go lazily, on a tick of any lookup or store, and by a
periodic sweep on the running loop, so memory stays bounded even when no one writes.

``Cache`` (cache.py) is this policy plus the options, the keys and the public API; it calls
the store only through the ``Store`` protocol, never asking which store it is.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import weakref
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import Future
from typing import Any

from ..core import clock as _clock
from .flight import SingleFlight
from .serializers import Serializer
from .stats import Counters
from .store import FRESH, Store, Terms

__all__ = ["MISSING", "CachePolicy"]

logger = logging.getLogger("slipstream.cache")


class _Missing(enum.Enum):
    """The "argument not given" sentinel: it reads as ``MISSING`` in signatures and
    ``help()``, not as ``<object object at 0x...>``, and pickles as itself."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing.MISSING
_new_tuple = tuple.__new__


class CachePolicy:
    """The lookups, stores, loads and sweeps behind ``Cache``'s public methods."""

    def __init__(
        self,
        *,
        store: Store[Any],
        counters: Counters,
        serializer: Serializer,
        negative_ttl_s: float | None,
        stale_ttl_s: float,
        stale_while_revalidate: bool,
        stale_on_error: bool,
        sweep_interval_s: float,
    ) -> None:
        self.negative_ttl_s = negative_ttl_s
        self.stale_ttl_s = stale_ttl_s
        self.stale_while_revalidate = stale_while_revalidate
        self.stale_on_error = stale_on_error
        self.sweep_interval_s = sweep_interval_s
        self._store = store
        self._counters = counters
        self._serializer = serializer
        self._errors: dict[Hashable, tuple[Exception, float]] = {}
        # Two tables of one kind: a thread must never wait on an async flight (see flight.py).
        self._flights: SingleFlight[asyncio.Task[Any]] = SingleFlight(counters)
        self._thread_flights: SingleFlight[Future[Any]] = SingleFlight(counters)
        self._next_sweep = _clock.clock() + sweep_interval_s
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._closed = False

    # -- raw lookup and store ---------------------------------------------------------------

    async def _lookup(self, full: Hashable) -> tuple[int, Any] | None:
        self._tick()
        return await self._store.lookup(full)

    def _lookup_sync(self, full: Hashable) -> tuple[int, Any] | None:
        self._tick()
        return self._store.lookup_sync(full)

    async def _store_value(self, full: Hashable, value: Any, terms: Terms) -> None:
        """Keep ``value`` under ``full``; TypeError if the store cannot serialise it."""
        self._tick()
        self._errors.pop(full, None)
        await self._store.store(full, value, terms)

    def _store_value_sync(self, full: Hashable, value: Any, terms: Terms) -> None:
        self._tick()
        self._errors.pop(full, None)
        self._store.store_sync(full, value, terms)

    def _terms(self, ttl_s: float | None, namespace: str, tags: tuple[str, ...]) -> Terms:
        """The terms of an entry of this cache (its stale period is the cache's)."""
        # tuple.__new__ skips the named tuple's Python-level __new__: half the cost, on every
        # get_or_load call, hit or miss
        return _new_tuple(Terms, (ttl_s, self.stale_ttl_s, namespace, tags))

    # -- sweeping ---------------------------------------------------------------------------

    def _tick(self) -> None:
        if _clock.clock() >= self._next_sweep:
            self.sweep()

    def sweep(self) -> int:
        """Remove expired entries now (it also runs by itself every ``sweep_interval_s``)."""
        self._next_sweep = _clock.clock() + self.sweep_interval_s
        removed = self._store.sweep()
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
        self.sweep()
        self._arm_timer()

    # -- a load: the loader's outcome, kept -------------------------------------------------

    async def _compute(
        self, full: Hashable, loader: Callable[[], Awaitable[Any]], terms: Terms, stale: Any
    ) -> Any:
        try:
            value = await loader()
        except Exception as exc:
            return self._loader_failed(full, exc, stale)
        try:
            await self._store_value(full, value, terms)
        except TypeError:
            self._unserialisable(full, value)
        return value

    def _compute_sync(
        self, full: Hashable, loader: Callable[[], Any], terms: Terms, stale: Any
    ) -> Any:
        try:
            value = loader()
        except Exception as exc:
            return self._loader_failed(full, exc, stale)
        try:
            self._store_value_sync(full, value, terms)
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

    def _raise_cached_error(self, full: Hashable) -> None:
        """Raise the loader error kept for ``full`` (``negative_ttl_s``), counted as a hit."""
        if not self._errors:
            return
        found = self._errors.get(full)
        if found is None:
            return
        exc, until = found
        if _clock.clock() < until:
            self._counters.hits += 1
            raise exc
        self._errors.pop(full, None)

    async def _get_or_load(
        self, full: Hashable, terms: Terms, loader: Callable[[], Awaitable[Any]]
    ) -> Any:
        self._arm_timer()
        found = await self._lookup(full)
        stale = MISSING
        if found is not None:
            if found[0] == FRESH:
                self._counters.hits += 1
                return found[1]
            stale = found[1]
            if self.stale_while_revalidate:
                self._counters.stale_hits += 1
                self._counters.refreshes += 1
                await self._flights.run(
                    full,
                    lambda: self._compute(full, loader, terms, stale),
                    background=True,
                )
                return stale
        self._raise_cached_error(full)
        return await self._flights.run(  # a miss or a join
            full, lambda: self._compute(full, loader, terms, stale)
        )

    def _get_or_load_sync(self, full: Hashable, terms: Terms, loader: Callable[[], Any]) -> Any:
        found = self._lookup_sync(full)
        stale = MISSING
        if found is not None:
            if found[0] == FRESH:
                self._counters.hits += 1
                return found[1]
            stale = found[1]
        self._raise_cached_error(full)
        return self._thread_flights.run_sync(  # single flight across threads
            full, lambda: self._compute_sync(full, loader, terms, stale)
        )

    async def _close(self) -> None:
        """Stop the sweep timer, cancel the loads in flight, close the store."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._flights.cancel_all()
        self._store.close()
