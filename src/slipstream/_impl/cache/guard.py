"""``GuardedStore``: a failing backend is a miss, never a failed call.

Around any store: each operation is admitted by a circuit breaker (after 3 failures in a row
the backend is skipped for ``retry_s``, then one call probes it), and an operation that raises
an ``Exception`` answers its fallback (a lookup: None, a miss; an invalidation: 0) and counts
one error. A skipped operation counts one error too. One warning is logged per outage; the
outage ends when every kind of operation that failed has worked again (a SQLite file locked by
a writer still serves reads: that is not the end of the outage). A cancellation passes through
and frees the breaker's ticket.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from ..core.errors import CircuitOpen
from ..flow.breaker import CircuitBreaker
from .store import Layer, Store, Target, Terms, V

__all__ = ["GuardedStore"]

logger = logging.getLogger("slipstream.cache")
R = TypeVar("R")


class GuardedStore(Layer[V]):
    """A store whose backend failures become misses behind a circuit breaker.

    ``on_error`` is called once per failed or skipped operation (the cache's error count).
    """

    __slots__ = ("_breaker", "_on_error", "_outage")

    def __init__(self, inner: Store[V], *, retry_s: float, on_error: Callable[[], None]) -> None:
        super().__init__(inner)
        self._on_error = on_error
        self._outage: set[str] = set()
        # A dead backend is skipped for retry_s after each failure (one probe then), so an
        # outage costs misses, not a connection timeout on every call.
        self._breaker = CircuitBreaker(
            "cache-backend",
            failure_threshold=3,
            reset_timeout_s=retry_s,
            log_transitions=False,  # the outage is logged here, once
        )

    # -- the guard --------------------------------------------------------------------------

    def _admit(self) -> int | None:
        """The breaker's ticket, or None while it is open: skip the backend, do not wait."""
        try:
            return self._breaker.admit()
        except CircuitOpen:
            self._on_error()
            return None

    def _settle(self, ticket: int, what: str, exc: BaseException | None) -> None:
        """End the admitted operation ``what`` by what it raised (None: it returned); a
        failure is counted, logged once per outage, and swallowed by the caller."""
        if exc is None:
            self._breaker.record_success(ticket)
            if what in self._outage:
                self._outage.discard(what)
                if not self._outage:
                    logger.info("cache backend recovered")
            return
        if not isinstance(exc, Exception):  # a cancellation: no answer, not a failure
            self._breaker.release(ticket)
            raise exc
        self._breaker.record_failure(ticket, exc)
        self._on_error()
        if not self._outage:
            logger.warning(
                "cache backend failed on %s (%s: %s); serving misses until it recovers",
                what,
                type(exc).__name__,
                exc,
            )
        self._outage.add(what)

    async def _call(
        self, what: str, fallback: R, call: Callable[..., Awaitable[R]], *args: Any
    ) -> R:
        ticket = self._admit()
        if ticket is None:
            return fallback
        try:
            result = await call(*args)
        except BaseException as exc:
            self._settle(ticket, what, exc)  # re-raises a cancellation
            return fallback
        self._settle(ticket, what, None)
        return result

    def _call_sync(self, what: str, fallback: R, call: Callable[..., R], *args: Any) -> R:
        if not self.supports_sync:
            return call(*args)  # raises its TypeError: a misuse, not an outage
        ticket = self._admit()
        if ticket is None:
            return fallback
        try:
            result = call(*args)
        except BaseException as exc:
            self._settle(ticket, what, exc)
            return fallback
        self._settle(ticket, what, None)
        return result

    # -- the store's operations, guarded ----------------------------------------------------

    async def lookup(self, key: Hashable) -> tuple[int, V] | None:
        return await self._call("get", None, self.inner.lookup, key)

    def lookup_sync(self, key: Hashable) -> tuple[int, V] | None:
        return self._call_sync("get", None, self.inner.lookup_sync, key)

    async def store(self, key: Hashable, value: V, terms: Terms) -> None:
        await self._call("set", None, self.inner.store, key, value, terms)

    def store_sync(self, key: Hashable, value: V, terms: Terms) -> None:
        self._call_sync("set", None, self.inner.store_sync, key, value, terms)

    async def invalidate(self, target: Target, value: Hashable) -> int:
        return await self._call("invalidate", 0, self.inner.invalidate, target, value)

    def invalidate_sync(self, target: Target, value: Hashable) -> int:
        return self._call_sync("invalidate", 0, self.inner.invalidate_sync, target, value)

    async def clear(self) -> None:
        await self._call("clear", None, self.inner.clear)

    def sweep(self) -> int:
        return self._call_sync("sweep", 0, self.inner.sweep)
